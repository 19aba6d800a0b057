"""Every API request is logged with its correlation id."""

import uuid

import pytest

from portal.api.models import ApiRequestLog
from tests.api.helpers import om

pytestmark = pytest.mark.django_db


def test_every_response_carries_a_correlation_id_that_is_logged(api, credential, order):
    response = api.get(om(order))

    correlation_id = uuid.UUID(response["Klarna-Correlation-Id"])
    entry = ApiRequestLog.objects.get(correlation_id=correlation_id)
    assert (entry.method, entry.path, entry.status) == ("GET", om(order), 200)
    assert (entry.merchant, entry.credential) == (order.merchant, credential[0])
    assert entry.error_code == ""


def test_errors_are_logged_with_their_code(api, captured_order):
    response = api.post(om(captured_order, "cancel"))

    entry = ApiRequestLog.objects.get(correlation_id=response["Klarna-Correlation-Id"])
    assert (entry.status, entry.error_code) == (403, "CANCEL_NOT_ALLOWED")
    assert str(entry.correlation_id) == response.json()["correlation_id"]


def test_unauthenticated_requests_are_logged_without_a_merchant(anonymous, order):
    anonymous.get(om(order))

    entry = ApiRequestLog.objects.get()
    assert (entry.status, entry.merchant, entry.error_code) == (
        401,
        None,
        "UNAUTHORIZED",
    )
