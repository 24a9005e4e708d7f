"""Django's Redis cache, with two savings on every request.

- Django builds a new ``redis.Redis`` client object for each cache call (about 0.1 ms:
  it copies some 150 response callbacks); the client is thread-safe over its connection
  pool, so one per pool serves the whole process.
- ``count_in_window`` counts a rate-limit hit in one round trip (SET NX EX and INCR in
  one MULTI/EXEC) instead of ``add`` then ``incr``.

And one guard: every call goes through the process's circuit breaker for the cache
(``solarproof_portal.circuits``). After CACHE_CIRCUIT_FAILURES calls in a row that got no
answer (refused, reset, or the socket timeout of a Redis that accepts and never
answers), calls raise ``CacheUnavailable`` at once, without touching the network, until
a trial call every CACHE_CIRCUIT_RESET_SECONDS gets an answer. Callers already carry on
without the cache (lookups skip it, the rate limit counts in the process); the breaker
makes that cost nothing instead of a socket timeout per call, and logs the outage once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import redis
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

from solarproof_portal import circuits

T = TypeVar("T")


class CacheUnavailable(Exception):
    """The cache's circuit is open: the call was not made."""


def _is_outage(exc: BaseException) -> bool:
    return isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError | OSError)


def _new_breaker() -> circuits.Breaker:
    return circuits.Breaker(
        name="The cache (Redis)",
        dependency="cache",
        fail_max_setting="CACHE_CIRCUIT_FAILURES",
        reset_setting="CACHE_CIRCUIT_RESET_SECONDS",
        is_outage=_is_outage,
        # The class only: redis's messages name the host and port, not the password,
        # but a class is all the operator needs beside the address they configured.
        describe=lambda exc: type(exc).__name__,
    )


def breaker() -> circuits.Breaker:
    """The process's one breaker for the cache (Django makes a cache object per thread)."""
    return circuits.breaker("cache", _new_breaker)


class _OneClientPerPool(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:  # two threads racing here both build one; either is fine to keep
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _OneClientPerPool

    def count_in_window(self, key: str, timeout: int) -> int:
        """Add one to ``key``, created at 0 for ``timeout`` seconds if absent; the new count."""
        return _guarded(self._count_in_window, key, timeout)

    def _count_in_window(self, key: str, timeout: int) -> int:
        key = self.make_and_validate_key(key)
        with self._cache.get_client(key, write=True).pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=timeout, nx=True)
            pipe.incr(key)
            return pipe.execute()[1]


def _guarded(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return breaker().call(call, *args, **kwargs)
    except circuits.CircuitOpen:
        raise CacheUnavailable("the cache's circuit is open") from None


def _guard(name: str) -> Callable[..., Any]:
    django_method = getattr(DjangoRedisCache, name)

    def method(self: RedisCache, *args: Any, **kwargs: Any) -> Any:
        return _guarded(django_method, self, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = django_method.__doc__
    return method


# Every method of Django's that reaches Redis (the others are built on these).
_REDIS_METHODS = ("add", "get", "set", "touch", "delete", "has_key", "incr")
_REDIS_METHODS += ("get_many", "set_many", "delete_many", "clear")
for _name in _REDIS_METHODS:
    setattr(RedisCache, _name, _guard(_name))
