"""customers/templatetags/portal.py: the template helpers."""

from django.template import Context, Template

from customers.forms import SiteVisitForm
from customers.templatetags.portal import form_rows

LOOP = Template(
    "{% for field in form %}<p>{{ field.label_tag }} {{ field }}{% if field.errors %}"
    '<span class="field-error" role="alert">{{ field.errors.0 }}</span>{% endif %}</p>{% endfor %}'
)


def _loop(form: SiteVisitForm) -> str:
    return LOOP.render(Context({"form": form}))


def test_it_renders_an_unbound_form_as_django_does_every_time():
    assert form_rows(SiteVisitForm()) == _loop(SiteVisitForm())
    assert form_rows(SiteVisitForm()) == _loop(SiteVisitForm())  # the second time from its memory
    assert 'value="60" selected' in form_rows(SiteVisitForm())


def test_it_renders_a_bound_form_afresh_with_its_values_and_errors():
    form_rows(SiteVisitForm())
    bad = SiteVisitForm({"date": "2026-12-03", "time": "25:00", "minutes": "90"})
    rows = form_rows(bad)
    assert rows == _loop(SiteVisitForm({"date": "2026-12-03", "time": "25:00", "minutes": "90"}))
    assert 'value="2026-12-03"' in rows and 'value="90" selected' in rows
    assert 'role="alert">Enter a valid time.</span>' in rows
    assert form_rows(SiteVisitForm()) == _loop(SiteVisitForm())


def test_it_keeps_unbound_forms_with_other_initial_values_apart():
    assert 'value="120" selected' in form_rows(SiteVisitForm(initial={"minutes": 120}))
    assert 'value="60" selected' in form_rows(SiteVisitForm())
