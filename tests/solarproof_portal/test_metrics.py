"""/metrics (solarproof_portal/metrics.py): what the operator's Prometheus reads, served
only with the token. Under gunicorn, every worker's counts together:
tests/deploy/test_neighbours.py."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import BlackHole

pytestmark = pytest.mark.django_db

TOKEN = "a-long-random-scrape-token-for-tests"


def scrape(client, token=TOKEN):
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")


def samples(response) -> dict[tuple[str, frozenset], float]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(found, name, **labels):
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.parametrize(("configured", "offered"), [("", ""), ("", "anything"), (TOKEN, ""), (TOKEN, "wrong")])
def test_it_does_not_exist_without_the_right_token(client, settings, configured, offered):
    settings.METRICS_TOKEN = configured
    headers = {"HTTP_AUTHORIZATION": f"Bearer {offered}"} if offered else {}
    response = client.get("/metrics", **headers)
    assert response.status_code == 404
    assert "portal_lookups_total" not in response.content.decode()


@pytest.mark.parametrize("header", [TOKEN, f"Basic {TOKEN}", f"Token {TOKEN}", f"Bearer{TOKEN}"])
def test_it_does_not_exist_for_the_token_without_the_bearer_scheme(client, settings, header):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=header)
    assert response.status_code == 404
    assert "portal_lookups_total" not in response.content.decode()
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 200


def test_it_counts_lookups_by_outcome_and_channel_and_times_solar_proof_and_the_audit(client, settings, sales_user):
    settings.METRICS_TOKEN = TOKEN
    settings.LOOKUP_CACHE_SECONDS = 0
    before = samples(scrape(client))
    client.force_login(sales_user)
    assert client.get("/projects/2143/").status_code == 200
    assert client.get("/projects/9404/").status_code == 404
    after = samples(scrape(client))

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("portal_lookups_total", outcome="found", channel="web") == 1
    assert grew("portal_lookups_total", outcome="project_not_found", channel="web") == 1
    assert grew("portal_upstream_request_seconds_count") == 2
    assert grew("portal_audit_append_seconds_count") == 2
    for dependency in ("solarproof", "cache", "database"):
        assert value(after, "portal_dependency_up", dependency=dependency) == 1


def test_an_open_circuit_shows_its_neighbour_down_until_it_answers_again(client, settings, sales_user):
    settings.METRICS_TOKEN = TOKEN
    settings.SOLARPROOF_CIRCUIT_FAILURES = 1
    settings.SOLARPROOF_TIMEOUT = 0.2
    client.force_login(sales_user)
    with BlackHole() as hung:
        settings.SOLARPROOF_API_URL = hung.url
        client.get("/projects/2143/")
        turned_away = client.get("/projects/2144/")
    assert turned_away.status_code == 503 and "last tried it at" in turned_away.content.decode()

    found = samples(scrape(client))
    assert value(found, "portal_dependency_up", dependency="solarproof") == 0
    assert value(found, "portal_upstream_turned_away_total", reason="circuit_open") >= 1
