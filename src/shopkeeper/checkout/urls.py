app_name = "storefront"
urlpatterns: list = []  # filled by the storefront views
