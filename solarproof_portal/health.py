"""What the readiness probe asks of the services the portal depends on."""

import logging

from django.core.cache import cache
from django.db import connection

from solarproof_portal import metrics

logger = logging.getLogger(__name__)


def database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        metrics.set_dependency_up("database", up=False)
        logger.warning("Readiness: database unreachable (%s)", type(exc).__name__)
        return False
    metrics.set_dependency_up("database", up=True)
    return True


def cache_answers() -> bool:
    try:
        cache.set("readyz", "1", timeout=5)
        if cache.get("readyz") != "1":
            raise RuntimeError("cache did not return what was stored")
    except Exception as exc:  # the cache's breaker logs the outage once, not every probe
        logger.debug("Readiness: cache unreachable (%s)", type(exc).__name__)
        return False
    return True
