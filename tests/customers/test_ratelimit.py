"""The rate limit still holds while the shared cache is down: each process counts on its
own, per user (customers/ratelimit.py). With the cache up: tests/solarproof_portal/test_cache.py."""

import pytest

from customers import ratelimit
from customers.lookups import look_up_customer
from customers.models import LookupEvent
from customers.ratelimit import hit_rate_limit
from solarproof_portal.cache import RedisCache

# A window of a year: a test never straddles two windows.
YEAR = 365 * 24 * 3600


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
    # This process's own counts start empty, as in a freshly started worker.
    monkeypatch.setattr(ratelimit, "_local_counts", {})


def test_while_the_cache_is_down_each_attempt_counts(cache_down, caplog):
    verdicts = [hit_rate_limit(key="user:7", limit=2, window_seconds=YEAR) for _ in range(5)]
    assert verdicts == [False, False, True, True, True]
    # The outage is told once, by the cache's circuit breaker, not on every attempt.
    assert caplog.text.count("The cache (Redis) is unavailable") == 1


def test_while_the_cache_is_down_another_users_attempts_neither_reset_nor_spend_a_users_count(cache_down):
    assert [hit_rate_limit(key="user:7", limit=2, window_seconds=YEAR) for _ in range(2)] == [False, False]
    assert [hit_rate_limit(key="user:8", limit=2, window_seconds=YEAR) for _ in range(3)] == [False, False, True]
    assert hit_rate_limit(key="user:7", limit=2, window_seconds=YEAR)


def test_the_lookup_limit_holds_per_user_while_the_cache_is_down(cache_down, settings, sales_user, installer_user):
    settings.LOOKUP_RATE_LIMIT = (3, YEAR)

    sam = [look_up_customer(user=sales_user, project_id=2143).found for _ in range(2)]
    ivy = [look_up_customer(user=installer_user, project_id=2143).found for _ in range(4)]
    sam += [look_up_customer(user=sales_user, project_id=2143).found for _ in range(2)]

    assert sam == [True, True, True, False]
    assert ivy == [True, True, True, False]
    refused = LookupEvent.objects.filter(outcome="rate_limited")
    assert sorted(refused.values_list("username", flat=True)) == ["ivy.installer", "sam.sales"]
