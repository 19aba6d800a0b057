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

Language (issue 15): a message is written in its customer's language, the
language of its order's locale (``customers.language``), whoever triggers it
and whatever the request's language: the email job renders inside
``translation.override`` of that language. In the app, a notification is
written in the language of the page that shows it. The stored ``title`` and
``body`` (a copy for staff) are written in the customer's language too.
"""

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from portal.models import PaymentProduct

from .language import customer_language, day, order_language
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
from .status import (
    BOUNCE_GUIDANCE,
    TRACING,
    MoneyContext,
    as_sentence,
    plan_rows,
    shipment_prefix,
)

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


def notification_language(notification: Notification) -> str:
    """The language a notification is written in for its customer: its order's
    (``customers.language``), or the customer's for one about no order."""
    if notification.order_id is not None:
        return order_language(notification.order)
    return customer_language(notification.customer)


def _refund_message(refund, money: MoneyContext) -> Message:
    """The refund notification, from the refund and what it recorded, in the
    active language."""
    order = refund.order
    store = order.merchant.name
    amount = money.fmt(refund.refunded_amount)
    title = _("Refund from %(store)s: %(amount)s") % {"store": store, "amount": amount}
    if refund.store_credit:
        return Message(
            title,
            _(
                "%(store)s registered your return of %(amount)s as store credit. "
                "Your payments to us continue as planned."
            )
            % {"store": store, "amount": amount},
        )
    lines = [
        _("%(store)s refunded %(amount)s for order %(order)s.")
        % {"store": store, "amount": amount, "order": _order_name(order)}
    ]
    if refund.fee_amount:
        lines.append(
            _("A return fee of %(fee)s was deducted.")
            % {"fee": money.fmt(refund.fee_amount)}
        )
    allocations = list(refund.allocations.all())
    expected_by = timezone.localdate(refund.created_at) + timedelta(
        days=REFUND_PROCESSING_DAYS
    )
    plans, money_to_method = [], False
    for allocation in allocations:
        prefix = (
            shipment_prefix(allocation.capture.number) if len(allocations) > 1 else ""
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
                _("Shipment %(number)s") % {"number": allocation.capture.number}
                if prefix
                else _("Your payment plan")
            )
            plans.append(RecordedPlan(heading, effect.installments))
    if money_to_method:
        lines.append(_("Money going back to you can take up to 14 days to arrive."))
    return Message(title, " ".join(line for line in lines if line), plans)


def _payments(rows, money: MoneyContext) -> str:
    """ "40,00 € on 1. Januar 2027, ..." from ``(amount, due date or None)``."""
    return ", ".join(
        _("%(amount)s on %(date)s") % {"amount": money.fmt(amount), "date": day(due)}
        if due
        else money.fmt(amount)
        for amount, due in rows
    )


def _effect_lines(
    effect: RefundEffect, money: MoneyContext, expected_by: date
) -> list[str]:
    lines = []
    if effect.cancels_remaining:
        lines.append(_("Any remaining payments will be canceled."))
    elif effect.remaining_after:
        if effect.product == PaymentProduct.FINANCING:
            lines.append(
                _("%(amount)s was deducted from your financing balance.")
                % {"amount": money.fmt(effect.amount)}
            )
        rows = [(after, due) for due, _before, after in effect.installments if after]
        lines.append(
            ngettext(
                "Your remaining payment: %(payments)s.",
                "Your remaining payments: %(payments)s.",
                len(rows),
            )
            % {"payments": _payments(rows, money)}
        )
    if effect.total_back:
        back = money.fmt(effect.total_back)
        lines.append(
            _("%(amount)s was credited to your account balance.") % {"amount": back}
            if effect.destination == "account_balance"
            else _("%(amount)s goes back to %(label)s; expect it by %(date)s.")
            % {
                "amount": back,
                "label": effect.destination_text,
                "date": day(expected_by),
            }
        )
    if effect.service_fee_returned:
        lines.append(
            _("The service fee of %(fee)s is returned with it.")
            % {"fee": money.fmt(effect.service_fee_returned)}
        )
    if effect.service_fee_kept:
        lines.append(
            _(
                "The service fee of %(fee)s is still charged: a partial refund does "
                "not return it."
            )
            % {"fee": money.fmt(effect.service_fee_kept)}
        )
    return lines


def _order_change(change: str) -> str:
    """The store's note on an order change, in the active language where it is
    the portal's own "2 × T-shirt removed"; a store's free text as it is."""
    match = re.fullmatch(r"(?P<quantity>\d+) × (?P<name>.+) removed", change)
    if match:
        return _("%(quantity)s × %(name)s removed") % match.groupdict()
    return change


def render(notification: Notification, language: str | None = None) -> Message:
    """The notification's title and body, written now from its facts in
    ``language`` (default: ``notification_language``, the customer's) with
    money in the order's currency and locale. Notifications from before facts
    were kept show what they said then."""
    data = notification.data or {}
    if not data:
        return Message(notification.title, notification.body)
    with translation.override(language or notification_language(notification)):
        return _render(notification, data)


def _render(notification: Notification, data: dict) -> Message:
    order = notification.order
    money = MoneyContext.for_order(order)
    facts = {"store": order.merchant.name, "order": _order_name(order)}
    kinds = Notification.Kind
    if notification.kind == kinds.REFUND:
        return _refund_message(notification.refund, money)
    plans = (
        _refund_message(notification.refund, money).plans
        if notification.refund_id
        else []
    )
    if "amount" in data:
        facts["amount"] = money.fmt(data["amount"])
    if notification.kind == kinds.REPAYMENT_COMPLETED:
        return Message(
            _("%(amount)s is back with you") % facts,
            _(
                "The refund of %(amount)s from %(store)s (order %(order)s) was paid "
                "back to %(label)s."
            )
            % {**facts, "label": _(data["label"])},
            plans,
        )
    if notification.kind == kinds.REPAYMENT_BOUNCED:
        reason = Repayment(failure_reason=data["reason"]).failure_reason_display
        return Message(
            _("Action needed: your refund of %(amount)s bounced") % facts,
            _("We could not pay back %(amount)s from %(store)s (order %(order)s):")
            % facts
            + f" {reason} {BOUNCE_GUIDANCE} "
            + _("Give us new details and we will send it again."),
            plans,
        )
    if notification.kind == kinds.REPAYMENT_TRACED:
        return Message(
            _("Your refund of %(amount)s is late: we are tracing it") % facts,
            _(
                "The refund of %(amount)s from %(store)s (order %(order)s) to "
                "%(label)s was due by %(date)s."
            )
            % {
                **facts,
                "label": _(data["label"]),
                "date": day(date.fromisoformat(data["expected_by"])),
            }
            + f" {TRACING} {BOUNCE_GUIDANCE}",
            plans,
        )
    if notification.kind == kinds.RETURN_REPORTED:
        return Message(
            _("Return reported: payments for %(store)s paused") % facts,
            _(
                "You reported a return for order %(order)s (tracking number "
                "%(tracking_number)s). Your payments are paused until %(store)s "
                "registers it, at the latest until %(date)s."
            )
            % {
                **facts,
                "tracking_number": data["tracking_number"],
                "date": day(date.fromisoformat(data["pause_until"])),
            },
        )
    if notification.kind == kinds.ORDER_UPDATED:
        change = _order_change(data["change"])
        facts["amount"] = money.fmt(data["order_amount"])
        facts["previous"] = money.fmt(data["previous_amount"])
        detail = (
            _(
                "%(store)s changed order %(order)s (%(change)s): the order total went "
                "from %(previous)s to %(amount)s."
            )
            if change
            else _(
                "%(store)s changed order %(order)s: the order total went from "
                "%(previous)s to %(amount)s."
            )
        )
        return Message(
            _("%(store)s changed your order: now %(amount)s") % facts,
            detail % {**facts, "change": change}
            + " "
            + _(
                "You only pay for what is shipped; your payments are set when it ships."
            ),
        )
    if notification.kind == kinds.INVOICE:
        rows = [(amount, date.fromisoformat(due)) for amount, due in data["payments"]]
        sentence = (
            ngettext(
                "Your remaining payment: %(payments)s.",
                "Your remaining payments: %(payments)s.",
                len(rows),
            )
            % {"payments": _payments(rows, money)}
            if rows
            else _("Nothing is left to pay on it.")
        )
        facts["invoice"] = data["invoice"]
        return Message(
            _("Your invoice %(invoice)s from %(store)s") % facts,
            _("Invoice %(invoice)s for order %(order)s: %(amount)s.") % facts
            + " "
            + sentence,
        )
    if notification.kind == kinds.DUE_DATE_EXTENDED:
        days = data["number_of_days"]
        return Message(
            _("More time to pay %(store)s") % facts,
            ngettext(
                "%(store)s gave you %(days)d more day to pay for order %(order)s: "
                "it is now due on %(date)s, at no cost to you.",
                "%(store)s gave you %(days)d more days to pay for order %(order)s: "
                "it is now due on %(date)s, at no cost to you.",
                days,
            )
            % {
                **facts,
                "days": days,
                "date": day(date.fromisoformat(data["new_due_date"])),
            },
        )
    return Message(
        _("Payments resumed for %(store)s") % facts,
        _(
            "%(store)s has not registered your return for order %(order)s within 21 "
            "days, so your payments continue as planned. If you sent the items "
            "back, contact the store with your tracking number %(tracking_number)s."
        )
        % {**facts, "tracking_number": data["tracking_number"]},
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
    label = (
        repayment.payment_method.label
        if repayment.payment_method
        else gettext_noop("you")
    )
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
    label = (
        repayment.payment_method.label
        if repayment.payment_method
        else gettext_noop("you")
    )
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
    return _post(
        order.customer_id,
        Notification.Kind.ORDER_UPDATED,
        {
            "previous_amount": previous_amount,
            "order_amount": order.order_amount,
            "change": change,
        },
        order=order,
    )


def notify_invoice(capture) -> Notification:
    """The invoice for a capture (its plan and due dates), sent again on the
    store's request (trigger-send-out). The payments still open are recorded
    as facts: the message says what was open when it was sent."""
    order = capture.order
    plan = PaymentPlan.objects.prefetch_related("installments").get(capture=capture)
    open_ = sorted(
        (i for i in plan.installments.all() if i.status in OPEN_INSTALLMENT),
        key=lambda i: i.sequence,
    )
    return _post(
        order.customer_id,
        Notification.Kind.INVOICE,
        {
            "invoice": capture.klarna_reference,
            "amount": capture.captured_amount,
            "payments": [[i.amount, i.due_date.isoformat()] for i in open_],
        },
        order=order,
    )


def notify_due_date_extended(extension) -> Notification:
    plan = extension.plan
    return _post(
        plan.customer_id,
        Notification.Kind.DUE_DATE_EXTENDED,
        {
            "number_of_days": extension.number_of_days,
            "new_due_date": extension.new_due_date.isoformat(),
        },
        order=plan.order,
    )


def _email_context(notification: Notification) -> dict:
    """What the email templates read, written in the active language."""
    message = render(notification, translation.get_language())
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


def send_notification_email_now(
    notification: Notification, language: str | None = None
) -> None:
    """Render and send the notification's email (HTML and text), with its stable
    Message-ID, in ``language`` (default: ``notification_language``, the
    customer's, never the request's). Raises whatever the mail backend raises;
    the job decides."""
    with translation.override(language or notification_language(notification)):
        context = _email_context(notification)
        message = EmailMultiAlternatives(
            subject=context["message"].title,
            body=render_to_string("customers/email/notification.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[notification.customer.email],
            headers={"Message-ID": notification.message_id},
        )
        message.attach_alternative(
            render_to_string("customers/email/notification.html", context),
            "text/html",
        )
    message.send()


def send_login_code_email(
    customer: Customer, code: str, language: str | None = None
) -> None:
    """Email a login code in ``language`` (default: ``customer_language``)."""
    with translation.override(language or customer_language(customer)):
        context = {"customer": customer, "code": code}
        message = EmailMultiAlternatives(
            subject=_("Your login code: %(code)s") % {"code": code},
            body=render_to_string("customers/email/login_code.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[customer.email],
        )
        message.attach_alternative(
            render_to_string("customers/email/login_code.html", context), "text/html"
        )
    message.send()
