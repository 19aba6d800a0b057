"""DOMAIN.md's and the seed documents' worked examples, with their exact numbers."""

import pytest

from customers.models import InstallmentStatus, RepaymentStatus
from portal.models import OrderStatus, PaymentProduct
from refunds.exceptions import RefundNotAllowed
from refunds.models import RefundKind
from tests.factories import line

pytestmark = pytest.mark.django_db


def open_amounts(order):
    plan = order.captures.get().plan
    return [i.amount for i in plan.installments.order_by("sequence") if i.is_open]


def test_tshirt_with_return_fee_refunds_95(make_order):
    order = make_order(lines=[line("TSHIRT", 10000)], capture=True)
    refund = order.refund_lines([("TSHIRT", 1)], return_fee=500)
    assert (refund.items_amount, refund.fee_amount, refund.refunded_amount) == (
        10000,
        500,
        9500,
    )
    assert refund.kind == RefundKind.ITEMS_WITH_FEE
    assert sorted(refund.lines.values_list("total_amount", flat=True)) == [-500, 10000]


def test_pay_in_4_partial_refund_below_balance_spreads_evenly(make_order):
    order = make_order(lines=[line("COAT", 10000)], capture=True)
    assert open_amounts(order) == [2500, 2500, 2500]  # the first 25.00 was paid
    order.refund_amount(3001)
    assert open_amounts(order) == [1500, 1500, 1499]


def test_refund_above_remaining_balance_cancels_payments_and_returns_the_rest(
    make_order,
):
    order = make_order(lines=[line("COAT", 10000)], capture=True)
    refund = order.refund_amount(8000)
    plan = order.captures.get().plan
    assert [i.status for i in plan.installments.order_by("sequence")] == [
        InstallmentStatus.PAID,
        InstallmentStatus.CANCELLED,
        InstallmentStatus.CANCELLED,
        InstallmentStatus.CANCELLED,
    ]
    repayment = refund.repayments.get()
    assert repayment.amount == 500
    assert repayment.status == RepaymentStatus.SCHEDULED


def test_complete_refund_cancels_everything_and_returns_all_paid(make_order):
    order = make_order(lines=[line("COAT", 10000)], capture=True)
    refund = order.refund_complete()
    assert refund.refunded_amount == 10000
    assert refund.repayments.get().amount == 2500
    order.refresh_from_db()
    assert order.status == OrderStatus.CLOSED
    assert order.refund_state == "full"


def test_refund_on_order_without_captures_is_refused(make_order):
    order = make_order()
    with pytest.raises(RefundNotAllowed, match="Order has no captures"):
        order.refund_amount(100)


def test_over_refund_is_refused_and_changes_nothing(make_order):
    order = make_order(lines=[line("COAT", 10000)], capture=True)
    order.refund_amount(6000)
    with pytest.raises(RefundNotAllowed, match="Over refund is not allowed"):
        order.refund_amount(4001)
    order.refresh_from_db()
    assert order.refunded_amount == 6000
    assert order.verify_totals() == []


def test_one_time_card_service_fee_kept_on_partial_and_returned_on_full(make_order):
    order = make_order(
        product=PaymentProduct.ONE_TIME_CARD, lines=[line("BAG", 10000)], capture=True
    )
    plan = order.captures.get().plan
    assert plan.service_fee == 200
    partial = order.refund_amount(1000)
    assert not partial.repayments.exists()
    full = order.refund_complete()
    # 25.00 paid + 2.00 fee back; the rest of the plan was cancelled.
    assert full.repayments.get().amount == 2500 + 200


def test_financing_excess_goes_to_account_balance(make_order, customer):
    order = make_order(
        product=PaymentProduct.FINANCING, lines=[line("SOFA", 120000)], capture=True
    )
    plan = order.captures.get().plan
    first = plan.installments.get(sequence=1)
    first.status = InstallmentStatus.PAID
    first.save()
    order.refund_complete()
    customer.refresh_from_db()
    assert customer.balances() == {"EUR": 10000}
