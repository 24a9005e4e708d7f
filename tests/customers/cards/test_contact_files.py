"""Save contact (vCard) and Schedule visit (iCalendar): lookups like any other."""

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject
from django.utils import timezone

from customers.models import LookupEvent
from tests.support.pages import text

pytestmark = pytest.mark.django_db


def future(days: int) -> str:
    """A visit date that is still to come whenever the tests run (past visits are refused)."""
    return (timezone.localdate() + timedelta(days=days)).isoformat()


@pytest.fixture
def sales_client(client, sales_user):
    client.force_login(sales_user)
    return client


def test_save_contact_is_a_vcard_with_the_customers_details_and_is_audited(sales_client):
    response = sales_client.get("/projects/2143/contact.vcf")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/vcard; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="customer-project-2143.vcf"'
    card = vobject.readOne(response.content.decode())
    assert card.fn.value == "Judy Matherson"
    assert (card.n.value.given, card.n.value.family) == ("Judy", "Matherson")
    phones = {(tel.value, tel.type_param) for tel in card.contents["tel"]}
    assert phones == {("+61411549054", "CELL"), ("1300602452", "WORK")}
    assert card.email.value == "judymatherson@gmail.com"
    assert (card.adr.value.street, card.adr.value.city) == ("132 Mono Drive", "Brisbane")
    assert card.org.value == ["Solar Proof"]
    assert "Solar Proof project 2143" in card.note.value
    event = LookupEvent.objects.get()
    assert (event.project_id, event.outcome, event.username) == (2143, "found", "sam.sales")


def test_a_hostile_customer_gives_a_vcard_without_invalid_values(sales_client):
    card = vobject.readOne(sales_client.get("/projects/2147/contact.vcf").content.decode())
    assert "tel" not in card.contents and "email" not in card.contents
    assert card.fn.value == """<script>alert('first')</script> "><img src=x onerror=alert(1)>"""


def test_schedule_visit_is_an_ics_event_at_the_site_and_is_audited(sales_client):
    visit_day = future(5)
    response = sales_client.get("/projects/2144/visit.ics", {"date": visit_day, "time": "09:30", "minutes": "90"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = icalendar.Calendar.from_ical(response.content)
    (event,) = calendar.walk("VEVENT")
    brisbane = ZoneInfo("Australia/Brisbane")
    day = date.fromisoformat(visit_day)
    assert event.decoded("dtstart") == datetime(day.year, day.month, day.day, 9, 30, tzinfo=brisbane)
    assert event.decoded("dtend") == datetime(day.year, day.month, day.day, 11, 0, tzinfo=brisbane)
    assert str(event["location"]) == "480 Mount Cotton Road, Capalaba, QLD, 4157"
    assert str(event["summary"]) == "Site visit: Marcus Aurelio (project 2144)"
    description = str(event["description"])
    assert "Customer: Marcus Aurelio" in description and "Phone: (07) 3123 4567" in description
    assert LookupEvent.objects.get().outcome == "found"


def test_a_bad_visit_time_gets_a_clear_message(sales_client):
    response = sales_client.get(
        "/projects/2144/visit.ics", {"date": "someday", "time": "25:00", "minutes": "7"}, follow=True
    )
    assert response.status_code == 400
    page = text(response)
    assert "Enter a valid date." in page and "Enter a valid time." in page
    assert "Marcus Aurelio" in page  # the card is still there to fix the form on


@pytest.mark.parametrize(
    "url",
    [
        "/projects/9404/contact.vcf",
        f"/projects/9404/visit.ics?date={date.today() + timedelta(days=5)}&time=09:30&minutes=60",
    ],
)
def test_no_file_for_a_project_without_a_customer(sales_client, url):
    response = sales_client.get(url)
    assert response.status_code == 404
    assert "Solar Proof has no project with that ID." in text(response)
    assert LookupEvent.objects.get().outcome == "project_not_found"


def test_no_file_without_a_role(client, no_role_user):
    client.force_login(no_role_user)
    response = client.get("/projects/2143/contact.vcf")
    assert response.status_code == 403
    assert "Judy" not in response.content.decode()


def test_it_puts_the_time_zone_it_names_in_the_calendar_file(sales_client):
    response = sales_client.get("/projects/2144/visit.ics", {"date": future(3), "time": "09:30", "minutes": "60"})
    calendar = icalendar.Calendar.from_ical(response.content)
    (zone,) = calendar.walk("VTIMEZONE")
    assert str(zone["tzid"]) == "Australia/Brisbane"
    (event,) = calendar.walk("VEVENT")
    assert event["dtstart"].params["TZID"] == "Australia/Brisbane"
    # A second, independent reader: vobject resolves the zone from the file's own VTIMEZONE.
    parsed = vobject.readOne(response.content.decode())
    start = parsed.vevent.dtstart.value
    assert start.utcoffset() == timedelta(hours=10)
    assert (start.hour, start.minute) == (9, 30)
    assert parsed.vevent.location.value == "480 Mount Cotton Road, Capalaba, QLD, 4157"
    assert parsed.vevent.summary.value == "Site visit: Marcus Aurelio (project 2144)"


def test_it_refuses_a_visit_in_the_past_with_a_message(sales_client):
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    asked = sales_client.get("/projects/2144/visit.ics", {"date": yesterday, "time": "09:30", "minutes": "60"})
    # Sent to the project's page, so the address names what is shown (reloading shows the same).
    assert asked.status_code == 302
    assert asked["Location"] == f"/projects/2144/?date={yesterday}&time=09%3A30&minutes=60"
    assert LookupEvent.objects.count() == 0  # looked up once, by the page
    response = sales_client.get(asked["Location"])
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert "That time has passed: pick a visit date and time still to come." in text(response)
    assert "Marcus Aurelio" in text(response)
    assert LookupEvent.objects.count() == 1
    page = response.content.decode()
    assert '<p class="field-error" id="visit-error" role="alert">That time has passed' in page
    assert re.search(
        r'<input type="date" name="date" value="[-0-9]+" aria-invalid="true" aria-describedby="visit-error"', page
    )


@pytest.mark.parametrize("date_text", ["9999-12-31", "2199-01-01"])
def test_it_refuses_a_visit_decades_ahead_with_a_message(sales_client, date_text):
    response = sales_client.get(
        "/projects/2144/visit.ics", {"date": date_text, "time": "23:59", "minutes": "240"}, follow=True
    )
    assert response.status_code == 400
    assert response.redirect_chain[0][0].startswith("/projects/2144/?date=")
    assert "Pick a visit date within the next two years." in text(response)


@pytest.mark.parametrize("project", ["0", "4294967296", "9" * 30])
def test_it_answers_a_calendar_file_for_a_number_that_is_no_project_id_with_the_not_a_project_page(
    sales_client, project
):
    response = sales_client.get(f"/projects/{project}/visit.ics")
    assert response.status_code == 400
    assert "A project ID is a whole number" in text(response) or "too large for a project ID" in text(response)
    assert LookupEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("project_id", "street", "suburb", "state", "postcode"),
    [
        (2143, "132 Mono Drive", "Brisbane", "QLD", "4321"),
        (2144, "480 Mount Cotton Road", "Capalaba", "QLD", "4157"),
        (2149, "5 Example Street", "Mackay", "QLD", "4740"),
    ],
)
def test_it_fills_the_vcards_address_parts_where_the_address_parses(
    sales_client, project_id, street, suburb, state, postcode
):
    card = vobject.readOne(sales_client.get(f"/projects/{project_id}/contact.vcf").content.decode())
    address = card.adr.value
    assert (address.street, address.city, address.region, address.code, address.country) == (
        street,
        suburb,
        state,
        postcode,
        "Australia",
    )
    assert card.adr.type_param == "WORK"


def test_it_keeps_an_address_that_does_not_parse_whole_in_the_street(sales_client):
    card = vobject.readOne(sales_client.get("/projects/2148/contact.vcf").content.decode())
    address = card.adr.value
    assert address.street == "Lot 12 Back Creek Road, near the old dairy"
    assert (address.city, address.region, address.code) == ("", "", "")
    assert card.label.value == "Lot 12 Back Creek Road, near the old dairy"
