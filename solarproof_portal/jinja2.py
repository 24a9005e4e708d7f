"""The Jinja2 environment of the portal's own templates (templates/): the helpers they
call, and printing that matches Django's template language byte for byte. Django's
language is kept only for the admin's and third-party apps' templates (settings.TEMPLATES).
Jinja2 compiles each template to Python once; Django's interprets its node tree on every
render, which cost about 3 ms of CPU per result page (issue 15)."""

from __future__ import annotations

import datetime
import functools
import html
from typing import Any

import jinja2
from django import forms
from django.conf import settings
from django.template import defaultfilters
from django.templatetags.static import PrefixNode
from django.templatetags.static import static as django_static
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.formats import localize
from django.utils.html import conditional_escape, format_html, strip_spaces_between_tags
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime
from django_htmx.jinja import htmx_script
from markupsafe import Markup

from customers.outcomes import Outcome


def environment(**options: Any) -> jinja2.Environment:
    # Missing is nothing, as in Django's language: a missing variable or attribute, at any
    # depth, even called (`form.non_field_errors()` where a view passes form=None, or
    # `user.is_authenticated` on the 400 page, rendered without a request), prints nothing
    # and is false, instead of a 500 on a rarely used path. Jinja2's default Undefined
    # raises on `missing.attribute`, and the backend's choice in DEBUG (DebugUndefined)
    # prints "{{ name }}" into the page, so a developer would see other pages than
    # production. Typos are caught by the page tests, which assert what staff read.
    options["undefined"] = SilentUndefined
    # Django's language keeps a template's last newline; included partials rely on it.
    options["keep_trailing_newline"] = True
    options["finalize"] = _as_django_prints
    # Escaping on everywhere, whatever the settings say: every Solar Proof string is untrusted.
    options.pop("autoescape", None)
    env = jinja2.Environment(autoescape=True, **options)
    env.globals.update(
        url=url,
        static=static,
        static_prefix=static_prefix,
        htmx_script=htmx_script,
        form_rows=form_rows,
        form_errors=form_errors,
    )
    env.filters.update(
        spaceless=spaceless,
        outcome_label=outcome_label,
        date=date,
        time=time,
        # Django's own filters, so the pages read as they did under Django's language.
        default_if_none=defaultfilters.default_if_none,
        escapejs=defaultfilters.escapejs_filter,
        floatformat=defaultfilters.floatformat,
        join=join,
        linebreaksbr=linebreaksbr,
        pluralize=defaultfilters.pluralize,
        urlencode=defaultfilters.urlencode,
    )
    return env


class SilentUndefined(jinja2.ChainableUndefined):
    """ChainableUndefined that may also be called: Django's language renders a missing
    method's result as nothing, where Jinja2 would raise."""

    __slots__ = ()

    def __call__(self, *args: object, **kwargs: object) -> SilentUndefined:
        return self


def _as_django_prints(value: object) -> Markup:
    """Every ``{{ … }}`` as Django's language prints it (``render_value_in_context``):
    times in the current time zone, numbers localised, and escaped by Django's escape,
    whose entities (``&#x27;``, ``&quot;``) differ from MarkupSafe's. Text marked safe
    (a widget, a URL helper's output) is kept as it is."""
    if type(value) is str:
        # Most of what a page prints; the same entities as django.utils.html.escape, without
        # its lazy-text wrapper (a third of this function's time).
        return Markup(html.escape(value))  # noqa: S704 - escaped here
    if not isinstance(value, str):
        value = localize(template_localtime(value))
        if not isinstance(value, str):
            value = str(value)
    return Markup(conditional_escape(value))  # noqa: S704 - escaped here, or already safe


def url(name: str, *args: object) -> str:
    """``{% url name arg %}``: the path of a named route. A result page asks for a dozen,
    and Django's reverse() walks its pattern tables each time (about 0.15 ms a page):
    each path is worked out once per URL configuration and script prefix."""
    return _reversed(settings.ROOT_URLCONF, get_urlconf(), get_script_prefix(), name, args)


@functools.lru_cache(maxsize=4096)
def _reversed(root_urlconf: str, urlconf: str | None, prefix: str, name: str, args: tuple[object, ...]) -> str:
    return reverse(name, urlconf=urlconf, args=args)


@functools.lru_cache(maxsize=256)
def static(path: str) -> str:
    """``{% static path %}``: the hashed file's URL, looked up once per path (the manifest
    of static files is read when the process starts and does not change under it)."""
    return django_static(path)


def static_prefix() -> str:
    """``{% get_static_prefix %}``: STATIC_URL as a URI."""
    return PrefixNode.handle_simple("STATIC_URL")


def spaceless(value: str) -> Markup:
    """``{% filter spaceless %}``, as Django's ``{% spaceless %}``: no whitespace between
    tags. It only ever sees the template's own output, already escaped."""
    return Markup(strip_spaces_between_tags(value.strip()))  # noqa: S704 - escaped template output


def outcome_label(value: str) -> str:
    """The readable label of an audit outcome word ("project_not_found" → "Project not found")."""
    try:
        return Outcome(value).label
    except ValueError:
        return value


def date(value: datetime.date | datetime.datetime | None, arg: str | None = None) -> str:
    """Django's ``date`` filter, in the current time zone as Django's language gives it."""
    return defaultfilters.date(template_localtime(value), arg)


def time(value: datetime.time | datetime.datetime | None, arg: str | None = None) -> str:
    """Django's ``time`` filter, in the current time zone as Django's language gives it."""
    return defaultfilters.time(template_localtime(value), arg)


def join(value: list[object], arg: str) -> str:
    """Django's ``join``: each item and the joiner escaped, by Django's escape."""
    return defaultfilters.join(value, arg, autoescape=True)


def linebreaksbr(value: str) -> str:
    """Django's ``linebreaksbr``: escaped first, then each line break a ``<br>``."""
    return defaultfilters.linebreaksbr(value, autoescape=True)


# Rendered rows of unbound forms, per form class, prefix and initial values.
_unbound_rows: dict[tuple[object, ...], SafeString] = {}


def form_rows(form: forms.Form, *, errors_id: str = "") -> SafeString:
    """Each field as ``<p>label widget</p>``; a field with an error is marked invalid and
    described by ``errors_id``, the one message ``form_errors`` puts below the row (inside
    a row, the message pushed the other fields and the button about). Django renders every
    widget through its form renderer's templates (about a millisecond for the site-visit
    form on each result page), yet an unbound form comes out the same every time: its rows
    are rendered once per process. A bound form, with its values and errors, always afresh."""
    key = (type(form), form.prefix, form.auto_id, repr(sorted(form.initial.items())))
    if not form.is_bound and key in _unbound_rows:
        return _unbound_rows[key]
    rows = mark_safe(  # noqa: S308 - every part is escaped by format_html or by Django's widgets
        "".join(format_html("<p>{} {}</p>", field.label_tag(), _widget(field, errors_id)) for field in form)
    )
    if not form.is_bound:
        _unbound_rows[key] = rows
    return rows


def _widget(field: forms.BoundField, errors_id: str) -> str:
    if not field.errors:
        return field.as_widget()
    attrs = {"aria-invalid": "true", **({"aria-describedby": errors_id} if errors_id else {})}
    return field.as_widget(attrs=attrs)


def form_errors(form: forms.Form, *, id: str) -> SafeString:  # noqa: A002 - the HTML attribute's name
    """The form's errors (the first of each field, then the form's own) in one alert."""
    messages = [field.errors[0] for field in form if field.errors] + list(form.non_field_errors())
    if not messages:
        return mark_safe("")
    return format_html('<p class="field-error" id="{}" role="alert">{}</p>', id, " ".join(messages))
