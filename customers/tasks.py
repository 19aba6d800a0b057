"""Background jobs on the database-backed worker (``manage.py db_worker``).

Email delivery is exactly-once per notification: the row records ``email_sent_at``
and the job locks the row, so a retried or duplicated job sends nothing twice. A
failing mail server is retried with exponential backoff (30 s, 1 min, 2 min, ...
capped at 1 hour) for up to ``MAX_EMAIL_ATTEMPTS`` attempts.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.tasks import task
from django.utils import timezone

from .models import Notification
from .notifications import create_refund_notification, send_notification_email_now

logger = logging.getLogger(__name__)
MAX_EMAIL_ATTEMPTS = 12


def email_backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


@task()
def notify_refund(refund_id: int) -> None:
    """In-app notification and email for a refund (idempotent per refund)."""
    notification = create_refund_notification(refund_id)
    if notification is not None:
        send_notification_email.enqueue(notification.pk)


@task()
def send_notification_email(notification_id: int) -> str:
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update()
            .select_related("customer")
            .get(pk=notification_id)
        )
        if notification.email_sent_at is not None:
            return "already sent"
        notification.email_attempts += 1
        try:
            send_notification_email_now(notification)
        except Exception as error:  # noqa: BLE001 - any mail failure is retried
            notification.email_last_error = str(error)[:255]
            notification.save(update_fields=["email_attempts", "email_last_error"])
            if notification.email_attempts >= MAX_EMAIL_ATTEMPTS:
                logger.error("Giving up on email for notification %s: %s", notification_id, error)
                return "gave up"
            retry_at = timezone.now() + email_backoff(notification.email_attempts)
            transaction.on_commit(
                lambda: send_notification_email.using(run_after=retry_at).enqueue(notification_id)
            )
            logger.warning("Email for notification %s failed, retrying: %s", notification_id, error)
            return "retry scheduled"
        notification.email_sent_at = timezone.now()
        notification.email_last_error = ""
        notification.save(update_fields=["email_attempts", "email_sent_at", "email_last_error"])
        return "sent"
