"""A merchant's day through the API only (issue 13's proof): place orders, edit one
before capture, capture it with shipping info, list captures, refund by lines
with a price-adjustment line, retry with the same key, extend a due date, cancel
another order and release a third. Every step reads back what a Klarna client
would read."""

from datetime import timedelta

import pytest

from customers.models import Installment
from portal.models import LedgerEntry, Order, OrderStatus
from tests.api.helpers import om

pytestmark = pytest.mark.django_db

CHECKOUT = "/payments/v1/orders"
ADDRESS = {
    "given_name": "Maja",
    "family_name": "Berg",
    "street_address": "Lindenstraße 5",
    "postal_code": "10115",
    "city": "Berlin",
    "country": "DE",
}


def checkout_body(product: str, reference: str) -> dict:
    return {
        "customer": {"email": "maja@example.com", "name": "Maja Berg"},
        "payment_product": product,
        "purchase_country": "DE",
        "purchase_currency": "EUR",
        "locale": "de-DE",
        "order_amount": 35000,
        "order_lines": [
            {
                "reference": "TSHIRT-1",
                "name": "T-shirt",
                "quantity": 2,
                "unit_price": 10000,
                "tax_rate": 1900,
                "total_amount": 20000,
            },
            {
                "reference": "SCARF-1",
                "name": "Scarf",
                "quantity": 1,
                "unit_price": 15000,
                "tax_rate": 1900,
                "total_amount": 15000,
            },
        ],
        "merchant_reference1": reference,
        "billing_address": ADDRESS,
    }


def place(api, product: str, reference: str) -> Order:
    response = api.post_json(CHECKOUT, checkout_body(product, reference))
    assert response.status_code == 201, response.content
    return Order.objects.get(order_id=response.json()["order_id"])


def test_a_merchants_day_through_the_api(api):
    # Morning: three orders come in from the shop's checkout.
    invoice = place(api, "pay_later", "SHOP-1")
    to_cancel = place(api, "pay_in_4", "SHOP-2")
    to_release = place(api, "pay_in_4", "SHOP-3")
    assert api.post(om(invoice, "acknowledge")).status_code == 204

    # The scarf is out of stock: the order shrinks before anything ships.
    edit = api.patch_json(
        om(invoice, "authorization"),
        {
            "order_amount": 20000,
            "description": "Scarf out of stock",
            "order_lines": checkout_body("pay_later", "SHOP-1")["order_lines"][:1],
        },
    )
    assert edit.status_code == 204, edit.content
    order = api.get(om(invoice)).json()
    assert (order["order_amount"], order["original_order_amount"]) == (20000, 35000)
    assert [line["reference"] for line in order["order_lines"]] == ["TSHIRT-1"]

    # Both T-shirts ship with DHL.
    tracking = {"shipping_company": "DHL Paket", "tracking_number": "0034043416"}
    captured = api.post_json(
        om(invoice, "captures"),
        {
            "captured_amount": 20000,
            "order_lines": [{"reference": "TSHIRT-1", "quantity": 2}],
            "shipping_info": [tracking],
        },
        headers={"Klarna-Idempotency-Key": "capture-shop-1"},
    )
    assert captured.status_code == 201, captured.content
    captures = api.get(om(invoice, "captures")).json()
    assert len(captures) == 1
    assert captures[0]["capture_id"] == captured["Capture-Id"]
    assert captures[0]["shipping_info"] == [tracking]
    assert captures[0]["shipping_address"]["city"] == "Berlin"
    assert captures[0]["klarna_reference"] == f"{invoice.reference}-1"

    # One T-shirt comes back, and the customer gets 5.00 for the wait.
    refund_key = {"Klarna-Idempotency-Key": "refund-shop-1"}
    refund_body = {
        "refunded_amount": 10500,
        "description": "Returned T-shirt, and 5.00 for the wait",
        "order_lines": [
            {
                "reference": "TSHIRT-1",
                "name": "T-shirt",
                "quantity": 1,
                "unit_price": 10000,
                "total_amount": 10000,
            },
            {
                "type": "physical",
                "name": "Price adjustment",
                "quantity": 1,
                "unit_price": 500,
                "total_amount": 500,
            },
        ],
    }
    refunded = api.post_json(om(invoice, "refunds"), refund_body, headers=refund_key)
    assert refunded.status_code == 201, refunded.content

    # The shop's job times out and retries with the same key (and a body it
    # rebuilt differently): the first refund comes back, nothing moves twice.
    retry = api.post_json(
        om(invoice, "refunds"),
        {**refund_body, "description": "retry"},
        headers=refund_key,
    )
    assert retry.status_code == 201
    assert retry["Refund-Id"] == refunded["Refund-Id"]
    refunds = api.get(om(invoice, "refunds")).json()
    assert [r["refunded_amount"] for r in refunds] == [10500]
    assert [line["name"] for line in refunds[0]["order_lines"]] == [
        "T-shirt",
        "Price adjustment",
    ]

    # The customer asks for more time to pay the rest of the invoice.
    capture_url = om(invoice, "captures", captured["Capture-Id"])
    options = api.get(f"{capture_url}/extend-due-date-options").json()
    assert options == {
        "currency": "EUR",
        "options": [
            {"number_of_days": 7, "amount": 95},
            {"number_of_days": 14, "amount": 190},
            {"number_of_days": 30, "amount": 285},
        ],
    }
    due_before = Installment.objects.get(plan__order=invoice).due_date
    extended = api.patch_json(f"{capture_url}/extend-due-date", {"number_of_days": 14})
    assert extended.status_code == 204
    installment = Installment.objects.get(plan__order=invoice)
    assert installment.due_date == due_before + timedelta(days=14)
    assert installment.amount == 9500

    # Another customer changed their mind; a third order ships only in part.
    assert api.post(om(to_cancel, "cancel")).status_code == 204
    assert (
        api.post_json(
            om(to_release, "captures"),
            {
                "captured_amount": 15000,
                "order_lines": [{"reference": "SCARF-1", "quantity": 1}],
            },
        ).status_code
        == 201
    )
    assert (
        api.post(om(to_release, "release-remaining-authorization")).status_code == 204
    )

    # Evening: the orders read back as Klarna would report them.
    day = {o.merchant_reference1: o for o in Order.objects.all()}
    assert day["SHOP-1"].status == OrderStatus.CAPTURED
    assert (day["SHOP-1"].captured_amount, day["SHOP-1"].refunded_amount) == (
        20000,
        10500,
    )
    assert day["SHOP-2"].status == OrderStatus.CANCELLED
    assert day["SHOP-3"].status == OrderStatus.CAPTURED
    assert api.get(om(to_release)).json()["remaining_authorized_amount"] == 0
    extension_fee = LedgerEntry.objects.get(
        order=invoice, kind=LedgerEntry.Kind.FEE, reference__startswith="Due date"
    )
    assert extension_fee.amount == -190
    for order in day.values():
        assert order.verify_totals() == []
