"""Files staff take away from a lookup: a vCard to save the contact, an iCalendar event
for a site visit. Both are built with libraries from validated values only."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import icalendar
import vobject
from django.utils import timezone

from customers.cards.presentation import CustomerCard, address_parts


def vcard(card: CustomerCard) -> str:
    customer = card.customer
    contact = vobject.vCard()
    contact.add("fn").value = card.name
    contact.add("n").value = vobject.vcard.Name(family=customer.surname, given=customer.first_name)
    if customer.company_name:
        contact.add("org").value = [customer.company_name]
    for number, kind in ((card.phone1, None), (card.phone2, None), (card.company_phone, "WORK")):
        if number and number.tel_href:
            tel = contact.add("tel")
            tel.value = number.tel_href.removeprefix("tel:")
            tel.type_param = kind or ("CELL" if number.is_mobile else "VOICE")
    if card.email and card.email.mailto_href:
        mail = contact.add("email")
        mail.value = card.email.display
        mail.type_param = "INTERNET"
    if customer.site_address:
        # Solar Proof gives the site as one line: split into street, suburb, state and
        # postcode where it parses, so address books and maps file it properly; else the
        # whole line goes in as the street rather than a guess.
        parts = address_parts(customer.site_address)
        site = contact.add("adr")
        if parts:
            site.value = vobject.vcard.Address(
                street=parts.street, city=parts.suburb, region=parts.state, code=parts.postcode, country="Australia"
            )
        else:
            site.value = vobject.vcard.Address(street=customer.site_address, country="Australia")
        site.type_param = "WORK"
        contact.add("label").value = customer.site_address
    notes = [f"Solar Proof project {card.project_id}"]
    if customer.contact_time:
        notes.append(f"Best time to call: {customer.contact_time}")
    if customer.note:
        notes.append(customer.note)
    contact.add("note").value = "\n".join(notes)
    return contact.serialize()


def site_visit(card: CustomerCard, *, start: datetime, minutes: int) -> bytes:
    customer = card.customer
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Solar Proof staff portal//site visit//EN")
    calendar.add("version", "2.0")
    event = icalendar.Event()
    event.add("uid", f"{uuid.uuid4()}@solarproof-staff-portal")
    event.add("dtstamp", timezone.now())
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(minutes=minutes))
    event.add("summary", f"Site visit: {card.name} (project {card.project_id})")
    if customer.site_address:
        event.add("location", customer.site_address)
    lines = [f"Customer: {card.name}"]
    primary = card.primary_phone
    if primary:
        lines.append(f"Phone: {primary[1].display}")
    if card.email and card.email.mailto_href:
        lines.append(f"Email: {card.email.display}")
    if customer.contact_time:
        lines.append(f"Best time to call: {customer.contact_time}")
    if customer.note:
        lines.append(f"Note: {customer.note}")
    lines.append(f"Solar Proof project {card.project_id}")
    event.add("description", "\n".join(lines))
    calendar.add_component(event)
    # DTSTART names TZID=Australia/Brisbane (the portal's zone); RFC 5545 wants that zone
    # defined in the file, or calendars may read the time as floating or refuse the file.
    calendar.add_missing_timezones()
    return calendar.to_ical()
