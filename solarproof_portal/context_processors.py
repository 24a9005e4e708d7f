from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict[str, object]:
    return {"demo_mode": settings.SOLARPROOF_DEMO, "time_zone": settings.TIME_ZONE}
