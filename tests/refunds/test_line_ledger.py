"""Issue 10, "Money at line level": each numbered case with its exact values.

The line ledger: captures by amount, negative lines (discount, gift card),
several captures, tax on every line, and store credit (DOMAIN.md "Rules added
after the first review").
"""

import pytest

from customers.models import PlanStatus
from portal.models import LedgerEntry, OrderLine, OrderStatus, PaymentProduct
from refunds.engine import RefundKind, RefundRequest, preview_refund
from refunds.exceptions import InvalidRequest, RefundNotAllowed
from refunds.models import RefundLine
from tests.factories import MerchantFactory, OrderFactory, line

pytestmark = pytest.mark.django_db

SHIPPING = OrderLine.Type.SHIPPING_FEE


def rows(refund):
    return list(
        refund.lines.order_by("pk").values_list(
            "kind", "reference", "quantity", "total_amount"
        )
    )


def allocations(refund):
    return [
        (a.capture.captured_amount, a.amount)
        for a in refund.allocations.select_related("capture").order_by("capture")
    ]


@pytest.fixture
def no_shipping_merchant(merchant):
    merchant.shipping_fees_refundable = False
    merchant.save()
    return merchant


@pytest.fixture
def tee_express(make_order, no_shipping_merchant):
    """Case 1: TEE 2 × 100.00 + EXPRESS 4.90, captured 104.90 then 100.00."""
    order = make_order(
        lines=[line("TEE", 10000, 2), line("EXPRESS", 490, type=SHIPPING)]
    )
    order.capture(amount=10490)
    order.capture(amount=10000)
    return order


# 1. Captures by amount become line captures when the order is complete ------


def test_completing_capture_by_amount_captures_every_line(tee_express):
    tee_express.refresh_from_db()
    assert tee_express.status == OrderStatus.CAPTURED
    assert list(tee_express.lines.values_list("reference", "captured_quantity")) == [
        ("TEE", 2),
        ("EXPRESS", 1),
    ]
    assert tee_express.verify_totals() == []


def test_complete_refund_after_captures_by_amount_keeps_the_shipping(tee_express):
    refund = tee_express.refund_complete()
    assert refund.refunded_amount == 20000
    assert rows(refund) == [("item", "TEE", 2, 20000)]
    assert allocations(refund) == [(10490, 10490), (10000, 9510)]
    assert tee_express.verify_totals() == []


def test_item_refunds_after_captures_by_amount_go_to_those_captures_oldest_first(
    tee_express,
):
    first = tee_express.refund_lines([("TEE", 1)])
    second = tee_express.refund_lines([("TEE", 1)])
    assert allocations(first) == [(10490, 10000)]
    assert allocations(second) == [(10490, 490), (10000, 9510)]
    with pytest.raises(RefundNotAllowed) as refused:
        tee_express.refund_amount(1)
    assert "shipping" in refused.value.message
    assert tee_express.verify_totals() == []


def test_return_fee_after_two_captures_gives_the_true_reason(tee_express):
    with pytest.raises(RefundNotAllowed) as refused:
        tee_express.refund_lines([("TEE", 1)], return_fee=500)
    assert refused.value.code == "FEE_MULTI_CAPTURE"
    assert "this order has 2 captures" in refused.value.message


def test_return_fee_after_one_capture_by_the_whole_amount(make_order, merchant):
    order = make_order(
        lines=[line("TEE", 10000, 2), line("EXPRESS", 490, type=SHIPPING)]
    )
    order.capture(amount=20490)
    refund = order.refund_lines([("TEE", 1)], return_fee=500)
    assert refund.refunded_amount == 9500


def test_same_with_five_thousand_then_the_rest(make_order, no_shipping_merchant):
    order = make_order(lines=[line("TEE", 10000), line("EXPRESS", 990, type=SHIPPING)])
    order.capture(amount=5000)
    with pytest.raises(RefundNotAllowed) as refused:
        order.refund_lines([("TEE", 1)])
    assert refused.value.code == "NOT_CAPTURED"
    assert "captured as an amount" in refused.value.message
    order.capture(amount=5990)
    plan = preview_refund(order, RefundRequest(kind=RefundKind.COMPLETE))
    assert plan.refunded_amount == 10000
    refund = order.refund_lines([("TEE", 1)])
    assert allocations(refund) == [(5000, 5000), (5990, 5000)]
    assert order.verify_totals() == []


# 2. Negative lines come off in proportion ------------------------------------


@pytest.fixture
def chino_coat(make_order):
    """CHINO 69.95, COAT 3 × 249.00, a −81.00 discount; invoice 1 = 486.95."""
    order = make_order(
        lines=[
            line("CHINO", 6995),
            line("COAT", 24900, 3),
            line("DISC", -8100, type=OrderLine.Type.DISCOUNT, tax_rate=1900),
        ]
    )
    order.capture(lines=[("CHINO", 1), ("COAT", 2), ("DISC", 1)])
    return order


def test_items_take_their_share_of_the_discount(chino_coat):
    assert chino_coat.captures.get().captured_amount == 48695
    coats = chino_coat.refund_lines([("COAT", 2)])
    assert rows(coats) == [("item", "COAT", 2, 49800), ("share", "DISC", 1, -7102)]
    assert coats.refunded_amount == 42698
    chino = chino_coat.refund_lines([("CHINO", 1)])
    assert rows(chino) == [("item", "CHINO", 1, 6995), ("share", "DISC", 1, -998)]
    assert coats.refunded_amount + chino.refunded_amount == 48695
    disc = chino_coat.lines.get(reference="DISC")
    assert (disc.captured_quantity, disc.refunded_quantity) == (1, 1)
    tax = RefundLine.objects.filter(reference="DISC").values_list(
        "total_tax_amount", flat=True
    )
    assert sum(tax) == disc.total_tax_amount
    assert chino_coat.verify_totals() == []


def test_gift_card_comes_off_the_item(make_order):
    order = make_order(
        lines=[line("TEE", 10000), line("GIFT", -3000, type=OrderLine.Type.GIFT_CARD)],
        capture=True,
    )
    refund = order.refund_lines([("TEE", 1)])
    assert refund.refunded_amount == 7000
    assert rows(refund) == [("item", "TEE", 1, 10000), ("share", "GIFT", 1, -3000)]


def test_a_negative_line_is_not_refunded_by_itself(chino_coat):
    with pytest.raises(RefundNotAllowed) as refused:
        chino_coat.refund_lines([("DISC", 1)])
    assert refused.value.code == "NEGATIVE_LINE"
    with pytest.raises(InvalidRequest) as refused:
        chino_coat.refund_lines([("COAT", -1)])
    assert refused.value.code == "INVALID_QUANTITY"


# 3. Item refunds pick the invoice that holds the unit --------------------------


def test_item_refund_uses_the_second_invoice_when_the_first_is_used_up(chino_coat):
    chino_coat.capture(lines=[("COAT", 1)])
    chino_coat.refund_amount(46695)  # invoice 1 keeps 20.00
    refund = chino_coat.refund_lines([("COAT", 1)])
    assert allocations(refund) == [(24900, 24900)]
    assert rows(refund) == [("item", "COAT", 1, 24900)]
    assert chino_coat.verify_totals() == []


# 4. Complete order after an amount refund lists what it refunds --------------


def test_complete_after_amount_refund_lists_rows_that_add_up(make_order):
    order = make_order(lines=[line("TEE", 10000)], capture=True)
    order.refund_amount(6000)
    refund = order.refund_complete()
    assert refund.refunded_amount == 4000
    assert rows(refund) == [
        ("item", "TEE", 1, 10000),
        ("adjustment", "", 1, -6000),
    ]
    assert sum(r[3] for r in rows(refund)) == refund.items_amount == 4000


def test_complete_preview_with_a_discount_adds_up(chino_coat):
    plan = preview_refund(chino_coat, RefundRequest(kind=RefundKind.COMPLETE))
    assert sum(r.amount for r in plan.rows) == plan.items_amount == 48695


def test_non_refundable_shipping_is_left_out_of_every_number(db, customer):
    merchant = MerchantFactory(
        country="SE", slug="se-store", shipping_fees_refundable=False
    )
    order = OrderFactory(
        merchant=merchant,
        customer=customer,
        lines=[line("JACKET", 404100), line("EXPRESS", 9900, type=SHIPPING)],
    )
    order.capture()
    plan = preview_refund(order, RefundRequest(kind=RefundKind.COMPLETE))
    assert plan.refundable_before == plan.refunded_amount == 404100
    assert plan.refundable_after == 0
    (allocation,) = plan.allocations
    assert (allocation.remaining_after, allocation.held_back) == (0, 9900)
    assert plan.held_back == 9900


# 5. Tax on every refund line --------------------------------------------------


def test_refund_lines_carry_tax_split_exactly(make_order):
    order = make_order(lines=[line("CARDS", 333, 3, tax_rate=2500)], capture=True)
    assert order.lines.get().total_tax_amount == 200
    refunds = [order.refund_lines([("CARDS", 1)]) for _ in range(3)]
    taxes = [r.lines.get().total_tax_amount for r in refunds]
    assert taxes == [67, 67, 66]
    refund_line = refunds[0].lines.get()
    assert (refund_line.unit_price, refund_line.tax_rate) == (333, 2500)
    capture_line = order.captures.get().lines.get()
    assert (capture_line.total_tax_amount, capture_line.unit_price) == (200, 333)


# 6. Store credit never makes a later money refund "full" ---------------------


@pytest.mark.parametrize(
    "product", [PaymentProduct.PAY_IN_4, PaymentProduct.ONE_TIME_CARD]
)
def test_money_refund_after_store_credit_keeps_the_plan_open(
    make_order, merchant, product
):
    merchant.store_credit_only = True
    merchant.save()
    order = make_order(product=product, lines=[line("TEE", 10000, 2)], capture=True)
    order.refund_lines([("TEE", 1)])
    merchant.store_credit_only = False
    merchant.save()
    order.merchant.refresh_from_db()
    order.refund_lines([("TEE", 1)])
    plan = order.plans.get()
    assert plan.status == PlanStatus.ACTIVE
    assert plan.service_fee_refunded is False
    assert [i.amount for i in plan.installments.order_by("sequence") if i.is_open] == [
        1667,
        1667,
        1666,
    ]
    assert LedgerEntry.objects.filter(order=order, kind="RETURN").get().amount == -10000


def test_order_page_and_refund_form_state_what_the_engine_allows(client, db, customer):
    """Case 4, SE store: 4 140,00 kr captured, 99,00 kr of it shipping that the
    store does not refund: both pages say 4 041,00 kr."""
    from tests.factories import MerchantUserFactory, UserFactory

    merchant = MerchantFactory(
        country="SE", slug="se-pages", shipping_fees_refundable=False
    )
    user = MerchantUserFactory(
        merchant=merchant, role="owner", user=UserFactory(username="se-owner")
    ).user
    client.force_login(user)
    order = OrderFactory(
        merchant=merchant,
        customer=customer,
        lines=[line("JACKET", 404100), line("EXPRESS", 9900, type=SHIPPING)],
    )
    order.capture()
    detail = client.get(order.get_absolute_url()).content.decode()
    assert "4\xa0041,00\xa0kr" in detail
    assert "99,00\xa0kr shipping is not refundable" in detail
    form = client.get(f"/orders/{order.order_id}/refund/").content.decode()
    assert "refundable 4\xa0041,00\xa0kr" in form
