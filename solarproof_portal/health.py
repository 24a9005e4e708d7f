"""What the readiness probe asks of the services the portal depends on."""

import logging

from django.core.cache import cache
from django.db import connection

logger = logging.getLogger(__name__)


def database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        logger.warning("Readiness: database unreachable", exc_info=True)
        return False
    return True


def cache_answers() -> bool:
    try:
        cache.set("readyz", "1", timeout=5)
        if cache.get("readyz") != "1":
            raise RuntimeError("cache did not return what was stored")
    except Exception:
        logger.warning("Readiness: cache unreachable", exc_info=True)
        return False
    return True
