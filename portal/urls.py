"""The project's URLs: the merchant portal at /, customers at /my/, staff at /admin/,
the Order Management API at /ordermanagement/v1/, the language switcher at
/i18n/setlang/, and /favicon.ico."""

from django.contrib import admin
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpRequest
from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> FileResponse:
    """static/favicon.ico at /favicon.ico, where browsers and bookmarks look for
    it without a <link rel="icon">. Raises Http404 if the file is missing."""
    path_ = finders.find("favicon.ico")
    if not path_:
        raise Http404("No favicon.")
    return FileResponse(open(path_, "rb"), content_type="image/x-icon")


# Django tries the patterns in order, and each include that does not match
# costs its every pattern: the prefixed groups come first, then the refund
# pages (their paths are the longest under orders/), then the portal's
# (issue 16: /my/ went through some 40 portal patterns, 8 % of its time).
# No two groups match one path, so the order changes no URL's view.
urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("my/", include("customers.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("refunds.urls")),
    path("", include("portal.portal_urls")),
    path("", include("portal.api.urls")),
]
