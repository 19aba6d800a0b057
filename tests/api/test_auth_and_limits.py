"""Authentication, malformed input, size limits and the rate limit."""

import base64
import json

import pytest

from portal.api.models import ApiCredential
from portal.models import OrderStatus
from tests.api.helpers import ApiClient, basic, om

pytestmark = pytest.mark.django_db


def test_no_credentials_is_401_with_www_authenticate(anonymous, order):
    response = anonymous.get(om(order))

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic ")
    assert response.json()["error_code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer abc",
        "Basic",
        "Basic not-base64!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
    ],
)
def test_malformed_authorization_headers_are_401(order, authorization):
    response = ApiClient(authorization).get(om(order))

    assert response.status_code == 401
    assert "WWW-Authenticate" in response


def test_a_wrong_secret_is_401(credential, order):
    cred, secret = credential

    response = ApiClient(basic(cred.username, secret + "x")).post(om(order, "cancel"))

    assert response.status_code == 401
    order.refresh_from_db()
    assert order.status == OrderStatus.AUTHORIZED


def test_a_revoked_credential_is_401(api, credential, order):
    credential[0].revoke()

    assert api.get(om(order)).status_code == 401


def test_the_secret_is_stored_hashed(credential):
    cred, secret = credential
    stored = ApiCredential.objects.get(pk=cred.pk)

    assert secret not in stored.secret_hash
    assert len(secret) >= 40
    assert ApiCredential.authenticate(cred.username, secret) == stored


def test_use_is_recorded_on_the_credential(api, credential, order):
    api.get(om(order))

    assert ApiCredential.objects.get(pk=credential[0].pk).last_used_at is not None


def test_broken_json_is_400_and_changes_nothing(api, captured_order):
    response = api.post(
        om(captured_order, "refunds"),
        '{"refunded_amount": 10',
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_VALUE"
    assert "not valid JSON" in response.json()["error_messages"][0]
    assert captured_order.refunds.count() == 0


@pytest.mark.parametrize("raw", ["NaN", '{"refunded_amount": Infinity}', "[" * 100000])
def test_json_that_python_would_accept_but_json_does_not_is_400(
    api, captured_order, raw
):
    response = api.post(
        om(captured_order, "refunds"), raw, content_type="application/json"
    )

    assert response.status_code == 400


def test_a_body_that_is_not_utf8_is_400(api, captured_order):
    response = api.post(
        om(captured_order, "refunds"), b'{"a": "\xff"}', content_type="application/json"
    )

    assert response.status_code == 400


def test_wrong_content_type_is_415(api, captured_order):
    response = api.post(
        om(captured_order, "refunds"),
        "refunded_amount=100",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 415
    assert response.json()["error_code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_a_missing_body_is_400(api, captured_order):
    response = api.post_json(om(captured_order, "refunds"))

    assert response.status_code == 400
    assert response.json()["error_messages"] == ["body: a JSON object is required."]


def test_a_body_over_one_megabyte_is_413(api, captured_order):
    body = json.dumps({"refunded_amount": 100, "description": "x" * (1024 * 1024)})

    response = api.post(
        om(captured_order, "refunds"), body, content_type="application/json"
    )

    assert response.status_code == 413
    assert response.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    assert captured_order.refunds.count() == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"refunded_amount": True}, "refunded_amount"),
        ({"refunded_amount": 1.5}, "refunded_amount"),
        ({"refunded_amount": "100"}, "refunded_amount"),
        ({"refunded_amount": None}, "refunded_amount"),
        ({"refunded_amount": 0}, "refunded_amount"),
        ({"refunded_amount": -100}, "refunded_amount"),
        ({"refunded_amount": 200_000_001}, "refunded_amount"),
        ({"refunded_amount": 10**40}, "refunded_amount"),
        ({}, "refunded_amount"),
        ({"refunded_amount": 100, "description": "x" * 256}, "description"),
        ({"refunded_amount": 100, "reference": ["a"]}, "reference"),
        ({"refunded_amount": 100, "order_lines": {}}, "order_lines"),
        ({"refunded_amount": 100, "order_lines": ["TSHIRT-1"]}, "order_lines[0]"),
        # A line without a reference is a free-text line: Klarna's required fields.
        (
            {"refunded_amount": 100, "order_lines": [{"quantity": 1}]},
            "order_lines[0].total_amount",
        ),
        (
            {
                "refunded_amount": 100,
                "order_lines": [{"name": "Price adjustment", "total_amount": 100}],
            },
            "order_lines[0].quantity",
        ),
        (
            {
                "refunded_amount": 100,
                "order_lines": [
                    {"name": "Price adjustment", "quantity": 1, "total_amount": 100}
                ],
            },
            "order_lines[0].unit_price",
        ),
        (
            {"refunded_amount": 100, "order_lines": [{"reference": "TSHIRT-1"}]},
            "order_lines[0].quantity",
        ),
        (
            {
                "refunded_amount": 100,
                "order_lines": [{"reference": "TSHIRT-1", "quantity": -1}],
            },
            "order_lines[0].quantity",
        ),
        (
            {
                "refunded_amount": 100,
                "order_lines": [{"reference": "TSHIRT-1", "quantity": False}],
            },
            "order_lines[0].quantity",
        ),
        (
            {
                "refunded_amount": 100,
                "order_lines": [
                    {"reference": "TSHIRT-1", "quantity": 1, "type": "hat"}
                ],
            },
            "order_lines[0].type",
        ),
        (
            {
                "refunded_amount": 100,
                "order_lines": [{"reference": "T", "quantity": 1}] * 1001,
            },
            "order_lines",
        ),
        (["refunded_amount", 100], "body"),
        ("100", "body"),
    ],
)
def test_malformed_refund_bodies_are_400_naming_the_field(
    api, captured_order, body, field
):
    response = api.post_json(om(captured_order, "refunds"), body)

    assert response.status_code == 400, response.content
    message = response.json()["error_messages"][0]
    assert message.startswith(f"{field}:")
    assert captured_order.refunds.count() == 0
    captured_order.refresh_from_db()
    assert captured_order.refunded_amount == 0


def test_a_method_the_endpoint_does_not_have_is_405(api, order):
    response = api.delete(om(order))

    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert response.json()["error_code"] == "METHOD_NOT_ALLOWED"


def test_an_unknown_api_path_is_a_json_404(api):
    response = api.get("/ordermanagement/v1/shipments")

    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"


def test_too_many_requests_is_429_with_retry_after(api, order, settings):
    settings.API_RATE_LIMIT = (3, 60)

    statuses = [api.get(om(order)).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    response = api.get(om(order))
    assert response.json()["error_code"] == "TOO_MANY_REQUESTS"
    assert 0 < int(response["Retry-After"]) <= 60


def test_the_rate_limit_is_per_merchant(api, other_api, order, settings):
    settings.API_RATE_LIMIT = (2, 60)
    for _ in range(3):
        api.get(om(order))

    assert other_api.get(om(order)).status_code == 404  # counted apart, not 429


def test_the_api_needs_no_csrf_token(credential, order):
    cred, secret = credential
    client = ApiClient(basic(cred.username, secret), enforce_csrf_checks=True)

    assert client.post(om(order, "cancel")).status_code == 204


def test_nul_characters_are_refused_not_stored(api, captured_order):
    """PostgreSQL text cannot hold NUL; such input is a 4xx, never a 500."""
    response = api.post_json(
        om(captured_order, "refunds"), {"refunded_amount": 100, "description": "a\x00b"}
    )

    assert response.status_code == 400
    assert response.json()["error_messages"][0].startswith("description:")
    assert api.get("/ordermanagement/v1/orders/%00").status_code == 404
    nul_user = ApiClient("Basic " + base64.b64encode(b"om_\x00:secret").decode())
    assert nul_user.get(om(captured_order)).status_code == 401
