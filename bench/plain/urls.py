from django.http import HttpResponse
from django.urls import path

from bench.plain import views

urlpatterns = [
    path("projects/<int:project_id>/", views.project),
    path("healthz", lambda request: HttpResponse("ok")),
]
