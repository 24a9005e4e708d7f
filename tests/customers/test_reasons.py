"""The reason for access (LOOKUP_REASON): asked beside the search, one tap, stored on the
audit row, shown in history and exported."""

import html
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from customers.models import LookupEvent
from tests.support.pages import hrefs, text

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def sales_client(client, sales_user):
    client.force_login(sales_user)
    return client


def test_with_reasons_off_the_search_asks_nothing_and_stores_nothing(settings, sales_client):
    settings.LOOKUP_REASON = "off"
    assert "Why are you looking" not in text(sales_client.get("/"))
    assert sales_client.get("/projects/2143/", {"reason": "customer_called"}).status_code == 200
    assert LookupEvent.objects.get().reason is None


@pytest.mark.parametrize("setting", ["optional", "required"])
def test_one_tap_on_a_reason_looks_the_customer_up_with_it(settings, sales_client, setting):
    settings.LOOKUP_REASON = setting
    page = sales_client.get("/").content.decode()
    assert 'name="reason" value="customer_called"' in page and ">Customer called</button>" in page
    response = sales_client.get("/", {"project": "2143", "reason": "customer_called"}, **HTMX)
    assert response.status_code == 200 and "Judy Matherson" in text(response)
    assert LookupEvent.objects.get().reason == "Customer called"


def test_a_typed_reason_is_stored_in_the_staff_members_words(settings, sales_client):
    settings.LOOKUP_REASON = "required"
    response = sales_client.get("/", {"project": "2143", "reason_other": "  Warranty claim on inverter "})
    assert response.status_code == 302
    assert response["Location"] == "/projects/2143/?reason_other=Warranty+claim+on+inverter"
    assert sales_client.get(response["Location"]).status_code == 200
    assert LookupEvent.objects.get().reason == "Warranty claim on inverter"


def test_an_optional_reason_may_be_left_out(settings, sales_client):
    settings.LOOKUP_REASON = "optional"
    assert sales_client.get("/projects/2143/").status_code == 200
    assert LookupEvent.objects.get().reason is None


def test_a_required_reason_is_asked_for_before_anything_is_looked_up(settings, sales_client, portal_upstream):
    settings.LOOKUP_REASON = "required"
    before = portal_upstream.calls(2143)
    response = sales_client.get("/projects/2143/")
    assert response.status_code == 400
    assert "Say why you are looking this customer up: tap a reason, or type one." in text(response)
    assert "Judy" not in text(response)
    assert not LookupEvent.objects.exists() and portal_upstream.calls(2143) == before
    assert sales_client.get("/projects/2143/contact.vcf").status_code == 400
    assert not LookupEvent.objects.exists()


def test_a_reason_too_long_is_refused_with_a_message(settings, sales_client):
    settings.LOOKUP_REASON = "optional"
    response = sales_client.get("/projects/2143/", {"reason_other": "x" * 201})
    assert response.status_code == 400 and "Keep the reason under 200 characters." in text(response)
    assert not LookupEvent.objects.exists()


def test_the_results_links_carry_the_reason_so_downloads_are_audited_with_it(settings, sales_client):
    settings.LOOKUP_REASON = "required"
    page = sales_client.get("/projects/2143/", {"reason": "install_scheduled"})
    links = [html.unescape(link) for link in hrefs(page)]
    assert "/projects/2143/contact.vcf?reason=install_scheduled" in links
    assert "/projects/2143/?refresh=1&reason=install_scheduled" in links
    assert '<input type="hidden" name="reason" value="install_scheduled">' in page.content.decode()
    assert sales_client.get("/projects/2143/contact.vcf?reason=install_scheduled").status_code == 200
    assert list(LookupEvent.objects.order_by("sequence").values_list("reason", flat=True)) == [
        "Install scheduled",
        "Install scheduled",
    ]


def test_history_shows_the_reason_while_reasons_are_asked(settings, client, sales_user, admin_user_role):
    settings.LOOKUP_REASON = "optional"
    client.force_login(sales_user)
    client.get("/projects/2143/", {"reason": "quote_follow_up"})
    client.force_login(admin_user_role)
    page = text(client.get("/history/"))
    assert "Reason" in page and "Quote follow-up" in page
    settings.LOOKUP_REASON = "off"
    assert "Quote follow-up" not in text(client.get("/history/"))


def test_the_command_line_asks_for_a_reason_when_one_is_required(settings, sales_user):
    settings.LOOKUP_REASON = "required"
    with pytest.raises(CommandError, match="--reason TEXT"):
        call_command("lookup_customer", "2143", "--as", "sam.sales", stdout=StringIO())
    assert not LookupEvent.objects.exists()
    call_command("lookup_customer", "2143", "--as", "sam.sales", "--reason", "customer called", stdout=StringIO())
    assert LookupEvent.objects.get().reason == "customer called"
