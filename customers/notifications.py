"""What the customer is told: in-app notifications and their emails.

Amounts are in the order's currency and the customer's locale. The refund message
carries the updated plan and "any remaining payments will be canceled" where true
(seed 000).
"""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from portal.money import format_money

from .models import Notification


def create_refund_notification(refund_id: int) -> Notification | None:
    from refunds.models import Refund

    refund = (
        Refund.objects.select_related("order__merchant", "order__customer")
        .prefetch_related("allocations")
        .get(pk=refund_id)
    )
    order = refund.order
    customer = order.customer

    def fmt(amount: int) -> str:
        return format_money(amount, order.purchase_currency, customer.locale)

    store = order.merchant.name
    if refund.store_credit:
        body = (
            f"{store} registered your return of {fmt(refund.refunded_amount)} as store "
            "credit. Your payments to us continue as planned."
        )
    else:
        lines = [f"{store} refunded {fmt(refund.refunded_amount)} for order "
                 f"{order.merchant_reference1 or order.reference}."]
        if refund.fee_amount:
            lines.append(f"A return fee of {fmt(refund.fee_amount)} was deducted.")
        for allocation in refund.allocations.all():
            if allocation.effect_summary:
                lines.append(allocation.effect_summary[0].upper() + allocation.effect_summary[1:] + ".")
        lines.append("Money going back to you can take up to 14 days to arrive.")
        body = " ".join(lines)
    try:
        with transaction.atomic():
            return Notification.objects.create(
                customer=customer, kind=Notification.Kind.REFUND, order=order, refund=refund,
                title=f"Refund from {store}: {fmt(refund.refunded_amount)}", body=body,
            )
    except IntegrityError:
        return None  # Already notified (the job ran twice).


def send_notification_email_now(notification: Notification) -> None:
    context = {"notification": notification, "customer": notification.customer}
    message = EmailMultiAlternatives(
        subject=notification.title,
        body=render_to_string("customers/email/notification.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.customer.email],
    )
    message.attach_alternative(render_to_string("customers/email/notification.html", context), "text/html")
    message.send()
