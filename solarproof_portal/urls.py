from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from customers import views

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("", include("customers.urls")),
]

handler500 = "customers.views.server_error"
