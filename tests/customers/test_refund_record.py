"""What a refund did is recorded with it when it happens; every email, in-app
message and timeline entry about it is written from that record, however much
the plan changes before the message is written or shown (issue 11, case 3)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from customers.models import (
    Installment,
    InstallmentStatus,
    Notification,
    PaymentMethod,
    RefundEffect,
    Repayment,
    RepaymentStatus,
)
from customers.notifications import render
from customers.tasks import (
    notify_unnotified_refunds,
    run_periodic,
    send_notification_email,
)
from portal.money import format_money
from refunds.models import RefundAllocation
from tests.factories import line

pytestmark = pytest.mark.django_db

FOUR_TIMES_10000 = [line("TSHIRT-1", 10000, 4, name="T-shirt")]


def eur(amount: int) -> str:
    return format_money(amount, "EUR", "de_DE")


def day(value) -> str:
    return f"{value:%-d %b %Y}"


def open_due_dates(order) -> list:
    return list(
        Installment.objects.filter(plan__order=order, sequence__gt=1)
        .order_by("sequence")
        .values_list("due_date", flat=True)
    )


def test_issue_11_case_3_the_first_refunds_messages_list_the_plan_it_left(
    make_order, customer_client, django_capture_on_commit_callbacks
):
    # Pay in 4, 4 × 10000. Refund one unit (payments become 6667/6667/6666),
    # then another before the notification job runs.
    order = make_order(lines=FOUR_TIMES_10000, capture=True)
    dates = open_due_dates(order)
    with django_capture_on_commit_callbacks(execute=True):
        first = order.refund_lines([("TSHIRT-1", 1)])
        assert [i.amount for i in Installment.objects.filter(sequence__gt=1)] == [
            6667,
            6667,
            6666,
        ]
        second = order.refund_lines([("TSHIRT-1", 1)])
    assert [i.amount for i in Installment.objects.filter(sequence__gt=1)] == [
        3334,
        3333,
        3333,
    ]

    record = first.allocations.get().effect
    assert record["before"] == [10000, 10000, 10000]
    assert record["after"] == [6667, 6667, 6666]
    assert record["due_dates"] == [d.isoformat() for d in dates]

    remaining = (
        f"Your remaining payments: {eur(6667)} on {day(dates[0])}, {eur(6667)} on "
        f"{day(dates[1])}, {eur(6666)} on {day(dates[2])}."
    )
    in_app = Notification.objects.get(refund=first)
    assert remaining in in_app.message.body
    assert eur(3334) not in in_app.message.body
    email = next(m for m in mail.outbox if m.subject == in_app.message.title)
    assert remaining in email.body
    assert eur(3334) not in email.body and eur(3333) not in email.body
    html = email.alternatives[0][0]
    assert f'<s style="color:#6b7280;">{eur(10000)}</s> {eur(6667)}' in html
    assert eur(3334) not in html
    page = customer_client.get(reverse("customers:notification_list")).content
    assert remaining in page.decode()

    # The second refund's messages tell its own change.
    second_message = Notification.objects.get(refund=second).message.body
    assert f"{eur(3334)} on {day(dates[0])}" in second_message


def test_a_late_catch_up_notification_is_written_from_the_record_too(make_order):
    order = make_order(lines=FOUR_TIMES_10000, capture=True)
    first = order.refund_lines([("TSHIRT-1", 1)])  # the notify job is lost
    order.refund_lines([("TSHIRT-1", 2)])
    notify_unnotified_refunds(timezone.now() + timedelta(minutes=11))
    body = Notification.objects.get(refund=first).message.body
    assert f"{eur(6667)} on" in body and f"{eur(6666)} on" in body
    assert "canceled" not in body


@pytest.mark.parametrize(
    "kind",
    [
        Notification.Kind.REFUND,
        Notification.Kind.REPAYMENT_BOUNCED,
        Notification.Kind.REPAYMENT_COMPLETED,
        Notification.Kind.REPAYMENT_TRACED,
    ],
)
def test_every_notification_kind_is_written_from_the_record_after_the_plan_changed(
    kind, make_order, customer, django_capture_on_commit_callbacks
):
    # 4 × 10000, two payments made: 20000 still owed. Three units back: the
    # rest is cancelled and 10000 goes back to the card.
    order = make_order(lines=FOUR_TIMES_10000, capture=True)
    Installment.objects.filter(sequence=2).update(status=InstallmentStatus.PAID)
    card = PaymentMethod.objects.get(customer=customer)
    with django_capture_on_commit_callbacks(execute=True):
        refund = order.refund_lines([("TSHIRT-1", 3)])
    repayment = refund.repayments.get()
    assert repayment.amount == 10000
    # Late on the rail: sent, still not settled after 14 days, and traced.
    repayment.advance(timezone.now() + timedelta(days=3))
    Repayment.objects.filter(pk=repayment.pk).update(
        expected_by=timezone.localdate() - timedelta(days=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert Repayment.objects.notify_traced() == 1
    # Then it bounces, and is sent again to new details.
    PaymentMethod.objects.filter(pk=card.pk).update(status="closed")
    with django_capture_on_commit_callbacks(execute=True):
        repayment.advance(timezone.now() + timedelta(days=5))
    assert repayment.status == RepaymentStatus.BOUNCED
    repayment.reissue(customer.add_payment_method("card", "Mastercard •••• 5555"))
    with django_capture_on_commit_callbacks(execute=True):
        run_periodic(timezone.now() + timedelta(days=1))
        run_periodic(timezone.now() + timedelta(days=2.1))
    repayment.refresh_from_db()
    assert repayment.status == RepaymentStatus.COMPLETED

    # Afterwards the plan and the order change again: another refund, moved
    # dates, a renamed card. None of it is what this refund did.
    order.refund_lines([("TSHIRT-1", 1)])
    Installment.objects.filter(plan__order=order).update(
        due_date=F("due_date") + timedelta(days=7)
    )
    PaymentMethod.objects.filter(pk=card.pk).update(label="Visa •••• 9999")

    allocation = RefundAllocation.objects.get(refund=refund)
    effect = RefundEffect.from_record(allocation.effect)
    assert effect.before == (10000, 10000) and effect.after == (0, 0)
    assert effect.total_back == 10000
    assert effect.destination_label == "Visa •••• 4242"

    notification = Notification.objects.for_display().get(refund=refund, kind=kind)
    message = render(notification)
    assert eur(effect.total_back) in message.title + message.body
    assert "9999" not in message.body
    if kind == Notification.Kind.REFUND:
        assert "Any remaining payments will be canceled." in message.body
        assert (
            f"{eur(10000)} goes back to Visa •••• 4242; expect it by "
            f"{day(timezone.localdate() + timedelta(days=14))}." in message.body
        )
    elif kind == Notification.Kind.REPAYMENT_BOUNCED:
        assert "Visa •••• 4242 is closed." in message.body
    elif kind == Notification.Kind.REPAYMENT_TRACED:
        assert "to Visa •••• 4242 was due by" in message.body
    else:
        assert "paid back to Mastercard •••• 5555" in message.body
    [plan] = message.plans
    assert plan.rows == effect.installments
    assert [due for due, _, _ in plan.rows] == list(effect.due_dates)
    assert effect.due_dates[0] + timedelta(days=7) == open_due_dates(order)[1]

    mail.outbox.clear()
    notification.resend_email()  # as staff would: the email is written again now
    send_notification_email.call(notification.pk)
    [email] = mail.outbox
    assert email.subject == message.title
    assert message.body in email.body
    for due, before, after in effect.installments:
        assert f"{day(due)}  {eur(before)} -> {eur(after)}  Cancelled" in email.body


def test_a_refund_made_before_the_record_falls_back_to_the_sentence_of_its_time(
    make_order, customer_client, django_capture_on_commit_callbacks
):
    order = make_order(lines=FOUR_TIMES_10000, capture=True)
    refund = order.refund_lines([("TSHIRT-1", 1)])
    RefundAllocation.objects.filter(refund=refund).update(
        effect=None, effect_summary="remaining 3 payments become 66,67 €, 66,67 €"
    )
    order.refund_lines([("TSHIRT-1", 1)])
    with django_capture_on_commit_callbacks(execute=True):
        notify_unnotified_refunds(timezone.now() + timedelta(minutes=11))
    body = Notification.objects.get(refund=refund).message.body
    assert "Remaining 3 payments become 66,67 €, 66,67 €." in body
    html = customer_client.get(
        reverse("customers:order_detail", args=[order.order_id])
    ).content.decode()
    assert "Remaining 3 payments become 66,67 €, 66,67 €." in html


def test_a_notification_from_before_facts_were_kept_shows_what_it_said(
    customer, captured_order
):
    old = Notification.objects.create(
        customer=customer,
        kind=Notification.Kind.REFUND,
        order=captured_order,
        title="Refund from Nordic Threads: 10,00 €",
        body="Said at the time.",
    )
    assert render(old).body == "Said at the time."


def test_the_record_reads_back_unchanged(make_order):
    order = make_order(lines=FOUR_TIMES_10000, capture=True)
    plan = order.captures.get().plan
    effect = plan.refund_effect(10000, full=False)
    assert RefundEffect.from_record(effect.as_record()) == effect
