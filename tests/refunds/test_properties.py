"""Property tests: whatever the sequence of captures and refunds, the money adds up.

After every step, allowed or refused: sums are exact, nothing is negative, nothing
is refunded beyond what was captured per line, per capture and per order, the
customer's plans still account for every minor unit, and the ledger balances.
"""

from contextlib import contextmanager

from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.models import BalanceEntry, Repayment
from portal.exceptions import DomainError
from portal.models import LedgerEntry, OrderLine, PaymentProduct
from portal.money import basis_points
from refunds.models import Refund
from tests.factories import (
    CustomerFactory,
    MerchantFactory,
    OrderFactory,
    PaymentMethodFactory,
)

line_specs = st.lists(
    st.tuples(
        st.integers(1, 5),  # quantity
        st.integers(1, 50_000),  # unit price
        st.integers(0, 99),  # discount, as a percentage of quantity × price
        st.sampled_from(["physical", "physical", "shipping_fee"]),
    ),
    min_size=1,
    max_size=4,
)
captures = st.one_of(
    st.tuples(st.just("capture_all")),
    st.tuples(
        st.just("capture_lines"),
        st.lists(
            st.tuples(st.integers(0, 3), st.integers(1, 3)), min_size=1, max_size=3
        ),
    ),
    st.tuples(st.just("capture_amount"), st.integers(1, 100)),
)
refunds = st.one_of(
    st.tuples(
        st.just("refund_lines"),
        st.lists(
            st.tuples(st.integers(0, 3), st.integers(1, 2)), min_size=1, max_size=3
        ),
        st.sampled_from([0, 0, 1, 250]),
    ),
    st.tuples(
        st.just("refund_amount"), st.integers(1, 110)
    ),  # percent of what is refundable
    st.tuples(st.just("refund_complete"), st.sampled_from([0, 0, 0, 1, 250])),
)
# Always capture first, then a mix weighted towards refunds.
operations = st.tuples(
    captures, st.lists(st.one_of(refunds, refunds, captures), max_size=10)
).map(lambda pair: [pair[0], *pair[1]])


class Rollback(Exception):
    pass


@contextmanager
def rolled_back():
    """Each example runs in a savepoint that is thrown away afterwards."""
    try:
        with transaction.atomic():
            yield
            raise Rollback
    except Rollback:
        pass


def apply(order, op) -> None:
    refs = list(order.lines.order_by("position").values_list("reference", flat=True))

    def pick(pairs):
        chosen = {}
        for index, quantity in pairs:
            chosen.setdefault(refs[index % len(refs)], quantity)
        return list(chosen.items())

    kind = op[0]
    if kind == "capture_all":
        order.capture()
    elif kind == "capture_lines":
        order.capture(lines=pick(op[1]))
    elif kind == "capture_amount":
        order.capture(amount=max(order.remaining_authorized_amount * op[1] // 100, 1))
    elif kind == "refund_lines":
        order.refund_lines(pick(op[1]), return_fee=op[2])
    elif kind == "refund_amount":
        order.refund_amount(max(order.refundable_amount * op[1] // 100, 1))
    elif kind == "refund_complete":
        order.refund_complete(return_fee=op[1])


def check_invariants(order) -> None:
    order.refresh_from_db()
    assert order.verify_totals() == []
    assert 0 <= order.refunded_amount <= order.captured_amount <= order.order_amount
    for line in order.lines.all():
        assert 0 <= line.refunded_quantity <= line.captured_quantity <= line.quantity
    captured = refunded = 0
    for capture in order.captures.select_related("plan"):
        assert 0 <= capture.refunded_amount <= capture.captured_amount
        captured += capture.captured_amount
        refunded += capture.refunded_amount
        # The plan still accounts for every unit: what the customer pays (paid and
        # still open installments) minus what goes back equals captured − refunded.
        plan = capture.plan
        installments = list(plan.installments.all())
        assert all(i.amount >= 0 for i in installments)
        paid_and_open = sum(i.amount for i in installments if i.status != "cancelled")
        back = (
            Repayment.objects.filter(plan=plan).aggregate(s=Sum("amount"))["s"] or 0
        ) - (plan.service_fee if plan.service_fee_refunded else 0)
        if plan.product == PaymentProduct.FINANCING:
            back += (
                BalanceEntry.objects.filter(
                    refund__allocations__capture=capture
                ).aggregate(s=Sum("amount"))["s"]
                or 0
            )
        # Store credit is settled by the store: the customer's payments continue.
        store_credit = (
            capture.refund_allocations.filter(refund__store_credit=True).aggregate(
                s=Sum("amount")
            )["s"]
            or 0
        )
        assert (
            paid_and_open - back
            == capture.captured_amount - capture.refunded_amount + store_credit
        )
    assert (captured, refunded) == (order.captured_amount, order.refunded_amount)
    # The ledger: sales = captures, returns = money refunds, fees = our rate on sales.
    ledger = dict(
        LedgerEntry.objects.filter(order=order)
        .values_list("kind")
        .annotate(s=Sum("amount"))
        .order_by()
    )
    money_refunds = (
        Refund.objects.filter(order=order, store_credit=False).aggregate(
            s=Sum("refunded_amount")
        )["s"]
        or 0
    )
    fees = sum(
        basis_points(c.captured_amount, order.merchant.fee_rate_bp)
        for c in order.captures.all()
    )
    assert ledger.get("SALE", 0) == order.captured_amount
    assert ledger.get("RETURN", 0) == -money_refunds
    assert ledger.get("FEE", 0) == -fees


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    lines=line_specs,
    ops=operations,
    product=st.sampled_from(list(PaymentProduct)),
    country=st.sampled_from(["DE", "US"]),
    shipping_refundable=st.booleans(),
    store_credit=st.sampled_from([False, False, False, True]),
)
def test_money_always_adds_up(
    db, lines, ops, product, country, shipping_refundable, store_credit
):
    with rolled_back():
        merchant = MerchantFactory(
            slug=f"prop-{country}-{shipping_refundable}-{store_credit}",
            country=country,
            shipping_fees_refundable=shipping_refundable,
            store_credit_only=store_credit,
        )
        customer = CustomerFactory(email="prop@example.com")
        PaymentMethodFactory(customer=customer)
        order = OrderFactory(
            merchant=merchant,
            customer=customer,
            payment_product=product,
            lines=[
                {
                    "reference": f"L{i}",
                    "name": f"Line {i}",
                    "quantity": q,
                    "unit_price": p,
                    "total_discount_amount": q * p * d // 100,
                    "type": t,
                }
                for i, (q, p, d, t) in enumerate(lines)
            ],
        )
        assert order.order_amount == sum(
            OrderLine.objects.filter(order=order).values_list("total_amount", flat=True)
        )
        for op in ops:
            try:
                with transaction.atomic():
                    apply(order, op)
            except DomainError:
                pass
            check_invariants(order)
