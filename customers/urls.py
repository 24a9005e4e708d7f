from django.urls import path, re_path

from customers import views
from customers.run_sheets import views as run_sheet_views

app_name = "customers"

urlpatterns = [
    path("", views.search, name="search"),
    path("projects/<int:project_id>/", views.project, name="project"),
    path("projects/<int:project_id>/contact.vcf", views.contact_vcf, name="contact_vcf"),
    path("projects/<int:project_id>/visit.ics", views.site_visit_ics, name="site_visit_ics"),
    # Anything else under /projects/ (/projects/abc/, /projects/-1/): the portal's own
    # "not a project ID" page, also while DEBUG would show Django's list of every URL.
    re_path(r"^projects/(?P<rest>.*)$", views.not_a_project, name="not_a_project"),
    path("history/", views.history_page, name="history"),
    path("history/export.csv", views.history_export, name="history_export"),
    path("history/reviews/", views.history_reviews, name="history_reviews"),
    path("run-sheet/", run_sheet_views.run_sheet, name="run_sheet"),
    path("run-sheet/add/", run_sheet_views.run_sheet_add, name="run_sheet_add"),
    path("run-sheet/keep/", run_sheet_views.run_sheet_keep, name="run_sheet_keep"),
    path("run-sheet/sw.js", run_sheet_views.service_worker, name="run_sheet_service_worker"),
]
