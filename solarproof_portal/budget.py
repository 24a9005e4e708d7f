"""What follows from the one time budget of a lookup (SOLARPROOF_TIMEOUT)."""

import math

# Seconds one lookup may take in all, when SOLARPROOF_TIMEOUT is not set.
DEFAULT_SOLARPROOF_TIMEOUT = 8.0
# Beyond waiting on Solar Proof, a request writes its audit row (which may queue behind
# other appends for the chain's lock) and renders the page.
WORKER_MARGIN_SECONDS = 7


def worker_timeout(solarproof_timeout: float) -> int:
    """gunicorn's worker timeout: a lookup that keeps its budget never reaches it."""
    return math.ceil(solarproof_timeout) + WORKER_MARGIN_SECONDS
