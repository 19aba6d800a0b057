"""The refund form in a real browser, at desktop width and at 390 px: each of the
four kinds (complete order, selected items with quantities, with a return fee, an
amount), switching between them; only the chosen kind's fields show and count,
"Refund maximum", the shipping policy, reason, internal note and the email
preview; the confirm button says what it does. Screenshots go to
$SCREENSHOT_DIR (or /tmp/shots14) to be looked at."""

import os
import re

import pytest
from playwright.sync_api import expect

from portal.models import MerchantUser
from refunds.models import Refund
from tests.browser_fixtures import PHONE, fail_on_console_problems, new_context
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
SHOTS = os.environ.get("SCREENSHOT_DIR") or "/tmp/shots14"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop_order(db):
    """404,95 € captured in one capture; the store keeps shipping (4,95 €)."""
    merchant = MerchantFactory(
        name="Nordic Threads",
        slug="nordic-threads",
        country="DE",
        shipping_fees_refundable=False,
    )
    MerchantUserFactory(
        merchant=merchant,
        role=MerchantUser.Role.ADMIN,
        user=UserFactory(username="anna"),
    )
    customer = CustomerFactory(name="Maja Berg", email="maja@example.com")
    PaymentMethodFactory(customer=customer, label="Visa •••• 4242")
    order = OrderFactory(
        merchant=merchant,
        customer=customer,
        merchant_reference1="SHOP-1001",
        lines=[
            line("TSHIRT-1", 10000, 2, name="T-shirt aus Bio-Baumwolle, dunkelblau"),
            line("JEANS-1", 20000, 1, name="Jeans"),
            line("SHIP-1", 495, 1, name="Express shipping", type="shipping_fee"),
        ],
    )
    order.capture()
    return order


@pytest.fixture(params=["desktop", "390px"])
def sized_page(request, browser, live_server, console_problems):
    viewport = PHONE if request.param == "390px" else {"width": 1280, "height": 900}
    context = new_context(browser, live_server, console_problems, viewport=viewport)
    page = context.new_page()
    page.width_name = request.param
    yield page
    page.wait_for_timeout(100)
    context.close()
    fail_on_console_problems(console_problems)


def settle(page):
    page.wait_for_timeout(400)  # a debounced preview starts
    expect(page.locator(".htmx-request")).to_have_count(0)
    page.wait_for_timeout(200)  # the preview's fade


def shot(page, name):
    settle(page)
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(
        path=os.path.join(SHOTS, f"{page.width_name}-{name}.png"), full_page=True
    )
    form = page.locator("#refund-form .card").first
    if page.width_name == "390px" and form.count():
        # The full page is long on a phone: the form alone, at full size, too.
        form.screenshot(path=os.path.join(SHOTS, f"{page.width_name}-{name}-form.png"))


def seen_text_count(page, scope: str, text: str) -> int:
    """How many elements in ``scope`` show ``text`` on screen (not hidden, not
    clipped to a pixel for screen readers only)."""
    return page.evaluate(
        """([scope, text]) => [...document.querySelectorAll(scope + " *")]
            .filter((el) => el.childElementCount === 0 && el.textContent.trim() === text)
            .filter((el) => { const r = el.getBoundingClientRect();
                              return r.width > 2 && r.height > 2; }).length""",
        [scope, text],
    )


def no_sideways_scroll(page):
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= client, f"scrolls sideways: {scroll} > {client}"


def test_refund_form_walks_through_the_four_kinds_switching_between_them(
    sized_page, shop_order, axe
):
    page = sized_page
    page.goto("/login/")
    page.get_by_label("Username").fill("anna")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/orders/")
    page.goto(f"/orders/{shop_order.order_id}/refund/")

    total = page.locator("#preview-total")
    fee = page.get_by_label("Return fee", exact=True)
    amount = page.get_by_label("Amount to refund")
    items = page.locator("fieldset.refund-lines")
    maximum = page.get_by_role("button", name="Refund maximum")
    expect(page.locator("#shipping-policy")).to_contain_text(
        "Nordic Threads does not refund shipping fees"
    )
    expect(page.locator("#shipping-row")).to_contain_text("Not refundable")
    expect(page.get_by_role("checkbox", name="Express shipping")).to_be_disabled()
    # "Quantity to refund" is read once a row: the column heading on a wide
    # screen, the label above the input on a phone.
    assert seen_text_count(page, ".line-table", "Quantity to refund") == (
        1 if page.width_name == "desktop" else 3
    )
    no_sideways_scroll(page)
    axe(page, f"refund form ({page.width_name})")

    # 1. Selected items with a return fee: one T-shirt minus 5,00.
    page.get_by_label("Selected items with a return fee").check()
    expect(fee).to_be_visible()
    expect(amount).to_be_hidden()
    page.get_by_role(
        "checkbox", name="T-shirt aus Bio-Baumwolle, dunkelblau", exact=True
    ).check()
    page.get_by_label("Quantity to refund").first.fill("1")
    fee.fill("5,00")
    expect(total).to_have_text("95,00\xa0€")
    expect(page.locator("#preview-fee")).to_have_text("−5,00\xa0€")
    expect(page.locator("#confirm-button")).to_contain_text("Refund 95,00\xa0€")
    shot(page, "1-return-fee")

    # 2. Amount: the fee typed before neither shows, blocks nor comes off.
    page.get_by_label("Amount", exact=True).check()
    expect(fee).to_be_hidden()
    expect(items).to_be_hidden()
    amount.fill("50,00")
    expect(total).to_have_text("50,00\xa0€")
    expect(page.locator("#preview-fee")).to_have_count(0)
    expect(page.locator("#id_return_fee_error")).to_be_empty()
    expect(page.locator("#id_amount_error")).to_be_empty()
    maximum.click()
    expect(amount).to_have_value("400,00")
    expect(total).to_have_text("400,00\xa0€")
    expect(page.locator("#preview-held-back")).to_have_text("4,95\xa0€")
    shot(page, "2-amount-maximum")

    # 3. Selected items, no fee: the earlier fee is not applied.
    page.get_by_label("Selected items", exact=True).check()
    expect(items).to_be_visible()
    expect(fee).to_be_hidden()
    expect(amount).to_be_hidden()
    expect(total).to_have_text("100,00\xa0€")
    page.get_by_role("checkbox", name="Jeans", exact=True).check()
    expect(total).to_have_text("300,00\xa0€")
    maximum.click()
    expect(page.get_by_label("Quantity to refund").first).to_have_value("2")
    expect(total).to_have_text("400,00\xa0€")
    shot(page, "3-items-maximum")

    # 4. Complete order: no inputs of its own, no maximum button.
    page.get_by_label("Complete order").check()
    expect(items).to_be_hidden()
    expect(maximum).to_be_hidden()
    expect(total).to_have_text("400,00\xa0€")
    shot(page, "4-complete")

    # Back to the return fee: every unit (from "maximum") minus the 5,00.
    page.get_by_label("Selected items with a return fee").check()
    expect(fee).to_have_value("5,00")
    expect(total).to_have_text("395,00\xa0€")
    page.get_by_label("Reason").select_option("damaged")
    page.get_by_label("Description (shown to the customer)").fill("Arrived torn")
    page.get_by_label("Internal note (never shown to the customer)").fill(
        "Carrier claim 77"
    )
    settle(page)
    page.locator("#email-preview summary").click()
    email = page.locator("#email-preview")
    # The customer's email is in the language of the order's locale (de_DE),
    # whatever the merchant reads (issue 15); its dates too.
    expect(email).to_contain_text("Erstattung von Nordic Threads: 395,00\xa0€")
    expect(email).to_contain_text("Eine Rücksendegebühr von 5,00\xa0€ wurde abgezogen.")
    expect(email).to_contain_text(
        re.compile(
            r"\d{1,2}\. (Januar|Februar|März|April|Mai|Juni|Juli|August|September|"
            r"Oktober|November|Dezember) \d{4}"
        )
    )
    expect(email).not_to_contain_text("Carrier claim 77")
    # A new preview (typing on) keeps the email preview open as it was left.
    page.get_by_label("Description (shown to the customer)").fill("Arrived torn!")
    page.get_by_label("Description (shown to the customer)").blur()
    settle(page)
    expect(page.locator("#email-preview")).to_have_attribute("open", "")
    no_sideways_scroll(page)
    shot(page, "5-before-confirm")
    axe(page, f"refund form with a preview ({page.width_name})")
    page.get_by_role("button", name="Refund 395,00\xa0€").click()

    expect(page.locator(".messages")).to_contain_text("Refunded 395,00")
    row = page.locator("section[aria-labelledby=refunds-heading] tbody tr").first
    expect(row).to_contain_text("Damaged")
    expect(row).to_contain_text("Internal note: Carrier claim 77")
    expect(row.locator(".refund-fee")).to_have_text("Return fee −5,00\xa0€")
    text = row.inner_text()
    # The fee once (not also as a line), with one sign.
    assert text.count("Return fee") == 1 and text.count("−5,00") == 1, text
    assert "-5,00" not in text and "−−" not in text, text
    expect(row).to_contain_text("Scheduled")  # the money back, with dates
    expect(row).to_contain_text("expected by")
    no_sideways_scroll(page)
    shot(page, "6-order-page")
    axe(page, f"order page after a refund ({page.width_name})")
    refund = Refund.objects.get()
    assert (refund.kind, refund.refunded_amount, refund.fee_amount) == (
        "items_fee",
        39500,
        500,
    )
    assert (refund.reason, refund.internal_note) == ("damaged", "Carrier claim 77")


def test_refusal_shows_the_order_as_it_is_now_and_confirm_raises_no_csp_violation(
    page, shop_order
):
    """A second tab refunded meanwhile: Confirm is refused and the header and
    preview show the fresh amounts beside the reason. The fixture fails the
    test on any console error or CSP violation (e.g. an inline style)."""
    page.goto("/login/")
    page.get_by_label("Username").fill("anna")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/orders/")
    page.goto(f"/orders/{shop_order.order_id}/refund/")
    page.get_by_label("Amount", exact=True).check()
    page.get_by_label("Amount to refund").fill("300,00")
    expect(page.locator("#preview-total")).to_have_text("300,00\xa0€")
    settle(page)
    shop_order.refund_amount(20000)  # the other tab
    page.get_by_role("button", name="Refund 300,00\xa0€").click()
    expect(page.locator("#id_amount_error")).to_contain_text(
        "at most 200,00\xa0€ can be refunded"
    )
    expect(page.locator("#preview-refundable-now")).to_contain_text(
        "refunded 200,00\xa0€, refundable 200,00\xa0€"
    )
    expect(page.locator("#header-refundable")).to_have_text("refundable 200,00\xa0€")
    expect(page.locator("#refund-order-summary")).to_contain_text(
        "refunded 200,00\xa0€"
    )
    page.width_name = "desktop"
    shot(page, "7-refused-after-another-tab")
    assert Refund.objects.count() == 1


def log_in(page):
    page.goto("/login/")
    page.get_by_label("Username").fill("anna")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/orders/")


def test_capture_form_names_the_quantity_once_a_row(sized_page, shop_order):
    """The column heading on a wide screen, the label on a phone: never both."""
    page = sized_page
    order = OrderFactory(
        merchant=shop_order.merchant,
        customer=shop_order.customer,
        lines=[line("A-1", 1000, 2, name="Mug"), line("B-1", 2000, 1, name="Bowl")],
    )
    log_in(page)
    page.goto(f"/orders/{order.order_id}/capture/")
    expect(page.locator(".capture-kind-lines")).to_be_hidden()
    expect(page.get_by_label("Amount to capture")).to_be_hidden()
    page.get_by_label("Selected lines").check()
    expect(page.get_by_label("Amount to capture")).to_be_hidden()
    expected = 1 if page.width_name == "desktop" else 2
    assert seen_text_count(page, ".line-table", "Quantity to capture") == expected
    assert page.get_by_label("Quantity to capture").count() == 2  # still labelled
    shot(page, "capture-form")


def test_superseded_previews_are_not_console_errors_and_the_last_one_wins(
    page, shop_order
):
    """Typing faster than the server answers: earlier previews are superseded
    (queued, never aborted: htmx logs an aborted request as a console error,
    which the ``page`` fixture would fail on), and the preview shows the last
    amount typed."""
    log_in(page)
    page.goto(f"/orders/{shop_order.order_id}/refund/")
    page.get_by_label("Amount", exact=True).check()
    amount = page.get_by_label("Amount to refund")
    for text in ("1", "12", "123", "123,4", "123,45"):
        amount.fill(text)
        page.wait_for_timeout(320)  # just past the debounce: a request each time
    settle(page)
    expect(page.locator("#preview-total")).to_have_text("123,45\xa0€")
    expect(page.locator("#confirm-label")).to_have_text("Refund 123,45\xa0€")


def test_the_console_fixture_catches_csp_violations_and_console_errors(
    page, shop_order, console_problems
):
    """The fixture itself: an inline style and a console.error are caught (the
    test declares them expected, so it passes only if both were seen)."""
    console_problems.expect("CSP: style-src-attr")
    console_problems.expect("console: Applying inline style violates")
    console_problems.expect("console: planted error")
    log_in(page)
    page.evaluate("document.body.setAttribute('style', 'color: red')")
    page.evaluate("console.error('planted error')")
    page.wait_for_timeout(200)
    assert any("CSP" in p for p in console_problems.seen)


def test_favicon_loads_in_the_browser(page, shop_order):
    """Pages link static/favicon.ico, and /favicon.ico answers too (fetched, not
    opened: Chromium's image viewer styles itself inline, which our CSP header
    on the icon would report)."""
    log_in(page)
    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert href.endswith("favicon.ico")
    for url in (href, "/favicon.ico"):
        response = page.request.get(url)
        assert response.status == 200
        # Static files say image/vnd.microsoft.icon (the IANA name), /favicon.ico
        # image/x-icon: browsers take both.
        assert "icon" in response.headers["content-type"]
        assert response.body().startswith(b"\x00\x00\x01\x00")


def test_a_live_preview_error_marks_its_field_and_a_fixed_one_unmarks_it(
    page, shop_order
):
    """The live preview swaps in the error next to the amount, not the field:
    the field is marked invalid and described by that error, as a whole form
    rendered by the server marks it, and unmarked once the amount is fine."""
    log_in(page)
    page.goto(f"/orders/{shop_order.order_id}/refund/")
    page.get_by_label("Amount", exact=True).check()
    amount = page.get_by_label("Amount to refund")
    amount.fill("9999,00")
    expect(page.locator("#id_amount_error")).to_contain_text("Over refund")
    expect(amount).to_have_attribute("aria-invalid", "true")
    expect(amount).to_have_attribute("aria-describedby", "id_amount_error")
    page.width_name = "desktop"
    shot(page, "8-live-error-marks-the-field")
    amount.fill("1,00")
    expect(page.locator("#preview-total")).to_have_text("1,00\xa0€")
    expect(page.locator("#id_amount_error")).to_be_empty()
    expect(amount).not_to_have_attribute("aria-invalid", "true")
    expect(amount).not_to_have_attribute("aria-describedby", "id_amount_error")
