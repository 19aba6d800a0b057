"""The OpenAPI document, the reference page, and schemathesis run against both
the document and the running API (through the WSGI app, with valid credentials)."""

import copy

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from jsonschema import Draft4Validator
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.api.openapi import (
    EXAMPLE_CAPTURE_ID,
    EXAMPLE_ORDER_ID,
    EXAMPLE_REFUND_ID,
    openapi_document,
)
from portal.models import Capture
from refunds.models import Refund
from tests.api.conftest import WSGI_APP
from tests.api.helpers import basic
from tests.factories import OrderFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.mark.django_db
def test_the_openapi_document_is_served_without_authentication(client):
    response = client.get("/ordermanagement/v1/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document == openapi_document()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert set(paths) >= {
        "/ordermanagement/v1/orders/{order_id}",
        "/ordermanagement/v1/orders/{order_id}/captures",
        "/ordermanagement/v1/orders/{order_id}/refunds",
        "/ordermanagement/v1/orders/{order_id}/refunds/{refund_id}",
        "/ordermanagement/v1/orders/{order_id}/cancel",
        "/ordermanagement/v1/orders/{order_id}/merchant-references",
        "/payments/v1/orders",
    }


@pytest.mark.django_db
def test_the_reference_page_lists_every_operation(client):
    response = client.get("/ordermanagement/v1/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    for operation in ("createRefund", "createCapture", "cancelOrder", "placeOrder"):
        assert f'id="{operation}"' in html
    assert "order_lines[].total_amount" in html
    assert "<script" not in html.split("</head>")[1]  # no inline scripts (CSP)


@pytest.fixture
def example_order(db, merchant, customer, settings):
    """The order the document's examples point at: T-shirts captured, one refunded."""
    settings.API_RATE_LIMIT = (100_000, 60)
    order = OrderFactory(
        merchant=merchant, customer=customer, order_id=EXAMPLE_ORDER_ID
    )
    capture = order.capture(lines=[("TSHIRT-1", 2)])
    Capture.objects.filter(pk=capture.pk).update(capture_id=EXAMPLE_CAPTURE_ID)
    refund = order.refund_lines([("TSHIRT-1", 1)])
    Refund.objects.filter(pk=refund.pk).update(refund_id=EXAMPLE_REFUND_ID)
    return order


# Loaded from the same function that serves /ordermanagement/v1/openapi.json (the
# served copy is compared with it above); calls go through the WSGI app.
schema = schemathesis.openapi.from_dict(copy.deepcopy(openapi_document()))
# A generated body past the 1 MB limit is rightly refused with 413 (documented).
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]


@schema.parametrize()
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_keeps_to_its_openapi_document(
    case, credential, example_order, wsgi_keeps_the_test_connection
):
    cred, secret = credential

    case.call_and_validate(
        app=WSGI_APP,
        headers={"Authorization": basic(cred.username, secret)},
        checks=CHECKS,
    )


@pytest.mark.django_db
def test_the_reference_page_without_a_slash_redirects(client):
    response = client.get("/ordermanagement/v1/docs")

    assert response["Location"] == "/ordermanagement/v1/docs/"


KLARNA_OPERATIONS = {
    "listCaptures",
    "listRefunds",
    "updateAuthorization",
    "updateCustomerDetails",
    "acknowledgeOrder",
    "appendOrderShippingInfo",
    "appendShippingInfo",
    "triggerSendOut",
    "getOptionsForExtendDueDate",
    "extendDueDate",
}


def _operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_document_describes_the_operations_issue_13_added():
    ids = {op["operationId"] for _, _, op in _operations(openapi_document())}

    assert ids >= KLARNA_OPERATIONS


@pytest.mark.django_db
def test_the_reference_page_shows_every_operation_with_an_example_exchange(client):
    html = client.get("/ordermanagement/v1/docs/").content.decode()

    for path, method, operation in _operations(openapi_document()):
        section = html.split(f'id="{operation["operationId"]}"', 1)[1]
        section = section.split('<article class="card operation"', 1)[0]
        assert f"{method.upper()} {path.split('{')[0]}" in section
        assert "HTTP/1.1 2" in section, operation["operationId"]


def test_every_example_response_matches_its_schema():
    document = openapi_document()
    checked = 0
    for _path, _method, operation in _operations(document):
        for response in operation["responses"].values():
            content = response.get("content", {}).get("application/json", {})
            if "example" not in content:
                continue
            schema = {
                "allOf": [content["schema"]],
                "components": document["components"],
            }
            errors = list(Draft4Validator(schema).iter_errors(content["example"]))
            assert errors == [], (operation["operationId"], errors[:1])
            checked += 1
    assert checked >= 7
