"""Issue 16: what a refund writes and reads nothing back from travels together
(``portal.pipeline.sent_together``), the notification's job included."""

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
