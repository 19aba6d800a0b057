"""Every response of every Klarna operation, success and error, checked against
Klarna's own published description; and schemathesis run against that
description through the WSGI app.

Klarna's file is read at test time from ``../shared/reference`` (never copied into
the project); without it these tests skip and say why.
"""

import json

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from portal.models import Capture, PaymentProduct
from tests.api.conftest import WSGI_APP
from tests.api.helpers import basic, om
from tests.api.klarna import (
    MISSING,
    klarna_document,
    klarna_path,
    operations,
    response_errors,
)
from tests.factories import OrderFactory, line

KLARNA = klarna_document()
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(KLARNA is None, reason=MISSING),
]

TRACKING = {"shipping_company": "DHL Paket", "tracking_number": "003404341610"}
NOWHERE = "00000000-0000-4000-8000-000000000000"


class Calls:
    """Calls the API and keeps each response with Klarna's path template."""

    def __init__(self, api):
        self.api = api
        self.responses = []

    def __call__(self, method: str, path: str, body=None, *, expect: int):
        send = {
            "GET": lambda: self.api.get(path),
            "POST": lambda: self.api.post_json(path, body),
            "PATCH": lambda: self.api.patch_json(path, body),
        }[method]
        response = send()
        assert response.status_code == expect, (method, path, response.content)
        content = response.content
        parsed = json.loads(content) if content.strip() else None
        self.responses.append(
            (method, klarna_path(path, KLARNA), response.status_code, content, parsed)
        )
        return response


@pytest.fixture
def exercised(api, merchant, customer):
    """Every Klarna operation, answered with success and with an error."""
    call = Calls(api)
    invoice = OrderFactory(
        merchant=merchant,
        customer=customer,
        payment_product=PaymentProduct.PAY_LATER,
        lines=[line("TSHIRT-1", 10000, 2), line("JEANS-1", 20000)],
        billing_address={"given_name": "Maja", "city": "Berlin", "country": "DE"},
    )
    open_order = OrderFactory(merchant=merchant, customer=customer)
    to_cancel = OrderFactory(merchant=merchant, customer=customer)
    part_captured = OrderFactory(merchant=merchant, customer=customer)
    part_captured.capture(lines=[("JEANS-1", 1)])
    nowhere = om(invoice).replace(str(invoice.order_id), NOWHERE)

    call("GET", om(invoice), expect=200)
    call("GET", nowhere, expect=404)
    call("POST", om(invoice, "acknowledge"), expect=204)
    call("POST", f"{nowhere}/acknowledge", expect=404)
    call(
        "PATCH",
        om(invoice, "authorization"),
        {
            "order_amount": 20000,
            "order_lines": [
                {
                    "reference": "TSHIRT-1",
                    "name": "T-shirt",
                    "quantity": 2,
                    "unit_price": 10000,
                    "tax_rate": 2500,
                    "total_amount": 20000,
                }
            ],
        },
        expect=204,
    )
    call(
        "PATCH",
        om(invoice, "authorization"),
        {"order_amount": 90000, "order_lines": []},
        expect=403,
    )
    call(
        "PATCH",
        om(open_order, "customer-details"),
        {"shipping_address": {}},
        expect=204,
    )
    call(
        "POST",
        om(open_order, "shipping-info"),
        {"shipping_info": [TRACKING]},
        expect=204,
    )
    call("POST", f"{nowhere}/shipping-info", {"shipping_info": [TRACKING]}, expect=404)
    call("POST", om(invoice, "captures"), {"captured_amount": 400000}, expect=403)
    call("POST", f"{nowhere}/captures", {"captured_amount": 100}, expect=404)
    created = call(
        "POST",
        om(invoice, "captures"),
        {
            "captured_amount": 20000,
            "order_lines": [{"reference": "TSHIRT-1", "quantity": 2}],
            "shipping_info": [TRACKING],
        },
        expect=201,
    )
    capture = om(invoice, "captures", created["Capture-Id"])
    nocapture = om(invoice, "captures", NOWHERE)
    call("GET", om(invoice, "captures"), expect=200)
    call("GET", f"{nowhere}/captures", expect=404)
    call("GET", capture, expect=200)
    call("GET", nocapture, expect=404)
    call("POST", f"{capture}/shipping-info", {"shipping_info": [TRACKING]}, expect=204)
    call(
        "POST", f"{nocapture}/shipping-info", {"shipping_info": [TRACKING]}, expect=404
    )
    call("POST", f"{capture}/trigger-send-out", expect=204)
    call("POST", f"{nocapture}/trigger-send-out", expect=404)
    call("GET", f"{capture}/extend-due-date-options", expect=200)
    call("GET", f"{nocapture}/extend-due-date-options", expect=404)
    call("PATCH", f"{capture}/extend-due-date", {"number_of_days": 7}, expect=204)
    call("PATCH", f"{capture}/extend-due-date", {"number_of_days": 7}, expect=403)
    call("PATCH", f"{nocapture}/extend-due-date", {"number_of_days": 7}, expect=404)
    call(
        "PATCH",
        om(invoice, "customer-details"),
        {"shipping_address": {"city": "Köln"}},
        expect=403,
    )
    refunded = call(
        "POST",
        om(invoice, "refunds"),
        {
            "refunded_amount": 10500,
            "order_lines": [
                {
                    "reference": "TSHIRT-1",
                    "name": "T-shirt",
                    "quantity": 1,
                    "unit_price": 10000,
                    "total_amount": 10000,
                },
                {
                    "name": "Price adjustment",
                    "quantity": 1,
                    "unit_price": 500,
                    "total_amount": 500,
                },
            ],
        },
        expect=201,
    )
    call("POST", om(invoice, "refunds"), {"refunded_amount": 10**9}, expect=400)
    call("POST", om(invoice, "refunds"), {"refunded_amount": 90000}, expect=403)
    call("POST", f"{nowhere}/refunds", {"refunded_amount": 100}, expect=404)
    call("GET", om(invoice, "refunds", refunded["Refund-Id"]), expect=200)
    call("GET", om(invoice, "refunds", NOWHERE), expect=404)
    call("POST", om(open_order, "extend-authorization-time"), expect=204)
    call(
        "PATCH",
        om(open_order, "merchant-references"),
        {"merchant_reference1": "A-1"},
        expect=204,
    )
    call("POST", om(part_captured, "release-remaining-authorization"), expect=204)
    call("POST", om(open_order, "release-remaining-authorization"), expect=403)
    call("POST", om(to_cancel, "cancel"), expect=204)
    call("POST", om(invoice, "cancel"), expect=403)
    call("POST", om(to_cancel, "extend-authorization-time"), expect=403)
    call("PATCH", om(to_cancel, "merchant-references"), {}, expect=403)
    call("GET", om(invoice), expect=200)
    return call.responses


def test_every_klarna_operation_is_exercised(exercised):
    assert {(method, path) for method, path, *_ in exercised} == operations(KLARNA)


def test_every_response_body_is_what_klarna_describes(exercised):
    differences = [
        (method, path, status, str(error)[:300])
        for method, path, status, content, parsed in exercised
        for error in response_errors(KLARNA, method, path, status, content, parsed)
    ]

    assert differences == []


# Schemathesis against Klarna's description -------------------------------------------


if KLARNA is not None:
    klarna_schema = schemathesis.openapi.from_dict(json.loads(json.dumps(KLARNA)))

    @klarna_schema.parametrize()
    @hypothesis_settings(
        max_examples=8,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    def test_the_api_keeps_to_klarnas_description(
        case, credential, merchant, customer, settings, wsgi_keeps_the_test_connection
    ):
        """Generated Klarna requests on real ids: no server error, and every
        status Klarna documents comes with the body it describes."""
        settings.API_RATE_LIMIT = (100_000, 60)
        # One order for all examples of an operation, made by the first example.
        capture = Capture.objects.filter(order__merchant=merchant).first()
        if capture is None:
            order = OrderFactory(
                merchant=merchant,
                customer=customer,
                payment_product=PaymentProduct.PAY_LATER,
            )
            capture = order.capture(lines=[("TSHIRT-1", 1)])
            order.refund_lines([("TSHIRT-1", 1)])
        order = capture.order
        ids = {
            "order_id": str(order.order_id),
            "capture_id": str(capture.capture_id),
            "refund_id": str(order.refunds.values_list("refund_id", flat=True)[0]),
        }
        for name in case.path_parameters or {}:
            case.path_parameters[name] = ids[name]
        cred, secret = credential

        case.call_and_validate(
            app=WSGI_APP,
            headers={"Authorization": basic(cred.username, secret)},
            checks=[not_a_server_error, response_schema_conformance],
        )

else:

    def test_the_api_keeps_to_klarnas_description():
        pytest.skip(MISSING)
