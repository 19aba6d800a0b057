"""The order page and the order actions (capture, cancel, release) by role."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import PaymentMethod, RepaymentStatus
from portal.models import OrderStatus, PaymentProduct
from portal.overview import OrderOverview, order_timeline
from tests.factories import line


def detail(order) -> str:
    return order.get_absolute_url()


def test_order_page_shows_amounts_lines_captures_refunds_and_payout_entries(
    portal_client, captured_order, merchant_user
):
    captured_order.refund_lines(
        [("TSHIRT-1", 1)],
        return_fee=500,
        by=merchant_user.user,
        description="Wrong size",
        reference="RMA-42",
    )
    response = portal_client.get(detail(captured_order))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Partially refunded" in body
    assert "400,00\xa0€" in body  # order amount, in the order's locale
    assert "Invoice 1" in body
    assert "Wrong size" in body and "RMA-42" in body
    assert "Selected items with a return fee" in body
    assert "−95,00\xa0€" in body or "-95,00\xa0€" in body  # the RETURN entry
    assert "Fee" in body and "Sale" in body
    overview = response.context["overview"]
    assert [(line.reference, line.refunded_quantity) for line in overview.lines] == [
        ("TSHIRT-1", 1),
        ("JEANS-1", 0),
    ]
    (capture,) = overview.captures
    assert [(r.pk, a.amount) for r, a in capture.allocations] == [
        (overview.refunds[0].pk, 9500)
    ]


def test_timeline_merges_captures_refunds_and_events_newest_first(
    captured_order, merchant_user
):
    captured_order.refund_amount(1000, by=merchant_user.user)
    overview = OrderOverview.load(captured_order, merchant_user)
    timeline = order_timeline(
        captured_order,
        overview.captures,
        overview.refunds,
        list(captured_order.events.all()),
    )
    assert [entry.kind for entry in timeline] == ["refund", "capture", "created"]
    assert timeline[0].title == "Refunded 10,00\xa0€"
    assert timeline[0].by == merchant_user.user.username


def test_a_refund_with_a_return_fee_names_the_fee_once_on_the_timeline(
    captured_order, merchant_user
):
    """It read "Selected items with a return fee, return fee 5,00 €"."""
    captured_order.refund_lines(
        [("TSHIRT-1", 1)], return_fee=500, by=merchant_user.user
    )
    overview = OrderOverview.load(captured_order, merchant_user)
    (refund,) = [
        entry
        for entry in order_timeline(
            captured_order, overview.captures, overview.refunds, []
        )
        if entry.kind == "refund"
    ]
    assert refund.title == "Refunded 95,00\xa0€"
    assert refund.detail == "Selected items, return fee 5,00\xa0€"


def test_order_page_runs_the_same_number_of_queries_for_1_and_200_lines(
    portal_client, many_lines_order, merchant_user, django_assert_max_num_queries
):
    small = many_lines_order(1)
    big = many_lines_order(200)
    for order in (small, big):
        order.refund_lines([(order.lines.first().reference, 1)], by=merchant_user.user)
    # Session, user, order, lines with capture lines, captures, refunds with
    # allocations, refund lines, payout entries; repayments where money went
    # back (all of the small order's one unit: its plan is refunded).
    with django_assert_max_num_queries(9):
        small_response = portal_client.get(detail(small))
    with django_assert_max_num_queries(8):
        big_response = portal_client.get(detail(big))
    assert len(small_response.context["overview"].lines) == 1
    assert len(big_response.context["overview"].lines) == 200


def test_order_page_queries_do_not_grow_with_captures_and_refunds(
    portal_client, make_order, merchant_user, django_assert_max_num_queries
):
    order = make_order(lines=[line(f"SKU-{i}", 1000, 2) for i in range(10)])
    for i in range(10):
        order.capture(lines=[(f"SKU-{i}", 2)], by=merchant_user.user)
    for i in range(10):
        order.refund_lines([(f"SKU-{i}", 1)], by=merchant_user.user)
    with django_assert_max_num_queries(8):
        response = portal_client.get(detail(order))
    assert len(response.context["overview"].captures) == 10


def test_viewer_sees_the_order_but_no_action_buttons(client_as, captured_order):
    body = client_as("viewer").get(detail(captured_order)).content.decode()
    assert "Order " + captured_order.reference in body
    assert reverse("refunds:create", args=[captured_order.order_id]) not in body
    assert "Cancel order" not in body


def test_refunds_role_sees_refund_but_not_capture(client_as, make_order):
    order = make_order(
        lines=[line("A", 1000), line("B", 1000)],
    )
    order.capture(lines=[("A", 1)])
    body = client_as("refunds").get(detail(order)).content.decode()
    assert reverse("refunds:create", args=[order.order_id]) in body
    assert reverse("portal:order_capture", args=[order.order_id]) not in body


@pytest.mark.parametrize("role", ["viewer", "refunds"])
@pytest.mark.parametrize("action", ["order_capture", "order_cancel", "order_release"])
def test_only_admins_and_owners_may_capture_cancel_or_release(
    client_as, order, role, action
):
    client = client_as(role)
    url = reverse(f"portal:{action}", args=[order.order_id])
    assert client.get(url).status_code == 403
    response = client.post(url, {"kind": "all", "action": "confirm"})
    assert response.status_code == 403
    assert "does not allow you to capture" in response.content.decode()
    order.refresh_from_db()
    assert order.captured_amount == 0
    assert order.status == OrderStatus.AUTHORIZED


def test_capture_everything_asks_for_confirmation_first(portal_client, order):
    url = reverse("portal:order_capture", args=[order.order_id])
    assert portal_client.get(url).status_code == 200
    response = portal_client.post(url, {"kind": "all", "action": "review"})
    assert response.context["reviewing"] is True
    assert "capture 400,00\xa0€" in response.content.decode()
    order.refresh_from_db()
    assert order.captured_amount == 0
    response = portal_client.post(url, {"kind": "all", "action": "confirm"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.captured_amount == 40000
    page = portal_client.get(response["Location"]).content.decode()
    assert "Captured 400,00\xa0€ (invoice 1)." in page


def test_capture_selected_lines_and_then_an_amount(portal_client, order):
    url = reverse("portal:order_capture", args=[order.order_id])
    tshirt = order.lines.get(reference="TSHIRT-1")
    review = portal_client.post(
        url, {"kind": "lines", f"line-{tshirt.pk}": "1", "action": "review"}
    )
    assert "capture 100,00\xa0€" in review.content.decode()
    portal_client.post(
        url, {"kind": "lines", f"line-{tshirt.pk}": "1", "action": "confirm"}
    )
    portal_client.post(url, {"kind": "amount", "amount": "50,00", "action": "confirm"})
    order.refresh_from_db()
    assert order.captured_amount == 15000
    assert order.captures.count() == 2


@pytest.mark.parametrize("action", ["review", "confirm"])
def test_over_capture_is_refused_with_the_reason_next_to_the_amount(
    portal_client, order, action
):
    """Already at review (99999 against 400,00 € remaining was shown as
    "Confirm: capture 99.999,00 €" and refused only after Confirm)."""
    url = reverse("portal:order_capture", args=[order.order_id])
    response = portal_client.post(
        url, {"kind": "amount", "amount": "500,00", "action": action}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["amount"] == [
        "Capture amount is higher than the remaining authorized amount."
    ]
    order.refresh_from_db()
    assert order.captured_amount == 0


def test_capture_with_a_badly_typed_amount_says_how_to_type_it(portal_client, order):
    url = reverse("portal:order_capture", args=[order.order_id])
    response = portal_client.post(
        url, {"kind": "amount", "amount": "ten", "action": "review"}
    )
    assert response.context["form"].errors["amount"] == [
        "Enter a number, like 1.234,56."
    ]


def test_cancel_needs_confirmation_and_then_cancels(portal_client, order):
    url = reverse("portal:order_cancel", args=[order.order_id])
    page = portal_client.get(url)
    assert "This cannot be undone." in page.content.decode()
    response = portal_client.post(url)
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert "Order cancelled" in portal_client.get(detail(order)).content.decode()


def test_cancel_of_a_captured_order_is_refused_with_the_reason(
    portal_client, captured_order
):
    response = portal_client.post(
        reverse("portal:order_cancel", args=[captured_order.order_id])
    )
    assert response.status_code == 200
    assert (
        "Order has previous captures. Cancel not possible." in response.content.decode()
    )
    captured_order.refresh_from_db()
    assert captured_order.status == OrderStatus.CAPTURED


def test_release_remaining_authorization_after_a_partial_capture(portal_client, order):
    order.capture(amount=10000)
    response = portal_client.post(
        reverse("portal:order_release", args=[order.order_id])
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.remaining_authorized_amount == 0
    assert order.status == OrderStatus.CAPTURED


def test_release_without_captures_is_refused(portal_client, order):
    response = portal_client.post(
        reverse("portal:order_release", args=[order.order_id])
    )
    assert "The order has no captures; cancel it instead." in response.content.decode()


def test_a_double_submitted_capture_captures_once(portal_client, order):
    url = reverse("portal:order_capture", args=[order.order_id])
    key = portal_client.get(url).context["form"].initial["idempotency_key"]
    data = {"kind": "amount", "amount": "50,00", "action": "confirm"}
    first = portal_client.post(url, {**data, "idempotency_key": key})
    second = portal_client.post(url, {**data, "idempotency_key": key})
    assert first.status_code == second.status_code == 302
    order.refresh_from_db()
    assert (order.captured_amount, order.captures.count()) == (5000, 1)
    page = portal_client.get(second["Location"]).content.decode()
    assert "was already made; nothing was captured twice" in page


def test_the_store_sees_a_return_the_customer_reported(portal_client, captured_order):
    from customers.models import ReturnReport

    ReturnReport.report(
        captured_order, tracking_number="1Z-RETURN-42", shipped_on=timezone.localdate()
    )
    body = portal_client.get(captured_order.get_absolute_url()).content.decode()
    assert "Return reported by the customer" in body
    assert "1Z-RETURN-42" in body
    assert "Paused until the return is refunded" in body


def test_action_pages_of_a_cancelled_order_say_why_instead_of_offering_a_form(
    portal_client, order
):
    order.cancel()
    for name in ("portal:order_cancel", "portal:order_capture"):
        body = portal_client.get(reverse(name, args=[order.order_id])).content.decode()
        assert "Not possible:" in body
        assert 'type="submit"' not in body.split("<main", 1)[1]


def test_the_release_page_of_a_fully_captured_order_says_nothing_remains(
    portal_client, captured_order
):
    url = reverse("portal:order_release", args=[captured_order.order_id])
    body = portal_client.get(url).content.decode()
    assert "Nothing remains authorized on this order." in body


def test_each_refund_shows_its_money_back_status_with_dates(
    portal_client, make_order, customer, django_capture_on_commit_callbacks
):
    order = make_order(
        product=PaymentProduct.PAY_NOW,
        lines=[line("A", 4000), line("B", 6000)],
        capture=True,
    )
    with django_capture_on_commit_callbacks(execute=True):
        sent = order.refund_lines([("A", 1)]).repayments.get()
        sent.advance(timezone.now() + timedelta(days=3))
        bounced = order.refund_lines([("B", 1)]).repayments.get()
        PaymentMethod.objects.filter(customer=customer).update(status="closed")
        bounced.advance(timezone.now() + timedelta(days=3))
    assert sent.status == RepaymentStatus.PROCESSING
    assert bounced.status == RepaymentStatus.BOUNCED

    body = portal_client.get(detail(order)).content.decode()
    expected_by = f"{sent.expected_by:%-d %b %Y}"
    assert "Money back to the customer" in body
    assert (
        '<span class="badge badge-repayment-processing">Processing</span>'
        f'<span class="cell-sub">Sent {sent.updated_at:%-d %b %Y}, expected by '
        f"{expected_by}</span>" in body
    )
    assert (
        '<span class="badge badge-repayment-bounced">Bounced</span>'
        f'<span class="cell-sub">Bounced {bounced.updated_at:%-d %b %Y}: Visa •••• '
        "4242 is closed. Waiting for new details from the customer.</span>" in body
    )


def test_the_refunds_money_back_status_keeps_the_page_queries_bounded(
    portal_client, make_order, django_assert_max_num_queries
):
    order = make_order(
        product=PaymentProduct.PAY_NOW,
        lines=[line(f"SKU-{i}", 1000) for i in range(10)],
        capture=True,
    )
    for i in range(10):
        order.refund_lines([(f"SKU-{i}", 1)])
    with django_assert_max_num_queries(9):
        body = portal_client.get(detail(order)).content.decode()
    assert body.count("badge-repayment-scheduled") == 10
