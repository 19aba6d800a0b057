"""What the customer is told: in-app notifications and their emails.

Amounts are in the order's currency and the customer's locale. The refund message
carries the updated plan and "any remaining payments will be canceled" where true
(seed 000). Each function creates the in-app notification inside the caller's
transaction; its email goes out from a job after commit (``Notification.post``).
"""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from .models import (
    OPEN_INSTALLMENT,
    Customer,
    Notification,
    PaymentPlan,
    Repayment,
    ReturnReport,
)
from .status import BOUNCE_GUIDANCE, MoneyContext

# The engine's RefundEffect.describe() says exactly this when a refund cancels the
# remaining installments of a plan.
CANCELS_REMAINING = "any remaining payments will be canceled"


def _order_name(order) -> str:
    return order.merchant_reference1 or order.reference


def _plan_sentence(plan: PaymentPlan, money: MoneyContext) -> str:
    open_ = [i for i in plan.installments.all() if i.status in OPEN_INSTALLMENT]
    if not open_:
        return ""
    payments = ", ".join(
        f"{money.fmt(i.amount)} on {i.due_date:%-d %b %Y}" for i in open_
    )
    return f"Your remaining payments: {payments}."


def create_refund_notification(refund_id: int) -> Notification | None:
    """The in-app notification for a refund; ``None`` if it already exists (the
    job ran twice). Its email is enqueued after commit."""
    from refunds.models import Refund

    refund = (
        Refund.objects.select_related("order__merchant", "order__customer")
        .prefetch_related("allocations__capture__plan__installments", "repayments")
        .get(pk=refund_id)
    )
    order = refund.order
    customer = order.customer
    money = MoneyContext.for_order(order, customer)
    store = order.merchant.name
    amount = money.fmt(refund.refunded_amount)
    if refund.store_credit:
        body = (
            f"{store} registered your return of {amount} as store credit. Your "
            "payments to us continue as planned."
        )
    else:
        lines = [f"{store} refunded {amount} for order {_order_name(order)}."]
        if refund.fee_amount:
            lines.append(
                f"A return fee of {money.fmt(refund.fee_amount)} was deducted."
            )
        for allocation in refund.allocations.all():
            if CANCELS_REMAINING in allocation.effect_summary:
                lines.append("Any remaining payments will be canceled.")
            else:
                lines.append(_plan_sentence(allocation.capture.plan, money))
        for repayment in refund.repayments.all():
            label = (
                repayment.payment_method.label if repayment.payment_method else "you"
            )
            lines.append(
                f"{money.fmt(repayment.amount)} goes back to {label}; expect it by "
                f"{repayment.expected_by:%-d %b %Y}."
            )
        if refund.repayments.all():
            lines.append("Money going back to you can take up to 14 days to arrive.")
        body = " ".join(line for line in lines if line)
    try:
        with transaction.atomic():
            return Notification.post(
                customer.pk,
                Notification.Kind.REFUND,
                f"Refund from {store}: {amount}",
                body,
                order=order,
                refund=refund,
            )
    except IntegrityError:
        return None


def notify_repayment_completed(repayment: Repayment) -> Notification:
    order = repayment.plan.order
    money = MoneyContext.for_order(order, repayment.customer)
    label = repayment.payment_method.label if repayment.payment_method else "you"
    return Notification.post(
        repayment.customer_id,
        Notification.Kind.REPAYMENT_COMPLETED,
        f"{money.fmt(repayment.amount)} is back with you",
        f"The refund of {money.fmt(repayment.amount)} from {order.merchant.name} "
        f"(order {_order_name(order)}) was paid back to {label}.",
        order=order,
        refund=repayment.refund,
        repayment=repayment,
    )


def notify_repayment_bounced(repayment: Repayment) -> Notification:
    order = repayment.plan.order
    money = MoneyContext.for_order(order, repayment.customer)
    return Notification.post(
        repayment.customer_id,
        Notification.Kind.REPAYMENT_BOUNCED,
        f"Action needed: your refund of {money.fmt(repayment.amount)} bounced",
        f"We could not pay back {money.fmt(repayment.amount)} from "
        f"{order.merchant.name} (order {_order_name(order)}): "
        f"{repayment.failure_reason} {BOUNCE_GUIDANCE} Give us new details and we "
        "will send it again.",
        order=order,
        refund=repayment.refund,
        repayment=repayment,
    )


def notify_return_reported(report: ReturnReport) -> Notification:
    order = report.order
    return Notification.post(
        report.customer_id,
        Notification.Kind.RETURN_REPORTED,
        f"Return reported: payments for {order.merchant.name} paused",
        f"You reported a return for order {_order_name(order)} (tracking number "
        f"{report.tracking_number}). Your payments are paused until "
        f"{order.merchant.name} registers it, at the latest until "
        f"{report.pause_until:%-d %b %Y}.",
        order=order,
    )


def notify_payments_resumed(report: ReturnReport) -> Notification:
    order = report.order
    return Notification.post(
        report.customer_id,
        Notification.Kind.PAYMENTS_RESUMED,
        f"Payments resumed for {order.merchant.name}",
        f"{order.merchant.name} has not registered your return for order "
        f"{_order_name(order)} within 21 days, so your payments continue as planned. "
        "If you sent the items back, contact the store with your tracking number "
        f"{report.tracking_number}.",
        order=order,
    )


def notify_order_updated(order, previous_amount: int, change: str) -> Notification:
    """The store changed the order before shipping it (update authorization)."""
    money = MoneyContext.for_order(order, order.customer)
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


def notify_invoice(capture) -> Notification:
    """The invoice for a capture (its plan and due dates), sent again on the
    store's request (trigger-send-out)."""
    order = capture.order
    money = MoneyContext.for_order(order, order.customer)
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
    context = {"notification": notification, "customer": notification.customer}
    if notification.order_id is None:
        return context
    order = notification.order
    context["order"] = order
    context["money"] = MoneyContext.for_order(order, notification.customer)
    context["plans"] = list(
        PaymentPlan.objects.filter(order=order)
        .prefetch_related("installments")
        .order_by("pk")
    )
    return context


def send_notification_email_now(notification: Notification) -> None:
    """Render and send the notification's email (HTML and text). Raises whatever
    the mail backend raises; the job retries."""
    context = _email_context(notification)
    message = EmailMultiAlternatives(
        subject=notification.title,
        body=render_to_string("customers/email/notification.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.customer.email],
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
