from django.urls import path

from customers.history import views

urlpatterns = [
    path("history/", views.history_page, name="history"),
    path("history/export.csv", views.history_export, name="history_export"),
    path("history/reviews/", views.history_reviews, name="history_reviews"),
    path("history/customers/", views.access_report_form, name="access_report_form"),
    path("history/customers/<str:customer_id>/", views.access_report_page, name="access_report"),
    path("history/customers/<str:customer_id>/report.json", views.access_report_json, name="access_report_json"),
]
