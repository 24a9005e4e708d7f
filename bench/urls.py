from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<!doctype html><title>bare</title><p>Hello from Django.</p>")


urlpatterns = [
    path("bench/bare/", bare),
    path("", include("solarproof_portal.urls")),
]
