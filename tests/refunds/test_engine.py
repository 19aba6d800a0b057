"""Refund rules: what is refused (and changes nothing), allocation, preview = result."""

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import Notification
from portal.models import LedgerEntry, OrderLine, PaymentProduct
from refunds.engine import RefundKind, RefundRequest, preview_refund
from refunds.exceptions import (
    IdempotencyConflict,
    InvalidRequest,
    RefundChanged,
    RefundNotAllowed,
)
from refunds.models import Refund, RefundRequestKey
from tests.factories import MerchantFactory, OrderFactory, line

pytestmark = pytest.mark.django_db


def snapshot(order):
    """Everything a refused refund must leave untouched."""
    order.refresh_from_db()
    return (
        order.refunded_amount,
        order.status,
        list(order.lines.values_list("refunded_quantity", flat=True)),
        list(order.captures.values_list("refunded_amount", flat=True)),
        list(order.plans.values_list("installments__amount", "installments__status")),
        Refund.objects.count(),
        LedgerEntry.objects.filter(kind="RETURN").count(),
    )


@pytest.fixture
def two_capture_order(make_order):
    """SHIRT 2 × 50.00 and BOOT 1 × 120.00; invoice 1 = one shirt, invoice 2 = the rest."""
    order = make_order(lines=[line("SHIRT", 5000, 2), line("BOOT", 12000)])
    order.capture(lines=[("SHIRT", 1)])
    order.capture(lines=[("SHIRT", 1), ("BOOT", 1)])
    return order


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda o: o.refund_lines([("SHIRT", 3)]), "OVER_REFUND"),
        (lambda o: o.refund_lines([("SHIRT", 0)]), "INVALID_QUANTITY"),
        (lambda o: o.refund_lines([("SHIRT", -1)]), "INVALID_QUANTITY"),
        (lambda o: o.refund_lines([("SHIRT", 1.5)]), "INVALID_QUANTITY"),
        (lambda o: o.refund_lines([("SHIRT", True)]), "INVALID_QUANTITY"),
        (lambda o: o.refund_lines([("NOPE", 1)]), "UNKNOWN_LINE"),
        (lambda o: o.refund_lines([("SHIRT", 1), ("SHIRT", 1)]), "DUPLICATE_LINE"),
        (lambda o: o.refund_lines([]), "NO_LINES"),
        (lambda o: o.refund_amount(0), "INVALID_AMOUNT"),
        (lambda o: o.refund_amount(-5), "INVALID_AMOUNT"),
        (lambda o: o.refund_amount(22001), "OVER_REFUND"),
        (lambda o: o.refund_amount(200_000_001), "INVALID_AMOUNT"),
        (lambda o: o.refund_amount(100, currency="USD"), "CURRENCY_MISMATCH"),
        (lambda o: o.refund_amount(100, description="x" * 256), "TEXT_TOO_LONG"),
        (lambda o: o.refund_lines([("SHIRT", 1)], return_fee=100), "FEE_MULTI_CAPTURE"),
        (lambda o: o.refund_amount(1000, return_fee=100), "FEE_NEEDS_ITEMS"),
        (
            lambda o: o.refund_lines([("SHIRT", 1)], expected_amount=4999),
            "AMOUNT_MISMATCH",
        ),
    ],
)
def test_refused_refunds_give_the_reason_and_change_nothing(
    two_capture_order, call, code
):
    before = snapshot(two_capture_order)
    with pytest.raises((RefundNotAllowed, InvalidRequest)) as refused:
        call(two_capture_order)
    assert refused.value.code == code
    assert refused.value.message
    assert snapshot(two_capture_order) == before


def test_line_of_another_order_is_an_unknown_line(two_capture_order, make_order):
    other = make_order(lines=[line("OTHER-SKU", 1000)], capture=True)
    with pytest.raises(InvalidRequest) as refused:
        two_capture_order.refund_lines([(other.lines.get().reference, 1)])
    assert refused.value.code == "UNKNOWN_LINE"


def test_uncaptured_items_cannot_be_refunded(make_order):
    order = make_order(lines=[line("SHIRT", 5000), line("HAT", 2000)])
    order.capture(lines=[("SHIRT", 1)])
    with pytest.raises(RefundNotAllowed, match="only captured items can be refunded"):
        order.refund_lines([("HAT", 1)])


def test_line_refund_is_allocated_to_the_capture_holding_the_line(two_capture_order):
    refund = two_capture_order.refund_lines([("BOOT", 1)])
    first, second = two_capture_order.captures.order_by("pk")
    assert list(refund.allocations.values_list("capture", "amount")) == [
        (second.pk, 12000)
    ]
    second.refresh_from_db()
    first.refresh_from_db()
    assert (first.refunded_amount, second.refunded_amount) == (0, 12000)


def test_units_of_a_line_are_credited_to_captures_oldest_first(two_capture_order):
    refund = two_capture_order.refund_lines([("SHIRT", 2)])
    first, second = two_capture_order.captures.order_by("pk")
    assert list(
        refund.allocations.order_by("capture").values_list("capture", "amount")
    ) == [
        (first.pk, 5000),
        (second.pk, 5000),
    ]


def test_amount_refund_is_allocated_oldest_capture_first(two_capture_order):
    refund = two_capture_order.refund_amount(7000)
    first, second = two_capture_order.captures.order_by("pk")
    assert list(
        refund.allocations.order_by("capture").values_list("capture", "amount")
    ) == [
        (first.pk, 5000),
        (second.pk, 2000),
    ]


def test_an_item_comes_from_the_invoice_that_can_take_it(two_capture_order):
    two_capture_order.refund_amount(5000)  # uses up invoice 1 entirely
    refund = two_capture_order.refund_lines([("SHIRT", 1)])
    _, second = two_capture_order.captures.order_by("pk")
    assert list(refund.allocations.values_list("capture", "amount")) == [
        (second.pk, 5000)
    ]


def test_over_refund_per_capture_is_refused_with_the_true_reason(two_capture_order):
    two_capture_order.refund_amount(17001)  # invoice 1 entirely, 120.01 of invoice 2
    with pytest.raises(RefundNotAllowed, match="refunded by amount") as refused:
        two_capture_order.refund_lines([("SHIRT", 1)])
    assert "invoice 2 has only 49,99\xa0€ left" in refused.value.message


def test_line_units_split_exactly_when_the_total_does_not_divide(make_order):
    order = make_order(
        lines=[line("PENS", 1000, 3, total_discount_amount=1)], capture=True
    )
    amounts = [order.refund_lines([("PENS", 1)]).refunded_amount for _ in range(3)]
    assert amounts == [1000, 1000, 999]
    assert sum(amounts) == order.lines.get().total_amount


def test_return_fee_only_in_supported_markets(make_order, us_merchant, customer):
    order = OrderFactory(
        merchant=us_merchant, customer=customer, lines=[line("TEE", 10000)]
    )
    order.capture()
    with pytest.raises(RefundNotAllowed) as refused:
        order.refund_lines([("TEE", 1)], return_fee=500)
    assert refused.value.code == "FEE_MARKET"


@pytest.mark.parametrize("fee", [10000, 10001])
def test_return_fee_must_be_smaller_than_the_items(make_order, fee):
    order = make_order(lines=[line("TEE", 10000)], capture=True)
    with pytest.raises(RefundNotAllowed) as refused:
        order.refund_lines([("TEE", 1)], return_fee=fee)
    assert refused.value.code == "FEE_TOO_LARGE"


def test_complete_refund_with_return_fee_on_a_single_capture(make_order):
    order = make_order(lines=[line("TEE", 10000), line("CAP", 2500)], capture=True)
    refund = order.refund_complete(return_fee=1000)
    assert (refund.kind, refund.refunded_amount, refund.fee_amount) == (
        RefundKind.COMPLETE,
        11500,
        1000,
    )
    order.refresh_from_db()
    assert order.refunded_amount == 11500
    assert order.refund_state == "partial"  # the fee stays with the store


def test_non_refundable_shipping_is_refused_and_held_back(customer):
    merchant = MerchantFactory(
        slug="express", country="DE", shipping_fees_refundable=False
    )
    order = OrderFactory(
        merchant=merchant,
        customer=customer,
        lines=[
            line("TEE", 10000),
            line("EXPRESS", 990, type=OrderLine.Type.SHIPPING_FEE),
        ],
    )
    order.capture()
    with pytest.raises(RefundNotAllowed) as refused:
        order.refund_lines([("EXPRESS", 1)])
    assert refused.value.code == "SHIPPING_NOT_REFUNDABLE"
    with pytest.raises(RefundNotAllowed, match="Over refund"):
        order.refund_amount(10001)
    assert order.refund_complete().refunded_amount == 10000


def test_store_credit_only_records_the_refund_but_moves_no_money(customer):
    merchant = MerchantFactory(slug="credit", country="DE", store_credit_only=True)
    order = OrderFactory(
        merchant=merchant, customer=customer, lines=[line("TEE", 10000)]
    )
    order.capture()
    plan = order.captures.get().plan
    installments_before = list(plan.installments.values_list("amount", "status"))
    refund = order.refund_complete()
    assert refund.store_credit
    assert not refund.repayments.exists()
    assert (
        list(plan.installments.values_list("amount", "status")) == installments_before
    )
    assert not LedgerEntry.objects.filter(refund=refund).exists()
    with pytest.raises(RefundNotAllowed, match="Over refund"):
        order.refund_amount(1)


def test_preview_matches_the_executed_refund_exactly(two_capture_order):
    request = RefundRequest(
        kind=RefundKind.ITEMS, lines=(("SHIRT", 2), ("BOOT", 1)), return_fee=0
    )
    plan = preview_refund(two_capture_order, request)
    refund = two_capture_order.refund_lines(
        [("SHIRT", 2), ("BOOT", 1)], expected_fingerprint=plan.fingerprint
    )
    assert refund.refunded_amount == plan.refunded_amount == 22000
    assert sorted(refund.allocations.values_list("capture", "amount")) == sorted(
        (a.capture.pk, a.amount) for a in plan.allocations
    )
    assert list(refund.allocations.values_list("effect_summary", flat=True)) == [
        text for _, text in plan.effect_summaries()
    ]


def test_a_plan_without_installments_is_still_previewed_as_it_executes(
    two_capture_order,
):
    from customers.models import Installment

    first = two_capture_order.captures.order_by("pk").first()
    Installment.objects.filter(plan__capture=first).delete()
    request = RefundRequest(kind=RefundKind.COMPLETE)
    plan = preview_refund(two_capture_order, request)
    assert len(plan.allocations) == 2
    refund = two_capture_order.refund_complete(expected_fingerprint=plan.fingerprint)
    assert refund.refunded_amount == plan.refunded_amount
    assert plan.allocations[0].effect.money_back == first.captured_amount


def test_confirming_a_stale_preview_is_refused_with_a_fresh_plan(two_capture_order):
    request = RefundRequest(kind=RefundKind.AMOUNT, amount=1000)
    stale = preview_refund(two_capture_order, request)
    two_capture_order.refund_amount(500)  # someone else, meanwhile
    with pytest.raises(RefundChanged) as changed:
        two_capture_order.refund_amount(1000, expected_fingerprint=stale.fingerprint)
    assert changed.value.plan.refunded_amount == 1000
    assert changed.value.plan.fingerprint != stale.fingerprint
    assert two_capture_order.refunds.count() == 1


def test_same_idempotency_key_returns_the_first_refund_and_moves_nothing_again(
    captured_order,
):
    first = captured_order.refund_amount(1000, idempotency_key="abc")
    again = captured_order.refund_amount(1000, idempotency_key="abc")
    assert again.pk == first.pk and again.replayed and not first.replayed
    captured_order.refresh_from_db()
    assert captured_order.refunded_amount == 1000
    assert Refund.objects.count() == 1


def test_same_idempotency_key_with_a_different_request_is_refused(captured_order):
    captured_order.refund_amount(1000, idempotency_key="abc")
    with pytest.raises(IdempotencyConflict):
        captured_order.refund_amount(2000, idempotency_key="abc")
    assert Refund.objects.count() == 1


def test_idempotency_key_is_per_merchant(captured_order, us_merchant, customer):
    other = OrderFactory(
        merchant=us_merchant, customer=customer, lines=[line("X", 5000)]
    )
    other.capture()
    captured_order.refund_amount(1000, idempotency_key="shared")
    assert not other.refund_amount(1000, idempotency_key="shared").replayed


def test_idempotency_key_older_than_24_hours_is_forgotten(captured_order):
    captured_order.refund_amount(1000, idempotency_key="old")
    RefundRequestKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    second = captured_order.refund_amount(1000, idempotency_key="old")
    assert not second.replayed
    assert Refund.objects.count() == 2


def test_a_refund_records_who_when_and_how(captured_order, staff_user):
    refund = captured_order.refund_amount(
        1000, by=staff_user, channel="api", description="Damaged", reference="RMA-7"
    )
    refund.refresh_from_db()
    assert (
        refund.created_by,
        refund.channel,
        refund.description,
        refund.reference,
    ) == (
        staff_user,
        "api",
        "Damaged",
        "RMA-7",
    )
    entry = LedgerEntry.objects.get(refund=refund)
    assert (entry.kind, entry.amount, entry.reference) == ("RETURN", -1000, "RMA-7")


def test_customer_is_notified_after_commit(
    captured_order, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        captured_order.refund_amount(1000)
    assert not Notification.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    notification = Notification.objects.get()
    assert notification.kind == Notification.Kind.REFUND


def test_refused_refund_enqueues_no_notification(
    captured_order, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(RefundNotAllowed),
    ):
        captured_order.refund_amount(10**6)
    assert callbacks == []


def test_pay_later_unpaid_invoice_is_reduced(make_order):
    order = make_order(
        product=PaymentProduct.PAY_LATER, lines=[line("LAMP", 8000)], capture=True
    )
    order.refund_amount(3000)
    invoice = order.captures.get().plan.installments.get()
    assert (invoice.amount, invoice.status) == (5000, "scheduled")


def test_pay_now_refund_goes_back_to_the_payment_method(make_order):
    order = make_order(
        product=PaymentProduct.PAY_NOW, lines=[line("LAMP", 8000)], capture=True
    )
    refund = order.refund_amount(3000)
    repayment = refund.repayments.get()
    assert (repayment.amount, repayment.payment_method.label) == (
        3000,
        "Visa •••• 4242",
    )
    assert repayment.expected_by == timezone.localdate() + timedelta(days=14)


def test_financing_refund_below_balance_is_deducted_from_it(make_order, customer):
    order = make_order(
        product=PaymentProduct.FINANCING, lines=[line("SOFA", 120000)], capture=True
    )
    order.refund_amount(24000)
    plan = order.captures.get().plan
    assert sum(i.amount for i in plan.installments.all()) == 96000
    assert {i.amount for i in plan.installments.all()} == {8000}
    assert customer.balances() == {}


def test_paused_payments_resume_when_the_store_registers_the_return(
    make_order, customer
):
    from customers.models import InstallmentStatus, ReturnReport

    order = make_order(lines=[line("COAT", 10000)], capture=True)
    plan = order.captures.get().plan
    plan.installments.filter(status="scheduled").update(status=InstallmentStatus.PAUSED)
    report = ReturnReport.objects.create(
        order=order,
        customer=customer,
        tracking_number="1Z999",
        shipped_on=timezone.localdate(),
        pause_until=timezone.localdate() + timedelta(days=21),
    )
    order.refund_amount(1000)
    report.refresh_from_db()
    assert report.resolution == "registered"
    assert not plan.installments.filter(status=InstallmentStatus.PAUSED).exists()
    assert [i.amount for i in plan.installments.filter(status="scheduled")] == [
        2167,
        2167,
        2166,
    ]


def test_refunding_100_lines_takes_as_many_queries_as_one(
    make_order, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    small = make_order(lines=[line("ONE", 1000)], capture=True)
    big = make_order(
        lines=[line(f"SKU-{i}", 1000 + i) for i in range(100)], capture=True
    )
    with django_assert_max_num_queries(19), django_capture_on_commit_callbacks():
        small.refund_lines([("ONE", 1)])
    with django_assert_max_num_queries(19), django_capture_on_commit_callbacks():
        big.refund_lines([(f"SKU-{i}", 1) for i in range(100)])
    big.refresh_from_db()
    assert big.refunded_amount == sum(1000 + i for i in range(100))
    assert big.verify_totals() == []


def test_effect_summary_reads_right_for_one_remaining_payment(make_order):
    order = make_order(
        product=PaymentProduct.PAY_LATER, lines=[line("LAMP", 8000)], capture=True
    )
    refund = order.refund_amount(3000)
    assert refund.allocations.get().effect_summary == (
        "the remaining payment becomes 50,00\xa0€"
    )


def test_account_balance_is_kept_per_currency(customer):
    from customers.models import InstallmentStatus

    for country in ("DE", "SE"):
        merchant = MerchantFactory(slug=f"fin-{country}", country=country)
        order = OrderFactory(
            merchant=merchant,
            customer=customer,
            payment_product=PaymentProduct.FINANCING,
            lines=[line("SOFA", 120000)],
        )
        order.capture()
        plan = order.captures.get().plan
        plan.installments.filter(sequence=1).update(status=InstallmentStatus.PAID)
        order.refund_complete()
    assert customer.balances() == {"EUR": 10000, "SEK": 10000}
