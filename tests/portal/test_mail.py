import io

from django.core.mail import EmailMultiAlternatives

from portal.mail import ReadableConsoleEmailBackend


def test_console_mail_shows_recipient_subject_and_text_not_mime():
    stream = io.StringIO()
    message = EmailMultiAlternatives(
        subject="Your login code: 123456 — 83,00 €",
        body="Your code is 123456.",
        to=["maja@example.com"],
    )
    message.attach_alternative("<p>Your code is <b>123456</b>.</p>", "text/html")
    ReadableConsoleEmailBackend(stream=stream, alias="default").send_messages([message])
    out = stream.getvalue()
    assert "Email to maja@example.com" in out
    assert "Subject: Your login code: 123456 — 83,00 €" in out
    assert "Your code is 123456." in out
    assert "(also sent as text/html)" in out
    assert "=?utf-8?" not in out and "<b>" not in out
