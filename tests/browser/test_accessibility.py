"""axe-core (axe-playwright-python) on every merchant, customer and login page:
no serious or critical violations. Each page is visited in a state that shows
what it can show (refunds with repayments, a preview, a search with no result),
and, like every browser test, fails on a console error or a CSP violation."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from playwright.sync_api import expect

from customers.models import RepaymentStatus
from portal.models import MerchantUser, Payout
from tests.factories import (
    CustomerFactory,
    MerchantFactory,
    MerchantUserFactory,
    OrderFactory,
    PaymentMethodFactory,
    UserFactory,
    line,
)

PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop(db):
    """A store with an authorized, a part-captured, a captured and a refunded
    order (a return fee, a repayment), a closed payout and a second user."""
    merchant = MerchantFactory(
        name="Nordic Threads",
        slug="nordic-threads",
        country="DE",
        shipping_fees_refundable=False,
    )
    admin = MerchantUserFactory(
        merchant=merchant,
        role=MerchantUser.Role.ADMIN,
        user=UserFactory(username="anna"),
    )
    other = MerchantUserFactory(
        merchant=merchant,
        role=MerchantUser.Role.VIEWER,
        user=UserFactory(username="ben"),
    )
    customer = CustomerFactory(
        name="Maja Berg", email="maja@example.com", locale="de_DE"
    )
    PaymentMethodFactory(customer=customer, label="Visa •••• 4242")
    lines = [
        line("TSHIRT-1", 10000, 2, name="T-shirt"),
        line("JEANS-1", 20000, 1, name="Jeans"),
        line("SHIP-1", 495, 1, name="Express shipping", type="shipping_fee"),
    ]
    authorized = OrderFactory(merchant=merchant, customer=customer, lines=lines)
    part = OrderFactory(merchant=merchant, customer=customer, lines=lines)
    part.capture(lines=[("JEANS-1", 1)])
    refunded = OrderFactory(
        merchant=merchant,
        customer=customer,
        lines=lines,
        payment_product="pay_now",
        merchant_reference1="SHOP-1001",
    )
    refunded.capture()
    refund = refunded.refund_lines(
        [("TSHIRT-1", 1)], return_fee=500, by=admin.user, reason="damaged"
    )
    Payout.close_next(merchant)
    return {
        "merchant": merchant,
        "admin": admin,
        "other": other,
        "customer": customer,
        "authorized": authorized,
        "part": part,
        "refunded": refunded,
        "refund": refund,
    }


def log_in_merchant(page, username="anna"):
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/orders/")


def settle(page):
    """Wait until no htmx request is in flight (the preview dims meanwhile)."""
    page.wait_for_timeout(400)
    expect(page.locator(".htmx-request")).to_have_count(0)
    page.wait_for_timeout(300)  # the preview's opacity transition


def visit(page, axe, url, name):
    page.goto(url)
    assert page.locator("h1").first.is_visible(), name
    axe(page, name)


def test_login_pages_have_no_serious_accessibility_violations(page, axe, shop):
    for name, url in {
        "merchant login": "/login/",
        "password reset": reverse("portal:password_reset"),
        "password reset sent": reverse("portal:password_reset_done"),
        "password reset complete": reverse("portal:password_reset_complete"),
        "password reset bad link": reverse(
            "portal:password_reset_confirm", args=["MQ", "bad-token"]
        ),
        "customer login": reverse("customers:login"),
    }.items():
        visit(page, axe, url, name)
    page.goto(reverse("customers:login"))
    page.get_by_label("Email address").fill("maja@example.com")
    page.get_by_role("button", name="Email me a code").click()
    page.wait_for_url("**/my/login/code/**")
    axe(page, "customer login code")


def test_merchant_pages_have_no_serious_accessibility_violations(page, axe, shop):
    log_in_merchant(page)
    refunded, part = shop["refunded"], shop["part"]
    capture = part.captures.get()
    payout = Payout.objects.filter(merchant=shop["merchant"]).first()
    pages = {
        "order list": reverse("portal:order_list"),
        "order search without result": reverse("portal:order_list") + "?q=nothing",
        "order detail (refunded)": refunded.get_absolute_url(),
        "order detail (authorized)": shop["authorized"].get_absolute_url(),
        "capture": reverse("portal:order_capture", args=[part.order_id]),
        "cancel": reverse("portal:order_cancel", args=[shop["authorized"].order_id]),
        "release": reverse("portal:order_release", args=[part.order_id]),
        "remove item": reverse(
            "portal:order_remove_item", args=[shop["authorized"].order_id]
        ),
        "extend due date": reverse(
            "portal:capture_extend_due_date",
            args=[part.order_id, capture.capture_id],
        ),
        "refund form": reverse("refunds:create", args=[refunded.order_id]),
        "payouts": reverse("portal:payout_list"),
        "next payout": reverse("portal:payout_next"),
        "payout": reverse("portal:payout_detail", args=[payout.number]),
        "refund export": reverse("portal:refund_export"),
        "users": reverse("portal:user_list"),
        "add user": reverse("portal:user_add"),
        "edit user": reverse("portal:user_edit", args=[shop["other"].pk]),
        "password change": reverse("portal:password_change"),
        "password changed": reverse("portal:password_change_done"),
        "API credentials": reverse("api:credential_list"),
        "API request log": reverse("api:request_log"),
        "API docs": reverse("api:docs"),
    }
    for name, url in pages.items():
        visit(page, axe, url, name)
    # The refund form with a preview, the email preview open, and an error.
    page.goto(pages["refund form"])
    page.get_by_label("Amount", exact=True).check()
    page.get_by_label("Amount to refund").fill("10,00")
    page.locator("#preview-total").wait_for()
    settle(page)
    page.locator("#email-preview summary").click()
    settle(page)  # leaving the amount field fires "change": one more preview
    axe(page, "refund form with a preview")
    page.get_by_label("Amount to refund").fill("10000,00")
    page.locator("#id_amount_error p").wait_for()
    settle(page)
    axe(page, "refund form with an error")


def test_customer_pages_have_no_serious_accessibility_violations(page, axe, shop):
    refunded = shop["refunded"]
    repayment = shop["refund"].repayments.get()
    type(repayment).objects.filter(pk=repayment.pk).update(
        status=RepaymentStatus.BOUNCED, failure_reason="The account is closed."
    )
    page.goto(reverse("customers:login"))
    page.get_by_label("Email address").fill("maja@example.com")
    page.get_by_role("button", name="Email me a code").click()
    page.wait_for_url("**/my/login/code/**")
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    page.get_by_label("6-digit code").fill(code)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/my/")
    for name, url in {
        "orders": reverse("customers:order_list"),
        "order (refunded)": reverse("customers:order_detail", args=[refunded.order_id]),
        "order (authorized)": reverse(
            "customers:order_detail", args=[shop["authorized"].order_id]
        ),
        "report a return": reverse("customers:report_return", args=[refunded.order_id]),
        "balance": reverse("customers:balance"),
        "notifications": reverse("customers:notification_list"),
        "new repayment details": reverse(
            "customers:repayment_details", args=[repayment.repayment_id]
        ),
    }.items():
        visit(page, axe, url, name)
