"""Reading orders and the order verbs: cancel, release, extend, references."""

import uuid
from datetime import timedelta

import pytest

from portal.models import OrderEvent, OrderStatus
from tests.api.helpers import om
from tests.factories import line

pytestmark = pytest.mark.django_db


def test_get_order_shows_amounts_lines_captures_and_refunds(api, captured_order):
    refund = captured_order.refund_lines([("TSHIRT-1", 1)])

    response = api.get(om(captured_order))

    assert response.status_code == 200
    body = response.json()
    assert body["order_id"] == str(captured_order.order_id)
    assert body["status"] == OrderStatus.CAPTURED
    assert (body["order_amount"], body["original_order_amount"]) == (40000, 40000)
    assert (body["captured_amount"], body["refunded_amount"]) == (40000, 10000)
    assert body["remaining_authorized_amount"] == 0
    assert (body["purchase_currency"], body["purchase_country"]) == ("EUR", "DE")
    assert [
        (li["reference"], li["captured_quantity"], li["refunded_quantity"])
        for li in body["order_lines"]
    ] == [("TSHIRT-1", 2, 1), ("JEANS-1", 1, 0)]
    [capture] = body["captures"]
    assert (capture["captured_amount"], capture["refunded_amount"]) == (40000, 10000)
    [refund_json] = body["refunds"]
    assert refund_json["refund_id"] == str(refund.refund_id)
    assert refund_json["refunded_amount"] == 10000
    assert body["created_at"].endswith("Z") and body["expires_at"].endswith("Z")


def test_get_order_takes_a_fixed_number_of_queries(
    api, make_order, django_assert_max_num_queries
):
    order = make_order(lines=[line(f"SKU-{i}", 1000) for i in range(20)], capture=True)
    order.refund_amount(500)
    order.refund_amount(500)
    with django_assert_max_num_queries(12):
        assert api.get(om(order)).status_code == 200


def test_another_merchants_order_does_not_exist(other_api, order):
    response = other_api.get(om(order))

    assert response.status_code == 404
    assert response.json()["error_code"] == "NO_SUCH_ORDER"


def test_another_merchant_cannot_cancel_or_capture(other_api, order):
    assert other_api.post_json(om(order, "cancel")).status_code == 404
    response = other_api.post_json(om(order, "captures"), {"captured_amount": 100})
    assert response.status_code == 404
    order.refresh_from_db()
    assert order.status == OrderStatus.AUTHORIZED
    assert order.captured_amount == 0


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "0" * 40, "%00"])
def test_an_order_id_that_is_not_a_uuid_is_no_such_order(api, bad_id):
    response = api.get(f"/ordermanagement/v1/orders/{bad_id}")

    assert response.status_code == 404
    assert response.json()["error_code"] == "NO_SUCH_ORDER"


def test_an_unknown_order_is_no_such_order(api):
    response = api.get(f"/ordermanagement/v1/orders/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.json()["error_code"] == "NO_SUCH_ORDER"
    assert "no order" in response.json()["error_messages"][0]


def test_cancel_an_authorized_order(api, order):
    response = api.post(om(order, "cancel"))

    assert response.status_code == 204
    assert response.content == b""
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


def test_cancel_after_a_capture_is_refused(api, captured_order):
    response = api.post(om(captured_order, "cancel"))

    assert response.status_code == 403
    body = response.json()
    assert body["error_code"] == "CANCEL_NOT_ALLOWED"
    assert body["error_messages"] == [
        "Order has previous captures. Cancel not possible."
    ]
    assert body["correlation_id"] == response["Klarna-Correlation-Id"]


def test_release_remaining_authorization_after_a_partial_capture(api, order):
    order.capture(lines=[("JEANS-1", 1)])

    response = api.post(om(order, "release-remaining-authorization"))

    assert response.status_code == 204
    order.refresh_from_db()
    assert order.status == OrderStatus.CAPTURED
    assert order.remaining_authorized_amount == 0
    assert order.events.filter(kind=OrderEvent.Kind.RELEASED).get().amount == 20000


def test_release_without_captures_is_refused(api, order):
    response = api.post(om(order, "release-remaining-authorization"))

    assert response.status_code == 403
    assert response.json()["error_code"] == "NOT_ALLOWED"
    assert order.events.count() == 0


def test_extend_authorization_time_adds_seven_days(api, order):
    before = order.expires_at

    response = api.post(om(order, "extend-authorization-time"))

    assert response.status_code == 204
    order.refresh_from_db()
    assert order.expires_at == before + timedelta(days=7)


def test_extend_a_cancelled_order_is_refused(api, order):
    order.cancel()

    response = api.post(om(order, "extend-authorization-time"))

    assert response.status_code == 403
    assert response.json()["error_code"] == "NOT_ALLOWED"


def test_update_merchant_references(api, order):
    response = api.patch_json(
        om(order, "merchant-references"),
        {"merchant_reference1": "SHOP-77", "merchant_reference2": "internal-9"},
    )

    assert response.status_code == 204
    order.refresh_from_db()
    assert (order.merchant_reference1, order.merchant_reference2) == (
        "SHOP-77",
        "internal-9",
    )


def test_update_only_one_merchant_reference_keeps_the_other(api, order):
    order.update_merchant_references("A", "B")

    api.patch_json(om(order, "merchant-references"), {"merchant_reference2": "C"})

    order.refresh_from_db()
    assert (order.merchant_reference1, order.merchant_reference2) == ("A", "C")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"merchant_reference1": 5}, "merchant_reference1"),
        ({"merchant_reference1": "x" * 256}, "merchant_reference1"),
        ({"merchant_reference2": None}, "merchant_reference2"),
        ([], "body"),
    ],
)
def test_malformed_merchant_references_are_refused_naming_the_field(
    api, order, body, field
):
    response = api.patch_json(om(order, "merchant-references"), body)

    assert response.status_code == 400
    assert field in response.json()["error_messages"][0]
    assert order.events.count() == 0
