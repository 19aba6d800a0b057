"""Order rules (DOMAIN.md, Orders): capture, cancel, release and extend, allowed and
refused with a clear reason, and the database constraints behind the invariants."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.models import InstallmentStatus
from portal.exceptions import (
    CancelNotAllowed,
    CaptureNotAllowed,
    InvalidRequest,
    OrderActionNotAllowed,
)
from portal.models import (
    Capture,
    LedgerEntry,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    RefundState,
)
from tests.factories import OrderFactory, line


def refused(exception, order, action, *args, **kwargs):
    """Run ``action`` expecting ``exception``; the order must be unchanged."""
    before = Order.objects.values().get(pk=order.pk)
    captures = order.captures.count()
    with pytest.raises(exception) as error:
        getattr(order, action)(*args, **kwargs)
    assert Order.objects.values().get(pk=order.pk) == before
    assert order.captures.count() == captures
    return error.value


# Capture -------------------------------------------------------------------------


def test_capturing_everything_captures_every_line_and_opens_the_plan(order, staff_user):
    capture = order.capture(by=staff_user)

    order.refresh_from_db()
    assert capture.captured_amount == 40000
    assert order.status == OrderStatus.CAPTURED
    assert order.captured_amount == 40000
    assert order.remaining_authorized_amount == 0
    assert {(cl.order_line.reference, cl.quantity) for cl in capture.lines.all()} == {
        ("TSHIRT-1", 2),
        ("JEANS-1", 1),
    }
    assert [i.amount for i in capture.plan.installments.all()] == [10000] * 4
    assert capture.plan.installments.first().status == InstallmentStatus.PAID
    assert capture.created_by == staff_user
    assert order.verify_totals() == []


def test_capturing_selected_lines_part_captures_the_order(order):
    capture = order.capture(lines=[("TSHIRT-1", 1)])

    order.refresh_from_db()
    assert capture.captured_amount == 10000
    assert order.status == OrderStatus.PART_CAPTURED
    assert order.remaining_authorized_amount == 30000
    tshirt = order.lines.get(reference="TSHIRT-1")
    assert (tshirt.captured_quantity, tshirt.capturable_quantity) == (1, 1)


def test_capturing_the_rest_after_a_partial_capture_fully_captures(order):
    order.capture(lines=[("JEANS-1", 1)])
    second = order.capture()

    order.refresh_from_db()
    assert second.captured_amount == 20000
    assert order.status == OrderStatus.CAPTURED
    assert order.captures.count() == 2
    assert all(line.capturable_quantity == 0 for line in order.lines.all())
    assert order.verify_totals() == []


def test_capturing_a_smaller_amount_captures_no_lines(order):
    capture = order.capture(amount=12345)

    order.refresh_from_db()
    assert order.captured_amount == 12345
    assert order.status == OrderStatus.PART_CAPTURED
    assert not capture.lines.exists()


def test_capturing_exactly_the_remaining_amount_captures_the_remaining_lines(order):
    capture = order.capture(amount=40000)

    assert capture.lines.count() == 2
    assert order.status == OrderStatus.CAPTURED


def test_capturing_lines_with_their_exact_amount_is_allowed(order):
    capture = order.capture(lines=[("TSHIRT-1", 2)], amount=20000)
    assert capture.captured_amount == 20000


def test_each_capture_books_a_sale_and_our_fee(order):
    capture = order.capture()

    entries = LedgerEntry.objects.filter(capture=capture)
    assert {(e.kind, e.amount) for e in entries} == {
        (LedgerEntry.Kind.SALE, 40000),
        (LedgerEntry.Kind.FEE, -1196),  # 2.99 % of 400.00, rounded half up
    }


def test_capture_is_refused_above_the_remaining_authorization(order):
    order.capture(lines=[("JEANS-1", 1)])
    error = refused(CaptureNotAllowed, order, "capture", amount=20001)
    assert (
        error.message
        == "Capture amount is higher than the remaining authorized amount."
    )
    assert error.code == "OVER_CAPTURE"
    assert (error.error_code, error.http_status) == ("CAPTURE_NOT_ALLOWED", 403)


def test_capture_is_refused_for_more_units_than_remain_on_a_line(order):
    order.capture(lines=[("TSHIRT-1", 1)])
    error = refused(CaptureNotAllowed, order, "capture", lines=[("TSHIRT-1", 2)])
    assert error.message == "Only 1 of “T-shirt” remain to be captured."


def test_capture_is_refused_on_a_cancelled_order(order):
    order.cancel()
    error = refused(CaptureNotAllowed, order, "capture")
    assert error.message == "The order is cancelled; nothing can be captured."


def test_capture_is_refused_on_an_expired_order(order):
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now())
    assert Order.objects.expire_due() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    error = refused(CaptureNotAllowed, order, "capture")
    assert error.message == "The order is expired; nothing can be captured."


def test_capture_is_refused_once_the_authorization_lapsed(order):
    order.capture(lines=[("TSHIRT-1", 1)])
    Order.objects.filter(pk=order.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    order.refresh_from_db()
    error = refused(CaptureNotAllowed, order, "capture")
    assert error.message == (
        "The authorization has expired or was released; nothing can be captured."
    )


def test_capture_is_refused_after_the_remaining_authorization_was_released(order):
    order.capture(lines=[("TSHIRT-1", 1)])
    order.release_remaining_authorization()
    error = refused(CaptureNotAllowed, order, "capture")
    assert error.code == "AUTHORIZATION_CLOSED"


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        (
            {"lines": [("NOPE-1", 1)]},
            "UNKNOWN_LINE",
            "This order has no line with reference “NOPE-1”.",
        ),
        (
            {"lines": [("TSHIRT-1", 1), ("TSHIRT-1", 1)]},
            "DUPLICATE_LINE",
            "Line “TSHIRT-1” is listed twice.",
        ),
        (
            {"lines": [("TSHIRT-1", 0)]},
            "INVALID_QUANTITY",
            "Quantities must be whole numbers of at least 1.",
        ),
        (
            {"lines": [("TSHIRT-1", 1)], "amount": 9999},
            "AMOUNT_MISMATCH",
            "captured_amount 9999 does not equal the order lines' total 10000.",
        ),
        (
            {"amount": 0},
            "INVALID_AMOUNT",
            "The capture amount must be a positive whole number of minor units.",
        ),
        (
            {"amount": -100},
            "INVALID_AMOUNT",
            "The capture amount must be a positive whole number of minor units.",
        ),
    ],
)
def test_malformed_captures_are_refused_with_the_reason(order, kwargs, code, message):
    error = refused(InvalidRequest, order, "capture", **kwargs)
    assert (error.code, error.message) == (code, message)
    assert error.http_status == 422


# Cancel --------------------------------------------------------------------------


def test_an_order_without_captures_can_be_cancelled(order, staff_user):
    order.cancel(by=staff_user)

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.remaining_authorized_amount == 0
    event = order.events.get()
    assert (event.kind, event.created_by) == (OrderEvent.Kind.CANCELLED, staff_user)


def test_cancel_is_refused_once_the_order_has_captures(order):
    order.capture(lines=[("TSHIRT-1", 1)])
    error = refused(CancelNotAllowed, order, "cancel")
    assert error.message == "Order has previous captures. Cancel not possible."
    assert (error.code, error.error_code) == ("HAS_CAPTURES", "CANCEL_NOT_ALLOWED")


def test_cancel_is_refused_twice(order):
    order.cancel()
    error = refused(CancelNotAllowed, order, "cancel")
    assert error.message == "The order is already cancelled."


# Release -------------------------------------------------------------------------


def test_releasing_gives_up_what_remains_authorized(order, staff_user):
    order.capture(lines=[("JEANS-1", 1)])
    released = order.release_remaining_authorization(by=staff_user)

    order.refresh_from_db()
    assert released == 20000
    assert order.status == OrderStatus.CAPTURED
    assert order.remaining_authorized_amount == 0
    assert order.released_at is not None
    assert order.events.get(kind=OrderEvent.Kind.RELEASED).amount == 20000


def test_release_is_refused_without_captures(order):
    error = refused(OrderActionNotAllowed, order, "release_remaining_authorization")
    assert error.message == "The order has no captures; cancel it instead."


def test_release_is_refused_when_everything_is_captured(captured_order):
    error = refused(
        OrderActionNotAllowed, captured_order, "release_remaining_authorization"
    )
    assert error.message == "Nothing remains authorized on this order."


def test_release_is_refused_twice(order):
    order.capture(lines=[("JEANS-1", 1)])
    order.release_remaining_authorization()
    error = refused(OrderActionNotAllowed, order, "release_remaining_authorization")
    assert error.code == "NOTHING_TO_RELEASE"


# Extend --------------------------------------------------------------------------


def test_extending_pushes_the_expiry_out(order):
    before = order.expires_at
    order.extend_authorization(7)

    order.refresh_from_db()
    assert order.expires_at == before + timedelta(days=7)
    assert order.events.filter(kind=OrderEvent.Kind.EXTENDED).count() == 1


def test_extending_stops_at_180_days_after_creation(order):
    limit = order.created_at + timedelta(days=180)
    Order.objects.filter(pk=order.pk).update(expires_at=limit - timedelta(days=2))
    order.refresh_from_db()

    order.extend_authorization(7)
    assert order.expires_at == limit

    error = refused(OrderActionNotAllowed, order, "extend_authorization", 7)
    assert error.message == "The authorization cannot be extended past 180 days."


def test_extending_is_refused_on_a_closed_authorization(order):
    order.cancel()
    error = refused(OrderActionNotAllowed, order, "extend_authorization", 7)
    assert error.message == "Only an open authorization can be extended."


# Derived amounts and statuses ----------------------------------------------------


def test_refund_state_follows_the_refunded_amount(captured_order):
    assert captured_order.refund_state == RefundState.NONE
    assert captured_order.display_status == "Captured"

    captured_order.refund_amount(1000)
    assert captured_order.refund_state == RefundState.PARTIAL
    assert captured_order.display_status == "Partially refunded"
    assert list(Order.objects.with_refund_state("partial")) == [captured_order]

    captured_order.refund_complete()
    captured_order.refresh_from_db()
    assert captured_order.refund_state == RefundState.FULL
    assert captured_order.status == OrderStatus.CLOSED
    assert list(Order.objects.with_refund_state("full")) == [captured_order]
    assert not Order.objects.with_refund_state("none").exists()
    assert captured_order.verify_totals() == []


def test_verify_totals_reports_a_cache_that_disagrees(captured_order):
    Order.objects.filter(pk=captured_order.pk).update(captured_amount=39999)
    captured_order.refresh_from_db()
    assert captured_order.verify_totals() == ["captured_amount 39999 != captures 40000"]


def test_order_lines_split_their_total_over_units_largest_remainder_first(make_order):
    order = make_order(lines=[line("MUG-1", 3333, 3, total_discount_amount=1)])
    mug = order.lines.get()
    assert mug.total_amount == 9998
    assert [mug.amount_for_units(i, 1) for i in range(3)] == [3333, 3333, 3332]


def test_expire_due_only_expires_authorized_orders_without_captures(make_order):
    open_order = make_order()
    part_captured = make_order(lines=[line("A", 1000, 2)])
    part_captured.capture(lines=[("A", 1)])
    Order.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert Order.objects.expire_due() == 1
    open_order.refresh_from_db()
    part_captured.refresh_from_db()
    assert open_order.status == OrderStatus.EXPIRED
    assert part_captured.status == OrderStatus.PART_CAPTURED


def test_updating_merchant_references_is_recorded(order, staff_user):
    order.update_merchant_references("SO-1", "internal", by=staff_user)
    order.refresh_from_db()
    assert (order.merchant_reference1, order.merchant_reference2) == (
        "SO-1",
        "internal",
    )
    assert order.events.get().kind == OrderEvent.Kind.REFERENCES_UPDATED


# Database constraints ------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "changes"),
    [
        (Order, {"captured_amount": 40001}),
        (Order, {"refunded_amount": 40001}),
        (Order, {"order_amount": -1}),
        (OrderLine, {"captured_quantity": 3}),
        (OrderLine, {"refunded_quantity": 3}),
        (OrderLine, {"total_amount": 1}),
        (OrderLine, {"quantity": 0}),
        (Capture, {"refunded_amount": 40001}),
        (Capture, {"captured_amount": 0}),
    ],
)
def test_the_database_refuses_amounts_that_break_the_invariants(
    captured_order, model, changes
):
    rows = (
        Order.objects.filter(pk=captured_order.pk)
        if model is Order
        else model.objects.filter(order=captured_order)
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.update(**changes)


def test_an_order_line_reference_is_unique_within_its_order(order):
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderFactory(
            merchant=order.merchant,
            customer=order.customer,
            lines=[line("SAME", 100), line("SAME", 200)],
        )
