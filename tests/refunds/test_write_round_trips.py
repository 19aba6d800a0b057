"""Issue 16: a refund's reads and writes travel together
(``portal.pipeline.sent_together``): the order's rows and the idempotency key
in one round trip, then what it writes and reads nothing back from, the
notification's job included."""

import pytest
from django.db import connection

from tests.factories import line

pytestmark = pytest.mark.postgres


def test_the_notification_job_is_written_in_the_refunds_pipeline(make_order, settings):
    import psycopg
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    order = make_order(lines=[line("A", 4000, 2), line("B", 6000)], capture=True)
    in_pipeline = {}

    def record(execute, sql, params, many, context):
        status = connection.connection.pgconn.pipeline_status
        in_pipeline[sql.split("(")[0].strip()] = status != psycopg.pq.PipelineStatus.OFF
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        refund = order.refund_lines([("A", 1)])
    job = DBTaskResult.objects.get()
    assert job.args_kwargs["args"] == [refund.pk]
    assert in_pipeline['INSERT INTO "django_tasks_database_dbtaskresult"']
    assert in_pipeline['INSERT INTO "refunds_refundline"']
    assert not in_pipeline['INSERT INTO "refunds_refund"']  # its key is read back


def test_the_confirm_reads_the_order_its_rows_and_the_key_in_one_round_trip(
    portal_client, captured_order, django_capture_on_commit_callbacks
):
    """The order's row is locked first, then its rows and the idempotency key's
    row, all in one pipeline (``OrderState.lock_merchants_order``); the
    engine's replay check reads the key from there, not again."""
    import psycopg
    from django.urls import reverse

    from refunds.models import Refund

    url = reverse("refunds:create", args=[captured_order.order_id])
    from tests.refunds.test_views_refund import fingerprint_of

    data = {"kind": "complete", "idempotency_key": "k-one-trip"}
    data["expected_fingerprint"] = fingerprint_of(portal_client, captured_order, data)
    data["action"] = "confirm"
    statements = []

    def record(execute, sql, params, many, context):
        status = connection.connection.pgconn.pipeline_status
        statements.append((sql, status != psycopg.pq.PipelineStatus.OFF))
        return execute(sql, params, many, context)

    with (
        django_capture_on_commit_callbacks(execute=True),
        connection.execute_wrapper(record),
    ):
        response = portal_client.post(url, data)
    assert response.status_code == 302
    locked = [
        (sql.split(" FROM ")[1].split()[0], piped)
        for sql, piped in statements
        if sql.startswith("SELECT") and "FOR UPDATE" in sql
    ]
    assert locked[0] == ('"portal_order"', True)
    assert ('"refunds_refundrequestkey"', True) in locked
    keys_read = [s for s, _ in statements if 'FROM "refunds_refundrequestkey"' in s]
    assert len(keys_read) == 1
    # Sent again: answered from the key read with the order, nothing refunded twice.
    with django_capture_on_commit_callbacks(execute=True):
        assert portal_client.post(url, data).status_code == 302
    assert Refund.objects.filter(order=captured_order).count() == 1


def _confirm_data(portal_client, order, key: str) -> dict:
    from tests.refunds.test_views_refund import fingerprint_of

    data = {"kind": "complete", "idempotency_key": key}
    data["expected_fingerprint"] = fingerprint_of(portal_client, order, data)
    return {**data, "action": "confirm"}


def test_a_key_the_form_refuses_is_not_read_with_the_order(
    portal_client, captured_order
):
    """Found by the fresh review: a NUL byte in the key reached PostgreSQL
    (500) before the form could refuse it."""
    from django.urls import reverse

    from refunds.models import Refund

    url = reverse("refunds:create", args=[captured_order.order_id])
    data = _confirm_data(portal_client, captured_order, "ok-key")
    response = portal_client.post(url, {**data, "idempotency_key": "ab\x00cd"})
    assert response.status_code == 200  # the form again, not a 500
    assert response.context["form"].errors["idempotency_key"] == [
        "Null characters are not allowed."
    ]
    assert not Refund.objects.filter(order=captured_order).exists()


def test_a_key_sent_with_spaces_is_read_once_as_the_form_cleans_it(
    portal_client, captured_order, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    from refunds.models import Refund

    url = reverse("refunds:create", args=[captured_order.order_id])
    data = _confirm_data(portal_client, captured_order, "  padded-key  ")
    reads = []

    def record(execute, sql, params, many, context):
        if 'FROM "refunds_refundrequestkey"' in sql:
            reads.append(params)
        return execute(sql, params, many, context)

    for _ in range(2):
        with (
            django_capture_on_commit_callbacks(execute=True),
            connection.execute_wrapper(record),
        ):
            assert portal_client.post(url, data).status_code == 302
    assert len(reads) == 2  # one per request
    assert all("padded-key" in params for params in reads)
    assert Refund.objects.filter(order=captured_order).count() == 1


def test_a_preview_reads_the_order_and_its_rows_in_one_round_trip(
    portal_client, make_order, staff_user
):
    """The live preview reads the order by the merchant and its order id
    together with its rows and the customer's plans
    (``OrderState.merchants_order``): one pipeline after the user's query,
    not the order first and its rows after it."""
    import psycopg
    from django.urls import reverse

    order = make_order(lines=[line("A", 4000, 2), line("B", 6000)], capture=True)
    order.refund_lines([("B", 1)], by=staff_user)  # refunds to sum, too
    url = reverse("refunds:preview", args=[order.order_id])
    statements = []

    def record(execute, sql, params, many, context):
        status = connection.connection.pgconn.pipeline_status
        statements.append((sql.split(" FROM ")[1].split()[0], status))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        response = portal_client.post(
            url,
            {"kind": "complete", "idempotency_key": "k"},
            headers={"HX-Request": "true"},
        )
    assert response.status_code == 200
    assert response.context["plan"].refunded_amount == 8000  # 2 × A
    # The session and the user (authentication) by themselves; then the order
    # and everything the preview shows of it, in one pipeline.
    off = psycopg.pq.PipelineStatus.OFF
    assert {table for table, status in statements if status == off} <= {
        '"django_session"',
        '"auth_user"',
    }
    assert [table for table, status in statements if status != off] == [
        '"portal_order"',
        '"portal_capture"',
        '"portal_orderline"',
        '"portal_captureline"',
        '"customers_installment"',
        '"refunds_refundallocation"',
    ]
