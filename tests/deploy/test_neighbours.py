"""gunicorn with the production config while a neighbour misbehaves: probes that never
queue behind lookups (solarproof_portal/gunicorn_worker.py), and /metrics adding up every
worker. The full fault suite, with its own PostgreSQL and Redis, is `make faults`."""

import threading

import requests
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from customers.models import LookupEvent
from tests.support.live import HTTPS, production_user, sign_in
from tests.support.processes import BlackHole, gunicorn, production_env

TOKEN = "scrape-token-of-the-neighbours-test"


def test_healthz_answers_while_every_lookup_thread_waits_on_a_hung_solar_proof(
    committed_db, make_user, static_root, tmp_path
):
    production_user(make_user)
    with BlackHole() as hung:
        env = production_env(
            SOLARPROOF_API_URL=hung.url,
            SOLARPROOF_TIMEOUT="3",
            GUNICORN_WORKERS="1",
            GUNICORN_THREADS="2",
            SOLARPROOF_MAX_CONCURRENT="2",  # no thread kept free: every one waits on Solar Proof
            SOLARPROOF_CIRCUIT_FAILURES="50",
            LOOKUP_CACHE_SECONDS="0",
            DJANGO_STATIC_ROOT=str(static_root),
        )
        with gunicorn(env, log=tmp_path / "gunicorn.log") as base:
            cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={sign_in(base, 'sam.sales', 'correct-horse-battery')}"}
            statuses = []

            def look_up(project_id):
                answer = requests.get(f"{base}/projects/{project_id}/", headers={**cookie, **HTTPS}, timeout=30)
                statuses.append(answer.status_code)

            lookups = [threading.Thread(target=look_up, args=(1001 + n,)) for n in range(6)]
            for thread in lookups:
                thread.start()
            while hung.accepted < 2:  # both threads are now waiting on Solar Proof
                threading.Event().wait(0.02)

            # A thread would be free in 3 s at the soonest; the probe is answered before that.
            probe = requests.get(f"{base}/healthz", timeout=1)
            head = requests.head(f"{base}/healthz", timeout=1)
            still_waiting = sum(thread.is_alive() for thread in lookups)
            for thread in lookups:
                thread.join()

    assert (probe.status_code, probe.text, head.status_code) == (200, "ok", 200)
    assert probe.headers["Connection"] == "close" and head.text == ""
    assert still_waiting == 6
    assert sorted(statuses) == [503] * 6  # the outage page, never a 500
    assert LookupEvent.objects.filter(outcome="upstream_unavailable").count() == 6


def test_metrics_add_up_every_workers_counts_and_need_the_token(committed_db, make_user, static_root, tmp_path):
    production_user(make_user)
    env = production_env(GUNICORN_WORKERS="2", METRICS_TOKEN=TOKEN, DJANGO_STATIC_ROOT=str(static_root))
    with gunicorn(env, log=tmp_path / "gunicorn.log") as base:
        cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={sign_in(base, 'sam.sales', 'correct-horse-battery')}"}
        for n in range(8):  # a new connection each: the workers share them out
            assert requests.get(f"{base}/projects/{1001 + n}/", headers={**cookie, **HTTPS}, timeout=10).ok
        refused = requests.get(f"{base}/metrics", headers={**HTTPS, "Authorization": "Bearer wrong"}, timeout=5)
        scrape = requests.get(f"{base}/metrics", headers={**HTTPS, "Authorization": f"Bearer {TOKEN}"}, timeout=5)

    assert refused.status_code == 404
    assert scrape.status_code == 200
    samples = [sample for family in text_string_to_metric_families(scrape.text) for sample in family.samples]
    found = [s.value for s in samples if s.name == "portal_lookups_total" and s.labels["outcome"] == "found"]
    assert sum(found) == 8
    up = {s.labels["dependency"]: s.value for s in samples if s.name == "portal_dependency_up"}
    assert up == {"solarproof": 1, "cache": 1, "database": 1}
