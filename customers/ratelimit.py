"""A fixed-window rate limit on the shared cache, so it holds across app servers.

If the shared cache is down, each process falls back to counting on its own: the
limit is then per process rather than per user, which is weaker but still a limit.
The cache's circuit breaker (solarproof_portal/cache.py) logs the outage once; while its
circuit is open this costs no network call at all.
"""

import logging
import threading
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)

_local_counts: dict[str, int] = {}
_local_lock = threading.Lock()


def hit_rate_limit(*, key: str, limit: int, window_seconds: int) -> bool:
    """Count one attempt against ``key``; True when it goes over ``limit`` in this window."""
    window = int(time.time() // window_seconds)
    cache_key = f"ratelimit:{key}:{window}"
    try:
        count = _count_shared(cache_key, window_seconds)
    except Exception as exc:
        logger.debug("Rate limit cache unavailable (%s); counting in this process only", type(exc).__name__)
        count = _count_local(cache_key)
    return count > limit


def _count_shared(cache_key: str, window_seconds: int) -> int:
    count_in_window = getattr(cache, "count_in_window", None)
    if count_in_window is not None:  # the portal's Redis cache: one round trip
        return count_in_window(cache_key, window_seconds + 1)
    # add() is atomic and a no-op when the counter exists; incr() is atomic on Redis.
    cache.add(cache_key, 0, timeout=window_seconds + 1)
    try:
        return cache.incr(cache_key)
    except ValueError:  # the window expired between add() and incr()
        cache.set(cache_key, 1, timeout=window_seconds + 1)
        return 1


def _count_local(cache_key: str) -> int:
    with _local_lock:
        if cache_key not in _local_counts and len(_local_counts) > 10_000:
            _local_counts.clear()
        _local_counts[cache_key] = _local_counts.get(cache_key, 0) + 1
        return _local_counts[cache_key]
