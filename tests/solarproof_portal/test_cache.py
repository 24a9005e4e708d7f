"""solarproof_portal/cache.py: Django's Redis cache, one client per pool, one-trip counting."""

import logging
import re
import time
from collections.abc import Iterator

import pytest

from customers.lookups import look_up_customer
from customers.models import LookupEvent
from customers.outcomes import Outcome
from customers.ratelimit import hit_rate_limit
from solarproof_portal.cache import CacheUnavailable, RedisCache
from tests.support.processes import BlackHole, RedisServer


@pytest.fixture(scope="module")
def redis_cache() -> Iterator[RedisCache]:
    server = RedisServer().start()
    try:
        yield RedisCache(server.url, {"KEY_PREFIX": "t", "OPTIONS": {"socket_timeout": 0.5}})
    finally:
        server.stop()


def test_it_reuses_one_client_and_still_stores_and_reads(redis_cache):
    assert redis_cache._cache.get_client(write=True) is redis_cache._cache.get_client()
    redis_cache.set("greeting", {"hello": "world"}, timeout=30)
    assert redis_cache.get("greeting") == {"hello": "world"}


def test_it_counts_in_a_window_that_expires(redis_cache):
    assert [redis_cache.count_in_window("hits", timeout=30) for _ in range(3)] == [1, 2, 3]
    assert redis_cache.get("hits") == 3  # the same key and encoding as Django's incr
    key = redis_cache.make_and_validate_key("hits")
    assert 0 < redis_cache._cache.get_client().ttl(key) <= 30


def test_the_rate_limit_counts_with_it(redis_cache, monkeypatch):
    monkeypatch.setattr("customers.ratelimit.cache", redis_cache)
    verdicts = [hit_rate_limit(key="user:7", limit=2, window_seconds=60) for _ in range(3)]
    assert verdicts == [False, False, True]


# --- its circuit breaker: a Redis that is down or hung costs a lookup nothing once known ---


@pytest.fixture
def lookups_use(monkeypatch):
    def use(cache: RedisCache) -> None:
        monkeypatch.setattr("customers.lookups.cache", cache)
        monkeypatch.setattr("customers.ratelimit.cache", cache)

    return use


def outage_lines(caplog) -> list[str]:
    return [f"{r.levelname} {r.getMessage()}" for r in caplog.records if r.name == "solarproof_portal.circuits"]


@pytest.mark.django_db
def test_a_hung_cache_is_not_asked_again_once_its_circuit_opens(sales_user, lookups_use, settings, caplog):
    settings.CACHE_CIRCUIT_FAILURES = 3
    with BlackHole() as hung:
        lookups_use(RedisCache(f"redis://127.0.0.1:{hung.port}/0", {"OPTIONS": {"socket_timeout": 0.2}}))
        first = look_up_customer(user=sales_user, project_id=2143)
        tried = hung.accepted
        later = [look_up_customer(user=sales_user, project_id=2143) for _ in range(5)]

        assert first.found and all(result.found for result in later)
        assert tried >= 1 and hung.accepted == tried  # skipped without touching the network
    assert list(LookupEvent.objects.values_list("outcome", flat=True)) == ["found"] * 6
    lines = outage_lines(caplog)
    assert len(lines) == 1
    assert lines[0].startswith("WARNING The cache (Redis) is unavailable: 3 calls in a row got no answer")
    assert not any(record.exc_info for record in caplog.records)


@pytest.mark.django_db
def test_with_the_cache_down_the_rate_limit_still_holds_in_the_process(sales_user, lookups_use, settings, monkeypatch):
    settings.LOOKUP_RATE_LIMIT = (2, 86400)  # a day: a minute's window could turn over mid-test
    monkeypatch.setattr("customers.ratelimit._local_counts", {})  # earlier tests' counts
    lookups_use(RedisCache("redis://127.0.0.1:1/0", {}))  # nothing listens on port 1

    outcomes = [look_up_customer(user=sales_user, project_id=2143).outcome for _ in range(3)]

    assert outcomes == [Outcome.FOUND, Outcome.FOUND, Outcome.RATE_LIMITED]


def test_a_trial_call_closes_the_circuit_when_redis_is_back_and_says_how_long_it_was_gone(settings, caplog):
    settings.CACHE_CIRCUIT_FAILURES = 2
    settings.CACHE_CIRCUIT_RESET_SECONDS = 0.2
    caplog.set_level(logging.INFO)
    server = RedisServer().start()
    cache = RedisCache(server.url, {"OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}})
    try:
        cache.set("kept", 1)
        server.stop()
        for _ in range(3):
            with pytest.raises(Exception):  # noqa: B017 - refused twice, then turned away
                cache.get("kept")
        with pytest.raises(CacheUnavailable):
            cache.get("kept")
        restarted = RedisServer()
        restarted.port = server.port
        server = restarted.start()
        time.sleep(0.25)
        cache.set("kept", 2)
        assert cache.get("kept") == 2
    finally:
        server.stop()
    lines = outage_lines(caplog)
    assert len(lines) == 2
    assert lines[0].startswith("WARNING The cache (Redis) is unavailable: 2 calls in a row got no answer")
    back = r"INFO The cache \(Redis\) is back after \d+ s; \d+ calls were turned away or failed while it was gone"
    assert re.fullmatch(back, lines[1])
