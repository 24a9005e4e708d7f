from django.contrib import admin
from django.urls import include, path

from accounts.middleware import renewal_exempt
from accounts.views import PortalLoginView, PortalLogoutView
from solarproof_portal import views

urlpatterns = [
    path("accounts/login/", renewal_exempt(PortalLoginView.as_view()), name="login"),
    path("accounts/logout/", renewal_exempt(PortalLogoutView.as_view()), name="logout"),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics_page, name="metrics"),
    path("favicon.ico", renewal_exempt(views.favicon), name="favicon"),
    path("", include("customers.urls")),
]

handler403 = "solarproof_portal.views.permission_denied"
handler500 = "solarproof_portal.views.server_error"
