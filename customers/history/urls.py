from django.urls import path

from customers.history import views

urlpatterns = [
    path("history/", views.history_page, name="history"),
    path("history/export.csv", views.history_export, name="history_export"),
    path("history/reviews/", views.history_reviews, name="history_reviews"),
]
