from django.urls import path

from shopkeeper.backoffice import views

app_name = "backoffice"
urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.StaffLoginView.as_view(), name="login"),
    path("logout/", views.StaffLogoutView.as_view(), name="logout"),
    path("orders", views.order_list, name="orders"),
    path("orders/<str:number>", views.order_page, name="order"),
    path("orders/<str:number>/panel", views.order_panel, name="order-panel"),
    path("returns/", views.return_list, name="returns"),
]
