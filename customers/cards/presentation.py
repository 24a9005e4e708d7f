"""Turn a ``Customer`` into what the cards show.

Every value from Solar Proof is untrusted. Text is left to the template's escaping;
a value only becomes part of an ``href`` after it has been validated and rebuilt from
its parsed form (a phone from its digits, an email from the validator's normal form,
an address URL-encoded into a fixed https URL).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote, urlencode

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneNumberFormat, PhoneNumberType, shortnumberinfo
from stdnum.au import abn as abn_number

from customers.upstream.solarproof import Customer

REGION = "AU"
# Digits and the punctuation people type in phone numbers; anything else (letters,
# quotes, markup) means the value is not a phone number, whatever a lenient parser says.
_PHONE_CHARS = re.compile(r"\+?[\d\s().\-/]{3,30}")
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


@dataclass(frozen=True)
class Phone:
    display: str
    tel_href: str | None = None
    is_mobile: bool = False

    @property
    def sms_href(self) -> str | None:
        return f"sms:{self.tel_href.removeprefix('tel:')}" if self.tel_href and self.is_mobile else None


@dataclass(frozen=True)
class Email:
    display: str
    mailto_href: str | None = None


@dataclass(frozen=True)
class Abn:
    display: str
    valid: bool


@dataclass(frozen=True)
class EmailTemplate:
    label: str
    mailto_href: str


@dataclass(frozen=True)
class CustomerCard:
    customer: Customer
    project_id: int
    phone1: Phone | None
    phone2: Phone | None
    company_phone: Phone | None
    email: Email | None
    abn: Abn | None
    directions_href: str | None
    apple_maps_href: str | None
    address_warning: str
    email_templates: list[EmailTemplate]

    @property
    def name(self) -> str:
        return self.customer.full_name or self.customer.company_name or "the customer"

    @property
    def gst_registered(self) -> str:
        return {True: "Yes", False: "No", None: ""}[self.customer.gst_registered]

    @property
    def phones(self) -> list[tuple[str, Phone]]:
        """Every number on record, labelled, for a printed sheet."""
        numbers = (("Phone 1", self.phone1), ("Phone 2", self.phone2), ("Company phone", self.company_phone))
        return [(label, number) for label, number in numbers if number]

    @property
    def primary_phone(self) -> tuple[str, Phone] | None:
        """The number to ring first: phone 1 if it can be dialled, else the next that can."""
        numbers = (("phone 1", self.phone1), ("phone 2", self.phone2), ("company phone", self.company_phone))
        for label, number in numbers:
            if number and number.tel_href:
                return label, number
        return None


def customer_card(customer: Customer, *, project_id: int) -> CustomerCard:
    address = customer.site_address.strip()
    mail = email(customer.email)
    return CustomerCard(
        customer=customer,
        project_id=project_id,
        phone1=phone(customer.phone1),
        phone2=phone(customer.phone2),
        company_phone=phone(customer.company_phone),
        email=mail,
        abn=abn(customer.abn),
        directions_href=_url("https://www.google.com/maps/dir/", {"api": "1", "destination": address}),
        apple_maps_href=_url("https://maps.apple.com/", {"daddr": address}),
        address_warning=address_warning(address),
        email_templates=email_templates(customer, project_id, mail),
    )


def _url(base: str, query: dict[str, str]) -> str | None:
    """A fixed https origin with the (untrusted) values URL-encoded into its query."""
    return base + "?" + urlencode(query) if all(query.values()) else None


# Google Maps URLs open with at most three waypoints in a phone's browser (nine
# elsewhere), so a day's route is cut into legs of four stops: three waypoints and a
# destination, each leg starting where the last one ended.
ROUTE_STOPS_PER_LEG = 4


@dataclass(frozen=True)
class RouteLeg:
    first: int  # the first and last stop's number in the day
    last: int
    href: str


def route_legs(stops: list[tuple[int, str]]) -> list[RouteLeg]:
    """A driving route through ``stops`` ((number in the day, site address), in order),
    from wherever the phone is: the first leg has no origin, so Maps starts from here."""
    legs = []
    origin = ""
    for start in range(0, len(stops), ROUTE_STOPS_PER_LEG):
        leg = stops[start : start + ROUTE_STOPS_PER_LEG]
        query = {"api": "1", "travelmode": "driving", "destination": leg[-1][1].strip()}
        if origin:
            query["origin"] = origin
        if len(leg) > 1:
            query["waypoints"] = "|".join(address.strip() for _, address in leg[:-1])
        legs.append(RouteLeg(first=leg[0][0], last=leg[-1][0], href=_url("https://www.google.com/maps/dir/", query)))
        origin = leg[-1][1].strip()
    return legs


_STATES = r"NSW|VIC|QLD|SA|WA|TAS|NT|ACT|New South Wales|Victoria|Queensland|South Australia|Western Australia|Tasmania|Northern Territory|Australian Capital Territory"  # noqa: E501


@dataclass(frozen=True)
class AddressParts:
    street: str
    suburb: str
    state: str
    postcode: str


# "132 Mono Drive, Brisbane, QLD, 4321" and "1 Hack St, Perth WA 6000": street, suburb,
# state and postcode, as the address warning reads them. Anything else is not guessed at.
_ADDRESS = re.compile(
    rf"(?P<street>.+?),\s*(?P<suburb>[^,]+?)[,\s]+(?P<state>{_STATES})[,\s]+(?P<postcode>\d{{4}})(?:[,\s]+Australia)?\s*",
    re.IGNORECASE,
)


def address_parts(address: str) -> AddressParts | None:
    """The parts of an Australian address, or None where it does not parse."""
    match = _ADDRESS.fullmatch(address.strip())
    if not match:
        return None
    return AddressParts(**{name: value.strip() for name, value in match.groupdict().items()})


def address_warning(address: str) -> str:
    """Navigation apps guess when a state or a postcode is missing: say so before the drive."""
    if not address:
        return ""
    missing = []
    if not re.search(rf"\b({_STATES})\b", address, re.IGNORECASE):
        missing.append("state")
    if not re.search(r"\b\d{4}\b\s*$|\b\d{4}\b(?=[,\s]*(Australia)?\s*$)", address, re.IGNORECASE):
        missing.append("postcode")
    if not missing:
        return ""
    return f"This address has no {' or '.join(missing)}: check the pin before you drive."


# Solar Proof's own documented jobs: following up a proposal, booking an installation,
# confirming a site visit. Subject and body name the project and the site.
_TEMPLATES = [
    (
        "Proposal follow-up",
        "Your solar proposal (project {project})",
        "Hi {first},\n\nFollowing up your solar proposal for {site}. Any questions?\n\n",
    ),
    (
        "Installation booking",
        "Booking your solar installation (project {project})",
        "Hi {first},\n\nWe're ready to book the installation at {site}. Which days suit you?\n\n",
    ),
    (
        "Site visit confirmation",
        "Site visit confirmation (project {project})",
        "Hi {first},\n\nConfirming our visit to {site} on [date] at [time]. Any gate codes, pets or access notes?\n\n",
    ),
]


def email_templates(customer: Customer, project_id: int, mail: Email | None) -> list[EmailTemplate]:
    if not mail or not mail.mailto_href:
        return []
    values = {
        "first": customer.first_name or customer.full_name or "there",
        "site": customer.site_address or "your site",
        "project": project_id,
    }
    templates = []
    for label, subject, body in _TEMPLATES:
        # mailto wants %20 for spaces, not +; and the values are percent-encoded.
        query = urlencode({"subject": subject.format(**values), "body": body.format(**values)}, quote_via=quote)
        templates.append(EmailTemplate(label=label, mailto_href=f"{mail.mailto_href}?{query}"))
    return templates


def phone(raw: str) -> Phone | None:
    """A phone number as Australians read it, linked only if it can really be dialled."""
    raw = raw.strip()
    if not raw:
        return None
    if not _PHONE_CHARS.fullmatch(raw) or shortnumberinfo.is_emergency_number(raw, REGION):
        return Phone(display=raw)
    try:
        number = phonenumbers.parse(raw, REGION)
    except phonenumbers.NumberParseException:
        return Phone(display=raw)
    if not phonenumbers.is_valid_number(number):
        return Phone(display=raw)
    domestic = phonenumbers.region_code_for_number(number) == REGION
    display = phonenumbers.format_number(
        number, PhoneNumberFormat.NATIONAL if domestic else PhoneNumberFormat.INTERNATIONAL
    )
    if phonenumbers.can_be_internationally_dialled(number):
        href = f"tel:{phonenumbers.format_number(number, PhoneNumberFormat.E164)}"
    else:
        # 13, 1300 and 1800 numbers only exist inside Australia: dial them as written.
        href = f"tel:{phonenumbers.national_significant_number(number)}"
    return Phone(display=display, tel_href=href, is_mobile=phonenumbers.number_type(number) in _MOBILE_TYPES)


def email(raw: str) -> Email | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        address = validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        return Email(display=raw)
    # The local part may legally hold ?, & and =, which would add headers to a mailto.
    return Email(display=address, mailto_href=f"mailto:{quote(address, safe='@')}")


def abn(raw: str) -> Abn | None:
    raw = raw.strip()
    if not raw:
        return None
    if abn_number.is_valid(raw):
        return Abn(display=abn_number.format(raw), valid=True)
    return Abn(display=raw, valid=False)


@dataclass(frozen=True)
class Bar:
    day: date
    count: int
    x: float
    y: float
    height: float
    label: str


CHART_WIDTH, CHART_HEIGHT = 600, 120


@dataclass(frozen=True)
class DayChart:
    """Bars with what makes them readable from one day of data to thirty: the scale's top
    (a round number at or above the busiest day) and the dates at both ends."""

    bars: list[Bar]
    top: int
    first_day: date | None
    last_day: date | None

    @property
    def half(self) -> float:
        return self.top / 2


def _round_up(peak: int) -> int:
    """The scale's top: the busiest day rounded up to 1, 2 or 5 times a power of ten,
    so the gridlines carry plain numbers (at least 2, so the half line is whole)."""
    step = 1
    while True:
        for nice in (2, 5, 10):
            if peak <= nice * step:
                return nice * step
        step *= 10


def day_chart(per_day: list[tuple[date, int]]) -> DayChart:
    """Bars for an inline SVG of lookups per day; no chart library, nothing fetched."""
    top = _round_up(max((count for _, count in per_day), default=0))
    width = CHART_WIDTH / max(len(per_day), 1)
    bars = []
    for index, (day, count) in enumerate(per_day):
        height = round(count / top * CHART_HEIGHT, 1)
        bars.append(
            Bar(
                day=day,
                count=count,
                x=round(index * width, 1),
                y=round(CHART_HEIGHT - height, 1),
                height=height,
                label=f"{day:%a} {day.day} {day:%b}: {count} lookup{'s' if count != 1 else ''}",
            )
        )
    return DayChart(
        bars=bars,
        top=top,
        first_day=per_day[0][0] if per_day else None,
        last_day=per_day[-1][0] if per_day else None,
    )
