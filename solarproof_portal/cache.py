"""Django's Redis cache, with two savings on every request.

- Django builds a new ``redis.Redis`` client object for each cache call (about 0.1 ms:
  it copies some 150 response callbacks); the client is thread-safe over its connection
  pool, so one per pool serves the whole process.
- ``count_in_window`` counts a rate-limit hit in one round trip (SET NX EX and INCR in
  one MULTI/EXEC) instead of ``add`` then ``incr``.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


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
        key = self.make_and_validate_key(key)
        with self._cache.get_client(key, write=True).pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=timeout, nx=True)
            pipe.incr(key)
            return pipe.execute()[1]
