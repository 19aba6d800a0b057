"""A Swedish customer (an order of a Swedish store, locale sv_SE) logs in from a
browser that speaks Swedish and reads the refund on the order page in Swedish,
at desktop width and on a 390 px phone (issue 15)."""

import os
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from customers.models import PaymentMethod
from portal.models import PaymentProduct
from tests.factories import CustomerFactory, MerchantFactory, OrderFactory, line

pytestmark = pytest.mark.django_db(transaction=True)

SIZES = {
    "desktop": {"width": 1280, "height": 900},
    "390": {"width": 390, "height": 844},
}


@pytest.mark.parametrize("size", SIZES)
def test_a_swedish_customer_reads_the_refund_in_swedish(
    browser, live_server, screenshot_dir, size
):
    store = MerchantFactory(name="Skog & Sten Inredning", slug="skog", country="SE")
    customer = CustomerFactory(
        name="Astrid Sjöberg", email="astrid@example.se", locale="sv_SE"
    )
    order = OrderFactory(
        merchant=store,
        customer=customer,
        merchant_reference1="SS-20417",
        lines=[
            line("VAS-1", 74700, 3, name="Vas i keramik, handgjord"),
            line("LJUS-1", 14900, name="Doftljus"),
        ],
    )
    order.capture()
    order.refund_lines([("VAS-1", 2)], description="Två vaser returnerade")
    now = OrderFactory(
        merchant=store,
        customer=customer,
        payment_product=PaymentProduct.PAY_NOW,
        lines=[line("KOPP-1", 19900, 2, name="Kopp i stengods")],
    )
    now.capture()
    repayment = now.refund_complete().repayments.get()
    PaymentMethod.objects.update(status=PaymentMethod.Status.CLOSED)
    repayment.advance(timezone.now() + timedelta(days=3))
    mail.outbox.clear()

    context = browser.new_context(
        base_url=live_server.url, viewport=SIZES[size], locale="sv-SE"
    )
    page = context.new_page()
    try:
        page.goto("/my/login/")
        # Before anyone is known: the browser's Accept-Language.
        expect(page.locator("h1")).to_have_text("Logga in för att se dina betalningar")
        page.get_by_label("E-postadress").fill(customer.email)
        page.get_by_role("button", name="Mejla mig en kod").click()
        page.wait_for_url("**/my/login/code/**")
        [email] = mail.outbox
        assert email.subject.startswith("Din inloggningskod: ")
        code = re.search(r"\b(\d{6})\b", email.body).group(1)
        page.get_by_label("6-siffrig kod").fill(code)
        page.get_by_role("button", name="Logga in").click()
        page.wait_for_url("**/my/")
        expect(page.locator("h1")).to_have_text("Dina beställningar")

        page.goto(f"/my/orders/{order.order_id}/")
        expect(page.locator(".c-refund")).to_contain_text("Hur den tillämpades")
        expect(page.locator(".c-refund")).to_contain_text(
            "De återstående 3 betalningarna blir"
        )
        expect(page.locator(".c-refund")).to_contain_text("Två vaser returnerade")
        scroll, client = page.evaluate(
            "[document.documentElement.scrollWidth, "
            "document.documentElement.clientWidth]"
        )
        assert scroll <= client
        if screenshot_dir:
            page.screenshot(
                path=os.path.join(screenshot_dir, f"sv-order-{size}.png"),
                full_page=True,
            )
        page.goto(f"/my/orders/{now.order_id}/")
        expect(page.locator(".c-alert-action")).to_contain_text(
            "Din återbetalning har inte nått dig"
        )
        if screenshot_dir:
            page.screenshot(
                path=os.path.join(screenshot_dir, f"sv-bounced-{size}.png"),
                full_page=True,
            )
    finally:
        context.close()
