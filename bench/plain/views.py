import requests
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import render

from bench.plain.models import PlainLookup

upstream = requests.Session()


@login_required
def project(request, project_id):
    if not request.user.groups.filter(name__in=["Sales", "Installers", "Admins"]).exists():
        raise PermissionDenied
    r = upstream.get(
        settings.SOLARPROOF_API_URL,
        params={"action": "getcustomerofproject", "project_id": project_id, "api_key": settings.SOLARPROOF_API_KEY},
        timeout=8,
    )
    customer = r.json().get("Customer")
    with transaction.atomic():
        PlainLookup.objects.create(
            user=request.user,
            project_id=project_id,
            outcome="found" if customer else "not_found",
            customer_id=customer["customerID"] if customer else None,
            ip=request.META.get("REMOTE_ADDR"),
        )
    return render(request, "plain/project.html", {"project_id": project_id, "c": customer})
