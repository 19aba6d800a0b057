"""Payouts (DOMAIN.md, Payouts): sales in, returns and fees out, debt carried forward."""

from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.models import LedgerEntry, Payout
from portal.money import basis_points
from tests.factories import MerchantFactory, OrderFactory, line


def test_the_next_payout_of_a_new_merchant_is_empty(merchant):
    payout = Payout.preview_next(merchant)
    assert payout.pk is None
    assert (payout.number, payout.total, payout.entry_count) == (1, 0, 0)


def test_a_capture_shows_in_the_next_payout_as_a_sale_minus_our_fee(captured_order):
    payout = Payout.preview_next(captured_order.merchant)

    assert payout.sales_amount == 40000
    assert payout.fees_amount == -1196
    assert payout.returns_amount == 0
    assert payout.total == payout.paid_amount == 38804
    assert payout.entry_count == 2
    assert not Payout.objects.exists()  # a preview writes nothing


def test_closing_a_payout_settles_every_open_entry_once(captured_order):
    merchant = captured_order.merchant
    payout = Payout.close_next(merchant)

    assert (payout.number, payout.total, payout.paid_amount) == (1, 38804, 38804)
    assert payout.entries.count() == 2
    assert not LedgerEntry.objects.filter(merchant=merchant, payout=None).exists()
    upcoming = Payout.preview_next(merchant)
    assert (upcoming.number, upcoming.total, upcoming.entry_count) == (2, 0, 0)


def test_a_refund_is_deducted_from_the_next_payout_with_its_reference(captured_order):
    merchant = captured_order.merchant
    Payout.close_next(merchant)
    captured_order.refund_amount(5000, reference="RMA-7")

    payout = Payout.preview_next(merchant)
    assert payout.returns_amount == -5000
    assert payout.total == -5000
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.RETURN)
    assert (entry.amount, entry.reference, entry.payout) == (-5000, "RMA-7", None)


def test_debt_is_carried_forward_when_returns_and_fees_exceed_sales(
    captured_order, make_order
):
    merchant = captured_order.merchant
    Payout.close_next(merchant)  # 388.04 paid out
    captured_order.refund_complete()

    first = Payout.close_next(merchant)
    assert (first.returns_amount, first.total) == (-40000, -40000)
    assert (first.paid_amount, first.debt_out) == (0, -40000)

    make_order(lines=[line("SCARF-1", 10000)], capture=True)
    second = Payout.close_next(merchant)
    assert second.debt_in == -40000
    assert (second.sales_amount, second.fees_amount) == (10000, -299)
    assert (second.total, second.paid_amount, second.debt_out) == (-30299, 0, -30299)

    make_order(lines=[line("COAT-1", 50000)], capture=True)
    third = Payout.preview_next(merchant)
    assert third.debt_in == -30299
    assert third.total == 50000 - 1495 - 30299
    assert (third.paid_amount, third.debt_out) == (third.total, 0)


def test_store_credit_refunds_are_not_deducted_from_payouts(make_order, merchant):
    merchant.store_credit_only = True
    merchant.save()
    order = make_order(capture=True)
    order.refund_complete()

    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.RETURN).exists()
    assert Payout.preview_next(merchant).returns_amount == 0


def test_payouts_are_numbered_per_merchant(captured_order, us_merchant):
    Payout.close_next(captured_order.merchant)
    assert Payout.close_next(us_merchant).number == 1
    assert Payout.preview_next(captured_order.merchant).number == 2


movements = st.lists(
    st.tuples(
        st.sampled_from(["capture", "refund"]), st.integers(min_value=1, max_value=5000)
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=movements, close_after=st.integers(min_value=0, max_value=8))
def test_ledger_always_sums_to_captures_minus_refunds_minus_fees(
    db, customer, steps, close_after
):
    merchant = MerchantFactory(fee_rate_bp=299)
    order = OrderFactory(
        merchant=merchant, customer=customer, lines=[line("BOX-1", 1000, 20)]
    )
    captured = refunded = fees = 0
    for number, (kind, amount) in enumerate(steps):
        if kind == "capture" and amount <= order.remaining_authorized_amount:
            order.capture(amount=amount)
            captured += amount
            fees += basis_points(amount, merchant.fee_rate_bp)
        elif kind == "refund" and 0 < amount <= order.refundable_amount:
            order.refund_amount(amount)
            refunded += amount
        if number == close_after:
            Payout.close_next(merchant)

    entries = LedgerEntry.objects.filter(merchant=merchant)
    assert sum(e.amount for e in entries) == captured - refunded - fees
    payouts = list(Payout.objects.filter(merchant=merchant).order_by("number"))
    upcoming = Payout.preview_next(merchant)
    # What was paid out plus what the next payout holds is exactly the ledger.
    paid_out = sum(p.paid_amount for p in payouts)
    assert paid_out + upcoming.total == captured - refunded - fees
    chain = [*payouts, upcoming]
    assert chain[0].debt_in == 0
    for earlier, later in pairwise(chain):
        assert later.debt_in == earlier.debt_out
        assert earlier.paid_amount >= 0 and earlier.debt_out <= 0
