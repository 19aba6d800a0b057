"""Captures through the API: by lines, by amount, everything, and refusals."""

import pytest

from portal.models import Capture, Channel, OrderStatus
from tests.api.helpers import om

pytestmark = pytest.mark.django_db


def test_capture_by_lines_answers_201_with_location_and_capture_id(api, order):
    response = api.post_json(
        om(order, "captures"),
        {
            "captured_amount": 10000,
            "description": "Shipped with DHL",
            "reference": "SHIP-1",
            "order_lines": [{"reference": "TSHIRT-1", "quantity": 1}],
        },
    )

    assert response.status_code == 201
    capture = Capture.objects.get(capture_id=response["Capture-Id"])
    assert response["Location"].endswith(om(order, "captures", str(capture.capture_id)))
    assert (capture.captured_amount, capture.channel) == (10000, Channel.API)
    assert (capture.description, capture.reference) == ("Shipped with DHL", "SHIP-1")
    order.refresh_from_db()
    assert order.status == OrderStatus.PART_CAPTURED
    assert order.lines.get(reference="TSHIRT-1").captured_quantity == 1


def test_capture_of_the_whole_remaining_amount_captures_every_line(api, order):
    response = api.post_json(om(order, "captures"), {"captured_amount": 40000})

    assert response.status_code == 201
    order.refresh_from_db()
    assert order.status == OrderStatus.CAPTURED
    assert [line.captured_quantity for line in order.lines.all()] == [2, 1]


def test_capture_by_amount_captures_no_lines(api, order):
    response = api.post_json(om(order, "captures"), {"captured_amount": 15000})

    assert response.status_code == 201
    capture = Capture.objects.get(capture_id=response["Capture-Id"])
    assert capture.captured_amount == 15000
    assert capture.lines.count() == 0


def test_get_a_capture(api, order):
    capture = order.capture(lines=[("JEANS-1", 1)], description="Box 2")

    response = api.get(om(order, "captures", str(capture.capture_id)))

    assert response.status_code == 200
    body = response.json()
    assert body["capture_id"] == str(capture.capture_id)
    assert (body["captured_amount"], body["refunded_amount"]) == (20000, 0)
    assert body["description"] == "Box 2"
    assert body["order_lines"] == [
        {
            "type": "physical",
            "reference": "JEANS-1",
            "name": "Jeans",
            "quantity": 1,
            "quantity_unit": "pcs",
            "unit_price": 20000,
            "tax_rate": 2500,
            "total_amount": 20000,
            "total_discount_amount": 0,
            "total_tax_amount": 4000,
        }
    ]


def test_a_capture_of_another_order_is_not_found(api, order, make_order):
    other = make_order(capture=True)
    capture = other.captures.get()

    response = api.get(om(order, "captures", str(capture.capture_id)))

    assert response.status_code == 404
    assert response.json()["error_code"] == "NO_SUCH_CAPTURE"


def test_a_capture_id_that_is_not_a_uuid_is_not_found(api, order):
    assert api.get(om(order, "captures", "nope")).status_code == 404


def test_capture_more_than_authorized_is_refused(api, order):
    response = api.post_json(om(order, "captures"), {"captured_amount": 40001})

    assert response.status_code == 403
    body = response.json()
    assert body["error_code"] == "CAPTURE_NOT_ALLOWED"
    assert "remaining authorized amount" in body["error_messages"][0]
    assert order.captures.count() == 0


def test_capture_on_a_cancelled_order_is_refused(api, order):
    order.cancel()

    response = api.post_json(om(order, "captures"), {"captured_amount": 100})

    assert response.status_code == 403
    assert response.json()["error_code"] == "CAPTURE_NOT_ALLOWED"


def test_capture_amount_must_match_the_lines(api, order):
    response = api.post_json(
        om(order, "captures"),
        {
            "captured_amount": 5000,
            "order_lines": [{"reference": "TSHIRT-1", "quantity": 1}],
        },
    )

    assert response.status_code == 422
    assert "captured_amount" in response.json()["error_messages"][0]
    assert order.captures.count() == 0


def test_capture_line_total_must_be_what_the_quantity_costs(api, order):
    response = api.post_json(
        om(order, "captures"),
        {
            "captured_amount": 20000,
            "order_lines": [
                {"reference": "TSHIRT-1", "quantity": 2, "total_amount": 19000}
            ],
        },
    )

    assert response.status_code == 422
    assert response.json()["error_messages"][0].startswith(
        "order_lines[0].total_amount"
    )
    assert order.captures.count() == 0


def test_capture_of_an_unknown_line_is_refused(api, order):
    response = api.post_json(
        om(order, "captures"),
        {
            "captured_amount": 100,
            "order_lines": [{"reference": "HAT-9", "quantity": 1}],
        },
    )

    assert response.status_code == 422
    assert "HAT-9" in response.json()["error_messages"][0]


def test_a_return_fee_line_in_a_capture_is_refused(api, order):
    response = api.post_json(
        om(order, "captures"),
        {
            "captured_amount": 100,
            "order_lines": [{"type": "return_fee", "total_amount": -5}],
        },
    )

    assert response.status_code == 400
    assert "order_lines[0]" in response.json()["error_messages"][0]
