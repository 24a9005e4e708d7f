"""Two app servers sharing PostgreSQL and Redis, and the faults production will meet."""

import time

import pytest
import requests
from django.conf import settings
from django.core.cache import caches

from customers.audit import verify
from customers.models import LookupEvent
from tests.support.live import HTTPS, production_user, shared_services, sign_in
from tests.support.pages import text
from tests.support.processes import RedisServer, TcpProxy, closed_port_url, gunicorn, production_env


def test_two_app_servers_share_sessions_limits_and_one_audit_chain(committed_db, make_user, static_root, tmp_path):
    shared_services()
    production_user(make_user)
    env = production_env(LOOKUP_RATE_LIMIT="5/m", GUNICORN_WORKERS="2", DJANGO_STATIC_ROOT=str(static_root))
    caches["default"].clear()
    with gunicorn(env, log=tmp_path / "first.log") as first, gunicorn(env, log=tmp_path / "second.log") as second:
        session = sign_in(first, "sam.sales", "correct-horse-battery")
        cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}", **HTTPS}
        statuses = []
        for index in range(8):
            base = (first, second)[index % 2]
            answer = requests.get(f"{base}/projects/{1001 + index}/", headers=cookie, timeout=10)
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                assert "Contact" in answer.text
        assert statuses == [200] * 5 + [429] * 3  # one limit across both servers
        assert requests.get(f"{second}/", headers=cookie, timeout=5).status_code == 200  # signed in on both
    assert LookupEvent.objects.count() == 8
    assert list(LookupEvent.objects.order_by("sequence").values_list("outcome", flat=True)) == (
        ["found"] * 5 + ["rate_limited"] * 3
    )
    assert str(verify.verify_chain()) == "OK: 8 events verified"


@pytest.mark.django_db
def test_the_portal_keeps_serving_while_redis_is_down_and_recovers(settings, client, sales_user, caplog):
    redis = RedisServer().start()
    settings.CACHE_CIRCUIT_RESET_SECONDS = 0.2
    try:
        settings.CACHES = {
            "default": {
                "BACKEND": "solarproof_portal.cache.RedisCache",
                "LOCATION": redis.url,
                "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
            }
        }
        client.force_login(sales_user)
        assert client.get("/projects/2143/").status_code == 200
        assert client.get("/readyz").json()["cache"] == "ok"

        redis.stop()
        down = client.get("/projects/2144/")
        assert down.status_code == 200 and "Marcus Aurelio" in text(down)
        # Told once, by the cache's circuit breaker (rate limit, cache read and write failed).
        assert caplog.text.count("The cache (Redis) is unavailable: 3 calls in a row got no answer") == 1
        readiness = client.get("/readyz")
        assert readiness.status_code == 200 and readiness.json() == {
            "ready": True,
            "database": "ok",
            "cache": "degraded",
        }

        redis.start()
        time.sleep(0.3)  # the cache's circuit lets a trial call through after its reset time
        assert client.get("/readyz").json()["cache"] == "ok"
        client.get("/projects/2144/")
        assert "From the portal's cache" in text(client.get("/projects/2144/"))
    finally:
        redis.stop()
    assert LookupEvent.objects.filter(outcome="found").count() == 4


@pytest.mark.parametrize(
    "connections",
    [
        pytest.param({}, id="pooled"),
        pytest.param({"DATABASE_POOL_MAX": "0", "DATABASE_CONN_MAX_AGE": "60"}, id="persistent"),
    ],
)
def test_with_postgresql_unreachable_pages_are_503_and_the_portal_recovers(
    committed_db, make_user, static_root, tmp_path, connections
):
    shared_services()
    production_user(make_user)
    database = settings.DATABASES["default"]
    proxy = TcpProxy(database["HOST"], int(database["PORT"])).start()
    proxied = f"postgres://{database['USER']}@127.0.0.1:{proxy.port}/{database['NAME']}"
    env = production_env(DATABASE_URL=proxied, DJANGO_STATIC_ROOT=str(static_root), **connections)
    try:
        with gunicorn(env, log=tmp_path / "gunicorn.log") as base:
            session = sign_in(base, "sam.sales", "correct-horse-battery")
            cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}", **HTTPS}
            assert requests.get(f"{base}/projects/2143/", headers=cookie, timeout=10).status_code == 200

            proxy.cut()
            down = requests.get(f"{base}/projects/2143/", headers=cookie, timeout=10)
            assert down.status_code == 503
            assert "The portal is temporarily unavailable" in down.text
            assert "Judy" not in down.text and "Traceback" not in down.text
            assert requests.get(f"{base}/readyz", headers=HTTPS, timeout=10).status_code == 503
            assert requests.get(f"{base}/healthz", headers=HTTPS, timeout=10).status_code == 200

            proxy.restore()
            back = requests.get(f"{base}/projects/2143/", headers=cookie, timeout=10)
            assert back.status_code == 200 and "Judy Matherson" in back.text
    finally:
        proxy.cut()
    # Only the lookups that were shown were recorded: none while the database was away.
    assert LookupEvent.objects.count() == 2


@pytest.mark.django_db
def test_an_unreachable_solar_proof_is_a_plain_message(settings, client, sales_user):
    settings.SOLARPROOF_API_URL = closed_port_url()
    client.force_login(sales_user)
    response = client.get("/projects/2143/")
    assert response.status_code == 503
    assert "Solar Proof was unavailable. The portal could not reach it. Try again in a minute." in text(response)
    assert LookupEvent.objects.get().outcome == "upstream_unavailable"
