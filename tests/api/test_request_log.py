"""Every API request is logged with its correlation id."""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from portal.api.models import ApiAuthFailure, ApiIdempotencyRecord, ApiRequestLog
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


def test_unauthenticated_requests_are_counted_per_address_not_logged_each(
    anonymous, order
):
    for _ in range(3):
        anonymous.get(om(order))

    assert not ApiRequestLog.objects.exists()
    (row,) = ApiAuthFailure.objects.all()
    assert (row.ip_address, row.failures, row.refused) == ("127.0.0.1", 3, 0)


def test_pruning_deletes_expired_keys_and_old_log_rows(api, order):
    api.post(om(order, "cancel"), headers={"Klarna-Idempotency-Key": "k1"})
    ApiIdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    ApiRequestLog.objects.update(created_at=timezone.now() - timedelta(days=91))
    api.get(om(order))

    call_command("prune_api_records", stdout=StringIO())

    assert not ApiIdempotencyRecord.objects.exists()
    assert ApiRequestLog.objects.count() == 1
