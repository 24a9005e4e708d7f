"""Everything Solar Proof can answer instead of a customer: one class per failure, each
naming its audit outcome (whose label and HTTP status live in ``customers.outcomes``) and
what staff can do about it. A new failure is one class here, and its code below."""

from customers.outcomes import Outcome


class SolarProofError(Exception):
    """Solar Proof did not give us a customer. ``str()`` is what staff can do about it,
    safe to show; what happened, in staff's words, is the audit outcome's label."""

    outcome = Outcome.UPSTREAM_ERROR
    advice = "Try again in a minute."

    def __init__(self, detail: str = "") -> None:
        # ``detail`` is for logs and tests: our own words, never upstream text or URLs.
        self.detail = detail
        super().__init__(self.advice)


class InvalidApiKey(SolarProofError):
    outcome = Outcome.API_KEY_INVALID
    advice = ""


class InvalidParameters(SolarProofError):
    outcome = Outcome.INVALID_PARAMETERS
    advice = ""


class ProjectNotFound(SolarProofError):
    outcome = Outcome.PROJECT_NOT_FOUND
    advice = "Check the number and try again."


class NoCustomerAssigned(SolarProofError):
    outcome = Outcome.NO_CUSTOMER
    advice = ""


class NotAuthorised(SolarProofError):
    outcome = Outcome.UPSTREAM_NOT_AUTHORISED
    advice = ""


class UpstreamError(SolarProofError):
    """Solar Proof answered, but with something we cannot use (or an error it would not name)."""

    outcome = Outcome.UPSTREAM_ERROR
    advice = "Try again in a minute."


class UpstreamUnavailable(SolarProofError):
    """Solar Proof could not be reached (a refused or broken connection)."""

    outcome = Outcome.UPSTREAM_UNAVAILABLE
    advice = "The portal could not reach it. Try again in a minute."


# Ways of being unavailable that staff can tell apart: audited alike (upstream_unavailable,
# "Solar Proof was unavailable"), each saying what happened.
class UpstreamTimedOut(UpstreamUnavailable):
    advice = "It did not answer in time. Try again in a minute."


class UpstreamSaysUnavailable(UpstreamUnavailable):
    """A 502, 503 or 504: Solar Proof (or its gateway) answered that it cannot serve now."""

    advice = "It answered that it cannot serve requests for now. Try again in a minute."


# Current codes from the contract, and the spellings of Solar Proof's older docs.
ERROR_CODES: dict[str, type[SolarProofError]] = {
    "INVALID_API_KEY": InvalidApiKey,
    "API_KEY_INVALID": InvalidApiKey,
    "INVALID_PARAMETERS": InvalidParameters,
    "PROJECT_NOT_FOUND": ProjectNotFound,
    "NOT_FOUND": ProjectNotFound,
    "NO_CUSTOMER_ASSIGNED": NoCustomerAssigned,
    "UNAUTHORISED": NotAuthorised,
    "UNAUTHORIZED": NotAuthorised,
    "UNKNOWN": UpstreamError,
}
