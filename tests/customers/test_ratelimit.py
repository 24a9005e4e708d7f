"""customers/ratelimit.py: one fixed-window count per user, on the shared cache so it holds
across app servers; while the cache is down, each process counts on its own, still per user."""

import logging
import time
from collections.abc import Iterator

import pytest
from django.core.cache.backends.locmem import LocMemCache

from customers import ratelimit
from customers.lookups import look_up_customer
from customers.models import LookupEvent
from customers.ratelimit import hit_rate_limit
from solarproof_portal.cache import RedisCache
from tests.support.processes import RedisServer

# A window of a year: a test never straddles two windows.
YEAR = 365 * 24 * 3600
OUTAGE = "The cache (Redis) is unavailable"


def _key(user: int) -> str:
    return f"ratelimit:user:{user}:{int(time.time() // YEAR)}"


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch) -> dict[str, int]:
    """This process's own counts start empty, as in a freshly started worker."""
    counts: dict[str, int] = {}
    monkeypatch.setattr(ratelimit, "_local_counts", counts)
    return counts


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def shared_redis(redis_server, monkeypatch) -> RedisCache:
    """The portal's own Redis cache, which counts in one round trip."""
    shared = RedisCache(redis_server.url, {"KEY_PREFIX": "rl", "OPTIONS": {"socket_timeout": 0.5}})
    shared.clear()
    monkeypatch.setattr(ratelimit, "cache", shared)
    return shared


class _CounterExpiresAtOnce(LocMemCache):
    """The race the code allows for: the window's counter expires between add() and incr()."""

    def add(self, key, value, timeout=None, version=None):  # type: ignore[no-untyped-def]
        return True


@pytest.fixture
def cache_down(settings, monkeypatch):
    """The shared cache refuses every connection (nothing listens on port 1)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "solarproof_portal.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_timeout": 0.5},
        }
    }
    monkeypatch.setattr(ratelimit, "cache", RedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {"socket_timeout": 0.5}}))


def test_it_counts_on_the_shared_redis_per_user_and_window(shared_redis, fresh_process, caplog):
    assert [hit_rate_limit(key="user:7", limit=2, window_seconds=YEAR) for _ in range(4)] == [False, False, True, True]
    assert hit_rate_limit(key="user:8", limit=2, window_seconds=YEAR) is False

    assert (shared_redis.get(_key(7)), shared_redis.get(_key(8))) == (4, 1)
    # The counter outlives its window by a second, no more.
    ttl = shared_redis._cache.get_client().ttl(shared_redis.make_and_validate_key(_key(7)))
    assert YEAR <= ttl <= YEAR + 1
    assert fresh_process == {} and OUTAGE not in caplog.text


def test_with_a_plain_cache_it_counts_there_per_user_and_window(monkeypatch, fresh_process, caplog):
    """Django's own backends have no one-trip counter: add, then incr."""
    plain = LocMemCache("ratelimit-plain", {})
    plain.clear()  # local-memory caches of one name share their store within the process
    monkeypatch.setattr(ratelimit, "cache", plain)

    assert [hit_rate_limit(key="user:7", limit=2, window_seconds=YEAR) for _ in range(4)] == [False, False, True, True]
    assert hit_rate_limit(key="user:8", limit=2, window_seconds=YEAR) is False

    assert (plain.get(_key(7)), plain.get(_key(8))) == (4, 1)
    assert sorted(plain._cache) == sorted(plain.make_and_validate_key(_key(user)) for user in (7, 8))  # nothing else
    expires = plain._expire_info[plain.make_and_validate_key(_key(7))]
    assert YEAR < expires - time.time() <= YEAR + 1
    assert fresh_process == {} and OUTAGE not in caplog.text


def test_a_counter_that_expired_between_add_and_incr_starts_again_at_one(monkeypatch, fresh_process):
    racing = _CounterExpiresAtOnce("ratelimit-race", {})
    racing.clear()
    monkeypatch.setattr(ratelimit, "cache", racing)

    assert hit_rate_limit(key="user:7", limit=1, window_seconds=YEAR) is False
    assert racing.get(_key(7)) == 1
    assert YEAR < racing._expire_info[racing.make_and_validate_key(_key(7))] - time.time() <= YEAR + 1
    assert hit_rate_limit(key="user:7", limit=0, window_seconds=YEAR) is True
    assert fresh_process == {}


def test_while_the_cache_is_down_each_attempt_counts(cache_down, caplog):
    verdicts = [hit_rate_limit(key="user:7", limit=2, window_seconds=YEAR) for _ in range(5)]
    assert verdicts == [False, False, True, True, True]
    # The outage is told once, by the cache's circuit breaker, not on every attempt.
    assert caplog.text.count(OUTAGE) == 1


def test_at_debug_level_each_attempt_counted_in_the_process_says_why(cache_down, caplog):
    caplog.set_level(logging.DEBUG, logger="customers.ratelimit")
    hit_rate_limit(key="user:7", limit=2, window_seconds=YEAR)
    said = [record.getMessage() for record in caplog.records if record.name == "customers.ratelimit"]
    assert said == ["Rate limit cache unavailable (ConnectionError); counting in this process only"]


def test_while_the_cache_is_down_another_users_attempts_neither_reset_nor_spend_a_users_count(cache_down):
    assert [hit_rate_limit(key="user:7", limit=2, window_seconds=YEAR) for _ in range(2)] == [False, False]
    assert [hit_rate_limit(key="user:8", limit=2, window_seconds=YEAR) for _ in range(3)] == [False, False, True]
    assert hit_rate_limit(key="user:7", limit=2, window_seconds=YEAR)


def test_a_full_table_of_counts_is_emptied_only_to_make_room_for_a_new_one(cache_down, fresh_process):
    """The fallback keeps at most about 10,000 counters: a long outage must not grow it
    without end, but a user already counted is never reset by it."""
    fresh_process.update({f"ratelimit:other:{n}:0": 1 for n in range(10_000)})
    fresh_process[_key(7)] = 2
    assert hit_rate_limit(key="user:7", limit=2, window_seconds=YEAR)  # 3 > 2: not reset
    assert fresh_process[_key(7)] == 3

    assert hit_rate_limit(key="user:8", limit=2, window_seconds=YEAR) is False
    assert fresh_process == {_key(8): 1}


def test_the_lookup_limit_holds_per_user_while_the_cache_is_down(cache_down, settings, sales_user, installer_user):
    settings.LOOKUP_RATE_LIMIT = (3, YEAR)

    sam = [look_up_customer(user=sales_user, project_id=2143).found for _ in range(2)]
    ivy = [look_up_customer(user=installer_user, project_id=2143).found for _ in range(4)]
    sam += [look_up_customer(user=sales_user, project_id=2143).found for _ in range(2)]

    assert sam == [True, True, True, False]
    assert ivy == [True, True, True, False]
    refused = LookupEvent.objects.filter(outcome="rate_limited")
    assert sorted(refused.values_list("username", flat=True)) == ["ivy.installer", "sam.sales"]
