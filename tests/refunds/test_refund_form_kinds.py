"""Issue 14, the refund form: only the chosen kind's fields count (with and
without htmx), a refusal shows the order as it is now, "Refund maximum", the
shipping policy, reason and internal note, the email preview, and the confirm
button that says what it does."""

import pytest
from django.conf import settings
from django.contrib.admin.sites import site
from django.core import mail
from django.urls import reverse

from customers.models import Notification
from portal.exports import REFUND_COLUMNS, refund_rows
from refunds.admin import RefundAdmin
from refunds.models import Refund, RefundReason
from tests.factories import line


def create_url(order) -> str:
    return reverse("refunds:create", args=[order.order_id])


def preview_url(order) -> str:
    return reverse("refunds:preview", args=[order.order_id])


def pk_of(order, reference: str) -> int:
    return order.lines.get(reference=reference).pk


def post(client, url, data, htmx: bool):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(url, data, **headers)


@pytest.fixture
def shipped_order(make_order, merchant):
    """404,95 € captured once (T-shirts, jeans, 4,95 € shipping); the store keeps
    shipping."""
    merchant.shipping_fees_refundable = False
    merchant.save(update_fields=["shipping_fees_refundable"])
    return make_order(
        lines=[
            line("TSHIRT-1", 10000, 2, name="T-shirt"),
            line("JEANS-1", 20000, 1, name="Jeans"),
            line("SHIP-1", 495, 1, name="Express shipping", type="shipping_fee"),
        ],
        capture=True,
    )


@pytest.mark.parametrize("htmx", [True, False])
def test_a_return_fee_left_behind_neither_blocks_nor_comes_off_an_amount(
    portal_client, captured_order, htmx
):
    data = {
        "kind": "amount",
        "amount": "50,00",
        "return_fee": "5,00",  # typed under "with a return fee", then left
        "idempotency_key": "k",
        "action": "preview",
    }
    response = post(portal_client, preview_url(captured_order), data, htmx)
    form, plan = response.context["form"], response.context["plan"]
    assert form.errors == {}
    assert (plan.refunded_amount, plan.fee_amount) == (5000, 0)
    assert "A return fee is taken from returned items" not in response.text


@pytest.mark.parametrize("htmx", [True, False])
def test_fields_of_other_kinds_are_ignored_even_when_malformed(
    portal_client, captured_order, htmx
):
    pk = pk_of(captured_order, "TSHIRT-1")
    data = {
        "kind": "complete",
        "amount": "not money" * 5,  # too long and not an amount
        "return_fee": "-3",
        f"line-{pk}-selected": "on",
        f"line-{pk}-quantity": "abc",
        "idempotency_key": "k",
    }
    response = post(portal_client, preview_url(captured_order), data, htmx)
    assert response.context["form"].errors == {}
    assert response.context["plan"].refunded_amount == 40000


def test_items_ignore_a_fee_and_items_with_a_fee_apply_it(
    portal_client, captured_order
):
    pk = pk_of(captured_order, "TSHIRT-1")
    data = {
        f"line-{pk}-selected": "on",
        f"line-{pk}-quantity": "1",
        "return_fee": "5,00",
        "idempotency_key": "k",
    }
    items = portal_client.post(preview_url(captured_order), {**data, "kind": "items"})
    assert items.context["plan"].refunded_amount == 10000
    with_fee = portal_client.post(
        preview_url(captured_order), {**data, "kind": "items_fee"}
    )
    assert with_fee.context["plan"].refunded_amount == 9500
    assert with_fee.context["plan"].kind == "items_fee"


def test_items_with_a_fee_preview_without_it_but_confirm_needs_it(
    portal_client, captured_order
):
    pk = pk_of(captured_order, "TSHIRT-1")
    data = {
        "kind": "items_fee",
        f"line-{pk}-selected": "on",
        f"line-{pk}-quantity": "1",
        "idempotency_key": "k",
    }
    preview = portal_client.post(preview_url(captured_order), data)
    plan = preview.context["plan"]
    assert plan.refunded_amount == 10000 and preview.context["form"].errors == {}
    data |= {"action": "confirm", "expected_fingerprint": plan.fingerprint}
    response = portal_client.post(create_url(captured_order), data)
    assert response.context["form"].errors["return_fee"] == [
        "Enter the return fee the customer pays, or choose “Selected items” to "
        "refund without one."
    ]
    assert Refund.objects.count() == 0


def test_the_page_hides_other_kinds_fields_without_javascript(
    portal_client, captured_order
):
    """Every kind's inputs are in the page; CSS (:has on the checked kind)
    shows only the chosen kind's, so no script is needed."""
    body = portal_client.get(create_url(captured_order)).text
    assert 'class="field input-money kind-amount"' in body
    assert 'class="field input-money kind-fee"' in body
    for kind in ("complete", "items", "items_fee", "amount"):
        assert f'name="kind" value="{kind}"' in body
    css = (settings.BASE_DIR / "static" / "css" / "app.css").read_text()
    assert '[value="items_fee"]:checked)) .kind-fee' in css
    assert '[value="amount"]:checked)) .kind-amount' in css


def test_without_a_return_fee_market_the_fee_kind_is_not_offered(
    portal_client, make_order
):
    order = make_order(purchase_country="US", capture=True)
    response = portal_client.get(create_url(order))
    kinds = [value for value, _ in response.context["form"].fields["kind"].choices]
    assert kinds == ["complete", "items", "amount"]
    data = {"kind": "items_fee", "idempotency_key": "k"}
    form = portal_client.post(preview_url(order), data).context["form"]
    assert "kind" in form.errors


@pytest.mark.parametrize("htmx", [True, False])
def test_a_refused_confirm_shows_the_order_as_it_is_now(
    portal_client, captured_order, htmx
):
    """A second tab refunded 300,00 € meanwhile: the header (out of band with
    htmx) and the preview show 300,00 refunded and 100,00 refundable beside
    the refusal."""
    data = {"kind": "amount", "amount": "200,00", "idempotency_key": "k"}
    plan = portal_client.post(preview_url(captured_order), data).context["plan"]
    captured_order.refund_amount(30000)  # the other tab
    data |= {"action": "confirm", "expected_fingerprint": plan.fingerprint}
    response = post(portal_client, create_url(captured_order), data, htmx)
    body = response.text
    assert "at most 100,00\xa0€ can be refunded" in body
    header = 'id="refund-order-summary"' + (' hx-swap-oob="true"' if htmx else "")
    assert header in body
    summary = body[body.index(header) :]
    assert "refunded 300,00\xa0€" in summary[:400]
    assert "refundable 100,00\xa0€" in summary[:600]
    assert "As the order is now: refunded 300,00\xa0€, refundable 100,00\xa0€" in body
    # The status badge beside the title too (it was "Captured" before the other
    # tab refunded; out of band with htmx).
    status = 'id="refund-order-status"' + (' hx-swap-oob="true"' if htmx else "")
    badge = body[body.index(status) :][:300]
    assert "Partially refunded" in badge and "Captured" not in badge
    assert Refund.objects.count() == 1


def test_a_changed_plan_on_confirm_shows_the_fresh_plan_and_header(
    portal_client, captured_order
):
    data = {"kind": "complete", "idempotency_key": "k"}
    plan = portal_client.post(preview_url(captured_order), data).context["plan"]
    captured_order.refund_amount(1000)
    data |= {"action": "confirm", "expected_fingerprint": plan.fingerprint}
    response = post(portal_client, create_url(captured_order), data, True)
    assert response.context["plan"].refunded_amount == 39000
    assert 'id="preview-total">390,00\xa0€' in response.text
    assert "refunded 10,00\xa0€" in response.text


@pytest.mark.parametrize("htmx", [True, False])
def test_refund_maximum_fills_the_largest_amount(portal_client, shipped_order, htmx):
    data = {"kind": "amount", "amount": "", "idempotency_key": "k"}
    data["action"] = "maximum"
    response = post(portal_client, create_url(shipped_order), data, htmx)
    form = response.context["form"]
    assert form["amount"].value() == "400,00"  # shipping (4,95) is kept
    assert response.context["plan"].refunded_amount == 40000
    assert 'value="400,00"' in response.text
    assert Refund.objects.count() == 0


@pytest.mark.parametrize("htmx", [True, False])
def test_refund_maximum_selects_every_refundable_unit_but_kept_shipping(
    portal_client, shipped_order, htmx
):
    shipped_order.refund_lines([("TSHIRT-1", 1)])
    data = {"kind": "items_fee", "return_fee": "5,00", "idempotency_key": "k"}
    data["action"] = "maximum"
    response = post(portal_client, create_url(shipped_order), data, htmx)
    form = response.context["form"]
    tshirt, jeans, ship = (
        pk_of(shipped_order, r) for r in ("TSHIRT-1", "JEANS-1", "SHIP-1")
    )
    assert form[f"line-{tshirt}-quantity"].value() == "1"
    assert form[f"line-{jeans}-quantity"].value() == "1"
    assert not form[f"line-{ship}-selected"].value()
    assert response.context["plan"].refunded_amount == 30000 - 500


def test_the_shipping_row_states_the_store_policy(
    portal_client, shipped_order, merchant
):
    body = portal_client.get(create_url(shipped_order)).text
    assert "Nordic Threads does not refund shipping fees, so shipping stays" in body
    ship = pk_of(shipped_order, "SHIP-1")
    assert f'name="line-{ship}-selected" disabled' in body or (
        f'id="id_line-{ship}-selected" disabled' in body
    )
    merchant.shipping_fees_refundable = True
    merchant.save(update_fields=["shipping_fees_refundable"])
    body = portal_client.get(create_url(shipped_order)).text
    assert "Nordic Threads refunds shipping fees" in body


def test_reason_and_internal_note_are_recorded_and_shown_to_the_merchant_only(
    portal_client, captured_order, django_capture_on_commit_callbacks, customer
):
    data = {
        "kind": "amount",
        "amount": "20,00",
        "reason": "goodwill",
        "internal_note": "Ticket 4411: late delivery",
        "description": "Sorry for the wait",
        "idempotency_key": "k",
    }
    plan = portal_client.post(preview_url(captured_order), data).context["plan"]
    data |= {"action": "confirm", "expected_fingerprint": plan.fingerprint}
    with django_capture_on_commit_callbacks(execute=True):
        portal_client.post(create_url(captured_order), data)
    refund = Refund.objects.get()
    assert (refund.reason, refund.internal_note) == (
        RefundReason.GOODWILL,
        "Ticket 4411: late delivery",
    )
    page = portal_client.get(captured_order.get_absolute_url()).text
    assert '<span class="refund-reason">Goodwill</span>' in page
    assert "Internal note: Ticket 4411: late delivery" in page
    # The customer: notification, email and pages never carry the note.
    notification = Notification.objects.get(refund=refund)
    assert "Ticket 4411" not in notification.title + notification.body
    assert mail.outbox and all("Ticket 4411" not in m.body for m in mail.outbox)
    session = portal_client.session
    session["customer_id"] = customer.pk
    session.save()
    for url in (
        reverse("customers:order_detail", args=[captured_order.order_id]),
        reverse("customers:notification_list"),
    ):
        page = portal_client.get(url)
        assert page.status_code == 200
        assert "Sorry for the wait" in page.text or url.endswith("notifications/")
        assert "Ticket 4411" not in page.text


def test_an_unknown_reason_is_refused_next_to_the_field(portal_client, captured_order):
    data = {"kind": "complete", "reason": "bored", "idempotency_key": "k"}
    form = portal_client.post(preview_url(captured_order), data).context["form"]
    assert "reason" in form.errors


def test_the_admin_shows_reason_and_note_read_only(captured_order):
    refund = captured_order.refund_amount(1000, reason="damaged", internal_note="n")
    admin = RefundAdmin(Refund, site)
    assert {"reason", "internal_note"} <= set(admin.readonly_fields)
    assert not admin.has_delete_permission(None, refund)
    assert "reason" in admin.list_display and "reason" in admin.list_filter


def test_the_export_has_the_reason(captured_order):
    refund = captured_order.refund_amount(1000, reason="not_as_described")
    names = [c.title for c in REFUND_COLUMNS]
    (row, _currency), *_ = list(refund_rows(Refund.objects.filter(pk=refund.pk)))
    assert row[names.index("reason")] == "Not as described"


def test_the_klarna_shaped_api_returns_neither_reason_nor_note(captured_order):
    from portal.api.representations import refund_json

    refund = captured_order.refund_amount(1000, reason="damaged", internal_note="x")
    body = refund_json(refund)
    assert "reason" not in body and "internal_note" not in body


def test_the_email_preview_is_the_customers_refund_email_without_the_note(
    portal_client, captured_order
):
    data = {
        "kind": "amount",
        "amount": "239,00",
        "internal_note": "secret",
        "idempotency_key": "k",
    }
    response = portal_client.post(preview_url(captured_order), data)
    email = response.context["form"].email_preview()
    assert email.title == "Refund from Nordic Threads: 239,00\xa0€"
    assert "Your remaining payments:" in email.body
    assert "secret" not in email.title + email.body
    assert 'id="email-preview"' in response.text
    assert "Email to the customer (maja@example.com)" in response.text
    assert Refund.objects.count() == 0 and Notification.objects.count() == 0


@pytest.mark.parametrize("htmx", [True, False])
def test_the_confirm_button_says_refund_and_the_amount(
    portal_client, captured_order, htmx
):
    data = {"kind": "amount", "amount": "239,00", "idempotency_key": "k"}
    body = post(portal_client, preview_url(captured_order), data, htmx).text
    assert "Refund 239,00\xa0€</span>" in body
    if htmx:  # the label is swapped out of band, the button itself stays
        assert '<span id="confirm-label" hx-swap-oob="true">Refund 239,00' in body


def test_the_refunds_table_shows_the_fee_once_with_one_sign_and_repayment_dates(
    portal_client, make_order
):
    order = make_order(product="pay_now", lines=[line("TSHIRT-1", 10000)])
    order.capture()
    order.refund_lines([("TSHIRT-1", 1)], return_fee=500)
    body = portal_client.get(order.get_absolute_url()).text
    table = body[body.index('id="refunds-heading"') :]
    table = table[: table.index("</table>")]
    assert table.count("Return fee") == 1 and table.count("−5,00") == 1
    assert "Return fee −5,00\xa0€" in table
    assert "-5,00" not in table and "Return fee -" not in table
    assert "badge-repayment-scheduled" in table
    assert "Scheduled " in table and "expected by " in table


def test_favicon_is_served_at_the_root(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content).startswith(b"\x00\x00\x01\x00")


def test_capture_ignores_the_fields_of_other_kinds(portal_client, order):
    url = reverse("portal:order_capture", args=[order.order_id])
    pk = order.lines.get(reference="TSHIRT-1").pk
    data = {
        "kind": "all",
        f"line-{pk}": "99",  # over what is capturable: matters only for lines
        "amount": "abc" * 10,
        "action": "review",
        "idempotency_key": "k",
    }
    response = portal_client.post(url, data)
    assert response.context["form"].errors == {}
    assert response.context["reviewing"]
    body = portal_client.get(url).text
    assert 'class="capture-kind-lines"' in body
    assert "capture-kind-amount" in body
