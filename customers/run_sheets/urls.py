from django.urls import path

from customers.run_sheets import views

urlpatterns = [
    path("run-sheet/", views.run_sheet, name="run_sheet"),
    path("run-sheet/add/", views.run_sheet_add, name="run_sheet_add"),
    path("run-sheet/keep/", views.run_sheet_keep, name="run_sheet_keep"),
    path("run-sheet/sw.js", views.service_worker, name="run_sheet_service_worker"),
]
