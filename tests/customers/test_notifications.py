"""Notifications: enqueued after commit (never on rollback), one per refund, an
email in HTML and text with the updated plan, and each email delivered exactly
once through a mail server outage."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.tasks import default_task_backend
from django.test import override_settings
from django.utils import timezone

from customers.models import Notification
from customers.tasks import (
    MAX_EMAIL_ATTEMPTS,
    notify_refund,
    notify_unnotified_refunds,
    retry_lost_emails,
    send_notification_email,
)
from portal.models import PaymentProduct
from tests.factories import CustomerFactory, OrderFactory, line

pytestmark = pytest.mark.django_db

DUMMY_BACKEND = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
DUMMY_TASKS = override_settings(TASKS=DUMMY_BACKEND)
MAIL_DOWN = {
    "default": {"BACKEND": "tests.customers.mail_backends.FailingEmailBackend"}
}
MAIL_UP = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


def run_enqueued_jobs(capture) -> list[str]:
    """Run the jobs enqueued so far, as the worker would (one round: a retry a
    job schedules waits for the next round). Returns what each job returned."""
    jobs = list(default_task_backend.results)
    default_task_backend.clear()
    returned = []
    for job in jobs:
        with capture(execute=True):
            returned.append(job.task.call(*job.args, **job.kwargs))
    return returned


@DUMMY_TASKS
def test_a_refund_enqueues_its_notification_on_commit(
    captured_order, django_capture_on_commit_callbacks
):
    default_task_backend.clear()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        refund = captured_order.refund_amount(1000)
        assert default_task_backend.results == []  # not before the commit
    for callback in callbacks:
        callback()
    [job] = default_task_backend.results
    assert job.task.name == notify_refund.name
    assert job.args == [refund.pk]


@DUMMY_TASKS
def test_a_rolled_back_refund_enqueues_nothing(
    captured_order, django_capture_on_commit_callbacks
):
    default_task_backend.clear()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        captured_order.refund_amount(1000)
        raise RuntimeError("the surrounding transaction fails")
    assert callbacks == []
    assert default_task_backend.results == []
    assert not Notification.objects.exists()


@DUMMY_TASKS
def test_a_rolled_back_return_report_sends_nothing(
    captured_order, django_capture_on_commit_callbacks
):
    from customers.models import ReturnReport

    default_task_backend.clear()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        ReturnReport.report(
            captured_order, tracking_number="TRACK1", shipped_on=timezone.localdate()
        )
        raise RuntimeError("the surrounding transaction fails")
    assert callbacks == []
    assert default_task_backend.results == []


def test_each_refund_gets_an_in_app_notification_and_an_email_with_the_updated_plan(
    captured_order, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        captured_order.refund_amount(3001, description="Damaged T-shirt")

    notification = Notification.objects.get()
    assert notification.kind == Notification.Kind.REFUND
    assert notification.title == "Refund from Nordic Threads: 30,01\xa0€"
    assert "90,00\xa0€ on" in notification.body and "89,99\xa0€ on" in notification.body
    assert notification.email_sent_at is not None
    [email] = mail.outbox
    assert email.to == ["maja@example.com"]
    assert email.subject == notification.title
    assert "90,00\xa0€" in email.body and "89,99\xa0€" in email.body
    html, mimetype = email.alternatives[0]
    assert mimetype == "text/html"
    assert '<s style="color:#6b7280;">100,00\xa0€</s> 90,00\xa0€' in html


def test_amounts_are_in_the_orders_locale_and_currency_whoever_reads_them(
    merchant, django_capture_on_commit_callbacks
):
    american = CustomerFactory(email="sam@example.com", locale="en_US")
    order = OrderFactory(
        merchant=merchant, customer=american, lines=[line("BAG", 12345)]
    )
    order.capture()
    with django_capture_on_commit_callbacks(execute=True):
        order.refund_amount(1000)
    assert mail.outbox[0].subject == "Refund from Nordic Threads: 10,00\xa0€"
    assert "€10.00" not in mail.outbox[0].body


def test_a_refund_that_cancels_the_plan_says_remaining_payments_will_be_canceled(
    captured_order, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        captured_order.refund_complete()
    assert "Any remaining payments will be canceled." in mail.outbox[0].body
    assert "Cancelled" in mail.outbox[0].body


def test_a_partial_refund_does_not_say_payments_will_be_canceled(
    captured_order, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        captured_order.refund_amount(1000)
    assert "canceled" not in mail.outbox[0].body


def test_pay_now_refund_email_says_where_the_money_goes(
    make_order, django_capture_on_commit_callbacks
):
    order = make_order(product=PaymentProduct.PAY_NOW, capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        order.refund_amount(4000)
    assert "40,00\xa0€ goes back to Visa •••• 4242; expect it by" in mail.outbox[0].body
    assert "up to 14 days" in mail.outbox[0].body


def test_notify_refund_twice_creates_one_notification_and_one_email(
    captured_order, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        refund = captured_order.refund_amount(1000)
        notify_refund.enqueue(refund.pk)
    assert Notification.objects.count() == 1
    assert len(mail.outbox) == 1


def test_every_email_goes_out_exactly_once_through_a_mail_server_outage(
    captured_order, customer, django_capture_on_commit_callbacks, settings
):
    # Jobs are only recorded, and run below one round at a time, as a worker would.
    # (Through the settings fixture: it restores every setting it changed.)
    settings.TASKS = DUMMY_BACKEND
    settings.MAILERS = MAIL_DOWN
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        captured_order.refund_amount(1000)
        captured_order.refund_amount(2000)

    assert run_enqueued_jobs(capture) == [None, None]  # two notify_refund jobs
    assert run_enqueued_jobs(capture) == ["retry scheduled"] * 2
    retries = list(default_task_backend.results)
    assert all(job.task.run_after > timezone.now() for job in retries)
    assert run_enqueued_jobs(capture) == ["retry scheduled"] * 2
    assert mail.outbox == []
    assert list(Notification.objects.values_list("email_attempts", flat=True)) == [2, 2]

    settings.MAILERS = MAIL_UP
    assert run_enqueued_jobs(capture) == ["sent", "sent"]
    # A duplicated job (or a staff-free retry of the sweep) sends nothing again.
    for notification in Notification.objects.all():
        send_notification_email.enqueue(notification.pk)
    assert run_enqueued_jobs(capture) == ["already sent", "already sent"]
    assert default_task_backend.results == []
    assert sorted(m.subject for m in mail.outbox) == [
        "Refund from Nordic Threads: 10,00\xa0€",
        "Refund from Nordic Threads: 20,00\xa0€",
    ]
    assert Notification.objects.filter(email_sent_at__isnull=True).count() == 0
    assert Notification.objects.get(title__contains="10,00").email_last_error == ""


def test_email_retry_backs_off_exponentially():
    from customers.tasks import email_backoff

    assert [email_backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [
        30,
        60,
        120,
        240,
    ]
    assert email_backoff(20) == timedelta(hours=1)


def test_the_sweep_resends_emails_whose_retry_was_lost(
    captured_order, django_capture_on_commit_callbacks, settings
):
    settings.MAILERS = MAIL_DOWN
    with django_capture_on_commit_callbacks(execute=True):
        captured_order.refund_amount(1000)
    notification = Notification.objects.get()
    assert notification.email_attempts == 1 and notification.email_sent_at is None

    settings.MAILERS = MAIL_UP
    assert retry_lost_emails(timezone.now()) == 0  # its own retry is not late yet
    with django_capture_on_commit_callbacks(execute=True):
        assert retry_lost_emails(timezone.now() + timedelta(minutes=11)) == 1
    notification.refresh_from_db()
    assert notification.email_sent_at is not None
    assert len(mail.outbox) == 1
    assert retry_lost_emails(timezone.now() + timedelta(days=1)) == 0


def test_the_sweep_gives_up_after_the_last_attempt(captured_order, settings):
    settings.MAILERS = MAIL_DOWN
    captured_order.refund_amount(1000)
    notify_refund.call(captured_order.refunds.get().pk)
    Notification.objects.update(email_attempts=MAX_EMAIL_ATTEMPTS)
    assert retry_lost_emails(timezone.now() + timedelta(days=30)) == 0


def test_a_refund_whose_notification_job_was_lost_is_notified_by_the_sweep(
    captured_order, django_capture_on_commit_callbacks
):
    refund = captured_order.refund_amount(1000)  # on-commit jobs never ran
    assert not Notification.objects.exists()
    assert notify_unnotified_refunds(timezone.now()) == 0  # give the job time
    with django_capture_on_commit_callbacks(execute=True):
        assert notify_unnotified_refunds(timezone.now() + timedelta(minutes=11)) == 1
    assert Notification.objects.get().refund == refund
    assert len(mail.outbox) == 1
    assert notify_unnotified_refunds(timezone.now() + timedelta(minutes=11)) == 0
