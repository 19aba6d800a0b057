"""The project's URLs plus the ceiling: a bare view with a fixed response."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.http import require_GET

MAX_CEILING_BYTES = 2_000_000


@require_GET
def ceiling(request: HttpRequest) -> HttpResponse:
    """``size`` bytes of HTML; no database, no templates: what the stack costs."""
    size = min(int(request.GET.get("size", "10000")), MAX_CEILING_BYTES)
    return HttpResponse(b"<!doctype html>" + b"x" * max(size - 15, 0))


urlpatterns = [
    path("bench/ceiling/", ceiling, name="bench_ceiling"),
    path("", include("portal.urls")),
]
