"""solarproof_portal/cache.py: Django's Redis cache, one client per pool, one-trip counting."""

from collections.abc import Iterator

import pytest

from customers.ratelimit import hit_rate_limit
from solarproof_portal.cache import RedisCache
from tests.support.processes import RedisServer


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
