"""Issue 10's proof: a hypothesis state machine over random orders and random
sequences of captures (by lines and by amount), the four refund kinds, store
credit switched on and off, and installment collection.

After every step, per line, per capture and per order refunded ≤ captured and
every cached counter rebuilds from its rows (``Order.verify_totals``); what the
customer owes on each plan equals what was captured less what came back as
money; no refunded plan has open installments; and every refusal's reason is
true of the order. CI runs 200 examples; ``LEDGER_EXAMPLES=1000`` runs more.
"""

import os
from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from customers.models import (
    OPEN_INSTALLMENT,
    Installment,
    InstallmentStatus,
    PlanStatus,
    Repayment,
)
from portal.exceptions import DomainError
from portal.models import OrderLine, PaymentProduct
from refunds.models import RefundAllocation
from tests.factories import CustomerFactory, MerchantFactory, OrderFactory, line

EXAMPLES = int(os.environ.get("LEDGER_EXAMPLES", "200"))

#: (country, currency, locale): 2-, 0- and 3-decimal currencies.
STORES = [("DE", "EUR", "de_DE"), ("SE", "JPY", "en_US"), ("NL", "KWD", "en_US")]

line_specs = st.lists(
    st.tuples(
        st.sampled_from(
            ["physical", "physical", "shipping_fee", "discount", "gift_card"]
        ),
        st.integers(min_value=1, max_value=3),
        st.integers(min_value=1, max_value=20_000),
    ),
    min_size=1,
    max_size=5,
)

#: Refusal codes a random sequence may meet, each checked against the order below.
EXPECTED_REFUSALS = {
    "OVER_REFUND",
    "NOTHING_TO_REFUND",
    "NO_CAPTURES",
    "NOT_CAPTURED",
    "NEGATIVE_LINE",
    "SHIPPING_NOT_REFUNDABLE",
    "OVER_CAPTURE",
    "NOTHING_TO_CAPTURE",
    "AUTHORIZATION_CLOSED",
    "ORDER_NOT_CAPTURABLE",
    "INVALID_AMOUNT",
    "FEE_TOO_LARGE",
    "FEE_MULTI_CAPTURE",
    "FEE_NEEDS_ITEMS",
}


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()

    def teardown(self):
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    @initialize(
        store=st.sampled_from(STORES),
        specs=line_specs,
        product=st.sampled_from(
            [PaymentProduct.PAY_IN_4, PaymentProduct.PAY_LATER, PaymentProduct.PAY_NOW]
        ),
        refunds_shipping=st.booleans(),
    )
    def make_order(self, store, specs, product, refunds_shipping):
        country, currency, locale = store
        self.merchant = MerchantFactory(
            slug=f"store-{country}-{currency}",
            country=country,
            currency=currency,
            locale=locale,
            shipping_fees_refundable=refunds_shipping,
        )
        positive = sum(q * p for t, q, p in specs if t not in ("discount", "gift_card"))
        lines, negative = [], 0
        for i, (type_, quantity, price) in enumerate(specs):
            if type_ in ("discount", "gift_card"):
                # Negative lines never take the order to zero or below.
                price = -min(price, max((positive - 1 + negative) // 2, 0))
                if price == 0:
                    continue
                quantity = 1
                negative += price
            lines.append(line(f"L{i}", price, quantity, type=type_))
        if positive + negative <= 0:
            lines = [line("L-ONLY", 1000)]
        self.order = OrderFactory(
            merchant=self.merchant,
            customer=CustomerFactory(email=f"c-{country}@example.com"),
            payment_product=product,
            lines=lines,
        )

    def refresh(self):
        self.order.refresh_from_db()
        self.merchant.refresh_from_db()

    def attempt(self, call):
        try:
            call()
        except DomainError as refusal:
            assert refusal.code in EXPECTED_REFUSALS, (refusal.code, refusal.message)
            self.check_refusal(refusal)
        self.refresh()

    def check_refusal(self, refusal):
        order = self.order
        order.refresh_from_db()
        if refusal.code == "NO_CAPTURES":
            assert not order.captures.exists()
        if refusal.code == "NOT_CAPTURED":
            assert order.lines.filter(captured_quantity=0).exists()
        if refusal.code == "NOTHING_TO_CAPTURE":
            assert order.captured_amount == order.order_amount
        if refusal.code == "FEE_MULTI_CAPTURE":
            assert order.captures.count() > 1

    @rule(pick=st.integers(0, 10), quantity=st.integers(1, 3))
    def capture_lines(self, pick, quantity):
        lines = list(self.order.lines.order_by("pk"))
        chosen = lines[pick % len(lines)]
        self.attempt(lambda: self.order.capture(lines=[(chosen.reference, quantity)]))

    @rule(share=st.integers(1, 100))
    def capture_amount(self, share):
        remaining = self.order.remaining_authorized_amount
        amount = max(remaining * share // 100, 1)
        self.attempt(lambda: self.order.capture(amount=amount))

    @rule()
    def capture_rest(self):
        self.attempt(lambda: self.order.capture())

    @rule(fee=st.sampled_from([0, 0, 1, 250]))
    def refund_complete(self, fee):
        self.attempt(lambda: self.order.refund_complete(return_fee=fee))

    @rule(
        pick=st.integers(0, 10),
        quantity=st.integers(1, 3),
        fee=st.sampled_from([0, 0, 100]),
    )
    def refund_items(self, pick, quantity, fee):
        lines = list(self.order.lines.order_by("pk"))
        chosen = lines[pick % len(lines)]
        self.attempt(
            lambda: self.order.refund_lines(
                [(chosen.reference, quantity)], return_fee=fee
            )
        )

    @rule(share=st.integers(1, 100))
    def refund_amount(self, share):
        amount = max(
            (self.order.captured_amount - self.order.refunded_amount) * share // 100, 1
        )
        self.attempt(lambda: self.order.refund_amount(amount))

    @rule()
    def toggle_store_credit(self):
        self.merchant.store_credit_only = not self.merchant.store_credit_only
        self.merchant.save(update_fields=["store_credit_only"])
        self.refresh()

    @rule(days=st.integers(1, 60))
    def collect_installments(self, days):
        Installment.objects.filter(plan__order=self.order).collect_due(
            timezone.localdate() + timedelta(days=days)
        )
        self.refresh()

    @invariant()
    def ledger_rebuilds_and_nothing_is_over_refunded(self):
        if not hasattr(self, "order"):
            return
        order = self.order
        assert order.verify_totals() == []
        assert 0 <= order.refunded_amount <= order.captured_amount <= order.order_amount
        for line_ in order.lines.all():
            assert (
                0
                <= line_.refunded_quantity
                <= line_.captured_quantity
                <= line_.quantity
            )
        for capture in order.captures.all():
            assert 0 <= capture.refunded_amount <= capture.captured_amount
            assert (
                sum(cl.amount for cl in capture.lines.all()) == capture.captured_amount
                or capture.by_amount
                or not capture.lines.exists()
            )
        # Negative lines: what refunds took never exceeds the line.
        for cl in order.captures.values_list("lines__amount", "lines__refunded_amount"):
            if cl[0] is not None and cl[0] < 0:
                assert cl[0] <= cl[1] <= 0

    @invariant()
    def customer_owes_captured_less_money_refunded(self):
        if not hasattr(self, "order"):
            return
        for plan in self.order.plans.select_related("capture"):
            installments = list(plan.installments.all())
            owed_and_paid = sum(
                i.amount
                for i in installments
                if i.status != InstallmentStatus.CANCELLED
            )
            back = (
                Repayment.objects.filter(plan=plan).aggregate(s=Sum("amount"))["s"] or 0
            )
            money_refunded = (
                RefundAllocation.objects.filter(
                    capture=plan.capture, refund__store_credit=False
                ).aggregate(s=Sum("amount"))["s"]
                or 0
            )
            assert owed_and_paid - back == plan.capture.captured_amount - money_refunded
            if plan.status == PlanStatus.REFUNDED:
                assert not any(i.status in OPEN_INSTALLMENT for i in installments)


@pytest.mark.django_db
def test_the_line_ledger_holds_for_any_sequence_of_captures_and_refunds():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        ),
    )


def test_negative_lines_in_the_machine_are_the_types_the_domain_names():
    assert OrderLine(total_amount=-1).is_negative
