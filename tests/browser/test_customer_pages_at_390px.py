"""Every customer page fits a 390 px wide phone: nothing scrolls sideways
(issue 11, case 7), in every state an order page can be in."""

import os
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from customers.models import (
    InstallmentStatus,
    PaymentMethod,
    RepaymentStatus,
    ReturnReport,
)
from portal.models import PaymentProduct
from tests.browser_fixtures import PHONE
from tests.factories import MerchantFactory, OrderFactory, line

pytestmark = pytest.mark.django_db(transaction=True)

# ``phone`` (390 px, failing on console errors and CSP violations) comes from
# tests/browser_fixtures.py.


def log_in(page, email: str) -> None:
    page.goto("/my/login/")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Email me a code").click()
    page.wait_for_url("**/my/login/code/**")
    assert_no_sideways_scroll(page, "login code")
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    page.get_by_label("6-digit code").fill(code)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/my/")


def sideways_scroll(page, name: str) -> str:
    """ "" if the page fits, else what overflows by how much."""
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    return f"{name}: {scroll} > {client} px" if scroll > client else ""


def assert_no_sideways_scroll(page, name: str) -> None:
    overflow = sideways_scroll(page, name)
    assert not overflow, f"scrolls sideways: {overflow}"


@pytest.mark.parametrize("locale", ["en_DE", "de_DE", "sv_SE"])
def test_every_customer_page_fits_390_px_without_sideways_scroll(
    phone, customer, merchant, make_order, screenshot_dir, locale, axe
):
    # In English, German and Swedish (issue 15): long German and Swedish words
    # ("Rücksendegebühr", "återbetalningarna") must not push a page sideways.
    merchant.locale = locale
    merchant.save(update_fields=["locale"])
    lines = [
        line("TSHIRT-1", 10000, 2, name="T-shirt aus Bio-Baumwolle, dunkelblau"),
        line("JEANS-1", 20000, name="Jeans Straight Fit, dunkelblau"),
    ]
    # Lowered installments with the old amounts struck through; a return fee.
    refunded = make_order(lines=lines, merchant_reference1="NW-100042", capture=True)
    refunded.refund_lines([("TSHIRT-1", 1)], return_fee=500, description="Returned")
    # Payments paused by a reported return: moved dates.
    paused = make_order(lines=lines, merchant_reference1="NW-100043", capture=True)
    ReturnReport.report(
        paused, tracking_number="1Z999AA10123456784", shipped_on=timezone.localdate()
    )
    # One-time card: the service fee beside payment 1, still charged.
    card = make_order(
        product=PaymentProduct.ONE_TIME_CARD,
        lines=[line("SCARF-1", 12900, name="Kaschmirschal, hellgrau")],
        capture=True,
    )
    card.refund_amount(2000)
    # Two shipments.
    shipments = make_order(lines=lines)
    shipments.capture(lines=[("JEANS-1", 1)])
    shipments.capture(lines=[("TSHIRT-1", 2)])
    shipments.refund_lines([("TSHIRT-1", 1)])
    # Financing refunded beyond what is owed: the account balance.
    financing = make_order(product=PaymentProduct.FINANCING, lines=lines, capture=True)
    financing.captures.get().plan.installments.filter(sequence__lte=3).update(
        status=InstallmentStatus.PAID
    )
    financing.refund_complete()
    # A Swedish order, a bounced repayment and one being traced.
    store = MerchantFactory(name="Skog & Sten Inredning", slug="skog", country="SE")
    swedish = OrderFactory(
        merchant=store,
        customer=customer,
        payment_product=PaymentProduct.PAY_NOW,
        lines=[line("VAS-1", 74700, name="Vas i keramik")],
    )
    swedish.capture()
    bounced = swedish.refund_amount(15342).repayments.get()
    PaymentMethod.objects.filter(pk=bounced.payment_method_id).update(status="closed")
    bounced.advance(timezone.now() + timedelta(days=3))
    assert bounced.status == RepaymentStatus.BOUNCED
    PaymentMethod.objects.filter(pk=bounced.payment_method_id).update(status="active")
    traced = make_order(product=PaymentProduct.PAY_NOW, lines=lines, capture=True)
    repayment = traced.refund_complete().repayments.get()
    repayment.advance(timezone.now() + timedelta(days=3))
    type(repayment).objects.filter(pk=repayment.pk).update(
        expected_by=timezone.localdate() - timedelta(days=1)
    )

    phone.goto("/my/login/")
    assert_no_sideways_scroll(phone, "login")
    log_in(phone, customer.email)
    pages = {
        "order list": reverse("customers:order_list"),
        "balance": reverse("customers:balance"),
        "notifications": reverse("customers:notification_list"),
        "report a return": reverse("customers:report_return", args=[refunded.order_id]),
        "new details": reverse(
            "customers:repayment_details", args=[bounced.repayment_id]
        ),
        "traced repayment": reverse(
            "customers:repayment_details", args=[repayment.repayment_id]
        ),
    }
    for name, order in {
        "refunded order": refunded,
        "paused order": paused,
        "one-time card order": card,
        "two shipments": shipments,
        "financing order": financing,
        "swedish bounced order": swedish,
        "traced order": traced,
    }.items():
        pages[name] = reverse("customers:order_detail", args=[order.order_id])
    overflowing = []
    for name, url in pages.items():
        phone.goto(url)
        assert phone.locator("h1").first.is_visible(), name
        overflowing.append(sideways_scroll(phone, name))
        axe(phone, f"{name} at 390 px")
        if screenshot_dir:
            path = os.path.join(
                screenshot_dir, f"390-{locale}-{name.replace(' ', '-')}.png"
            )
            phone.screenshot(path=path, full_page=True)
    assert [o for o in overflowing if o] == []
    phone.goto(pages["paused order"])
    status = phone.locator(".c-plan-table .c-pill").last
    box = status.bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"]
