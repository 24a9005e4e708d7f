from django.urls import include, path, re_path

from customers import views

app_name = "customers"

urlpatterns = [
    path("", views.search, name="search"),
    path("projects/<int:project_id>/", views.project, name="project"),
    path("projects/<int:project_id>/contact.vcf", views.contact_vcf, name="contact_vcf"),
    path("projects/<int:project_id>/visit.ics", views.site_visit_ics, name="site_visit_ics"),
    # Anything else under /projects/ (/projects/abc/, /projects/-1/): the portal's own
    # "not a project ID" page, also while DEBUG would show Django's list of every URL.
    re_path(r"^projects/(?P<rest>.*)$", views.not_a_project, name="not_a_project"),
    path("", include("customers.history.urls")),
    path("", include("customers.run_sheets.urls")),
]
