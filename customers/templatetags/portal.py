from django import template

from customers.models import Outcome

register = template.Library()


@register.filter
def outcome_label(value: str) -> str:
    """The readable label of an audit outcome word ("project_not_found" → "Project not found")."""
    try:
        return Outcome(value).label
    except ValueError:
        return value
