"""Links are built only from validated values; everything else is shown as text."""

import string
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customers.cards.presentation import (
    AddressParts,
    Phone,
    abn,
    address_parts,
    address_warning,
    customer_card,
    day_chart,
    email,
    phone,
)
from customers.forms import parse_project_id
from customers.lookups import MAX_PROJECT_ID
from customers.upstream.solarproof import Customer


def test_an_australian_mobile_without_a_plus_dials_in_e164():
    assert phone("61411549054") == Phone(display="0411 549 054", tel_href="tel:+61411549054", is_mobile=True)


def test_a_landline_is_shown_nationally_and_dialled_in_e164():
    assert phone("(07) 3123 4567") == Phone(display="(07) 3123 4567", tel_href="tel:+61731234567")


def test_numbers_that_only_work_inside_australia_are_dialled_as_written():
    assert phone("1300 602 452") == Phone(display="1300 602 452", tel_href="tel:1300602452")
    assert phone("131114") == Phone(display="13 11 14", tel_href="tel:131114")
    assert phone("1800 555 010").tel_href == "tel:1800555010"


def test_a_foreign_number_is_shown_internationally():
    assert phone("+64 21 123 4567") == Phone(display="+64 21 123 4567", tel_href="tel:+64211234567", is_mobile=True)


def test_only_mobiles_get_an_sms_link():
    assert phone("0411 549 054").sms_href == "sms:+61411549054"
    assert phone("(07) 3123 4567").sms_href is None


def test_values_that_are_not_dialable_are_text_only():
    for raw in ("000", "112", "12345", "call me", "javascript:alert(1)", '0411 549 054" onclick="x', "1" * 40):
        shown = phone(raw)
        assert shown.tel_href is None and shown.display == raw.strip()


def test_empty_values_give_nothing():
    assert phone("") is None and phone("   ") is None
    assert email("") is None and abn("") is None


@given(st.text(max_size=40))
def test_any_phone_href_is_plain_digits(raw):
    shown = phone(raw)
    if shown and shown.tel_href:
        assert shown.tel_href.removeprefix("tel:").lstrip("+").isdigit()


@given(st.from_regex(r"0[2378][0-9]{8}", fullmatch=True))
def test_every_valid_australian_landline_round_trips(raw):
    shown = phone(raw)
    if shown.tel_href:
        assert shown.tel_href == "tel:+61" + raw[1:]


def test_email_links_only_validated_addresses_and_encodes_header_characters():
    assert email("judymatherson@gmail.com").mailto_href == "mailto:judymatherson@gmail.com"
    assert email("a?cc=boss@example.com").mailto_href == "mailto:a%3Fcc%3Dboss@example.com"
    for raw in ("javascript:alert(1)//@example.com", "not-an-email", "a@b", "<a@example.com>"):
        assert email(raw).mailto_href is None


def test_abn_is_grouped_when_its_checksum_holds():
    assert abn("51824753556").display == "51 824 753 556" and abn("51824753556").valid
    shown = abn("12 345 678 901")
    assert (shown.display, shown.valid) == ("12 345 678 901", False)


def test_directions_are_fixed_https_origins_with_the_address_encoded():
    card = customer_card(Customer(customer_id=1, site_address='1 Hack St" onmouseover="x'), project_id=7)
    assert card.directions_href.startswith("https://www.google.com/maps/dir/?api=1&destination=1+Hack+St")
    assert card.apple_maps_href.startswith("https://maps.apple.com/?daddr=1+Hack+St")
    for url in (card.directions_href, card.apple_maps_href):
        assert '"' not in url and " " not in url
    assert customer_card(Customer(customer_id=1), project_id=7).directions_href is None


def test_addresses_without_a_state_or_postcode_are_flagged():
    assert address_warning("132 Mono Drive, Brisbane, QLD, 4321") == ""
    assert address_warning("3 Smith St, Sydney NSW 2000, Australia") == ""
    assert address_warning("15 Mitchell Street, Darwin City, NT, 0800") == ""
    assert "no state" in address_warning("5 X St, Perth 6000")
    assert "no postcode" in address_warning("5 X St, Perth, Western Australia")
    assert "no state or postcode" in address_warning("Lot 12 Back Creek Road, near the old dairy")


def test_email_templates_name_the_project_and_site_in_a_safe_mailto():
    customer = Customer(
        customer_id=1, first_name="Judy", email="judy@example.com", site_address="1 A St, Brisbane QLD 4000"
    )
    templates = customer_card(customer, project_id=2143).email_templates
    assert [t.label for t in templates] == ["Proposal follow-up", "Installation booking", "Site visit confirmation"]
    first = templates[0].mailto_href
    assert first.startswith(
        "mailto:judy@example.com?subject=Your%20solar%20proposal%20%28project%202143%29&body=Hi%20Judy"
    )
    assert "1%20A%20St%2C%20Brisbane%20QLD%204000" in first and "+" not in first
    assert customer_card(Customer(customer_id=1, email="not an email"), project_id=1).email_templates == []


def test_the_primary_phone_is_the_first_that_can_be_dialled():
    card = customer_card(Customer(customer_id=1, phone1="000", phone2="0411 549 054"), project_id=1)
    assert card.primary_phone == ("phone 2", phone("0411 549 054"))
    assert customer_card(Customer(customer_id=1, phone1="nope"), project_id=1).primary_phone is None


@given(st.integers(min_value=1, max_value=MAX_PROJECT_ID), st.sampled_from(["", " ", "Project #", "project id: ", "#"]))
def test_the_project_id_parser_reads_what_staff_paste(number, prefix):
    assert parse_project_id(f"{prefix}{number} ") == number


@given(st.text(alphabet=string.printable, max_size=20))
def test_the_project_id_parser_returns_a_valid_id_or_nothing(raw):
    parsed = parse_project_id(raw)
    assert parsed is None or 1 <= parsed <= MAX_PROJECT_ID


def test_the_project_id_parser_refuses_what_is_not_an_id():
    for raw in ("", "abc", "0", "-5", "21 43", "2143abc", "4294967296", "1e3", "２１４３"):
        assert parse_project_id(raw) is None, raw


@pytest.mark.parametrize(
    ("address", "parts"),
    [
        ("132 Mono Drive, Brisbane, QLD, 4321", ("132 Mono Drive", "Brisbane", "QLD", "4321")),
        ("1 Hack St, Perth WA 6000", ("1 Hack St", "Perth", "WA", "6000")),
        ("Unit 4, 12 Smith St, Fitzroy, VIC 3065, Australia", ("Unit 4, 12 Smith St", "Fitzroy", "VIC", "3065")),
        (
            "9 Seaview Terrace, Byron Bay, New South Wales, 2481",
            ("9 Seaview Terrace", "Byron Bay", "New South Wales", "2481"),
        ),
    ],
)
def test_it_splits_an_address_that_parses_into_its_parts(address, parts):
    assert address_parts(address) == AddressParts(*parts)


@pytest.mark.parametrize(
    "address", ["Lot 12 Back Creek Road, near the old dairy", "5 Example Street, Mackay", "Brisbane QLD 4000", ""]
)
def test_it_does_not_guess_at_an_address_that_does_not_parse(address):
    assert address_parts(address) is None


@pytest.mark.parametrize(("peak", "top"), [(0, 2), (1, 2), (2, 2), (3, 5), (7, 10), (12, 20), (57, 100), (150, 200)])
def test_it_rounds_the_charts_scale_up_to_a_plain_number(peak, top):
    today = date(2026, 11, 29)
    per_day = [(today - timedelta(days=29 - index), 0) for index in range(30)]
    per_day[-1] = (today, peak)
    chart = day_chart(per_day)
    assert chart.top == top
    assert (chart.first_day, chart.last_day) == (date(2026, 10, 31), today)
    assert chart.bars[-1].height == round(peak / top * 120, 1)
    assert all(bar.height == 0 for bar in chart.bars[:-1])


def test_it_keeps_thirty_busy_days_inside_the_chart():
    today = date(2026, 11, 29)
    chart = day_chart([(today - timedelta(days=29 - index), index * 7) for index in range(30)])
    assert chart.top == 500 and len(chart.bars) == 30
    assert max(bar.height for bar in chart.bars) <= 120 and min(bar.y for bar in chart.bars) >= 0
    assert chart.bars[-1].x + 19 <= 600.5
