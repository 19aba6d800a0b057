"""The project's URLs: the merchant portal at /, customers at /my/, staff at /admin/,
the Order Management API at /ordermanagement/v1/, the language switcher at
/i18n/setlang/."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("portal.portal_urls")),
    path("", include("refunds.urls")),
    path("my/", include("customers.urls")),
    path("", include("portal.api.urls")),
]
