"""Klarna-Idempotency-Key: replays, conflicts, expiry and concurrent repeats."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from portal.api.models import ApiIdempotencyRecord, ApiRequestLog
from portal.models import Capture
from tests.api.helpers import ApiClient, basic, om
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

KEY = {"Klarna-Idempotency-Key": "8f1e6b1c-capture-1"}


def test_two_captures_with_the_same_key_record_one(api, order):
    """Klarna: repeating a capture with the same idempotency key captures once."""
    body = {
        "captured_amount": 10000,
        "order_lines": [{"reference": "TSHIRT-1", "quantity": 1}],
    }

    first = api.post_json(om(order, "captures"), body, headers=KEY)
    second = api.post_json(om(order, "captures"), body, headers=KEY)

    assert (first.status_code, second.status_code) == (201, 201)
    assert first["Capture-Id"] == second["Capture-Id"]
    assert first["Location"] == second["Location"]
    assert second["Idempotent-Replayed"] == "true"
    assert first["Klarna-Correlation-Id"] != second["Klarna-Correlation-Id"]
    assert Capture.objects.filter(order=order).count() == 1
    order.refresh_from_db()
    assert order.captured_amount == 10000


def test_a_repeated_refund_returns_the_first_refund(api, captured_order):
    body = {"refunded_amount": 5000}
    key = {"Klarna-Idempotency-Key": "refund-1"}

    first = api.post_json(om(captured_order, "refunds"), body, headers=key)
    second = api.post_json(om(captured_order, "refunds"), body, headers=key)

    assert first["Refund-Id"] == second["Refund-Id"]
    captured_order.refresh_from_db()
    assert captured_order.refunded_amount == 5000


def test_the_same_key_with_a_different_body_replays_the_first_result(api, order):
    """Issue 13 case 3: Klarna documents that only the key matters."""
    first = api.post_json(om(order, "captures"), {"captured_amount": 100}, headers=KEY)

    response = api.post_json(
        om(order, "captures"), {"captured_amount": 200}, headers=KEY
    )

    assert response.status_code == 201
    assert response["Capture-Id"] == first["Capture-Id"]
    assert response["Idempotent-Replayed"] == "true"
    order.refresh_from_db()
    assert order.captured_amount == 100


def test_the_same_key_on_another_endpoint_is_409_conflict(api, order):
    api.post_json(om(order, "captures"), {"captured_amount": 100}, headers=KEY)

    response = api.post_json(
        om(order, "refunds"), {"captured_amount": 100}, headers=KEY
    )

    assert response.status_code == 409


def test_key_order_and_whitespace_in_the_json_do_not_matter(api, order):
    url = om(order, "captures")
    api.post(
        url,
        '{"captured_amount": 100, "reference": "a"}',
        content_type="application/json",
        headers=KEY,
    )

    response = api.post(
        url,
        '{ "reference":"a","captured_amount":100 }',
        content_type="application/json",
        headers=KEY,
    )

    assert response.status_code == 201
    assert order.captures.count() == 1


def test_a_refusal_is_replayed_too(api, captured_order):
    key = {"Klarna-Idempotency-Key": "too-much"}
    body = {"refunded_amount": 50000}

    first = api.post_json(om(captured_order, "refunds"), body, headers=key)
    second = api.post_json(om(captured_order, "refunds"), body, headers=key)

    assert first.status_code == second.status_code == 403
    assert first.json() == second.json()


def test_a_malformed_request_does_not_use_up_the_key(api, order):
    bad = api.post_json(om(order, "captures"), {"captured_amount": "x"}, headers=KEY)
    good = api.post_json(om(order, "captures"), {"captured_amount": 100}, headers=KEY)

    assert (bad.status_code, good.status_code) == (400, 201)


def test_a_key_older_than_24_hours_starts_afresh(api, order):
    api.post_json(om(order, "captures"), {"captured_amount": 100}, headers=KEY)
    ApiIdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))

    response = api.post_json(
        om(order, "captures"), {"captured_amount": 100}, headers=KEY
    )

    assert response.status_code == 201
    assert order.captures.count() == 2


def test_keys_are_per_merchant(api, other_api, order, customer):
    other_order = OrderFactory(merchant=other_api.merchant, customer=customer)

    first = api.post(om(order, "cancel"), headers=KEY)
    second = other_api.post(om(other_order, "cancel"), headers=KEY)

    assert (first.status_code, second.status_code) == (204, 204)
    assert "Idempotent-Replayed" not in second
    other_order.refresh_from_db()
    assert other_order.status == "CANCELLED"


def test_204_responses_are_replayed(api, order):
    first = api.post(om(order, "cancel"), headers=KEY)
    second = api.post(om(order, "cancel"), headers=KEY)

    assert (first.status_code, second.status_code) == (204, 204)


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_an_idempotency_key_must_be_1_to_255_characters(api, order, key):
    response = api.post_json(
        om(order, "captures"),
        {"captured_amount": 100},
        headers={"Klarna-Idempotency-Key": key},
    )

    assert response.status_code == 400
    assert order.captures.count() == 0


def test_replays_are_marked_in_the_request_log(api, order):
    api.post(om(order, "cancel"), headers=KEY)
    api.post(om(order, "cancel"), headers=KEY)

    assert list(
        ApiRequestLog.objects.order_by("pk").values_list("replayed", flat=True)
    ) == [
        False,
        True,
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_with_the_same_key_capture_once(
    credential, merchant, customer
):
    order = OrderFactory(merchant=merchant, customer=customer)
    cred, secret = credential
    body = {"captured_amount": 10000}
    statuses, capture_ids = [], []
    barrier = threading.Barrier(4)

    def call():
        try:
            client = ApiClient(basic(cred.username, secret))
            barrier.wait()
            response = client.post_json(om(order, "captures"), body, headers=KEY)
            statuses.append(response.status_code)
            capture_ids.append(response.get("Capture-Id"))
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [201] * 4
    assert len(set(capture_ids)) == 1
    assert Capture.objects.filter(order=order).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_keyed_write_is_logged_in_its_own_transaction_and_once(api, captured_order):
    """Issue 16: the request's log row commits with the refund (one commit, not
    two), the key is claimed without a savepoint, and each request (the first
    and its replay) has exactly one log row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.api.models import ApiRequestLog

    body = {"refunded_amount": 5000}
    key = {"Klarna-Idempotency-Key": "refund-log-1"}
    with CaptureQueriesContext(connection) as queries:
        first = api.post_json(om(captured_order, "refunds"), body, headers=key)
    assert first.status_code == 201
    sql = [q["sql"] for q in queries]
    log_insert = next(
        i for i, s in enumerate(sql) if s.startswith('INSERT INTO "api_apirequestlog"')
    )
    commits = [i for i, s in enumerate(sql) if s == "COMMIT"]
    assert commits and log_insert < commits[-1]
    claim = next(
        i
        for i, s in enumerate(sql)
        if s.startswith('INSERT INTO "api_apiidempotencyrecord"')
    )
    assert not sql[claim - 1].startswith("SAVEPOINT")

    second = api.post_json(om(captured_order, "refunds"), body, headers=key)
    assert second["Idempotent-Replayed"] == "true"
    for response in (first, second):
        correlation = response["Klarna-Correlation-Id"]
        assert ApiRequestLog.objects.filter(correlation_id=correlation).count() == 1
