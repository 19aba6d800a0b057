"""The checkout hook: POST /payments/v1/orders places an authorized order."""

import pytest

from customers.models import Customer
from portal.models import Order, OrderStatus
from tests.api.helpers import om

pytestmark = pytest.mark.django_db

URL = "/payments/v1/orders"


def checkout(**overrides):
    body = {
        "customer": {"email": "New.Buyer@Example.com", "name": "New Buyer"},
        "payment_product": "pay_in_4",
        "purchase_country": "DE",
        "purchase_currency": "EUR",
        "locale": "de-DE",
        "order_amount": 25000,
        "order_lines": [
            {
                "type": "physical",
                "reference": "TSHIRT-1",
                "name": "T-shirt",
                "quantity": 2,
                "unit_price": 10000,
                "tax_rate": 1900,
                "total_amount": 20000,
            },
            {
                "type": "shipping_fee",
                "reference": "SHIP",
                "name": "Express shipping",
                "quantity": 1,
                "unit_price": 6000,
                "total_discount_amount": 1000,
                "total_amount": 5000,
            },
        ],
        "merchant_reference1": "SHOP-1001",
    }
    body.update(overrides)
    return body


def test_checkout_places_an_authorized_order_for_a_new_customer(api, merchant):
    response = api.post_json(URL, checkout())

    assert response.status_code == 201
    body = response.json()
    order = Order.objects.get(order_id=body["order_id"])
    assert body["status"] == OrderStatus.AUTHORIZED
    assert body["klarna_reference"] == order.reference
    assert response["Location"].endswith(om(order))
    assert order.merchant == merchant
    assert (order.order_amount, order.original_order_amount) == (25000, 25000)
    assert (order.locale, order.merchant_reference1) == ("de_DE", "SHOP-1001")
    customer = Customer.objects.get(email="new.buyer@example.com")
    assert order.customer == customer
    assert order.payment_method == customer.default_payment_method()
    tshirt, shipping = order.lines.order_by("position")
    assert (tshirt.quantity, tshirt.total_amount, tshirt.total_tax_amount) == (
        2,
        20000,
        3193,
    )
    assert (shipping.type, shipping.total_discount_amount) == ("shipping_fee", 1000)


def test_checkout_reuses_an_existing_customer(api, customer):
    methods = customer.payment_methods.count()

    response = api.post_json(URL, checkout(customer={"email": "maja@example.com"}))

    assert response.status_code == 201
    assert Order.objects.get(order_id=response.json()["order_id"]).customer == customer
    assert customer.payment_methods.count() == methods


def test_an_order_placed_at_checkout_can_be_captured_and_refunded(api):
    order_id = api.post_json(URL, checkout()).json()["order_id"]
    order = Order.objects.get(order_id=order_id)

    assert (
        api.post_json(om(order, "captures"), {"captured_amount": 25000}).status_code
        == 201
    )
    response = api.post_json(
        om(order, "refunds"),
        {
            "refunded_amount": 10000,
            "order_lines": [{"reference": "TSHIRT-1", "quantity": 1}],
        },
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "overrides, status, field",
    [
        ({"order_amount": 24999}, 422, "order_amount"),
        ({"purchase_currency": "SEK"}, 422, "purchase_currency"),
        ({"purchase_currency": "eur"}, 400, "purchase_currency"),
        ({"purchase_country": "XX"}, 400, "purchase_country"),
        ({"locale": "german"}, 400, "locale"),
        ({"payment_product": "bitcoin"}, 400, "payment_product"),
        ({"customer": {"email": "not-an-email"}}, 400, "customer.email"),
        ({"customer": "maja@example.com"}, 400, "customer"),
        ({"order_lines": []}, 400, "order_lines"),
        ({"order_amount": True}, 400, "order_amount"),
        (
            {
                "order_lines": [
                    {
                        "reference": "A",
                        "name": "A",
                        "quantity": 1,
                        "unit_price": 100,
                        "total_amount": 90,
                    }
                ]
            },
            422,
            "order_lines[0].total_amount",
        ),
        (
            {
                "order_amount": 200,
                "order_lines": [
                    {
                        "reference": "A",
                        "name": "A",
                        "quantity": 1,
                        "unit_price": 100,
                        "total_amount": 100,
                    },
                    {
                        "reference": "A",
                        "name": "B",
                        "quantity": 1,
                        "unit_price": 100,
                        "total_amount": 100,
                    },
                ],
            },
            422,
            "order_lines[1].reference",
        ),
        (
            {
                "order_lines": [
                    {
                        "reference": "A",
                        "name": "A",
                        "quantity": 1,
                        "unit_price": 100,
                        "total_amount": 100,
                        "type": "return_fee",
                    }
                ]
            },
            400,
            "order_lines[0].type",
        ),
        (
            {
                "order_lines": [
                    {
                        "reference": "A",
                        "name": "",
                        "quantity": 1,
                        "unit_price": 100,
                        "total_amount": 100,
                    }
                ]
            },
            400,
            "order_lines[0].name",
        ),
    ],
)
def test_malformed_checkouts_are_refused_and_create_nothing(
    api, overrides, status, field
):
    response = api.post_json(URL, checkout(**overrides))

    assert response.status_code == status, response.content
    assert response.json()["error_messages"][0].startswith(f"{field}:")
    assert Order.objects.count() == 0
    assert not Customer.objects.filter(email="new.buyer@example.com").exists()
