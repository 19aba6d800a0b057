"""The portal's refund flow: form, live preview, confirm, idempotency, errors."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.models import LedgerEntry
from refunds.models import Refund
from tests.factories import line


def create_url(order) -> str:
    return reverse("refunds:create", args=[order.order_id])


def preview_url(order) -> str:
    return reverse("refunds:preview", args=[order.order_id])


def line_pk(order, reference: str) -> int:
    return order.lines.get(reference=reference).pk


def items(order, *selection, fee="", **extra) -> dict:
    data = {
        "kind": "items_fee" if fee else "items",
        "idempotency_key": "key-1",
        "return_fee": fee,
        "reason": "returned",
        **extra,
    }
    for reference, quantity in selection:
        pk = line_pk(order, reference)
        data[f"line-{pk}-selected"] = "on"
        data[f"line-{pk}-quantity"] = str(quantity)
    return data


def fingerprint_of(portal_client, order, data) -> str:
    response = portal_client.post(preview_url(order), data, HTTP_HX_REQUEST="true")
    return response.context["plan"].fingerprint


def test_refund_form_lists_captured_lines_with_what_is_still_refundable(
    portal_client, captured_order, merchant_user
):
    captured_order.refund_lines([("TSHIRT-1", 1)], by=merchant_user.user)
    response = portal_client.get(create_url(captured_order))
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count("Quantity to refund") >= 2
    assert "Preview refund" in body and "Confirm refund" in body
    rows = {row.line.reference: row for row in response.context["form"].line_rows}
    assert rows["TSHIRT-1"].line.refundable_quantity == 1
    assert rows["TSHIRT-1"].quantity.value() == 1
    assert 'name="idempotency_key"' in body
    assert 'hx-trigger="input changed delay:300ms, change"' in body
    assert 'hx-disabled-elt="this"' in body


def test_each_form_gets_a_fresh_idempotency_key(portal_client, captured_order):
    first = portal_client.get(create_url(captured_order)).context["form"]
    second = portal_client.get(create_url(captured_order)).context["form"]
    assert first["idempotency_key"].value() != second["idempotency_key"].value()


def test_return_fee_is_offered_on_a_single_capture_in_a_return_fee_market(
    portal_client, captured_order
):
    body = portal_client.get(create_url(captured_order)).content.decode()
    assert 'name="return_fee"' in body


def test_return_fee_is_not_offered_outside_return_fee_markets_and_says_why(
    portal_client, make_order
):
    order = make_order(purchase_country="US", capture=True)
    body = portal_client.get(create_url(order)).content.decode()
    assert 'name="return_fee"' not in body
    assert "Not available: return fees are not supported for orders from US." in body


def test_return_fee_is_not_offered_after_two_captures_and_says_why(
    portal_client, make_order
):
    order = make_order(lines=[line("A", 1000), line("B", 1000)])
    order.capture(lines=[("A", 1)])
    order.capture(lines=[("B", 1)])
    body = portal_client.get(create_url(order)).content.decode()
    assert "captured in one single capture; this order has 2 captures." in body


def test_htmx_preview_shows_total_fee_allocation_plan_effect_and_payout_deduction(
    portal_client, captured_order
):
    data = items(captured_order, ("TSHIRT-1", 2), fee="5,00")
    response = portal_client.post(
        preview_url(captured_order), data, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert "<html" not in body
    assert body.lstrip().startswith('<section id="refund-preview"')
    assert 'id="preview-total">195,00\xa0€' in body
    assert "−5,00\xa0€" in body
    assert "Invoice 1" in body
    assert "Remaining 3 payments become 35,00\xa0€, 35,00\xa0€, 35,00\xa0€." in body
    assert "Deducted from your next payout" in body and "−195,00\xa0€" in body
    plan = response.context["plan"]
    assert f'name="expected_fingerprint" value="{plan.fingerprint}"' in body
    # Field error slots are refreshed out of band, so old errors disappear.
    assert 'id="id_amount_error" hx-swap-oob="true"' in body
    assert Refund.objects.count() == 0


def test_preview_without_htmx_renders_the_whole_page_with_the_preview(
    portal_client, captured_order
):
    data = items(captured_order, ("JEANS-1", 1), action="preview")
    for url in (preview_url(captured_order), create_url(captured_order)):
        response = portal_client.post(url, data)
        body = response.content.decode()
        assert "<html" in body
        assert 'id="preview-total">200,00\xa0€' in body
    assert Refund.objects.count() == 0


def test_preview_errors_appear_next_to_the_field_they_concern(
    portal_client, captured_order
):
    data = items(captured_order, ("TSHIRT-1", 3))
    response = portal_client.post(
        preview_url(captured_order), data, HTTP_HX_REQUEST="true"
    )
    form = response.context["form"]
    pk = line_pk(captured_order, "TSHIRT-1")
    assert form.errors[f"line-{pk}-quantity"] == [
        "Over refund is not allowed: only 2 of “T-shirt” can be refunded."
    ]
    body = response.content.decode()
    assert f'id="id_line-{pk}-quantity_error" hx-swap-oob="true"><p>Over refund' in body


def test_amount_errors_and_fee_errors_land_on_their_fields(
    portal_client, captured_order
):
    data = {"kind": "amount", "amount": "12,345", "idempotency_key": "k"}
    form = portal_client.post(preview_url(captured_order), data).context["form"]
    assert form.errors["amount"] == ["Use at most 2 decimals."]
    data = items(captured_order, ("TSHIRT-1", 1), fee="100,00")
    form = portal_client.post(preview_url(captured_order), data).context["form"]
    assert form.errors["return_fee"] == [
        "The return fee must be smaller than the refunded items (100,00\xa0€)."
    ]
    data = {"kind": "items", "idempotency_key": "k"}
    form = portal_client.post(preview_url(captured_order), data).context["form"]
    assert form.errors["lines"] == ["Select at least one item to refund."]


def test_confirm_refunds_the_previewed_plan_and_redirects_to_the_order(
    portal_client, captured_order
):
    data = items(
        captured_order,
        ("TSHIRT-1", 2),
        fee="5,00",
        description="Returned",
        reference="R1",
    )
    data["expected_fingerprint"] = fingerprint_of(portal_client, captured_order, data)
    response = portal_client.post(
        create_url(captured_order), {**data, "action": "confirm"}
    )
    assert response.status_code == 302
    assert response["Location"] == captured_order.get_absolute_url()
    refund = Refund.objects.get()
    assert (refund.refunded_amount, refund.fee_amount) == (19500, 500)
    assert (refund.description, refund.reference, refund.channel) == (
        "Returned",
        "R1",
        "portal",
    )
    page = portal_client.get(response["Location"]).content.decode()
    assert "Refunded 195,00\xa0€ to Maja Berg." in page
    assert "Partially refunded" in page
    assert LedgerEntry.objects.get(kind="RETURN").amount == -19500


def test_a_store_credit_refund_says_nothing_comes_off_the_payout(
    portal_client, captured_order, merchant
):
    """Found by a fresh walk-through (issue 16): the message said the refund
    would be deducted from the next payout, where the preview showed 0,00."""
    merchant.store_credit_only = True
    merchant.save()
    data = items(captured_order, ("TSHIRT-1", 1))
    data["expected_fingerprint"] = fingerprint_of(portal_client, captured_order, data)
    response = portal_client.post(
        create_url(captured_order), {**data, "action": "confirm"}, follow=True
    )
    page = response.content.decode()
    assert (
        "Refunded 100,00\xa0€ to Maja Berg as store credit: no money goes back "
        "through us and nothing is deducted from your payout." in page
    )
    assert "It will be deducted from your next payout" not in page
    assert not LedgerEntry.objects.filter(kind="RETURN").exists()


def test_htmx_confirm_answers_with_a_client_redirect(portal_client, captured_order):
    data = {"kind": "complete", "idempotency_key": "k-htmx"}
    data["expected_fingerprint"] = fingerprint_of(portal_client, captured_order, data)
    response = portal_client.post(
        create_url(captured_order),
        {**data, "action": "confirm"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == captured_order.get_absolute_url()
    captured_order.refresh_from_db()
    assert captured_order.refunded_amount == 40000


def test_a_double_submit_refunds_once(portal_client, captured_order):
    data = {"kind": "amount", "amount": "10,00", "idempotency_key": "double"}
    data["expected_fingerprint"] = fingerprint_of(portal_client, captured_order, data)
    assert_sent_twice_refunded_once(
        portal_client, captured_order, {**data, "action": "confirm"}
    )


def assert_sent_twice_refunded_once(portal_client, order, data) -> None:
    first = portal_client.post(create_url(order), data)
    second = portal_client.post(create_url(order), data)
    assert first.status_code == second.status_code == 302
    assert Refund.objects.count() == 1
    page = portal_client.get(second["Location"]).content.decode()
    assert "was already made; nothing was refunded twice" in page


def test_confirm_without_a_preview_shows_the_preview_first(
    portal_client, captured_order
):
    data = {
        "kind": "amount",
        "amount": "10,00",
        "idempotency_key": "k",
        "action": "confirm",
    }
    response = portal_client.post(create_url(captured_order), data)
    assert response.status_code == 200
    assert "Check the preview, then confirm the refund." in response.content.decode()
    assert response.context["plan"].refunded_amount == 1000
    assert Refund.objects.count() == 0


def test_a_refund_that_changed_meanwhile_is_refused_with_a_fresh_preview(
    portal_client, captured_order, merchant_user
):
    data = items(captured_order, ("JEANS-1", 1))
    data["expected_fingerprint"] = fingerprint_of(portal_client, captured_order, data)
    # Someone else refunds part of the same invoice in between.
    captured_order.refund_amount(5000, by=merchant_user.user)
    response = portal_client.post(
        create_url(captured_order),
        {**data, "action": "confirm"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert "The order changed since your preview" in body
    fresh = response.context["plan"]
    assert fresh.fingerprint != data["expected_fingerprint"]
    assert f'name="expected_fingerprint" value="{fresh.fingerprint}"' in body
    assert body.lstrip().startswith('<form id="refund-form"')
    assert Refund.objects.count() == 1


def test_an_over_refund_is_refused_with_the_reason(
    portal_client, captured_order, merchant_user
):
    captured_order.refund_complete(by=merchant_user.user)
    data = {
        "kind": "amount",
        "amount": "1,00",
        "idempotency_key": "k",
        "action": "preview",
    }
    response = portal_client.post(create_url(captured_order), data)
    assert response.context["form"].errors["amount"] == [
        "Over refund is not allowed: at most 0,00\xa0€ can be refunded."
    ]
    assert Refund.objects.count() == 1


def test_reusing_a_form_for_a_different_refund_is_refused_and_gets_a_new_key(
    portal_client, captured_order
):
    data = {"kind": "amount", "amount": "10,00", "idempotency_key": "reused"}
    data["expected_fingerprint"] = fingerprint_of(portal_client, captured_order, data)
    portal_client.post(create_url(captured_order), {**data, "action": "confirm"})
    changed = {**data, "amount": "20,00"}
    changed["expected_fingerprint"] = fingerprint_of(
        portal_client, captured_order, changed
    )
    response = portal_client.post(
        create_url(captured_order), {**changed, "action": "confirm"}
    )
    assert "already used for a different refund" in response.content.decode()
    assert response.context["form"]["idempotency_key"].value() != "reused"
    assert Refund.objects.count() == 1


@pytest.mark.parametrize("url_name", ["refunds:create", "refunds:preview"])
def test_viewers_cannot_refund(client_as, captured_order, url_name):
    client = client_as("viewer")
    data = {"kind": "complete", "idempotency_key": "k", "action": "confirm"}
    response = client.post(reverse(url_name, args=[captured_order.order_id]), data)
    assert response.status_code == 403
    assert Refund.objects.count() == 0


def test_refunds_role_can_refund(client_as, captured_order):
    client = client_as("refunds")
    data = {"kind": "complete", "idempotency_key": "k-role"}
    data["expected_fingerprint"] = fingerprint_of(client, captured_order, data)
    response = client.post(create_url(captured_order), {**data, "action": "confirm"})
    assert response.status_code == 302
    assert Refund.objects.get().created_by.username == "refunds-person"


def test_refund_pages_run_a_bounded_number_of_queries(
    portal_client, many_lines_order, django_assert_max_num_queries
):
    order = many_lines_order(100)
    # Session, user, order, then the engine's own rows, read once for the form,
    # its header and the preview: lines, captures, capture lines (and for a
    # preview the installments with their plans and what the captures refunded
    # as money, read with the order in one round trip on PostgreSQL:
    # ``OrderState.merchants_order``), whatever the number of lines.
    with django_assert_max_num_queries(6):
        portal_client.get(create_url(order))
    data = {"kind": "complete", "idempotency_key": "k"}
    with django_assert_max_num_queries(8):
        portal_client.post(preview_url(order), data, HTTP_HX_REQUEST="true")


def test_a_confirm_reads_the_order_once_and_that_read_is_its_lock(
    portal_client, captured_order, on_postgres
):
    """The merchant-scoped read of the order is the row lock itself (issue 16):
    one query for the order, not a read and then a lock."""
    data = {"kind": "complete", "idempotency_key": "k-once"}
    data["expected_fingerprint"] = fingerprint_of(portal_client, captured_order, data)
    with CaptureQueriesContext(connection) as queries:
        response = portal_client.post(
            create_url(captured_order), {**data, "action": "confirm"}
        )
    assert response.status_code == 302
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and 'FROM "portal_order"' in q["sql"]
    ]
    assert len(reads) == 1
    assert '"portal_order"."merchant_id" = ' in reads[0]
    if on_postgres:
        assert reads[0].endswith('FOR UPDATE OF "portal_order"')


def test_a_quantity_in_unicode_digits_is_a_form_error_not_a_crash(
    portal_client, captured_order
):
    tshirt = captured_order.lines.get(reference="TSHIRT-1")
    response = portal_client.post(
        preview_url(captured_order),
        {
            "kind": "items",
            f"line-{tshirt.pk}-selected": "on",
            f"line-{tshirt.pk}-quantity": "\u00b2",
            "idempotency_key": "k",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "Enter a whole number, like 2." in response.content.decode()


def test_the_total_to_confirm_stands_beside_the_confirm_button(
    portal_client, captured_order
):
    data = {"kind": "amount", "amount": "12,00", "idempotency_key": "k"}
    partial = portal_client.post(
        preview_url(captured_order), data, headers={"HX-Request": "true"}
    ).content.decode()
    assert 'id="confirm-summary"' in partial and 'hx-swap-oob="true"' in partial
    assert "Confirm refunds <strong>12,00\xa0€</strong>" in partial
    page = portal_client.post(
        create_url(captured_order), {**data, "action": "preview"}
    ).content.decode()
    assert "Confirm refunds <strong>12,00\xa0€</strong>" in page


def confirmed(portal_client, order, data):
    data = {**data, "expected_fingerprint": fingerprint_of(portal_client, order, data)}
    return {**data, "action": "confirm"}


def test_a_confirmed_item_refund_sent_again_says_it_was_already_made(
    portal_client, captured_order
):
    """Found by a fresh walk-through: Back, then Confirm again, said "This form
    was already used for a different refund" (the refunded line's fields come
    back disabled, so the request looked changed). Nothing was refunded twice
    then either."""
    data = confirmed(
        portal_client, captured_order, items(captured_order, ("JEANS-1", 1))
    )
    assert_sent_twice_refunded_once(portal_client, captured_order, data)


def test_a_preview_confirmed_after_another_tab_refunded_its_items_says_so(
    portal_client, captured_order
):
    """It said "Select at least one item to refund." (the items' fields come back
    disabled once they are refunded in full)."""
    tab_a = confirmed(
        portal_client,
        captured_order,
        items(captured_order, ("JEANS-1", 1), idempotency_key="tab-a"),
    )
    tab_b = confirmed(
        portal_client,
        captured_order,
        items(captured_order, ("JEANS-1", 1), idempotency_key="tab-b"),
    )
    assert portal_client.post(create_url(captured_order), tab_a).status_code == 302
    refused = portal_client.post(create_url(captured_order), tab_b)
    assert refused.status_code == 200
    body = refused.content.decode()
    assert (
        "Refunded in full since this form was opened: Jeans. Nothing was refunded now."
        in body
    )
    assert "Select at least one item" not in body
    assert Refund.objects.count() == 1
    # Its preview, asked for again, says the same.
    again = portal_client.post(
        preview_url(captured_order),
        {**tab_b, "action": "preview"},
        HTTP_HX_REQUEST="true",
    )
    assert (
        "Refunded in full since this form was opened: Jeans." in again.content.decode()
    )
    assert again.context["plan"] is None


def test_a_confirmed_form_sent_again_with_another_item_added_is_refused(
    portal_client, captured_order
):
    data = confirmed(
        portal_client, captured_order, items(captured_order, ("JEANS-1", 1))
    )
    assert portal_client.post(create_url(captured_order), data).status_code == 302
    pk = line_pk(captured_order, "TSHIRT-1")
    changed = {**data, f"line-{pk}-selected": "on", f"line-{pk}-quantity": "1"}
    refused = portal_client.post(create_url(captured_order), changed)
    assert refused.status_code == 200
    assert "This form was already used for a different refund" in (
        refused.content.decode()
    )
    assert Refund.objects.count() == 1
