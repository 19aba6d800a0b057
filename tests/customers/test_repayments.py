"""Money back: the simulated payment rail moves repayments scheduled → processing
→ completed within 14 days; a closed, frozen or blocked method bounces them; the
customer gives new details and the money is sent again."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from customers.models import (
    Notification,
    PaymentMethod,
    Repayment,
    RepaymentStatus,
)
from customers.tasks import run_periodic
from portal.exceptions import OrderActionNotAllowed
from portal.models import PaymentProduct

pytestmark = pytest.mark.django_db


@pytest.fixture
def repayment(make_order, django_capture_on_commit_callbacks):
    """40.00 EUR going back for a pay-now order."""
    order = make_order(product=PaymentProduct.PAY_NOW, capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        refund = order.refund_amount(4000)
    mail.outbox.clear()
    return refund.repayments.get()


def later(days: float):
    return timezone.now() + timedelta(days=days)


def test_a_repayment_waits_then_is_sent_then_settles_within_14_days(
    repayment, django_capture_on_commit_callbacks
):
    assert repayment.expected_by == timezone.localdate() + timedelta(days=14)
    assert Repayment.objects.process_due(later(1)) == 0  # not due yet

    with django_capture_on_commit_callbacks(execute=True):
        assert Repayment.objects.process_due(later(3)) == 1
    repayment.refresh_from_db()
    assert repayment.status == RepaymentStatus.PROCESSING
    assert repayment.attempts == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert Repayment.objects.process_due(later(4)) == 1
    repayment.refresh_from_db()
    assert repayment.status == RepaymentStatus.COMPLETED
    assert repayment.completed_at.date() <= repayment.expected_by
    notification = Notification.objects.get(kind=Notification.Kind.REPAYMENT_COMPLETED)
    assert notification.title == "40,00\xa0€ is back with you"
    assert [m.subject for m in mail.outbox] == [notification.title]
    assert Repayment.objects.process_due(later(10)) == 0


@pytest.mark.parametrize(
    "status",
    [
        PaymentMethod.Status.CLOSED,
        PaymentMethod.Status.FROZEN,
        PaymentMethod.Status.BLOCKED,
    ],
)
def test_a_method_that_cannot_receive_money_bounces_the_repayment(
    status, repayment, django_capture_on_commit_callbacks
):
    PaymentMethod.objects.filter(pk=repayment.payment_method_id).update(status=status)
    with django_capture_on_commit_callbacks(execute=True):
        repayment.advance(later(3))
    assert repayment.status == RepaymentStatus.BOUNCED
    assert repayment.failure_reason == f"Visa •••• 4242 is {status.label.lower()}."
    assert repayment.needs_new_details
    bounced = Notification.objects.get(kind=Notification.Kind.REPAYMENT_BOUNCED)
    assert bounced.title.startswith("Action needed")
    assert "changed banks" in bounced.body or "change banks" in bounced.body
    assert len(mail.outbox) == 1


def test_a_method_closed_while_the_money_is_on_its_way_bounces_at_settlement(
    repayment, django_capture_on_commit_callbacks
):
    repayment.advance(later(3))
    PaymentMethod.objects.filter(pk=repayment.payment_method_id).update(
        status=PaymentMethod.Status.CLOSED
    )
    repayment.advance(later(4))
    assert repayment.status == RepaymentStatus.BOUNCED


def test_bounce_then_new_details_sends_the_money_again(
    repayment, customer_client, customer, django_capture_on_commit_callbacks
):
    PaymentMethod.objects.filter(pk=repayment.payment_method_id).update(
        status=PaymentMethod.Status.CLOSED
    )
    repayment.advance(later(3))
    order_page = reverse("customers:order_detail", args=[repayment.plan.order.order_id])
    html = customer_client.get(order_page).content.decode()
    assert "action needed" in html
    assert "Did you recently change banks or close your linked bank account?" in html
    details = reverse("customers:repayment_details", args=[repayment.repayment_id])
    assert details in html

    response = customer_client.post(
        details, {"kind": "bank_account", "provider": "Nordea", "last4": "1234"}
    )

    assert response.status_code == 302 and response.url == order_page
    repayment.refresh_from_db()
    assert repayment.status == RepaymentStatus.SCHEDULED
    assert repayment.payment_method.label == "Nordea •••• 1234"
    assert repayment.payment_method.kind == PaymentMethod.Kind.BANK_ACCOUNT
    assert customer.default_payment_method() == repayment.payment_method
    with django_capture_on_commit_callbacks(execute=True):
        run_periodic(later(0.01))
        run_periodic(later(1.1))
    repayment.refresh_from_db()
    assert repayment.status == RepaymentStatus.COMPLETED
    assert (
        "paid back to Nordea •••• 1234"
        in customer_client.get(order_page).content.decode()
    )


def test_new_details_with_htmx_redirect_by_header_and_rerender_the_form_on_errors(
    repayment, customer_client
):
    Repayment.objects.filter(pk=repayment.pk).update(status=RepaymentStatus.BOUNCED)
    url = reverse("customers:repayment_details", args=[repayment.repayment_id])

    bad = customer_client.post(
        url,
        {"kind": "card", "provider": "Visa", "last4": "12"},
        headers={"HX-Request": "true"},
    )
    assert bad.status_code == 200
    assert bad.content.decode().lstrip().startswith('<form id="details-form"')
    assert "Enter the last 4 digits." in bad.content.decode()
    assert PaymentMethod.objects.filter(customer=repayment.customer).count() == 1

    good = customer_client.post(
        url,
        {"kind": "card", "provider": "Visa", "last4": "9876"},
        headers={"HX-Request": "true"},
    )
    assert good.headers["HX-Redirect"].endswith(f"{repayment.plan.order.order_id}/")


def test_new_details_page_without_htmx_renders_the_whole_page(
    repayment, customer_client
):
    Repayment.objects.filter(pk=repayment.pk).update(status=RepaymentStatus.BOUNCED)
    url = reverse("customers:repayment_details", args=[repayment.repayment_id])
    html = customer_client.get(url).content.decode()
    assert "<html" in html and "Where should your refund go?" in html
    bad = customer_client.post(url, {"kind": "card", "provider": " ", "last4": "1234"})
    assert "<html" in bad.content.decode()
    assert "This field is required." in bad.content.decode()


def test_a_repayment_on_its_way_cannot_be_redirected(repayment, customer_client):
    url = reverse("customers:repayment_details", args=[repayment.repayment_id])
    html = customer_client.get(url).content.decode()
    assert "on its way" in html and "details-form" not in html
    response = customer_client.post(
        url, {"kind": "card", "provider": "Visa", "last4": "1111"}
    )
    assert "already on its way" in response.content.decode()
    repayment.refresh_from_db()
    assert repayment.status == RepaymentStatus.SCHEDULED
    assert PaymentMethod.objects.filter(customer=repayment.customer).count() == 1
    with pytest.raises(OrderActionNotAllowed):
        repayment.reissue()


def test_issue_11_case_1_a_repayment_overdue_while_processing_is_traced_never_resent(
    repayment, customer_client, django_capture_on_commit_callbacks
):
    # Issue 11, case 1: a pay-now refund goes to processing, is still unsettled
    # after 14 days, and the customer enters new card details.
    with django_capture_on_commit_callbacks(execute=True):
        assert repayment.advance(later(3)) == RepaymentStatus.PROCESSING
    assert repayment.attempts == 1
    Repayment.objects.filter(pk=repayment.pk).update(
        expected_by=timezone.localdate() - timedelta(days=1), process_after=later(30)
    )
    repayment.refresh_from_db()
    assert repayment.is_being_traced and not repayment.needs_new_details

    order_page = reverse("customers:order_detail", args=[repayment.plan.order.order_id])
    html = customer_client.get(order_page).content.decode()
    assert "Your refund is taking longer than 14 days" in html
    assert "We are tracing the transfer; it is never sent twice." in html
    # The seed's 14-day guidance still shows.
    assert "Did you recently change banks or close your linked bank account?" in html
    assert "Your refund has not reached you" not in html
    details = reverse("customers:repayment_details", args=[repayment.repayment_id])
    assert details not in html

    page = customer_client.get(details).content.decode()
    assert "Still haven’t received your refund after 14 days?" in page
    assert "details-form" not in page
    response = customer_client.post(
        details, {"kind": "card", "provider": "Visa", "last4": "5678"}
    )
    assert "is being traced; it is never sent twice" in response.content.decode()
    repayment.refresh_from_db()
    assert repayment.status == RepaymentStatus.PROCESSING
    assert repayment.attempts == 1
    assert repayment.payment_method.label == "Visa •••• 4242"
    assert PaymentMethod.objects.filter(customer=repayment.customer).count() == 1
    with pytest.raises(OrderActionNotAllowed) as refused:
        repayment.reissue()
    assert refused.value.code == "REPAYMENT_BEING_TRACED"

    # The customer is also told once, by notification and email.
    with django_capture_on_commit_callbacks(execute=True):
        assert Repayment.objects.notify_traced() == 1
        assert Repayment.objects.notify_traced() == 0
    traced = Notification.objects.get(kind=Notification.Kind.REPAYMENT_TRACED)
    assert (
        traced.message.title == "Your refund of 40,00\xa0€ is late: we are tracing it"
    )
    assert "it is never sent twice" in traced.message.body
    assert "Did you recently change banks" in traced.message.body
    assert [m.subject for m in mail.outbox] == [traced.message.title]
    inbox = customer_client.get(reverse("customers:notification_list"))
    assert details not in inbox.content.decode()

    # The first transfer settles in the end: once, never sent a second time.
    with django_capture_on_commit_callbacks(execute=True):
        run_periodic(later(31))
    repayment.refresh_from_db()
    assert repayment.status == RepaymentStatus.COMPLETED
    assert repayment.attempts == 1
    assert Repayment.objects.overdue().count() == 0


def test_issue_11_case_2_new_details_equal_to_the_ones_that_bounced_are_refused(
    make_order, customer, customer_client, django_capture_on_commit_callbacks
):
    # Issue 11, case 2: the card ending 0119 was closed; the customer enters
    # Visa 0119 again.
    card = PaymentMethod.objects.get(customer=customer)
    PaymentMethod.objects.filter(pk=card.pk).update(label="Visa •••• 0119")
    order = make_order(product=PaymentProduct.PAY_NOW, capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        repayment = order.refund_amount(4000).repayments.get()
    PaymentMethod.objects.filter(pk=card.pk).update(status=PaymentMethod.Status.CLOSED)
    repayment.advance(later(3))
    assert repayment.status == RepaymentStatus.BOUNCED
    url = reverse("customers:repayment_details", args=[repayment.repayment_id])

    for provider in ("Visa", "visa"):
        response = customer_client.post(
            url, {"kind": "card", "provider": provider, "last4": "0119"}
        )
        assert response.status_code == 200
        assert (
            "Your refund bounced from Visa •••• 0119. Give the details of another "
            "card or bank account." in response.content.decode()
        )
    repayment.refresh_from_db()
    assert repayment.status == RepaymentStatus.BOUNCED
    assert repayment.payment_method_id == card.pk
    assert PaymentMethod.objects.filter(customer=customer).count() == 1
    assert customer.default_payment_method() == card

    # Other details are thanked and used: another card, or an account ending 0119.
    response = customer_client.post(
        url, {"kind": "bank_account", "provider": "Nordea", "last4": "0119"}
    )
    assert response.status_code == 302
    repayment.refresh_from_db()
    assert repayment.status == RepaymentStatus.SCHEDULED
    assert repayment.payment_method.label == "Nordea •••• 0119"


def test_payment_methods_compare_by_kind_and_last_digits():
    visa = PaymentMethod(kind=PaymentMethod.Kind.CARD, label="Visa •••• 0119")
    assert visa.last_digits == "0119"
    assert visa.has_same_details(
        PaymentMethod(kind=PaymentMethod.Kind.CARD, label="VISA •••• 0119 ")
    )
    assert not visa.has_same_details(
        PaymentMethod(kind=PaymentMethod.Kind.CARD, label="Visa •••• 0118")
    )
    assert not visa.has_same_details(
        PaymentMethod(kind=PaymentMethod.Kind.BANK_ACCOUNT, label="Bank •••• 0119")
    )
    assert not PaymentMethod(kind="card", label="Card").has_same_details(
        PaymentMethod(kind="card", label="Card")
    )


def test_repayment_progress_reads_scheduled_processing_completed_or_bounced(
    repayment, django_capture_on_commit_callbacks
):
    def progress():
        repayment.refresh_from_db()
        return [(p.label, p.state) for p in repayment.progress]

    assert progress() == [
        ("Scheduled", "current"),
        ("Processing", "upcoming"),
        ("Completed", "upcoming"),
    ]
    assert repayment.progress[2].when == repayment.expected_by
    assert repayment.status_note.startswith("Scheduled ")
    repayment.advance(later(3))
    assert [state for _, state in progress()] == ["done", "current", "upcoming"]
    assert repayment.status_note.startswith("Sent ")
    with django_capture_on_commit_callbacks(execute=True):
        repayment.advance(later(4))
    assert [state for _, state in progress()] == ["done", "done", "done"]
    assert repayment.progress[2].when == repayment.completed_at
    assert repayment.status_note == f"Completed {repayment.completed_at:%-d %b %Y}"

    Repayment.objects.filter(pk=repayment.pk).update(
        status=RepaymentStatus.BOUNCED, failure_reason="Visa •••• 4242 is closed."
    )
    assert progress()[-1] == ("Bounced", "action")
    assert "Visa •••• 4242 is closed." in repayment.status_note


def test_a_staff_retry_sends_a_bounced_repayment_to_the_same_method(repayment):
    Repayment.objects.filter(pk=repayment.pk).update(
        status=RepaymentStatus.BOUNCED, failure_reason="Visa •••• 4242 is frozen."
    )
    repayment.refresh_from_db()
    repayment.reissue()
    assert repayment.status == RepaymentStatus.SCHEDULED
    assert repayment.failure_reason == ""
    assert repayment.process_after <= timezone.now()


def test_new_details_name_their_errors_for_the_kind_and_the_digits(
    repayment, customer_client
):
    """Each field in error, and the group of kinds, points at its error text."""
    from tests.portal.test_field_errors import described_by_what_is_there

    Repayment.objects.filter(pk=repayment.pk).update(status=RepaymentStatus.BOUNCED)
    url = reverse("customers:repayment_details", args=[repayment.repayment_id])
    html = customer_client.post(
        url, {"kind": "neither", "provider": "Visa", "last4": "12"}
    ).content.decode()
    named = described_by_what_is_there(html)
    assert {"id_kind_error", "id_last4_error"} <= set(named)
