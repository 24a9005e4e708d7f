"""What can come of a lookup: one table per fact. Each outcome's word is stored and
exported as is; its label is the plain words staff read; its status is the HTTP answer.
Upstream errors name their outcome (``customers.upstream.errors``), so a new failure
is added in one place."""

from django.db import models


class Outcome(models.TextChoices):
    """Each outcome's word, stored and exported as is (and shown in the admin), and its
    label: the plain words staff read wherever an outcome is shown, the result page,
    their recent lookups and the history. The result page adds what to do next."""

    FOUND = "found", "Found"
    PROJECT_NOT_FOUND = "project_not_found", "Solar Proof has no project with that ID"
    NO_CUSTOMER = "no_customer", "That project exists, but no customer is assigned to it yet"
    # The portal refused the staff member (no role). Rows written before the next
    # outcome existed hold this for Solar Proof's refusals too.
    NOT_AUTHORISED = "not_authorised", "Refused by the portal: no role that may look up customers"
    UPSTREAM_NOT_AUTHORISED = "upstream_not_authorised", "Solar Proof does not allow the portal to see this project"
    API_KEY_INVALID = "api_key_invalid", "The portal's Solar Proof key was refused: tell an administrator"
    INVALID_PARAMETERS = "invalid_parameters", "Solar Proof said the request was incomplete: tell an administrator"
    UPSTREAM_ERROR = "upstream_error", "Solar Proof gave an answer the portal could not read"
    # A timeout, a refused connection, or Solar Proof's own 502-504: the result page says which.
    UPSTREAM_UNAVAILABLE = "upstream_unavailable", "Solar Proof was unavailable"
    RATE_LIMITED = "rate_limited", "Too many lookups in a short time"

    @property
    def status(self) -> int:
        """The HTTP status a page answering with this outcome carries: errors keep their
        meaning for scripts and monitoring (htmx swaps them in like any other answer)."""
        return _HTTP_STATUS[self]


_HTTP_STATUS = {
    Outcome.FOUND: 200,
    Outcome.PROJECT_NOT_FOUND: 404,
    Outcome.NO_CUSTOMER: 404,
    Outcome.NOT_AUTHORISED: 403,
    # Solar Proof refused this project to the portal: nobody may see it here either.
    Outcome.UPSTREAM_NOT_AUTHORISED: 403,
    Outcome.API_KEY_INVALID: 502,
    Outcome.INVALID_PARAMETERS: 502,
    Outcome.UPSTREAM_ERROR: 502,
    Outcome.UPSTREAM_UNAVAILABLE: 503,
    Outcome.RATE_LIMITED: 429,
}
