"""What the customer is told: in-app notifications and their emails.

A notification stores facts (``Notification.data``: amounts in minor units,
dates, labels), never formatted money: its title and body are written when
shown (``render``), in the order's currency and locale, like the rest of the
page. A message about a refund is written from what the refund did, recorded
with it when it happened (``RefundAllocation.effect``), never from the plan as
it is now (DOMAIN.md, "What a refund did"). The refund message carries the
updated plan and "any remaining payments will be canceled" where true (seed
000). Each function creates the in-app notification inside the caller's
transaction; its email goes out from a job after commit (``Notification.post``).
"""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from portal.models import PaymentProduct

from .models import (
    OPEN_INSTALLMENT,
    REFUND_PROCESSING_DAYS,
    Customer,
    Notification,
    PaymentPlan,
    RefundEffect,
    Repayment,
    ReturnReport,
)
from .status import BOUNCE_GUIDANCE, TRACING, MoneyContext, as_sentence, plan_rows

#: ``Notification.data["version"]`` of notifications written by ``render``.
MESSAGE_VERSION = 1


@dataclass(frozen=True)
class RecordedPlan:
    """One plan as a refund left it, from its record: ``rows`` are
    ``(due date, before, after)`` of the installments that were still open."""

    heading: str
    rows: list[tuple[date | None, int, int]]


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    plans: list[RecordedPlan] = field(default_factory=list)


def _order_name(order) -> str:
    return order.merchant_reference1 or order.reference


def _day(value: date) -> str:
    return f"{value:%-d %b %Y}"


def _refund_message(refund, money: MoneyContext) -> Message:
    """The refund notification, from the refund and what it recorded."""
    order = refund.order
    store = order.merchant.name
    amount = money.fmt(refund.refunded_amount)
    title = f"Refund from {store}: {amount}"
    if refund.store_credit:
        return Message(
            title,
            f"{store} registered your return of {amount} as store credit. Your "
            "payments to us continue as planned.",
        )
    lines = [f"{store} refunded {amount} for order {_order_name(order)}."]
    if refund.fee_amount:
        lines.append(f"A return fee of {money.fmt(refund.fee_amount)} was deducted.")
    allocations = list(refund.allocations.all())
    expected_by = timezone.localdate(refund.created_at) + timedelta(
        days=REFUND_PROCESSING_DAYS
    )
    plans, money_to_method = [], False
    for allocation in allocations:
        prefix = (
            f"Shipment {allocation.capture.number}: " if len(allocations) > 1 else ""
        )
        effect = allocation.recorded_effect()
        if effect is None:  # made before effects were recorded
            lines.append(prefix + as_sentence(allocation.effect_summary))
            continue
        lines += [prefix + line for line in _effect_lines(effect, money, expected_by)]
        money_to_method |= bool(
            effect.total_back and effect.destination == "payment_method"
        )
        if effect.before:
            heading = (
                f"Shipment {allocation.capture.number}"
                if prefix
                else "Your payment plan"
            )
            plans.append(RecordedPlan(heading, effect.installments))
    if money_to_method:
        lines.append("Money going back to you can take up to 14 days to arrive.")
    return Message(title, " ".join(line for line in lines if line), plans)


def _effect_lines(
    effect: RefundEffect, money: MoneyContext, expected_by: date
) -> list[str]:
    lines = []
    if effect.cancels_remaining:
        lines.append("Any remaining payments will be canceled.")
    elif effect.remaining_after:
        if effect.product == PaymentProduct.FINANCING:
            lines.append(
                f"{money.fmt(effect.amount)} was deducted from your financing balance."
            )
        payments = ", ".join(
            f"{money.fmt(after)} on {_day(due)}" if due else money.fmt(after)
            for due, _before, after in effect.installments
            if after
        )
        lines.append(f"Your remaining payments: {payments}.")
    if effect.total_back:
        back = money.fmt(effect.total_back)
        lines.append(
            f"{back} was credited to your account balance."
            if effect.destination == "account_balance"
            else f"{back} goes back to {effect.destination_label}; expect it by "
            f"{_day(expected_by)}."
        )
    if effect.service_fee_returned:
        lines.append(
            f"The service fee of {money.fmt(effect.service_fee_returned)} is "
            "returned with it."
        )
    if effect.service_fee_kept:
        lines.append(
            f"The service fee of {money.fmt(effect.service_fee_kept)} is still "
            "charged: a partial refund does not return it."
        )
    return lines


def render(notification: Notification) -> Message:
    """The notification's title and body, written now from its facts in the
    order's currency and locale. Notifications from before facts were kept
    show what they said then."""
    data = notification.data or {}
    if not data:
        return Message(notification.title, notification.body)
    order = notification.order
    money = MoneyContext.for_order(order)
    store = order.merchant.name
    kinds = Notification.Kind
    if notification.kind == kinds.REFUND:
        return _refund_message(notification.refund, money)
    plans = (
        _refund_message(notification.refund, money).plans
        if notification.refund_id
        else []
    )
    if notification.kind == kinds.REPAYMENT_COMPLETED:
        amount = money.fmt(data["amount"])
        return Message(
            f"{amount} is back with you",
            f"The refund of {amount} from {store} (order {_order_name(order)}) was "
            f"paid back to {data['label']}.",
            plans,
        )
    if notification.kind == kinds.REPAYMENT_BOUNCED:
        amount = money.fmt(data["amount"])
        return Message(
            f"Action needed: your refund of {amount} bounced",
            f"We could not pay back {amount} from {store} (order "
            f"{_order_name(order)}): {data['reason']} {BOUNCE_GUIDANCE} Give us new "
            "details and we will send it again.",
            plans,
        )
    if notification.kind == kinds.REPAYMENT_TRACED:
        amount = money.fmt(data["amount"])
        return Message(
            f"Your refund of {amount} is late: we are tracing it",
            f"The refund of {amount} from {store} (order {_order_name(order)}) to "
            f"{data['label']} was due by "
            f"{_day(date.fromisoformat(data['expected_by']))}. {TRACING} "
            f"{BOUNCE_GUIDANCE}",
            plans,
        )
    if notification.kind == kinds.RETURN_REPORTED:
        return Message(
            f"Return reported: payments for {store} paused",
            f"You reported a return for order {_order_name(order)} (tracking number "
            f"{data['tracking_number']}). Your payments are paused until {store} "
            "registers it, at the latest until "
            f"{_day(date.fromisoformat(data['pause_until']))}.",
        )
    return Message(
        f"Payments resumed for {store}",
        f"{store} has not registered your return for order {_order_name(order)} "
        "within 21 days, so your payments continue as planned. If you sent the "
        "items back, contact the store with your tracking number "
        f"{data['tracking_number']}.",
    )


def _post(customer_id: int, kind: str, data: dict, **links) -> Notification:
    """Create the notification with its facts; the stored title and body are a
    copy of ``render`` at this moment, for staff (customers see ``render``)."""
    notification = Notification(
        customer_id=customer_id,
        kind=kind,
        data={"version": MESSAGE_VERSION, **data},
        **links,
    )
    message = render(notification)
    return Notification.post(
        customer_id,
        kind,
        message.title,
        message.body,
        data=notification.data,
        **links,
    )


def create_refund_notification(refund_id: int) -> Notification | None:
    """The in-app notification for a refund; ``None`` if it already exists (the
    job ran twice). Its email is enqueued after commit. Written from what the
    refund recorded, however late the job runs."""
    from refunds.models import Refund

    refund = (
        Refund.objects.select_related("order__merchant")
        .prefetch_related("allocations__capture")
        .get(pk=refund_id)
    )
    try:
        with transaction.atomic():
            return _post(
                refund.order.customer_id,
                Notification.Kind.REFUND,
                {},
                order=refund.order,
                refund=refund,
            )
    except IntegrityError:
        return None


def notify_repayment_completed(repayment: Repayment) -> Notification:
    label = repayment.payment_method.label if repayment.payment_method else "you"
    return _post(
        repayment.customer_id,
        Notification.Kind.REPAYMENT_COMPLETED,
        {"amount": repayment.amount, "label": label},
        order=repayment.plan.order,
        refund=repayment.refund,
        repayment=repayment,
    )


def notify_repayment_bounced(repayment: Repayment) -> Notification:
    return _post(
        repayment.customer_id,
        Notification.Kind.REPAYMENT_BOUNCED,
        {"amount": repayment.amount, "reason": repayment.failure_reason},
        order=repayment.plan.order,
        refund=repayment.refund,
        repayment=repayment,
    )


def notify_repayment_traced(repayment: Repayment) -> Notification:
    label = repayment.payment_method.label if repayment.payment_method else "you"
    return _post(
        repayment.customer_id,
        Notification.Kind.REPAYMENT_TRACED,
        {
            "amount": repayment.amount,
            "label": label,
            "expected_by": repayment.expected_by.isoformat(),
        },
        order=repayment.plan.order,
        refund=repayment.refund,
        repayment=repayment,
    )


def notify_return_reported(report: ReturnReport) -> Notification:
    return _post(
        report.customer_id,
        Notification.Kind.RETURN_REPORTED,
        {
            "tracking_number": report.tracking_number,
            "pause_until": report.pause_until.isoformat(),
        },
        order=report.order,
    )


def notify_payments_resumed(report: ReturnReport) -> Notification:
    return _post(
        report.customer_id,
        Notification.Kind.PAYMENTS_RESUMED,
        {"tracking_number": report.tracking_number},
        order=report.order,
    )


def notify_order_updated(order, previous_amount: int, change: str) -> Notification:
    """The store changed the order before shipping it (update authorization)."""
    money = MoneyContext.for_order(order)
    store = order.merchant.name
    detail = f" ({change})" if change else ""
    return Notification.post(
        order.customer_id,
        Notification.Kind.ORDER_UPDATED,
        f"{store} changed your order: now {money.fmt(order.order_amount)}",
        f"{store} changed order {_order_name(order)}{detail}: the order total went "
        f"from {money.fmt(previous_amount)} to {money.fmt(order.order_amount)}. "
        "You only pay for what is shipped; your payments are set when it ships.",
        order=order,
    )


def _plan_sentence(plan: PaymentPlan, money: MoneyContext) -> str:
    open_ = [i for i in plan.installments.all() if i.status in OPEN_INSTALLMENT]
    if not open_:
        return ""
    payments = ", ".join(
        f"{money.fmt(i.amount)} on {i.due_date:%-d %b %Y}" for i in open_
    )
    return f"Your remaining payments: {payments}."


def notify_invoice(capture) -> Notification:
    """The invoice for a capture (its plan and due dates), sent again on the
    store's request (trigger-send-out)."""
    order = capture.order
    money = MoneyContext.for_order(order)
    plan = PaymentPlan.objects.prefetch_related("installments").get(capture=capture)
    sentence = _plan_sentence(plan, money) or "Nothing is left to pay on it."
    return Notification.post(
        order.customer_id,
        Notification.Kind.INVOICE,
        f"Your invoice {capture.klarna_reference} from {order.merchant.name}",
        f"Invoice {capture.klarna_reference} for order {_order_name(order)}: "
        f"{money.fmt(capture.captured_amount)}. {sentence}",
        order=order,
    )


def notify_due_date_extended(extension) -> Notification:
    plan = extension.plan
    order = plan.order
    return Notification.post(
        plan.customer_id,
        Notification.Kind.DUE_DATE_EXTENDED,
        f"More time to pay {order.merchant.name}",
        f"{order.merchant.name} gave you {extension.number_of_days} more days to pay "
        f"for order {_order_name(order)}: it is now due on "
        f"{extension.new_due_date:%-d %b %Y}, at no cost to you.",
        order=order,
    )


def _email_context(notification: Notification) -> dict:
    message = render(notification)
    context = {
        "notification": notification,
        "message": message,
        "customer": notification.customer,
    }
    if notification.order_id is None:
        return context
    order = notification.order
    context["order"] = order
    context["money"] = MoneyContext.for_order(order)
    if notification.data and notification.refund_id:
        # About a refund: the plan as that refund left it, from its record.
        context["recorded_plans"] = message.plans
    else:
        # Not about a refund (a return reported, payments resumed): the plan
        # now, with the dates paused payments will really be charged.
        pause_until = (
            ReturnReport.objects.open()
            .filter(order=order)
            .values_list("pause_until", flat=True)
            .first()
        )
        plans = list(
            PaymentPlan.objects.filter(order=order)
            .prefetch_related("installments")
            .order_by("pk")
        )
        context["plans"] = [(plan, plan_rows(plan, pause_until)) for plan in plans]
    return context


def send_notification_email_now(notification: Notification) -> None:
    """Render and send the notification's email (HTML and text), with its stable
    Message-ID. Raises whatever the mail backend raises; the job decides."""
    context = _email_context(notification)
    message = EmailMultiAlternatives(
        subject=context["message"].title,
        body=render_to_string("customers/email/notification.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.customer.email],
        headers={"Message-ID": notification.message_id},
    )
    message.attach_alternative(
        render_to_string("customers/email/notification.html", context), "text/html"
    )
    message.send()


def send_login_code_email(customer: Customer, code: str) -> None:
    context = {"customer": customer, "code": code}
    message = EmailMultiAlternatives(
        subject=f"Your login code: {code}",
        body=render_to_string("customers/email/login_code.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[customer.email],
    )
    message.attach_alternative(
        render_to_string("customers/email/login_code.html", context), "text/html"
    )
    message.send()
