app_name = "refunds"

urlpatterns: list = []
