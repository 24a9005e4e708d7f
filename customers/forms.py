import re
from datetime import datetime, timedelta

from django import forms
from django.utils import timezone

from customers.lookups import MAX_PROJECT_ID

# Staff paste IDs from emails and Solar Proof's own screens: "Project #2143",
# "project id: 2143", " 2143 ". Anything else is not guessed at.
_PROJECT_ID = re.compile(r"(?:project(?:\s*id)?)?\s*(?:no\.?|number)?\s*[#:]?\s*([0-9]{1,10})", re.IGNORECASE)


# The same forms with any number of digits, to tell a number too long from one that is not a number.
_PROJECT_DIGITS = re.compile(_PROJECT_ID.pattern.replace("{1,10}", "+"), re.IGNORECASE)


def parse_project_id(text: str) -> int | None:
    match = _PROJECT_ID.fullmatch(text.strip())
    if not match:
        return None
    value = int(match[1])
    return value if 1 <= value <= MAX_PROJECT_ID else None


class ProjectSearchForm(forms.Form):
    project = forms.CharField(
        label="Project ID",
        max_length=40,
        error_messages={"required": "Enter a Solar Proof project ID, for example 2143."},
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "off",
                "autocapitalize": "off",
                "spellcheck": "false",
                "enterkeyhint": "search",
                "placeholder": "e.g. 2143",
            }
        ),
    )

    def clean_project(self) -> int:
        typed = self.cleaned_data["project"]
        project_id = parse_project_id(typed)
        if project_id is None:
            digits = _PROJECT_DIGITS.fullmatch(typed.strip())
            if digits and int(digits[1]) > MAX_PROJECT_ID:
                # A whole number, only too large: say what the limit is, not what it is not.
                raise forms.ValidationError(
                    f"That number is too large for a project ID: they go up to {MAX_PROJECT_ID} "
                    f"({len(str(MAX_PROJECT_ID))} digits)."
                )
            raise forms.ValidationError("A project ID is a whole number such as 2143 (you can paste “Project #2143”).")
        return project_id


# The fixed reasons offered as one-tap buttons beside the search (LOOKUP_REASON). The
# row stores the words staff saw, so the history and export read without a code table.
REASONS = [
    ("install_scheduled", "Install scheduled"),
    ("customer_called", "Customer called"),
    ("quote_follow_up", "Quote follow-up"),
]
REASON_MAX_LENGTH = 200


class ReasonForm(forms.Form):
    """Why a customer is looked up: a fixed reason (one tap) or the staff member's words.
    Travels in the query string beside the project ID, so a link or Back repeats it."""

    reason = forms.ChoiceField(label="Reason", required=False, choices=[("", ""), *REASONS])
    reason_other = forms.CharField(
        label="Other reason",
        required=False,
        max_length=REASON_MAX_LENGTH,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "enterkeyhint": "search", "placeholder": "e.g. warranty claim"}
        ),
        error_messages={"max_length": "Keep the reason under %(limit_value)d characters."},
    )

    def __init__(self, *args: object, required: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.required = required

    def clean(self) -> dict[str, object]:
        cleaned = super().clean()
        picked = dict(REASONS).get(cleaned.get("reason") or "")
        text = picked or cleaned.get("reason_other") or ""
        if self.required and not text and not self.errors:
            self.add_error("reason", "Say why you are looking this customer up: tap a reason, or type one.")
        cleaned["text"] = text or None
        return cleaned

    def as_query(self) -> dict[str, str]:
        """The reason as query parameters, for the links that look the customer up again."""
        if not self.is_valid() or not self.cleaned_data["text"]:
            return {}
        return {key: self.cleaned_data[key] for key in ("reason", "reason_other") if self.cleaned_data[key]}


class SiteVisitForm(forms.Form):
    """When to visit the site, for the calendar event. Times are the portal's time zone."""

    date = forms.DateField(label="Date", widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(label="Time", widget=forms.TimeInput(attrs={"type": "time", "step": "900"}))
    minutes = forms.TypedChoiceField(
        label="Length",
        coerce=int,
        initial=60,
        choices=[(30, "30 minutes"), (60, "1 hour"), (90, "1½ hours"), (120, "2 hours"), (240, "Half a day")],
    )

    # A site visit is booked weeks or months ahead, not decades: and the calendar file's
    # time zone rules (and Python's dates) end long before a year like 9999.
    MAX_DAYS_AHEAD = 2 * 366

    def clean(self) -> dict[str, object]:
        cleaned = super().clean()
        if cleaned.get("date") and cleaned.get("time"):
            if cleaned["date"] > timezone.localdate() + timedelta(days=self.MAX_DAYS_AHEAD):
                self.add_error("date", "Pick a visit date within the next two years.")
                return cleaned
            cleaned["start"] = timezone.make_aware(datetime.combine(cleaned["date"], cleaned["time"]))
            if cleaned["start"] <= timezone.now():
                self.add_error("date", "That time has passed: pick a visit date and time still to come.")
        return cleaned


RUN_SHEET_MAX = 20
# A project ID in a pasted list: the forms the search box reads ("Project #2143",
# "project id: 2143", "#2143"), each standing on its own between spaces, commas,
# semicolons or line breaks. Whatever else is in the list (names,
# dashes, "job" notes) is left out and named back to the user, never guessed at.
_LISTED_PROJECT_ID = re.compile(
    r"(?<![^\s,;])(?:project(?:\s*id)?\s*)?(?:(?:no\.?|number)\s*)?[#:]?\s*([0-9]+)(?![^\s,;])", re.IGNORECASE
)


def parse_project_list(text: str) -> tuple[list[int], list[str]]:
    """The project IDs in ``text`` in order, each once, and the words that were not IDs."""
    ids: list[int] = []
    stray: list[str] = []
    position = 0
    for match in _LISTED_PROJECT_ID.finditer(text):
        stray += _words(text[position : match.start()])
        position = match.end()
        digits = match[1]
        value = int(digits) if len(digits) <= 10 else 0
        if not 1 <= value <= MAX_PROJECT_ID:
            stray.append(match[0].strip())
        elif value not in ids:
            ids.append(value)
    stray += _words(text[position:])
    return ids, stray


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[\s,;]+", text) if word.strip("#:-–.")]


class RunSheetForm(forms.Form):
    projects = forms.CharField(
        label="Project IDs",
        help_text=f"One per line, or separated by commas or spaces; up to {RUN_SHEET_MAX}.",
        max_length=2000,
        error_messages={"required": "Enter the project IDs of today's jobs, for example 2143, 2144."},
        widget=forms.Textarea(attrs={"rows": 5, "autocomplete": "off", "autocapitalize": "off", "spellcheck": "false"}),
    )

    def clean_projects(self) -> list[int]:
        ids, self.stray = parse_project_list(self.cleaned_data["projects"])
        if not ids:
            raise forms.ValidationError("No project ID found: enter numbers such as 2143 (you can paste “#2143”).")
        if len(ids) > RUN_SHEET_MAX:
            raise forms.ValidationError(f"A run sheet holds up to {RUN_SHEET_MAX} projects; this list has {len(ids)}.")
        return ids
