"""The project's URLs: the merchant portal at /, customers at /my/, staff at /admin/,
the Order Management API at /ordermanagement/v1/."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("portal.portal_urls")),
    path("", include("refunds.urls")),
    path("my/", include("customers.urls")),
    path("", include("portal.api.urls")),
]
