"""solarproof_portal/views.py and Django's own error handlers: the pages shown when
something goes wrong, rendered from the portal's templates."""

import pytest
from django.db import DatabaseError, InterfaceError, OperationalError
from django.test import RequestFactory

from solarproof_portal.views import server_error
from tests.support.pages import hrefs, text

pytestmark = pytest.mark.django_db


def test_a_request_for_another_host_gets_the_bad_request_page(client):
    response = client.get("/", HTTP_HOST="portal.example.net")
    assert response.status_code == 400
    assert "That request could not be understood" in text(response)
    assert "/" in hrefs(response)
    assert "Sign out" not in text(response)  # rendered without a request: no one is signed in


def test_a_request_for_another_host_is_logged_as_one_warning_line(client, caplog):
    client.get("/", HTTP_HOST="portal.example.net")
    (refused,) = [record for record in caplog.records if record.name == "django.security.DisallowedHost"]
    assert refused.levelname == "WARNING" and not refused.exc_info
    assert refused.getMessage().startswith("Invalid HTTP_HOST header: 'portal.example.net'.")
    assert "Traceback" not in caplog.text


def test_an_unknown_address_gets_the_not_found_page(client, sales_user):
    client.force_login(sales_user)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "There is nothing at this address" in text(response)
    assert "sam.sales Sign out" in text(response)


def test_a_crash_gets_the_plain_error_page():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert "Something went wrong" in text(response)
    assert "boom" not in text(response)


@pytest.mark.parametrize(
    "outage",
    [
        DatabaseError("connection refused"),
        OperationalError("couldn't get a connection after 3.00 sec"),  # the pool's timeout
        InterfaceError("connection already closed"),  # not a DatabaseError, an outage all the same
    ],
    ids=lambda outage: type(outage).__name__,
)
def test_a_database_outage_gets_the_temporarily_unavailable_page(outage):
    try:
        raise outage
    except type(outage):
        response = server_error(RequestFactory().get("/"))
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert "The portal is temporarily unavailable" in text(response)


def test_health_probes_answer_head_as_load_balancers_send_it(client):
    # Some load balancers probe with HEAD: the answer is GET's, without a body.
    assert client.head("/healthz", HTTP_HOST="10.0.0.5").status_code == 200
    assert client.head("/readyz", HTTP_HOST="10.0.0.5").status_code == 200
    assert client.post("/healthz").status_code == 405


def test_the_browsers_favicon_ico_is_the_portals_icon_for_anyone(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/favicon.svg"
    assert "max-age=86400" in response["Cache-Control"]
    assert client.head("/favicon.ico").status_code == 301
