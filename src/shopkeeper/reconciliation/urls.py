from django.urls import path

from shopkeeper.reconciliation import pages

app_name = "reconcile"
urlpatterns = [
    path("", pages.run_list, name="runs"),
    path("<int:run_id>", pages.run_page, name="run"),
]
