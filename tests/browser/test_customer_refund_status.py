"""The customer logs in with the code from their email, sees a refund and the
lowered installments, and gives new details for a refund that bounced."""

import os
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from customers.models import PaymentMethod, RepaymentStatus
from portal.models import PaymentProduct
from tests.factories import line

pytestmark = pytest.mark.django_db(transaction=True)


def shoot(page, directory, name):
    if directory:
        page.screenshot(path=os.path.join(directory, f"{name}.png"), full_page=True)


def test_customer_sees_the_refund_and_gives_new_details_for_a_bounced_repayment(
    page, customer, make_order, screenshot_dir
):
    coat = make_order(
        lines=[
            line("TSHIRT-1", 10000, 2, name="T-shirt"),
            line("JEANS-1", 20000, name="Jeans"),
        ],
        merchant_reference1="NT-1042",
        capture=True,
    )
    coat.refund_lines([("TSHIRT-1", 1)], return_fee=500, description="Returned T-shirt")
    gift = make_order(
        product=PaymentProduct.PAY_NOW,
        lines=[line("SCARF-1", 4000, name="Scarf")],
        merchant_reference1="NT-1043",
        capture=True,
    )
    repayment = gift.refund_complete(description="Scarf returned").repayments.get()
    PaymentMethod.objects.update(status=PaymentMethod.Status.FROZEN)
    repayment.advance(timezone.now() + timedelta(days=3))
    assert repayment.status == RepaymentStatus.BOUNCED
    mail.outbox.clear()

    page.goto("/my/")
    assert "/my/login/" in page.url
    shoot(page, screenshot_dir, "01-login")
    page.get_by_label("Email address").fill("maja@example.com")
    page.get_by_role("button", name="Email me a code").click()
    page.wait_for_url("**/my/login/code/**")
    [email] = mail.outbox
    code = re.search(r"\b(\d{6})\b", email.body).group(1)
    shoot(page, screenshot_dir, "02-code")
    page.get_by_label("6-digit code").fill(code)
    page.get_by_role("button", name="Log in").click()

    page.wait_for_url("**/my/")
    assert page.get_by_role("heading", name="Your orders").is_visible()
    assert page.locator("#unread-count").inner_text().startswith("3")
    shoot(page, screenshot_dir, "03-orders")

    page.get_by_role("link", name=re.compile("NT-1042")).click()
    page.wait_for_url(f"**/my/orders/{coat.order_id}/")
    refunds = page.locator("#refunds-title").locator("xpath=../..")
    assert "Refund issued: 95,00\xa0€" in refunds.inner_text()
    assert "A return fee of 5,00\xa0€ was deducted." in refunds.inner_text()
    plan = page.locator(".c-plan-table")
    amounts = plan.locator(".c-inst-amount").all_inner_texts()
    assert amounts == ["100,00\xa0€", "68,34\xa0€", "68,33\xa0€", "68,33\xa0€"]
    assert plan.locator("s").count() == 3
    shoot(page, screenshot_dir, "04-order-refunded")

    page.get_by_role("link", name="← Your orders").click()
    page.get_by_role("link", name=re.compile("NT-1043")).click()
    assert page.get_by_text("Your refund has not reached you").is_visible()
    assert page.get_by_text("Visa •••• 4242 is frozen.", exact=False).is_visible()
    shoot(page, screenshot_dir, "05-order-bounced")
    page.get_by_role("link", name="Give new details").click()
    page.get_by_label("Bank account").check()
    page.get_by_label("Card or bank").fill("Nordea")
    page.get_by_label("Last 4 digits").fill("12")
    page.get_by_role("button", name="Send my refund again").click()
    expect(page.get_by_text("Enter the last 4 digits.")).to_be_visible()
    shoot(page, screenshot_dir, "06-new-details-error")
    page.get_by_label("Last 4 digits").fill("1234")
    page.get_by_role("button", name="Send my refund again").click()
    page.wait_for_url(f"**/my/orders/{gift.order_id}/")
    assert page.get_by_text("40,00\xa0€ will go back to Nordea •••• 1234").is_visible()
    assert not page.get_by_text("Your refund has not reached you").is_visible()
    shoot(page, screenshot_dir, "07-order-reissued")
    repayment.refresh_from_db()
    assert repayment.status == RepaymentStatus.SCHEDULED

    page.get_by_role("link", name=re.compile("Notifications")).click()
    shoot(page, screenshot_dir, "08-notifications")
    page.get_by_role("button", name="Mark as read").first.click()
    # A retrying assertion, not wait_for_function: polling a string predicate
    # needs eval, which the page's Content-Security-Policy rightly forbids.
    expect(page.locator("#unread-count")).to_have_text(re.compile(r"^\s*2"))
    expect(page.get_by_role("button", name="Mark as read")).to_have_count(2)


def test_customer_reports_a_return_and_sees_the_payments_paused(
    page, customer, make_order, screenshot_dir
):
    order = make_order(merchant_reference1="NT-2001", capture=True)
    page.goto("/my/login/")
    page.get_by_label("Email address").fill(customer.email)
    page.get_by_role("button", name="Email me a code").click()
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    page.get_by_label("6-digit code").fill(code)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/my/")

    page.get_by_role("link", name=re.compile("NT-2001")).click()
    page.get_by_role("link", name="Report a return").click()
    page.get_by_label("Tracking number").fill("1Z999AA10123456784")
    shoot(page, screenshot_dir, "09-report-return")
    page.get_by_role("button", name="Report return and pause payments").click()
    page.wait_for_url(f"**/my/orders/{order.order_id}/")
    assert page.get_by_role("heading", name="Return reported").is_visible()
    assert page.locator(".c-pill-paused").count() == 3
    assert page.locator(".c-status").inner_text() == "Payments paused"
    shoot(page, screenshot_dir, "10-order-paused")
