"""The customer's pages, mounted at /my/."""

from django.urls import path

from . import views

app_name = "customers"

urlpatterns = [
    path("", views.order_list, name="order_list"),
    path("login/", views.login, name="login"),
    path("login/code/", views.login_code, name="login_code"),
    path("login/code/resend/", views.resend_code, name="resend_code"),
    path("logout/", views.logout, name="logout"),
    path("orders/<uuid:order_id>/", views.order_detail, name="order_detail"),
    path("orders/<uuid:order_id>/return/", views.report_return, name="report_return"),
    path(
        "refunds/<uuid:repayment_id>/new-details/",
        views.repayment_details,
        name="repayment_details",
    ),
    path("balance/", views.balance, name="balance"),
    path("notifications/", views.notification_list, name="notification_list"),
    path(
        "notifications/<int:pk>/read/",
        views.notification_read,
        name="notification_read",
    ),
    path(
        "notifications/read-all/",
        views.notification_read_all,
        name="notification_read_all",
    ),
]
