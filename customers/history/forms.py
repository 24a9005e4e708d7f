"""The history page's filters: the query parameters user, project, outcome, from and to."""

from datetime import date

from django import forms

from customers.forms import parse_project_id
from customers.outcomes import Outcome

FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2199, 12, 31)


class HistoryFilterForm(forms.Form):
    """The history filters. Field names are the query parameters in DESIGN.md."""

    user = forms.CharField(label="User", required=False, max_length=150)
    project = forms.CharField(label="Project ID", required=False, max_length=40)
    outcome = forms.ChoiceField(label="Outcome", required=False)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["outcome"].choices = [("", "Any outcome"), *Outcome.choices]
        self.fields["project"].widget.attrs.update({"inputmode": "numeric"})
        # "from" is a Python keyword, so these two are added by name.
        date_input = forms.DateInput(attrs={"type": "date"})
        self.fields["from"] = forms.DateField(label="From", required=False, widget=date_input)
        self.fields["to"] = forms.DateField(label="To", required=False, widget=date_input)

    def clean_user(self) -> str:
        return self.cleaned_data["user"].strip()

    def clean_project(self) -> int | None:
        raw = self.cleaned_data["project"].strip()
        if not raw:
            return None
        project_id = parse_project_id(raw)
        if project_id is None:
            raise forms.ValidationError("A project ID is a whole number such as 2143.")
        return project_id

    def clean(self) -> dict[str, object]:
        cleaned = super().clean()
        for name in ("from", "to"):
            # The portal's log starts this century; a year like 1 or 9999 cannot even be
            # turned into a time in the portal's time zone.
            if cleaned.get(name) and not FIRST_DAY <= cleaned[name] <= LAST_DAY:
                self.add_error(name, f"Pick a date between {FIRST_DAY:%Y} and {LAST_DAY:%Y}.")
        if cleaned.get("from") and cleaned.get("to") and cleaned["from"] > cleaned["to"]:
            self.add_error("to", "“To” must be on or after “From”.")
        return cleaned
