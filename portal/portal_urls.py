"""The merchant portal: login, orders, order actions, payouts, users."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy
from django.views.generic import RedirectView

from portal import views
from portal.decorators import merchant_required

app_name = "portal"

password_change = merchant_required(
    auth_views.PasswordChangeView.as_view(
        template_name="registration/password_change_form.html",
        success_url=reverse_lazy("portal:password_change_done"),
    )
)
password_change_done = merchant_required(
    auth_views.PasswordChangeDoneView.as_view(
        template_name="registration/password_change_done.html"
    )
)

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="portal:order_list"), name="home"),
    # The pages merchants use most come first: a request tries the patterns in
    # order (portal/urls.py).
    path("orders/", views.order_list, name="order_list"),
    path("orders/<uuid:order_id>/", views.order_detail, name="order_detail"),
    path("orders/<uuid:order_id>/capture/", views.order_capture, name="order_capture"),
    path("orders/<uuid:order_id>/cancel/", views.order_cancel, name="order_cancel"),
    path("orders/<uuid:order_id>/release/", views.order_release, name="order_release"),
    path(
        "orders/<uuid:order_id>/remove-item/",
        views.order_remove_item,
        name="order_remove_item",
    ),
    path(
        "orders/<uuid:order_id>/captures/<uuid:capture_id>/send-invoice/",
        views.capture_send_invoice,
        name="capture_send_invoice",
    ),
    path(
        "orders/<uuid:order_id>/captures/<uuid:capture_id>/extend-due-date/",
        views.capture_extend_due_date,
        name="capture_extend_due_date",
    ),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="registration/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/change/", password_change, name="password_change"),
    path("password/change/done/", password_change_done, name="password_change_done"),
    path(
        "password/reset/",
        views.PasswordResetView.as_view(
            template_name="registration/password_reset_form.html",
            email_template_name="registration/password_reset_email.txt",
            subject_template_name="registration/password_reset_subject.txt",
            success_url=reverse_lazy("portal:password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="registration/password_reset_done.html"
        ),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="registration/password_reset_confirm.html",
            success_url=reverse_lazy("portal:password_reset_complete"),
        ),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="registration/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("payouts/", views.payout_list, name="payout_list"),
    path("payouts/next/", views.payout_next, name="payout_next"),
    path("payouts/next/csv/", views.payout_next_csv, name="payout_next_csv"),
    path("payouts/<int:number>/", views.payout_detail, name="payout_detail"),
    path("payouts/<int:number>/csv/", views.payout_csv, name="payout_csv"),
    path("refunds/export/", views.refund_export, name="refund_export"),
    path("settings/language/", views.language_settings, name="language"),
    path("settings/users/", views.user_list, name="user_list"),
    path("settings/users/add/", views.user_add, name="user_add"),
    path("settings/users/<int:pk>/", views.user_edit, name="user_edit"),
]
