"""The merchant's refund flow in a real browser: log in, find an order, refund two
lines with a return fee while the preview follows, confirm, refund the rest, and
be refused an over-refund."""

import os

import pytest
from playwright.sync_api import expect

from portal.models import MerchantUser
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


@pytest.fixture
def shop_order(db):
    merchant = MerchantFactory(
        name="Nordic Threads", slug="nordic-threads", country="DE"
    )
    MerchantUserFactory(
        merchant=merchant,
        role=MerchantUser.Role.ADMIN,
        user=UserFactory(username="anna"),
    )
    customer = CustomerFactory(name="Maja Berg", email="maja@example.com")
    PaymentMethodFactory(customer=customer, label="Visa •••• 4242")
    for _ in range(3):
        OrderFactory(merchant=merchant, customer=CustomerFactory())
    order = OrderFactory(
        merchant=merchant,
        customer=customer,
        merchant_reference1="SHOP-1001",
        lines=[
            line("TSHIRT-1", 10000, 2, name="T-shirt"),
            line("JEANS-1", 20000, 1, name="Jeans"),
            line("SOCKS-1", 2000, 1, name="Socks"),
        ],
    )
    order.capture()
    return order


def shot(page, screenshot_dir, name):
    if screenshot_dir:
        page.wait_for_timeout(400)  # let a debounced preview request start
        expect(page.locator(".htmx-request")).to_have_count(0)
        page.screenshot(path=os.path.join(screenshot_dir, name), full_page=True)


def row_checkbox(page, name):
    return page.get_by_role("checkbox", name=name, exact=True)


@pytest.mark.django_db(transaction=True)
def test_merchant_refunds_two_lines_with_a_fee_then_the_rest_and_cannot_over_refund(
    page, shop_order, screenshot_dir
):
    page.goto("/login/")
    shot(page, screenshot_dir, "login.png")
    page.get_by_label("Username").fill("anna")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Orders")).to_be_visible()
    # htmx (a deferred script) listens once the page has loaded; typed sooner,
    # the text would wait for the next keystroke or Enter (seen in CI under load).
    page.wait_for_load_state("load")

    # Live search: typing narrows the results and keeps the URL in sync.
    page.get_by_role("searchbox", name="Search").fill("SHOP-1001")
    results = page.locator("#order-results tbody tr")
    expect(results).to_have_count(1)
    expect(page).to_have_url(
        "/orders/?q=SHOP-1001&status=&product=&date_from=&date_to="
    )
    page.get_by_role("link", name=shop_order.reference).click()
    expect(
        page.get_by_role("heading", name=f"Order {shop_order.reference}")
    ).to_be_visible()
    page.get_by_role("link", name="Refund", exact=True).click()

    total = page.locator("#preview-total")
    page.get_by_label("Selected items with a return fee").check()
    row_checkbox(page, "T-shirt").check()
    expect(total).to_contain_text("200,00")
    row_checkbox(page, "Jeans").check()
    expect(total).to_contain_text("400,00")
    page.get_by_label("Return fee", exact=True).fill("5,00")
    expect(total).to_contain_text("395,00")
    expect(page.locator("#payout-deduction")).to_contain_text("395,00")
    page.get_by_label("Description (shown to the customer)").fill("Returned items")
    shot(page, screenshot_dir, "refund-preview.png")
    page.get_by_role("button", name="Refund 395,00 €").click()

    expect(page.locator(".messages")).to_contain_text("Refunded 395,00")
    expect(page.locator(".title-row .badge")).to_have_text("Partially refunded")
    payout_entries = page.locator("section[aria-labelledby=payout-heading]")
    expect(payout_entries).to_contain_text("Return")
    expect(payout_entries).to_contain_text("395,00")
    shot(page, screenshot_dir, "order-detail.png")

    # The rest: "complete order" refunds what is left on the invoice: the socks
    # and the 5.00 that the fee kept on it.
    page.get_by_role("link", name="Refund", exact=True).click()
    page.get_by_label("Complete order").check()
    expect(total).to_contain_text("25,00")
    page.get_by_role("button", name="Refund 25,00 €").click()
    expect(page.locator(".title-row .badge")).to_have_text("Fully refunded")

    # Nothing is left: an amount is refused with the reason, next to the field.
    page.goto(f"/orders/{shop_order.order_id}/refund/")
    page.get_by_label("Amount", exact=True).check()
    page.get_by_label("Amount to refund").fill("1,00")
    expect(page.locator("#id_amount_error")).to_contain_text(
        "Over refund is not allowed"
    )
    page.get_by_role("button", name="Confirm refund").click()
    expect(page.locator("#id_amount_error")).to_contain_text(
        "Over refund is not allowed"
    )
    shop_order.refresh_from_db()
    assert shop_order.refunded_amount == shop_order.captured_amount == 42000
    assert shop_order.refunds.count() == 2


@pytest.mark.django_db(transaction=True)
def test_back_to_a_confirmed_refund_form_shows_the_order_as_it_is_now(
    browser, live_server, shop_order
):
    """Found by a fresh walk-through with Chrome's back-forward cache on (as it
    is for people; Playwright turns it off): Back after a confirmed refund
    restored the form with its Confirm button stuck disabled and the header
    still saying nothing was refunded."""
    from tests.browser_fixtures import ARGS, CHROMIUM

    cached = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=ARGS,
        headless=True,
        ignore_default_args=["--disable-back-forward-cache"],
    )
    try:
        page = cached.new_context(base_url=live_server.url).new_page()
        page.goto("/login/")
        page.get_by_label("Username").fill("anna")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"/orders/{shop_order.order_id}/refund/")
        row_checkbox(page, "Jeans").check()
        expect(page.locator("#preview-total")).to_contain_text("200,00")
        page.get_by_role("button", name="Refund 200,00 €").click()
        expect(page.locator(".messages")).to_contain_text("Refunded 200,00")

        page.go_back()
        expect(page).to_have_url(f"/orders/{shop_order.order_id}/refund/")
        # Loaded again: the form of the order as it is now.
        expect(page.locator("body")).to_contain_text("refunded 200,00 €")
        expect(row_checkbox(page, "Jeans")).to_be_disabled()
    finally:
        cached.close()
    assert shop_order.refunds.count() == 1


@pytest.mark.django_db(transaction=True)
def test_live_search_marks_a_filter_in_error_and_unmarks_it_once_fixed(
    page, shop_order, screenshot_dir
):
    """The live search swaps the results, and the filters' errors next to
    them: the date in error is marked invalid and described by its error."""
    page.goto("/login/")
    page.get_by_label("Username").fill("anna")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Orders")).to_be_visible()
    page.wait_for_load_state("load")
    start, end = page.get_by_label("From"), page.get_by_label("To")
    start.fill("2026-03-01")
    end.fill("2026-01-01")
    expect(page.locator("#id_date_to_error")).to_have_text(
        "The end date is before the start date."
    )
    expect(end).to_have_attribute("aria-invalid", "true")
    expect(end).to_have_attribute("aria-describedby", "id_date_to_error")
    shot(page, screenshot_dir, "live-search-date-error.png")
    end.fill("2026-12-31")
    expect(page.locator("#id_date_to_error")).to_be_empty()
    expect(end).not_to_have_attribute("aria-invalid", "true")
