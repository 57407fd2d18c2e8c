app_name = "backoffice"
urlpatterns: list = []  # filled by the back office views (issue 3)
