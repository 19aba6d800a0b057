"""Two workers moving the same repayment, or charging and refunding the same
order, at the same time (PostgreSQL, real threads)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from customers.models import Installment, Notification, Repayment, RepaymentStatus
from portal.models import Order, PaymentProduct

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def in_threads(*targets):
    barrier = threading.Barrier(len(targets))
    errors = []

    def run(target):
        try:
            barrier.wait()
            target()
        except Exception as error:  # Reported below, with the thread's result.
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_workers_settle_a_repayment_once_and_notify_once(make_order):
    order = make_order(product=PaymentProduct.PAY_NOW, capture=True)
    repayment = order.refund_amount(1000).repayments.get()
    Repayment.objects.filter(pk=repayment.pk).update(
        status=RepaymentStatus.PROCESSING, process_after=timezone.now()
    )

    def settle():
        Repayment.objects.get(pk=repayment.pk).advance(
            timezone.now() + timedelta(minutes=1)
        )

    assert in_threads(settle, settle, settle, settle) == []
    repayment.refresh_from_db()
    assert repayment.status == RepaymentStatus.COMPLETED
    completed = Notification.objects.filter(kind=Notification.Kind.REPAYMENT_COMPLETED)
    assert completed.count() == 1


def test_charging_installments_while_a_refund_runs_keeps_the_plan_exact(make_order):
    order = make_order(capture=True)
    plan = order.captures.get().plan
    plan.installments.update(due_date=timezone.localdate())

    def refund():
        Order.objects.get(pk=order.pk).refund_amount(100)

    assert in_threads(Installment.objects.collect_due, refund) == []

    # Whichever ran first, the customer owes or gets back exactly the capture
    # minus the refund: nothing is charged at a stale amount.
    installments = sum(plan.installments.values_list("amount", flat=True))
    back = sum(Repayment.objects.filter(plan=plan).values_list("amount", flat=True))
    assert installments - back == plan.amount - 100
    assert Order.objects.get(pk=order.pk).verify_totals() == []
