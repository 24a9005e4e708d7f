import re

from django import forms

from customers.lookups import MAX_PROJECT_ID

# Staff paste IDs from emails and Solar Proof's own screens: "Project #2143",
# "project id: 2143", " 2143 ". Anything else is not guessed at.
_PROJECT_ID = re.compile(r"(?:project(?:\s*id)?)?\s*(?:no\.?|number)?\s*[#:]?\s*([0-9]{1,10})", re.IGNORECASE)


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
        project_id = parse_project_id(self.cleaned_data["project"])
        if project_id is None:
            raise forms.ValidationError("A project ID is a whole number such as 2143 (you can paste “Project #2143”).")
        return project_id
