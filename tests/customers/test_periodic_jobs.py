"""`manage.py run_periodic_jobs`: once, in a loop, or enqueued for the worker."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.tasks import default_task_backend
from django.test import override_settings
from django.utils import timezone

from customers.models import Installment, InstallmentStatus, PlanStatus, Repayment
from customers.tasks import run_periodic
from portal.models import PaymentProduct

pytestmark = pytest.mark.django_db


def test_the_command_runs_every_periodic_job_once(make_order):
    order = make_order(product=PaymentProduct.PAY_NOW, capture=True)
    refund = order.refund_amount(1000)
    Repayment.objects.update(process_after=timezone.now() - timedelta(seconds=1))
    out = StringIO()
    call_command("run_periodic_jobs", stdout=out)
    assert "repayments moved: 1" in out.getvalue()
    assert refund.repayments.get().status == "processing"


def test_due_installments_are_charged_and_a_fully_paid_plan_becomes_paid(
    captured_order,
):
    plan = captured_order.captures.get().plan
    plan.installments.update(due_date=timezone.localdate() - timedelta(days=1))
    assert Installment.objects.collect_due() == 3
    plan.refresh_from_db()
    assert plan.status == PlanStatus.PAID
    assert set(plan.installments.values_list("status", flat=True)) == {
        InstallmentStatus.PAID
    }


def test_installments_not_yet_due_are_left_alone(captured_order):
    assert Installment.objects.collect_due() == 0


def test_the_command_loops_with_every(monkeypatch, db):
    calls = []

    def fake_sleep(seconds):
        calls.append(seconds)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(
        "customers.management.commands.run_periodic_jobs.time.sleep", fake_sleep
    )
    out = StringIO()
    call_command("run_periodic_jobs", "--every", "30", stdout=out)
    assert calls == [30.0, 30.0]
    assert out.getvalue().count("Periodic jobs done") == 2


def test_every_must_be_positive(db):
    with pytest.raises(CommandError):
        call_command("run_periodic_jobs", "--every", "0")


@override_settings(
    TASKS={"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
)
def test_the_command_can_enqueue_a_run_for_the_worker(db):
    default_task_backend.clear()
    out = StringIO()
    call_command("run_periodic_jobs", "--enqueue", stdout=out)
    [job] = default_task_backend.results
    assert job.task.name == "run_periodic_jobs"
    assert "Enqueued" in out.getvalue()
    assert "repayments moved: 0" in job.task.call()


def test_periodic_jobs_expire_authorizations_that_lapsed(make_order):
    from portal.models import OrderStatus

    lapsed = make_order()
    lapsed.expires_at = timezone.now() - timedelta(minutes=1)
    lapsed.save(update_fields=["expires_at"])
    current = make_order()
    assert run_periodic().orders_expired == 1
    lapsed.refresh_from_db()
    current.refresh_from_db()
    assert (lapsed.status, current.status) == (OrderStatus.EXPIRED, "AUTHORIZED")
