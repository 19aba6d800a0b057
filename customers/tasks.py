"""Background jobs on the database-backed worker (``manage.py db_worker``).

Email delivery is exactly once per notification where the outcome can be known
and at most once where it cannot (``send_notification_email``): the attempt is
recorded before the mail server is contacted, a retried or duplicated job sends
nothing twice, and a failure that may have delivered the message is marked
uncertain for staff instead of being resent. A mail server that refuses is
retried with exponential backoff (30 s, 1 min, 2 min, ... capped at 1 hour) for
up to ``MAX_EMAIL_ATTEMPTS`` attempts, about a day.

Nothing is lost if a job is: ``run_periodic_jobs`` (the management command, or
the ``run_periodic_jobs`` task) re-enqueues emails whose retry is long overdue and
notifies refunds that have no notification yet.
"""

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import router, transaction
from django.tasks import default_task_backend, task
from django.utils import timezone, translation
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from portal.mail import safe_to_retry
from portal.models import Order

from .language import customer_language
from .models import Installment, LoginCode, Notification, Repayment, ReturnReport
from .notifications import (
    create_refund_notification,
    notification_language,
    send_login_code_email,
    send_notification_email_now,
)

logger = logging.getLogger(__name__)
MAX_EMAIL_ATTEMPTS = 30


def lost_job_grace() -> timedelta:
    """A job the worker should have run this long ago is considered lost, and an
    email attempt talking to the mail server this long lost its worker (far above
    EMAIL_TIMEOUT, which bounds every wait of a live attempt):
    ``settings.LOST_JOB_SECONDS``, 10 minutes by default."""
    return timedelta(seconds=getattr(settings, "LOST_JOB_SECONDS", 600))


def email_backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def email_retry_due_at(notification: Notification) -> datetime:
    """When the job's own retry of ``notification`` should have run, at the latest."""
    waited = sum(
        (email_backoff(n) for n in range(1, notification.email_attempts + 1)),
        timedelta(),
    )
    return notification.created_at + waited + lost_job_grace()


def enqueue_after_commit(job, *args) -> None:
    """Enqueue ``job`` to run once the current transaction has committed, and
    never if it rolls back.

    With the database task backend on the transaction's own database the job's
    row is written in the transaction: the worker cannot see it before the
    commit, it commits (or not) with the work, and no second commit is needed
    (issue 16). Any other backend (the inline one in development and tests, a
    queue elsewhere) is given the job after the commit (``on_commit``).
    """
    backend = job.get_backend()
    connection = transaction.get_connection()
    if (
        isinstance(backend, DatabaseBackend)
        and connection.in_atomic_block
        and router.db_for_write(DBTaskResult) == connection.alias
    ):
        job.enqueue(*args)
    else:
        transaction.on_commit(lambda: job.enqueue(*args))


@task()
def send_login_code(login_code_id: int) -> str:
    """Make and email a customer's login code (nothing for an unknown address).
    Not retried: a code is short-lived and the customer can ask for a new one."""
    row = LoginCode.objects.select_related("customer").filter(pk=login_code_id).first()
    code = row.deliver() if row is not None else None
    if code is None:
        return "nothing to send"
    language = customer_language(row.customer)
    with translation.override(language):
        send_login_code_email(row.customer, code, language)
    return "sent"


@task()
def notify_refund(refund_id: int) -> None:
    """In-app notification and email for a refund (idempotent per refund)."""
    create_refund_notification(refund_id)


@task()
def send_notification_email(notification_id: int) -> str:
    """Email one notification: exactly once where the outcome can be known, at
    most once where it cannot (our rule; the README states the guarantee).

    1. The attempt is recorded and committed before the mail server is contacted
       (``email_started_at``).
    2. The message is sent outside any transaction, with a Message-ID derived
       from the notification.
    3. Sent: ``email_sent_at``. Failed before the server took the message
       (``portal.mail.safe_to_retry``): retried with backoff. Any other failure,
       e.g. a timeout waiting for the "250" after the message was sent: marked
       uncertain for staff, never resent by itself.

    A worker that dies during step 2 leaves the attempt in flight; the sweep
    (``retry_lost_emails``) marks it uncertain once it is older than
    ``lost_job_grace()``, and a duplicate job finding it in flight does nothing.
    """
    status = _begin_email_attempt(notification_id)
    if status != "sending":
        return status
    notification = Notification.objects.select_related(
        "customer", "order__merchant"
    ).get(pk=notification_id)
    try:
        # In the customer's language, never the language of whoever caused it.
        language = notification_language(notification)
        with translation.override(language):
            send_notification_email_now(notification, language)
    except Exception as error:  # Every mail failure is recorded, none is lost.
        if safe_to_retry(error):
            return _email_failed(notification, error)
        return _email_uncertain(notification, error)
    Notification.objects.filter(pk=notification_id).update(
        email_sent_at=timezone.now(), email_started_at=None, email_last_error=""
    )
    return "sent"


def _begin_email_attempt(notification_id: int) -> str:
    with transaction.atomic():
        notification = Notification.objects.select_for_update(of=("self",)).get(
            pk=notification_id
        )
        if notification.email_sent_at is not None:
            return "already sent"
        if notification.email_uncertain_at is not None:
            return "uncertain"
        if notification.email_started_at is not None:
            return "in flight"
        if notification.email_attempts >= MAX_EMAIL_ATTEMPTS:
            return "gave up"
        notification.email_attempts += 1
        notification.email_started_at = timezone.now()
        notification.save(update_fields=["email_attempts", "email_started_at"])
    return "sending"


def _email_failed(notification: Notification, error: Exception) -> str:
    """The message never reached the server: retry later, or give up."""
    Notification.objects.filter(pk=notification.pk).update(
        email_started_at=None, email_last_error=str(error)[:255]
    )
    if notification.email_attempts >= MAX_EMAIL_ATTEMPTS:
        logger.error(
            "Giving up on email for notification %s: %s", notification.pk, error
        )
        return "gave up"
    _schedule_retry(notification.pk, notification.email_attempts)
    logger.warning(
        "Email for notification %s failed, retrying: %s", notification.pk, error
    )
    return "retry scheduled"


def _email_uncertain(notification: Notification, error: Exception | str) -> str:
    Notification.objects.filter(pk=notification.pk).update(
        email_started_at=None,
        email_uncertain_at=timezone.now(),
        email_last_error=f"Delivery uncertain: {error}"[:255],
    )
    logger.error(
        "Email for notification %s may or may not have been delivered; not "
        "resending (staff can): %s",
        notification.pk,
        error,
    )
    return "uncertain"


def _schedule_retry(notification_id: int, attempts: int) -> None:
    # A backend that cannot defer (the inline one in development and tests) must
    # not retry at once in a loop: the periodic sweep retries those instead.
    if not default_task_backend.supports_defer:
        return
    retry_at = timezone.now() + email_backoff(attempts)
    transaction.on_commit(
        lambda: send_notification_email.using(run_after=retry_at).enqueue(
            notification_id
        )
    )


def retry_lost_emails(now=None) -> int:
    """Re-enqueue unsent emails whose retry is long overdue; returns how many.

    An attempt still in flight after ``lost_job_grace()`` lost its worker while it
    talked to the mail server: it is marked uncertain, not sent again."""
    now = now or timezone.now()
    for notification in Notification.objects.filter(
        email_sent_at__isnull=True,
        email_uncertain_at__isnull=True,
        email_started_at__lt=now - lost_job_grace(),
    ).order_by("pk")[:500]:
        _email_uncertain(notification, "the worker stopped while sending")
    unsent = Notification.objects.filter(
        email_sent_at__isnull=True,
        email_uncertain_at__isnull=True,
        email_started_at__isnull=True,
        email_attempts__lt=MAX_EMAIL_ATTEMPTS,
    ).order_by("pk")[:500]
    due = [n.pk for n in unsent if email_retry_due_at(n) <= now]
    for pk in due:
        send_notification_email.enqueue(pk)
    return len(due)


def notify_unnotified_refunds(now=None) -> int:
    """Refunds whose ``notify_refund`` job was lost (the process died between the
    commit and the enqueue) get their notification now."""
    from refunds.models import Refund

    now = now or timezone.now()
    missing = (
        Refund.objects.filter(created_at__lte=now - lost_job_grace())
        .exclude(notifications__kind=Notification.Kind.REFUND)
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    for refund_id in missing:
        create_refund_notification(refund_id)
    return len(missing)


@dataclass
class PeriodicReport:
    orders_expired: int
    repayments_moved: int
    repayments_traced: int
    returns_expired: int
    installments_collected: int
    refunds_notified: int
    emails_retried: int
    order_search_copies_filled: int

    def __str__(self) -> str:
        return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in asdict(self).items())


def run_periodic(now=None) -> PeriodicReport:
    """Everything that happens with the passing of time; safe to run concurrently
    and as often as wanted (each step locks what it changes)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    return PeriodicReport(
        orders_expired=Order.objects.expire_due(now),
        repayments_moved=Repayment.objects.process_due(now),
        repayments_traced=Repayment.objects.notify_traced(today),
        returns_expired=ReturnReport.objects.expire_due(today),
        installments_collected=Installment.objects.collect_due(today),
        refunds_notified=notify_unnotified_refunds(now),
        emails_retried=retry_lost_emails(now),
        order_search_copies_filled=Order.objects.fill_search_copies(),
    )


@task()
def run_periodic_jobs() -> str:
    """``run_periodic`` as a job: ``customers.tasks.run_periodic_jobs.enqueue()``."""
    return str(run_periodic())
