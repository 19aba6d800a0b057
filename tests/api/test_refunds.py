"""Refunds through the API, including Klarna's documented worked examples."""

import pytest

from portal.models import Channel, LedgerEntry
from refunds.models import Refund, RefundKind
from tests.api.helpers import om
from tests.factories import line

pytestmark = pytest.mark.django_db


def refund_body(amount, *lines, **fields):
    return (
        {"refunded_amount": amount, "order_lines": list(lines), **fields}
        if lines
        else {"refunded_amount": amount, **fields}
    )


def test_tshirt_with_a_return_fee_line_refunds_9500(api, make_order):
    """Klarna: a 100.00 T-shirt with a −5.00 return fee line refunds 95.00."""
    order = make_order(lines=[line("TSHIRT", 10000)], capture=True)

    response = api.post_json(
        om(order, "refunds"),
        refund_body(
            9500,
            {
                "type": "physical",
                "reference": "TSHIRT",
                "quantity": 1,
                "total_amount": 10000,
            },
            {
                "type": "return_fee",
                "reference": "return-fee",
                "name": "Return fee",
                "quantity": 1,
                "unit_price": -500,
                "total_amount": -500,
            },
            description="Returned T-shirt",
        ),
    )

    assert response.status_code == 201
    refund = Refund.objects.get(refund_id=response["Refund-Id"])
    assert (refund.items_amount, refund.fee_amount, refund.refunded_amount) == (
        10000,
        500,
        9500,
    )
    assert refund.kind == RefundKind.ITEMS_WITH_FEE
    assert refund.channel == Channel.API
    assert refund.description == "Returned T-shirt"
    assert response["Location"].endswith(om(order, "refunds", str(refund.refund_id)))
    ledger = LedgerEntry.objects.get(refund=refund)
    assert ledger.amount == -9500


def test_refund_by_amount_without_lines(api, captured_order):
    response = api.post_json(om(captured_order, "refunds"), refund_body(3001))

    assert response.status_code == 201
    refund = Refund.objects.get(refund_id=response["Refund-Id"])
    assert (refund.kind, refund.refunded_amount) == (RefundKind.AMOUNT, 3001)


def test_get_a_refund_shows_its_lines_with_the_negative_fee(api, make_order):
    order = make_order(lines=[line("TSHIRT", 10000)], capture=True)
    refund = order.refund_lines([("TSHIRT", 1)], return_fee=500, reference="RMA-1")

    response = api.get(om(order, "refunds", str(refund.refund_id)))

    assert response.status_code == 200
    body = response.json()
    assert (body["refunded_amount"], body["reference"]) == (9500, "RMA-1")
    assert sorted(li["total_amount"] for li in body["order_lines"]) == [-500, 10000]


def test_a_refund_of_another_merchant_is_not_found(api, other_api, captured_order):
    refund = captured_order.refund_amount(100)

    response = other_api.get(om(captured_order, "refunds", str(refund.refund_id)))

    assert response.status_code == 404
    assert response.json()["error_code"] == "NO_SUCH_ORDER"
    assert api.get(om(captured_order, "refunds", "x")).json()["error_code"] == (
        "NO_SUCH_REFUND"
    )


def test_over_refund_is_refused(api, captured_order):
    response = api.post_json(om(captured_order, "refunds"), refund_body(40001))

    assert response.status_code == 403
    body = response.json()
    assert body["error_code"] == "REFUND_NOT_ALLOWED"
    assert body["error_messages"][0].startswith("Over refund is not allowed")
    assert captured_order.refunds.count() == 0


def test_over_refund_of_a_line_quantity_is_refused(api, captured_order):
    response = api.post_json(
        om(captured_order, "refunds"),
        refund_body(30000, {"reference": "TSHIRT-1", "quantity": 3}),
    )

    assert response.status_code == 403
    assert response.json()["error_messages"][0].startswith("Over refund is not allowed")


def test_refund_on_an_order_without_captures_is_refused(api, order):
    response = api.post_json(om(order, "refunds"), refund_body(100))

    assert response.status_code == 403
    assert response.json()["error_messages"] == ["Order has no captures."]


def test_refunded_amount_must_equal_the_lines_sum(api, captured_order):
    response = api.post_json(
        om(captured_order, "refunds"),
        refund_body(9000, {"reference": "TSHIRT-1", "quantity": 1}),
    )

    assert response.status_code == 422
    assert "refunded_amount" in response.json()["error_messages"][0]
    assert captured_order.refunds.count() == 0


def test_a_line_total_that_is_not_what_the_quantity_costs_names_the_line(
    api, captured_order
):
    response = api.post_json(
        om(captured_order, "refunds"),
        refund_body(
            30000,
            {"reference": "JEANS-1", "quantity": 1, "total_amount": 20000},
            {"reference": "TSHIRT-1", "quantity": 1, "total_amount": 9999},
        ),
    )

    assert response.status_code == 422
    message = response.json()["error_messages"][0]
    assert message.startswith("order_lines[1].total_amount")
    assert "TSHIRT-1" in message


def test_an_unknown_line_reference_is_refused(api, captured_order):
    response = api.post_json(
        om(captured_order, "refunds"),
        refund_body(100, {"reference": "NOPE", "quantity": 1}),
    )

    assert response.status_code == 422
    assert response.json()["error_messages"] == [
        "order_lines: This order has no line with reference “NOPE”."
    ]


def test_only_one_return_fee_line_is_allowed(api, captured_order):
    response = api.post_json(
        om(captured_order, "refunds"),
        refund_body(
            9000,
            {"reference": "TSHIRT-1", "quantity": 1},
            {"type": "return_fee", "total_amount": -500},
            {"type": "return_fee", "total_amount": -500},
        ),
    )

    assert response.status_code == 400
    assert response.json()["error_messages"][0].startswith("order_lines[2]")


@pytest.mark.parametrize("fee", [0, 500, "500", None])
def test_a_return_fee_must_be_a_negative_total_amount(api, captured_order, fee):
    response = api.post_json(
        om(captured_order, "refunds"),
        refund_body(
            9500,
            {"reference": "TSHIRT-1", "quantity": 1},
            {"type": "return_fee", "total_amount": fee},
        ),
    )

    assert response.status_code == 400
    assert "order_lines[1].total_amount" in response.json()["error_messages"][0]


def test_a_return_fee_without_items_is_refused(api, captured_order):
    response = api.post_json(
        om(captured_order, "refunds"),
        refund_body(500, {"type": "return_fee", "total_amount": -500}),
    )

    assert response.status_code == 422
    assert captured_order.refunds.count() == 0


def test_a_return_fee_outside_the_supported_markets_is_refused(
    api, make_order, merchant
):
    order = make_order(
        lines=[line("TSHIRT", 10000)], capture=True, purchase_country="US"
    )

    response = api.post_json(
        om(order, "refunds"),
        refund_body(
            9500,
            {"reference": "TSHIRT", "quantity": 1},
            {"type": "return_fee", "total_amount": -500},
        ),
    )

    assert response.status_code == 403
    assert response.json()["error_code"] == "REFUND_NOT_ALLOWED"


def test_text_that_is_not_valid_unicode_is_a_clear_400(api, captured_order):
    body = '{"refunded_amount": 100, "description": "\\ud800"}'
    response = api.post(
        om(captured_order, "refunds"), body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "description" in response.json()["error_messages"][0]
    assert not Refund.objects.exists()
