"""Issue 12, case 6: email exactly once where the outcome can be known, at most
once where it cannot — against a real SMTP conversation (a local sink)."""

import smtplib
from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import Notification
from customers.tasks import _begin_email_attempt as begin_attempt
from customers.tasks import notify_refund, retry_lost_emails, send_notification_email
from portal.mail import NotHandedOver, safe_to_retry
from tests.cluster.harness import SmtpSink, _free_base_port, _port_free

pytestmark = pytest.mark.django_db

DUMMY_TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


@pytest.fixture
def sink():
    server = SmtpSink(_free_base_port())
    server.thread.start()
    yield server
    server.shutdown()
    server.server_close()


def smtp(port: int, timeout: float = 5) -> dict:
    return {
        "default": {
            "BACKEND": "portal.mail.SMTPEmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": timeout},
        }
    }


@pytest.fixture
def notification(captured_order, settings) -> Notification:
    settings.TASKS = DUMMY_TASKS
    refund = captured_order.refund_amount(1000)
    notify_refund.call(refund.pk)
    return Notification.objects.get(refund=refund)


def test_a_server_that_answers_after_the_timeout_gets_the_message_once(
    notification, sink, settings
):
    settings.MAILERS = smtp(sink.server_address[1], timeout=0.5)
    sink.delay = 1.5  # the "250" comes after EMAIL_TIMEOUT

    assert send_notification_email.call(notification.pk) == "uncertain"
    notification.refresh_from_db()
    assert notification.email_status == "uncertain"
    assert "Delivery uncertain" in notification.email_last_error

    # Neither a duplicate job nor the sweep, however late, sends it again.
    sink.delay = 0
    assert send_notification_email.call(notification.pk) == "uncertain"
    assert retry_lost_emails(timezone.now() + timedelta(days=2)) == 0
    assert sink.received() == {notification.message_id: 1}


def test_a_refused_connection_is_retried_and_then_sent_once(
    notification, sink, settings
):
    closed = next(p for p in range(18199, 18100, -1) if _port_free(p))
    settings.MAILERS = smtp(closed)

    assert send_notification_email.call(notification.pk) == "retry scheduled"
    notification.refresh_from_db()
    assert (notification.email_attempts, notification.email_status) == (1, "pending")

    settings.MAILERS = smtp(sink.server_address[1])
    assert send_notification_email.call(notification.pk) == "sent"
    assert send_notification_email.call(notification.pk) == "already sent"
    assert sink.received() == {notification.message_id: 1}


def test_the_attempt_is_recorded_before_the_mail_server_is_contacted(
    notification, settings
):
    seen = {}

    class Recording(smtplib.SMTP):
        def __init__(self, *args, **kwargs):
            seen["state"] = Notification.objects.get(pk=notification.pk).email_status
            raise ConnectionRefusedError("down")

    settings.MAILERS = smtp(25)
    from portal import mail as portal_mail

    original = portal_mail.SMTPEmailBackend.connection_class
    portal_mail.SMTPEmailBackend.connection_class = property(lambda self: Recording)
    try:
        assert send_notification_email.call(notification.pk) == "retry scheduled"
    finally:
        portal_mail.SMTPEmailBackend.connection_class = original
    assert seen["state"] == "sending"


def test_a_worker_that_died_while_sending_is_not_followed_by_a_resend(
    notification, sink, settings
):
    settings.MAILERS = smtp(sink.server_address[1])
    assert begin_attempt(notification.pk) == "sending"  # ... and the worker dies

    assert send_notification_email.call(notification.pk) == "in flight"
    assert retry_lost_emails(timezone.now()) == 0  # still within the grace
    retry_lost_emails(timezone.now() + timedelta(minutes=11))

    notification.refresh_from_db()
    assert notification.email_status == "uncertain"
    assert sink.received() == {}


def test_every_message_carries_a_message_id_that_a_staff_resend_keeps(
    notification, sink, settings
):
    settings.MAILERS = smtp(sink.server_address[1])
    assert send_notification_email.call(notification.pk) == "sent"

    notification.resend_email()
    assert send_notification_email.call(notification.pk) == "sent"

    assert notification.message_id.startswith(f"<notification-{notification.pk}.")
    assert sink.received() == {notification.message_id: 2}


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (ConnectionRefusedError(), True),
        (smtplib.SMTPConnectError(421, b"busy"), True),
        (smtplib.SMTPAuthenticationError(535, b"no"), True),
        (smtplib.SMTPRecipientsRefused({"a@b": (550, b"no")}), True),
        (NotHandedOver("refused DATA"), True),
        (TimeoutError(), False),
        (smtplib.SMTPServerDisconnected(), False),
        (RuntimeError("unknown"), False),
    ],
)
def test_only_failures_before_the_hand_over_are_retried(error, retry):
    assert safe_to_retry(error) is retry
