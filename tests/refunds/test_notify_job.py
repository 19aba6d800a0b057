"""The refund's notification job is enqueued so that it runs only after the
refund committed, whichever task backend is configured."""

import pytest
from django.db import transaction
from django.tasks import task_backends
from django_tasks_db.models import DBTaskResult

DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
DUMMY_TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def test_with_the_database_backend_the_job_commits_with_the_refund(
    captured_order, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = DATABASE_TASKS
    with django_capture_on_commit_callbacks() as callbacks:
        refund = captured_order.refund_lines([("TSHIRT-1", 1)])
    assert callbacks == []  # written in the refund's transaction, not after it
    (job,) = DBTaskResult.objects.all()
    assert job.task_path == "customers.tasks.notify_refund"
    assert job.args_kwargs == {"args": [refund.pk], "kwargs": {}}


def test_with_the_database_backend_a_rolled_back_refund_leaves_no_job(
    captured_order, settings
):
    settings.TASKS = DATABASE_TASKS
    with pytest.raises(RuntimeError), transaction.atomic():
        captured_order.refund_lines([("TSHIRT-1", 1)])
        raise RuntimeError("the caller's transaction fails after the refund")
    assert not DBTaskResult.objects.exists()


def test_any_other_backend_gets_the_job_after_the_commit(
    captured_order, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = DUMMY_TASKS
    with django_capture_on_commit_callbacks() as callbacks:
        refund = captured_order.refund_lines([("TSHIRT-1", 1)])
        assert task_backends["default"].results == []
    assert len(callbacks) == 1
    callbacks[0]()
    (job,) = task_backends["default"].results
    assert job.args == [refund.pk]
