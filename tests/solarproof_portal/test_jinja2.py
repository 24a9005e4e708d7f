"""solarproof_portal/jinja2.py: the helpers of the portal's Jinja2 templates, and printing
that matches Django's template language (escaping, time zone, missing variables)."""

import datetime

from django.template import Context, Template
from django.template.loader import render_to_string
from django.utils import timezone

from customers.forms import SiteVisitForm
from solarproof_portal.jinja2 import form_errors, form_rows, outcome_label

LOOP = Template("{% for field in form %}<p>{{ field.label_tag }} {{ field }}</p>{% endfor %}")


def _loop(form: SiteVisitForm) -> str:
    return LOOP.render(Context({"form": form}))


def _jinja(source: str, **context: object) -> str:
    from django.template import engines

    return engines["jinja2"].from_string(source).render(context)


def test_it_renders_an_unbound_form_as_django_does_every_time():
    assert form_rows(SiteVisitForm()) == _loop(SiteVisitForm())
    assert form_rows(SiteVisitForm()) == _loop(SiteVisitForm())  # the second time from its memory
    assert 'value="60" selected' in form_rows(SiteVisitForm())


def test_it_renders_a_bound_form_afresh_with_its_values_and_errors():
    form_rows(SiteVisitForm())
    bad = SiteVisitForm({"date": "2026-12-03", "time": "25:00", "minutes": "90"})
    rows = form_rows(bad, errors_id="visit-error")
    assert 'value="2026-12-03"' in rows and 'value="90" selected' in rows
    # The field in error says so and points at the one message below the row, not in it.
    assert 'value="25:00" step="900" aria-invalid="true" aria-describedby="visit-error"' in rows
    assert "Enter a valid time." not in rows
    assert form_errors(bad, id="visit-error") == (
        '<p class="field-error" id="visit-error" role="alert">Enter a valid time.</p>'
    )
    assert form_errors(SiteVisitForm(), id="visit-error") == ""
    assert form_rows(SiteVisitForm()) == _loop(SiteVisitForm())


def test_it_keeps_unbound_forms_with_other_initial_values_apart():
    assert 'value="120" selected' in form_rows(SiteVisitForm(initial={"minutes": 120}))
    assert 'value="60" selected' in form_rows(SiteVisitForm())


def test_it_prints_form_rows_unescaped_once_in_a_template():
    assert _jinja("{{ form_rows(form) }}", form=SiteVisitForm()) == _loop(SiteVisitForm())


def test_it_labels_outcomes_and_leaves_an_unknown_word_as_it_is():
    assert outcome_label("project_not_found") == "Solar Proof has no project with that ID"
    assert outcome_label("something_new") == "something_new"
    assert _jinja("{{ word|outcome_label }}", word="<b>new</b>") == "&lt;b&gt;new&lt;/b&gt;"


def test_it_escapes_upstream_text_with_the_entities_django_uses():
    hostile = "<script>alert('x')</script> & \"quoted\""
    expected = Template("{{ value }}").render(Context({"value": hostile}))
    assert _jinja("{{ value }}", value=hostile) == expected
    assert expected == "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;"
    assert _jinja('{{ items|join(", ") }}', items=["<a>", "'b'"]) == "&lt;a&gt;, &#x27;b&#x27;"


def test_it_escapes_a_note_before_turning_its_line_breaks_into_br():
    assert _jinja("{{ note|linebreaksbr }}", note="<b>gate</b>\nback door\r\nok") == (
        "&lt;b&gt;gate&lt;/b&gt;<br>back door<br>ok"
    )


def test_it_prints_missing_variables_and_attributes_as_nothing_as_django_does():
    source = "[{{ missing }}|{{ missing.deeper.still }}|{% if user.is_authenticated %}in{% endif %}|{{ none }}]"
    assert _jinja(source, none=None) == "[|||None]"


def test_it_shows_times_in_the_portal_time_zone_and_dates_in_django_formats(settings):
    settings.TIME_ZONE = "Australia/Brisbane"
    moment = datetime.datetime(2026, 11, 28, 23, 30, tzinfo=datetime.UTC)
    with timezone.override("Australia/Brisbane"):
        assert _jinja('{{ t|date("D j M, g:i a") }} / {{ t|time("g:i:s a") }}', t=moment) == (
            "Sun 29 Nov, 9:30 a.m. / 9:30:00 a.m."
        )


def test_it_removes_whitespace_between_tags_as_spaceless_did():
    assert _jinja("{% filter spaceless %}\n <p> <b>{{ v }}</b> </p>\n {% endfilter %}", v="a < b") == (
        "<p><b>a &lt; b</b></p>"
    )


def test_it_serves_the_service_worker_with_its_paths_as_javascript_strings():
    body = render_to_string("customers/run_sheet_sw.js")
    assert 'var SHEET_PATH = "/run\\u002Dsheet/";' in body
    assert 'var STATIC_PREFIX = "/static/";' in body


def test_it_treats_a_method_of_something_missing_as_nothing_rather_than_failing():
    source = "[{% if form.non_field_errors() %}x{% endif %}{{ form.username.value()|default_if_none('') }}]"
    assert _jinja(source, form=None) == "[]"


def test_urls_follow_the_script_prefix_they_are_served_under():
    from django.urls import clear_script_prefix, set_script_prefix

    assert _jinja("{{ url('customers:project', 2143) }}") == "/projects/2143/"
    set_script_prefix("/portal/")
    try:
        assert _jinja("{{ url('customers:project', 2143) }}") == "/portal/projects/2143/"
    finally:
        clear_script_prefix()
        set_script_prefix("/")
    assert _jinja("{{ url('customers:project', 2143) }}") == "/projects/2143/"
