from django.urls import path

from shopkeeper.checkout import views

app_name = "storefront"
urlpatterns = [
    path("", views.product_list, name="products"),
    path("cart", views.cart, name="cart"),
    path("cart/add", views.cart_add, name="cart-add"),
    path("cart/update", views.cart_update, name="cart-update"),
    path("cart/remove", views.cart_remove, name="cart-remove"),
    path("checkout", views.checkout, name="checkout"),
    path("checkout/pay/<str:number>", views.pay, name="pay"),
    path("checkout/pay/<str:number>/confirm", views.pay_confirm, name="pay-confirm"),
    path("checkout/complete", views.complete, name="complete"),
    path("orders/<str:number>", views.order_page, name="order"),
    path("orders/<str:number>/returns", views.order_return, name="order-return"),
]
