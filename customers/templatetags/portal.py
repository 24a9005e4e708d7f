from django import forms, template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from customers.outcomes import Outcome

register = template.Library()


@register.filter
def outcome_label(value: str) -> str:
    """The readable label of an audit outcome word ("project_not_found" → "Project not found")."""
    try:
        return Outcome(value).label
    except ValueError:
        return value


# Rendered rows of unbound forms, per form class, prefix and initial values.
_unbound_rows: dict[tuple[object, ...], SafeString] = {}


@register.simple_tag
def form_rows(form: forms.Form) -> SafeString:
    """Each field as ``<p>label widget [error]</p>``. Django renders every widget through
    its form renderer's templates (about a millisecond for the site-visit form on each
    result page), yet an unbound form comes out the same every time: its rows are
    rendered once per process. A bound form, with its values and errors, always afresh."""
    key = (type(form), form.prefix, form.auto_id, repr(sorted(form.initial.items())))
    if not form.is_bound and key in _unbound_rows:
        return _unbound_rows[key]
    rows = mark_safe(  # noqa: S308 - every part is escaped by format_html or by Django's widgets
        "".join(format_html("<p>{} {}{}</p>", field.label_tag(), field, _first_error(field)) for field in form)
    )
    if not form.is_bound:
        _unbound_rows[key] = rows
    return rows


def _first_error(field: forms.BoundField) -> str:
    if not field.errors:
        return ""
    return format_html('<span class="field-error" role="alert">{}</span>', field.errors[0])
