"""Orders, captures and refunds as the API shows them (Klarna's field names).

Each function takes rows loaded with ``order_for_api`` / ``capture_for_api`` /
``refund_for_api`` so that a whole order is a fixed number of queries.
"""

from datetime import datetime

from django.db.models import Prefetch, QuerySet

from portal.models import Capture, CaptureLine, Order, OrderLine
from refunds.models import Refund, RefundLine

from .models import DescriptiveRefundLine


def timestamp(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def orders_for_api(orders: QuerySet) -> QuerySet:
    return orders.prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("position", "pk")),
        Prefetch("captures", queryset=captures_for_api(Capture.objects.all())),
        Prefetch("refunds", queryset=refunds_for_api(Refund.objects.all())),
    )


def captures_for_api(captures: QuerySet) -> QuerySet:
    return (
        captures.order_by("created_at", "pk")
        .select_related("order")
        .prefetch_related(
            Prefetch(
                "lines",
                queryset=CaptureLine.objects.select_related("order_line").order_by(
                    "pk"
                ),
            )
        )
    )


def refunds_for_api(refunds: QuerySet) -> QuerySet:
    return refunds.order_by("created_at", "pk").prefetch_related(
        Prefetch("lines", queryset=RefundLine.objects.order_by("pk")),
        "descriptive_lines",
    )


def order_line_json(line: OrderLine) -> dict:
    return {
        "type": line.type,
        "reference": line.reference,
        "name": line.name,
        "quantity": line.quantity,
        "quantity_unit": line.quantity_unit,
        "unit_price": line.unit_price,
        "tax_rate": line.tax_rate,
        "total_discount_amount": line.total_discount_amount,
        "total_amount": line.total_amount,
        "total_tax_amount": line.total_tax_amount,
        "captured_quantity": line.captured_quantity,
        "refunded_quantity": line.refunded_quantity,
    }


def number_captures(captures) -> list[Capture]:
    """``captures`` (oldest first, all of one order) with their invoice numbers
    set, so ``klarna_reference`` costs no query."""
    captures = list(captures)
    for number, capture in enumerate(captures, start=1):
        capture.number = number
    return captures


def capture_json(capture: Capture) -> dict:
    order = capture.order
    return {
        "capture_id": str(capture.capture_id),
        "klarna_reference": capture.klarna_reference,
        "reference": capture.reference,
        "description": capture.description,
        "captured_amount": capture.captured_amount,
        "refunded_amount": capture.refunded_amount,
        "captured_at": timestamp(capture.created_at),
        "order_lines": [
            {
                "type": cl.order_line.type,
                "reference": cl.order_line.reference,
                "name": cl.order_line.name,
                "quantity": cl.quantity,
                "quantity_unit": cl.quantity_unit,
                "unit_price": cl.unit_price,
                "tax_rate": cl.tax_rate,
                "total_amount": cl.amount,
                "total_discount_amount": cl.total_discount_amount,
                "total_tax_amount": cl.total_tax_amount,
            }
            for cl in capture.lines.all()
        ],
        "shipping_info": capture.shipping_info,
        # Captures made before addresses were kept show the order's.
        "billing_address": capture.billing_address or order.billing_address,
        "shipping_address": capture.shipping_address or order.shipping_address,
    }


def refund_json(refund: Refund) -> dict:
    return {
        "refund_id": str(refund.refund_id),
        "reference": refund.reference,
        "description": refund.description,
        "refunded_amount": refund.refunded_amount,
        "refunded_at": timestamp(refund.created_at),
        "order_lines": [
            {
                "type": rl.type,
                "reference": rl.reference,
                "name": rl.name,
                "quantity": rl.quantity,
                "quantity_unit": rl.quantity_unit,
                "unit_price": rl.unit_price,
                "tax_rate": rl.tax_rate,
                "total_amount": rl.total_amount,
                "total_discount_amount": rl.total_discount_amount,
                "total_tax_amount": rl.total_tax_amount,
            }
            for rl in refund.lines.all()
        ]
        + [descriptive_line_json(line) for line in refund.descriptive_lines.all()],
        "credit_invoice": refund.credit_invoice,
    }


def descriptive_line_json(line: DescriptiveRefundLine) -> dict:
    """A line sent with a refund by amount, returned as it was given."""
    return {
        "type": line.type,
        "reference": line.reference,
        "name": line.name,
        "quantity": line.quantity,
        "quantity_unit": line.quantity_unit,
        "unit_price": line.unit_price,
        "tax_rate": line.tax_rate,
        "total_discount_amount": line.total_discount_amount,
        "total_amount": line.total_amount,
        "total_tax_amount": line.total_tax_amount,
    }


def order_json(order: Order) -> dict:
    return {
        "order_id": str(order.order_id),
        "klarna_reference": order.reference,
        "status": order.status,
        "payment_product": order.payment_product,
        "purchase_country": order.purchase_country,
        "purchase_currency": order.purchase_currency,
        "locale": order.locale.replace("_", "-"),
        "order_amount": order.order_amount,
        "original_order_amount": order.original_order_amount,
        "captured_amount": order.captured_amount,
        "refunded_amount": order.refunded_amount,
        "remaining_authorized_amount": order.remaining_authorized_amount,
        "merchant_reference1": order.merchant_reference1,
        "merchant_reference2": order.merchant_reference2,
        "created_at": timestamp(order.created_at),
        "expires_at": timestamp(order.expires_at),
        "fraud_status": order.fraud_status,
        "initial_payment_method": order.initial_payment_method,
        "customer": order.customer_details,
        "billing_address": order.billing_address,
        "shipping_address": order.shipping_address,
        "merchant_data": order.merchant_data,
        "shipping_info": order.shipping_info,
        "selected_shipping_option": order.selected_shipping_option,
        "order_lines": [order_line_json(line) for line in order.lines.all()],
        "captures": [capture_json(c) for c in number_captures(order.captures.all())],
        "refunds": [refund_json(r) for r in order.refunds.all()],
    }
