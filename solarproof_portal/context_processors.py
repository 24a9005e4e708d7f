from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.sessions import signed_in_with_company_account
from customers.run_sheets import device


def portal(request: HttpRequest) -> dict[str, object]:
    return {
        "demo_mode": settings.SOLARPROOF_DEMO,
        "time_zone": settings.TIME_ZONE,
        "lookup_reason": settings.LOOKUP_REASON,
        "access_contact": settings.PORTAL_ACCESS_CONTACT,
        # Worked out only if a page shows them (Jinja2 calls nothing by itself, unlike Django's language).
        "role_groups": SimpleLazyObject(_role_groups) if signed_in_with_company_account(request) else (),
        # Whose sign-in this page is, for a run sheet kept on the device (customers/run_sheets/device.py).
        "device_keeper": SimpleLazyObject(lambda: device.keeper(getattr(request, "session", None))),
    }


def _role_groups() -> list[str]:
    """The provider's groups (or app roles) that grant a portal role, for the 403 page."""
    return [f"{value} ({role})" for value, role in settings.OIDC_ROLE_MAP.items()]
