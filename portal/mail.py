"""Mail backends: an SMTP backend that tells whether a failed message may have
been delivered, and a console mailer people can read.

``NotHandedOver`` marks a failure that happened before the mail server took the
message (connection refused, greeting, TLS, authentication, sender or recipient
refused, or a definite refusal of the message itself): sending again cannot make
a duplicate. Any other failure, such as a timeout while waiting for the server's
"250" after the message was sent, may have delivered it: the caller must treat it
as uncertain and not send again on its own (``customers.tasks``).
"""

import email.policy
import smtplib
import socket

from django.core.mail.backends.console import EmailBackend as ConsoleEmailBackend
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend


class NotHandedOver(Exception):
    """The message did not reach the mail server; sending it again is safe."""


#: Failures that can only happen before a message is handed over, whatever the
#: backend (Django's own SMTP backend raises these from ``open`` and ``sendmail``).
BEFORE_HAND_OVER = (
    NotHandedOver,
    ConnectionRefusedError,
    socket.gaierror,
    smtplib.SMTPConnectError,
    smtplib.SMTPHeloError,
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPNotSupportedError,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPRecipientsRefused,
)


def safe_to_retry(error: BaseException) -> bool:
    """Whether ``error`` happened before the message was handed over."""
    return isinstance(error, BEFORE_HAND_OVER)


class SMTPEmailBackend(DjangoSMTPBackend):
    """Django's SMTP backend, sending MAIL, RCPT and DATA step by step so that a
    failure says where it happened (``NotHandedOver`` before the message was
    transmitted, the original error after)."""

    def open(self):
        try:
            return super().open()
        except (OSError, smtplib.SMTPException) as error:
            raise NotHandedOver(f"Connecting to the mail server failed: {error}") from (
                error
            )

    def _send(self, email_message):
        if not email_message.recipients():
            return False
        from_email = self.prep_address(email_message.from_email)
        recipients = [self.prep_address(addr) for addr in email_message.recipients()]
        message = email_message.message(policy=email.policy.SMTP).as_bytes()
        connection = self.connection
        try:
            connection.ehlo_or_helo_if_needed()
            code, reply = connection.mail(from_email)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, from_email)
            refused = {}
            for recipient in recipients:
                code, reply = connection.rcpt(recipient)
                if code not in (250, 251):
                    refused[recipient] = (code, reply)
            if len(refused) == len(recipients):
                raise smtplib.SMTPRecipientsRefused(refused)
        except (OSError, smtplib.SMTPException) as error:
            self._abandon(connection)
            raise NotHandedOver(f"The mail server refused the envelope: {error}") from (
                error
            )
        # From here on the server may have the message: only a definite refusal
        # (an error reply to DATA or to the message) proves it was not taken.
        try:
            code, reply = connection.data(message)
        except smtplib.SMTPDataError as error:  # DATA itself was refused.
            raise NotHandedOver(f"The mail server refused the message: {error}") from (
                error
            )
        if code != 250:
            raise NotHandedOver(f"The mail server refused the message: {code} {reply}")
        return True

    def _abandon(self, connection) -> None:
        try:
            connection.rset()
        except (OSError, smtplib.SMTPException):
            self.connection = None


class ReadableConsoleEmailBackend(ConsoleEmailBackend):
    """A console mailer people can read: for the demo and local development.

    Django's console backend prints the raw MIME message (encoded subjects,
    quoted-printable HTML), which buries what a developer looks for, such as a
    customer's login code. This one prints who, what and the plain-text body; the
    HTML part is only mentioned.
    """

    def write_message(self, message):
        alternatives = [
            mimetype for _, mimetype in getattr(message, "alternatives", [])
        ]
        lines = [
            "-" * 72,
            f"Email to {', '.join(message.to)}",
            f"Subject: {message.subject}",
            "",
            message.body.strip(),
        ]
        if alternatives:
            lines += ["", f"(also sent as {', '.join(alternatives)})"]
        lines.append("-" * 72)
        self.stream.write("\n".join(lines) + "\n")
