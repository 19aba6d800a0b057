"""The benchmark loader writes what the model methods would have written."""

from collections import defaultdict

import pytest
from django.db import connection
from django.db.models import Count, Sum

from bench.database import create_merchants
from bench.loader import MERCHANTS, DjangoWriter, Loader
from customers.models import Installment, PaymentPlan
from portal.models import Capture, LedgerEntry, Order, OrderStatus, Payout
from portal.money import basis_points
from refunds.engine import RefundKind, RefundRequest, preview_refund
from refunds.models import Refund

ORDERS = 200


@pytest.fixture
def loaded(db):
    loader = Loader("", create_merchants(MERCHANTS), ORDERS, customers=60, seed=11)
    loader.load(ORDERS, writer=DjangoWriter(connection))
    return loader


def test_every_loaded_order_rebuilds_to_its_cached_totals(loaded):
    assert Order.objects.count() == ORDERS
    problems = {o.reference: o.verify_totals() for o in Order.objects.all()}
    assert {ref: p for ref, p in problems.items() if p} == {}


def test_every_loaded_order_carries_its_customers_search_copies(loaded):
    """What Order.save would copy (issue 16): the order search matches them."""
    rows = Order.objects.values_list(
        "customer_search_name",
        "customer_search_email",
        "customer__search_name",
        "customer__email",
    )
    assert len(rows) == ORDERS
    assert all(row[:2] == row[2:] and row[0] for row in rows)


def test_order_ids_grow_with_creation_time(loaded):
    times = list(Order.objects.order_by("pk").values_list("created_at", flat=True))
    assert times == sorted(times)
    assert len(set(Order.objects.values_list("reference", flat=True))) == ORDERS


def test_statuses_follow_captures_and_refunds(loaded):
    for order in Order.objects.exclude(
        status__in=[OrderStatus.CANCELLED, OrderStatus.EXPIRED]
    ):
        assert order.status == order._status_after_change(), order.reference
    assert Order.objects.filter(status=OrderStatus.CLOSED).exists()
    assert (
        Order.objects.filter(refunded_amount__gt=0)
        .exclude(status=OrderStatus.CLOSED)
        .exists()
    )


def test_ledger_sums_match_captures_refunds_and_fees(loaded):
    for merchant in {m.pk for m in loaded.merchants}:
        by_kind = dict(
            LedgerEntry.objects.filter(merchant_id=merchant)
            .values_list("kind")
            .annotate(s=Sum("amount"))
            .order_by()
        )
        captures = Capture.objects.filter(order__merchant_id=merchant)
        refunds = Refund.objects.filter(merchant_id=merchant)
        assert by_kind.get("SALE", 0) == (
            captures.aggregate(s=Sum("captured_amount"))["s"] or 0
        )
        assert by_kind.get("RETURN", 0) == -(
            refunds.aggregate(s=Sum("refunded_amount"))["s"] or 0
        )
        assert by_kind.get("FEE", 0) == -sum(
            basis_points(c.captured_amount, 299) for c in captures
        )


def test_each_capture_has_one_plan_whose_installments_sum_to_it(loaded):
    assert PaymentPlan.objects.count() == Capture.objects.count()
    originals = defaultdict(int)
    for plan_id, amount in Installment.objects.values_list(
        "plan_id", "original_amount"
    ):
        originals[plan_id] += amount
    for plan in PaymentPlan.objects.select_related("capture").annotate(
        owed=Sum("installments__amount")
    ):
        assert originals[plan.pk] == plan.amount == plan.capture.captured_amount
        if plan.capture.refunded_amount == 0:
            assert plan.owed == plan.amount


def test_payouts_add_up_to_their_entries(loaded):
    assert Payout.objects.exists()
    for payout in Payout.objects.annotate(n=Count("entries"), s=Sum("entries__amount")):
        assert payout.n == payout.entry_count
        assert (payout.s or 0) == (
            payout.sales_amount + payout.returns_amount + payout.fees_amount
        )


def test_the_refund_engine_accepts_the_loaded_orders(loaded):
    pool = loaded.pool[0]
    order = Order.objects.get(order_id=pool.order_id)
    lines = tuple((ref, 1) for ref in pool.line_references)
    plan = preview_refund(order, RefundRequest(kind=RefundKind.ITEMS, lines=lines))
    assert plan.refunded_amount > 0
    order.refund_lines(lines)
    assert order.verify_totals() == []

    partly = Order.objects.filter(
        status=OrderStatus.CAPTURED, refunded_amount__gt=0
    ).first()
    partly.refund_complete()
    partly.refresh_from_db()
    assert partly.status == OrderStatus.CLOSED
    assert partly.verify_totals() == []
