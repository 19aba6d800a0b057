"""A console mailer people can read: for the demo and local development.

Django's console backend prints the raw MIME message (encoded subjects, quoted-
printable HTML), which buries what a developer looks for, such as a customer's
login code. This one prints who, what and the plain-text body; the HTML part is
only mentioned.
"""

from django.core.mail.backends.console import EmailBackend as ConsoleEmailBackend


class ReadableConsoleEmailBackend(ConsoleEmailBackend):
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
