"""The refund flow: one form per order, with a live preview."""

from django.urls import path

from . import views

app_name = "refunds"

urlpatterns = [
    path("orders/<uuid:order_id>/refund/", views.refund_create, name="create"),
    path(
        "orders/<uuid:order_id>/refund/preview/", views.refund_preview, name="preview"
    ),
]
