"""What follows from the one time budget of a lookup (SOLARPROOF_TIMEOUT)."""

import math
from collections.abc import Mapping

# Seconds one lookup may take in all, when SOLARPROOF_TIMEOUT is not set.
DEFAULT_SOLARPROOF_TIMEOUT = 8.0
# Beyond waiting on Solar Proof, a request writes its audit row (which may queue behind
# other appends for the chain's lock) and renders the page.
WORKER_MARGIN_SECONDS = 7


def worker_timeout(solarproof_timeout: float) -> int:
    """gunicorn's worker timeout: a lookup that keeps its budget never reaches it."""
    return math.ceil(solarproof_timeout) + WORKER_MARGIN_SECONDS


def solarproof_timeout(environ: Mapping[str, str]) -> float:
    """SOLARPROOF_TIMEOUT, read here for both the Django settings and gunicorn's master
    (which does not load Django): seconds one lookup may take in all. Raises ValueError
    with a message naming the variable."""
    raw = environ.get("SOLARPROOF_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_SOLARPROOF_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("SOLARPROOF_TIMEOUT must be a number of seconds.") from None
    if not 0 < value < math.inf:
        raise ValueError("SOLARPROOF_TIMEOUT must be greater than zero.")
    return value
