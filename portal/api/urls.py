"""The Order Management API (/ordermanagement/v1/), the checkout hook
(/payments/v1/) and the portal's API settings pages (/settings/api/)."""

from django.urls import path
from django.views.generic import RedirectView

from . import views

app_name = "api"

ORDER = "ordermanagement/v1/orders/<str:order_id>"

urlpatterns = [
    path("ordermanagement/v1/openapi.json", views.openapi_json, name="openapi"),
    path("ordermanagement/v1/docs/", views.api_docs, name="docs"),
    path(
        "ordermanagement/v1/docs",
        RedirectView.as_view(pattern_name="api:docs", permanent=True),
    ),
    path(ORDER, views.order_detail, name="order_detail"),
    path(f"{ORDER}/captures", views.order_captures, name="capture_create"),
    path(
        f"{ORDER}/captures/<str:capture_id>",
        views.capture_detail,
        name="capture_detail",
    ),
    path(
        f"{ORDER}/captures/<str:capture_id>/shipping-info",
        views.capture_shipping_info,
        name="capture_shipping_info",
    ),
    path(
        f"{ORDER}/captures/<str:capture_id>/trigger-send-out",
        views.capture_send_out,
        name="capture_send_out",
    ),
    path(
        f"{ORDER}/captures/<str:capture_id>/extend-due-date-options",
        views.capture_extension_options,
        name="capture_extension_options",
    ),
    path(
        f"{ORDER}/captures/<str:capture_id>/extend-due-date",
        views.capture_extend_due_date,
        name="capture_extend_due_date",
    ),
    path(f"{ORDER}/refunds", views.order_refunds, name="refund_create"),
    path(f"{ORDER}/refunds/<str:refund_id>", views.refund_detail, name="refund_detail"),
    path(f"{ORDER}/cancel", views.order_cancel, name="order_cancel"),
    path(
        f"{ORDER}/release-remaining-authorization",
        views.order_release,
        name="order_release",
    ),
    path(f"{ORDER}/extend-authorization-time", views.order_extend, name="order_extend"),
    path(
        f"{ORDER}/merchant-references", views.order_references, name="order_references"
    ),
    path(
        f"{ORDER}/authorization", views.order_authorization, name="order_authorization"
    ),
    path(
        f"{ORDER}/customer-details",
        views.order_customer_details,
        name="order_customer_details",
    ),
    path(f"{ORDER}/acknowledge", views.order_acknowledge, name="order_acknowledge"),
    path(
        f"{ORDER}/shipping-info", views.order_shipping_info, name="order_shipping_info"
    ),
    path(
        "payments/v1/orders", views.checkout_order_create, name="checkout_order_create"
    ),
    path("ordermanagement/<path:rest>", views.not_found, name="not_found"),
    path("payments/<path:rest>", views.not_found),
    path("settings/api/credentials/", views.credential_list, name="credential_list"),
    path(
        "settings/api/credentials/<int:pk>/revoke/",
        views.credential_revoke,
        name="credential_revoke",
    ),
    path("settings/api/log/", views.request_log, name="request_log"),
]
