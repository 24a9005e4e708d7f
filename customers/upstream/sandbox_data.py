"""The sandbox's synthetic customers and its answer for each project ID.

No real person is here: names, numbers and emails are generated (emails on
example domains, phone numbers from the ranges ACMA reserves for drama and fiction
where a real-looking number matters, e.g. 0491 570 xxx).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    delay: float = 0.0


def _json(status: int, payload: object, content_type: str = "application/json", delay: float = 0.0) -> Answer:
    return Answer(status, json.dumps(payload).encode(), content_type, delay)


def _error(status: int, code: str, message: str) -> Answer:
    return _json(status, {"code": code, "message": message})


def _customer(project_id: int, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "customerID": 70000 + project_id,
        "uid": None,
        "gstRegistered": 0,
        "firstName": "",
        "surname": "",
        "phone1": "",
        "phone2": "",
        "email": "",
        "companyName": "",
        "companyPhone": "",
        "customerabn": None,
        "siteAddress": "",
        "note": "",
        "contactTime": None,
    }
    base.update(fields)
    return base


_FIRST = [
    "Olivia",
    "Jack",
    "Charlotte",
    "Noah",
    "Amelia",
    "William",
    "Isla",
    "Thomas",
    "Mia",
    "Lachlan",
    "Ava",
    "Cooper",
    "Grace",
    "Oliver",
    "Chloe",
    "Liam",
    "Zoe",
    "Harrison",
    "Matilda",
    "Riley",
    "Sienna",
    "Ethan",
    "Ruby",
    "Mason",
    "Harper",
    "Xavier",
    "Ella",
    "Ngoc",
    "Priya",
    "Mohammed",
]
_SURNAME = [
    "Nguyen",
    "Smith",
    "Wilson",
    "Brown",
    "Taylor",
    "Johnson",
    "White",
    "Martin",
    "Anderson",
    "Thompson",
    "Walker",
    "Harris",
    "Ryan",
    "O'Brien",
    "Kelly",
    "Patel",
    "Singh",
    "Campbell",
    "Stewart",
    "Murphy",
    "Tran",
    "Chen",
    "Russo",
    "Papadopoulos",
    "McDonald",
    "Robinson",
]
_SITES = [
    ("14 Jacaranda Street", "Indooroopilly", "QLD", "4068"),
    ("7 Banksia Court", "Caloundra", "QLD", "4551"),
    ("221 Old Cleveland Road", "Coorparoo", "QLD", "4151"),
    ("3/18 Marine Parade", "Southport", "QLD", "4215"),
    ("55 Station Road", "Toowoomba City", "QLD", "4350"),
    ("9 Wattle Avenue", "Mackay", "QLD", "4740"),
    ("102 Flinders Street", "Townsville City", "QLD", "4810"),
    ("16 Grevillea Crescent", "Cairns North", "QLD", "4870"),
    ("41 Parramatta Road", "Annandale", "NSW", "2038"),
    ("8 Kurrajong Place", "Dubbo", "NSW", "2830"),
    ("27 Pacific Highway", "Coffs Harbour", "NSW", "2450"),
    ("5 Merino Lane", "Wagga Wagga", "NSW", "2650"),
    ("63 Sydney Road", "Brunswick", "VIC", "3056"),
    ("12 Vineyard Drive", "Mildura", "VIC", "3500"),
    ("88 Sturt Street", "Ballarat Central", "VIC", "3350"),
    ("4 Kookaburra Close", "Bendigo", "VIC", "3550"),
    ("19 Hindley Street", "Adelaide", "SA", "5000"),
    ("6 Saltbush Road", "Mount Gambier", "SA", "5290"),
    ("31 Hay Street", "Subiaco", "WA", "6008"),
    ("2 Spinifex Way", "Geraldton", "WA", "6530"),
    ("70 Elizabeth Street", "Hobart", "TAS", "7000"),
    ("15 Mitchell Street", "Darwin City", "NT", "0800"),
    ("10 Northbourne Avenue", "Braddon", "ACT", "2612"),
    ("23 Riverside Drive", "Rockhampton City", "QLD", "4700"),
]
_CONTACT_TIMES = [None, "Mornings", "After 3pm", "Weekdays 9am-5pm", "Evenings after 6pm", ""]
_NOTES = [
    "",
    "",
    "Gate code 4821. Dog on site: friendly, keep the gate shut.",
    "Two-storey, steep tin roof; bring the long ladder.",
    "Prefers SMS before arrival.\nMeter box on the left side of the house.",
    "Battery ready. Asked about adding an EV charger later.",
    "Tenant on site; owner lives interstate.",
]


def _generated_customers() -> dict[int, dict[str, object]]:
    rng = random.Random(2143)
    customers: dict[int, dict[str, object]] = {}
    for index in range(36):
        project_id = 1001 + index
        first, surname = rng.choice(_FIRST), rng.choice(_SURNAME)
        street, suburb, state, postcode = _SITES[index % len(_SITES)]
        mobile = f"0491 570 {rng.randrange(100, 999)}"
        landline = f"(0{rng.choice([2, 3, 7, 8])}) 5550 {rng.randrange(1000, 9999)}"
        commercial = index % 5 == 0
        customers[project_id] = _customer(
            project_id,
            gstRegistered=1 if commercial else 0,
            firstName=first,
            surname=surname,
            phone1=mobile if index % 3 else mobile.replace(" ", "").replace("0", "61", 1),
            phone2=landline if index % 4 == 0 else "",
            email=f"{first}.{surname}".lower().replace("'", "") + f"{index}@example.com",
            companyName=f"{surname} {rng.choice(['Farms', 'Plumbing', 'Holdings', 'Dental'])} Pty Ltd"
            if commercial
            else "",
            companyPhone="1300 555 010" if commercial else "",
            customerabn="51 824 753 556" if commercial else None,
            siteAddress=f"{street}, {suburb}, {state}, {postcode}",
            note=rng.choice(_NOTES),
            contactTime=rng.choice(_CONTACT_TIMES),
        )
    return customers


CUSTOMERS: dict[int, dict[str, object]] = {
    # The example from Solar Proof's own documentation.
    2143: _customer(
        2143,
        customerID=79298,
        firstName="Judy",
        surname="Matherson",
        phone1="61411549054",
        email="judymatherson@gmail.com",
        companyName="Solar Proof",
        companyPhone="1300 602 452",
        siteAddress="132 Mono Drive, Brisbane, QLD, 4321",
    ),
    # A business: valid ABN, GST registered, landline, a 13 number, line breaks in the note.
    2144: _customer(
        2144,
        gstRegistered=1,
        firstName="Marcus",
        surname="Aurelio",
        phone1="(07) 3123 4567",
        phone2="13 11 14",
        email="accounts@aurelio-nurseries.example.com",
        companyName="Aurelio Nurseries Pty Ltd",
        companyPhone="1800 555 010",
        customerabn="51824753556",
        siteAddress="480 Mount Cotton Road, Capalaba, QLD, 4157",
        note="Site contact: Dee (operations).\nLoading dock at rear; sign in at the office.",
        contactTime="Weekdays 7am-3pm",
    ),
    # A customer reached on a New Zealand mobile, no second phone.
    2145: _customer(
        2145,
        firstName="Siobhan",
        surname="O'Connell",
        phone1="+64 21 123 4567",
        email="siobhan+solar@example.co.nz",
        siteAddress="9 Seaview Terrace, Byron Bay, NSW, 2481",
        contactTime="Evenings, New Zealand time",
    ),
    # The PHP endpoint's habits: numbers as strings, optional fields missing or null.
    2146: {
        "customerID": "72146",
        "gstRegistered": "1",
        "firstName": "Wei",
        "surname": "Zhang",
        "phone1": "0491 570 156",
        "email": "wei.zhang@example.com.au",
        "siteAddress": "17 Lorikeet Lane, Sunnybank Hills, QLD, 4109",
        "contactTime": None,
        "extraFieldFromNewerApi": {"ignored": True},
    },
    # Hostile values: every field tries to escape the page or smuggle a link.
    2147: _customer(
        2147,
        firstName="<script>alert('first')</script>",
        surname='"><img src=x onerror=alert(1)>',
        phone1="javascript:alert(1)",
        phone2='0491 570 110" onclick="alert(2)',
        email="javascript:alert(document.cookie)//@example.com",
        companyName='<a href="javascript:alert(3)">Click me</a>',
        companyPhone="1300 602 452<script>",
        customerabn="12 345 678 901",
        siteAddress='<iframe src="https://evil.example"></iframe> 1 Hack St, Perth WA 6000',
        note="{{ settings.SECRET_KEY }} {% debug %}\n<b>bold?</b>",
        contactTime="<marquee>anytime</marquee>",
    ),
    # An address navigation apps would have to guess at, and an odd contact time.
    2148: _customer(
        2148,
        firstName="Bazza",
        surname="Kowalski",
        phone1="0491 570 159",
        siteAddress="Lot 12 Back Creek Road, near the old dairy",
        note="No mobile coverage past the grid. Ring from town.\nCattle grid: slow.",
        contactTime="Any time",
    ),
    # Values that are not what they claim: an emergency number, too short, not an email.
    2149: _customer(
        2149,
        firstName="Pat",
        surname="Lee",
        phone1="000",
        phone2="12345",
        email="pat.lee at example dot com",
        customerabn="not an ABN",
        siteAddress="5 Example Street, Mackay, QLD, 4740",
    ),
    **_generated_customers(),
}

# Projects that answer with each documented error, and with the endpoint's quirks.
ERRORS: dict[int, Answer] = {
    9400: _error(400, "INVALID_PARAMETERS", "Required parameter project_id is missing"),
    9401: _error(401, "INVALID_API_KEY", "The provided API key is invalid or missing"),
    9403: _error(403, "UNAUTHORISED", "You don't have permission to access this project"),
    9404: _error(404, "PROJECT_NOT_FOUND", "No project exists with ID: 9404"),
    9405: _error(404, "NO_CUSTOMER_ASSIGNED", "The project exists but has no customer assigned"),
    # Older deployments: an error with status 200, and the legacy spellings.
    9200: _error(200, "NOT_FOUND", "Project not found"),
    9201: _error(200, "API_KEY_INVALID", "Invalid API key"),
    9202: _error(500, "UNKNOWN", "Unknown error"),
    # A customer sent as text/html, as PHP does when nobody sets the header.
    9210: _json(
        200,
        {
            "Message": "Customer details retrieved successfully!",
            "Customer": _customer(
                9210,
                firstName="Helen",
                surname="Beaumont",
                phone1="0491 570 006",
                email="helen.beaumont@example.net",
                siteAddress="3 Pelican Way, Hervey Bay, QLD, 4655",
            ),
        },
        content_type="text/html; charset=UTF-8",
    ),
    # Failures of the server rather than the API.
    9500: Answer(500, b"<html><body><b>Fatal error</b>: Uncaught PDOException</body></html>", "text/html"),
    9502: Answer(502, b"<html><body>502 Bad Gateway</body></html>", "text/html"),
    9503: Answer(503, b"<html><body>503 Service Unavailable</body></html>", "text/html"),
    9520: Answer(200, b'{"Message": "Customer details retr', "application/json"),
    9521: _json(200, {"Message": "ok", "Customer": "Judy Matherson"}),
    9599: Answer(200, b"{}", "application/json", delay=60.0),
    # Slow but answers: long enough to see the loading state.
    9515: _json(
        200,
        {
            "Message": "ok",
            "Customer": _customer(
                9515,
                firstName="Sunny",
                surname="Slowpoke",
                phone1="0491 570 157",
                siteAddress="1 Long Wait Road, Gympie, QLD, 4570",
            ),
        },
        delay=1.0,
    ),
}


def answer(query: dict[str, str], *, api_key: str) -> Answer:
    """What Solar Proof would answer to this query string."""
    if query.get("api_key", "") != api_key:
        return _error(401, "INVALID_API_KEY", "The provided API key is invalid or missing")
    project = query.get("project_id", "").strip()
    if query.get("action") != "getcustomerofproject" or not project.isdigit():
        return _error(400, "INVALID_PARAMETERS", "Required parameter project_id is missing")
    project_id = int(project)
    if project_id in ERRORS:
        return ERRORS[project_id]
    if project_id in CUSTOMERS:
        return _json(200, {"Message": "Customer details retrieved successfully!", "Customer": CUSTOMERS[project_id]})
    return _error(404, "PROJECT_NOT_FOUND", f"No project exists with ID: {project_id}")
