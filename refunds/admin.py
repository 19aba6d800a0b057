"""The staff admin for refunds: append-only, so read-only.

A refund is only ever made by the order's verbs (``order.refund_lines`` ...), which
lock the order and keep every counter, plan and ledger entry consistent; the admin
therefore never adds, edits or deletes one. Amounts show in the order's currency and
locale, like the portal.
"""

import uuid

from django.contrib import admin

from customers.models import Repayment
from portal.admin import ReadOnlyAdminMixin, ReadOnlyInline, admin_link, money

from .models import Refund, RefundAllocation, RefundLine, RefundRequestKey


class RefundLineInline(ReadOnlyInline):
    model = RefundLine
    show_change_link = False
    fields = ["reference", "name", "type", "quantity", "amount_display"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("refund__order")

    @admin.display(description="Amount")
    def amount_display(self, obj: RefundLine) -> str:
        return money(obj.total_amount, obj.refund.order)


class RefundAllocationInline(ReadOnlyInline):
    model = RefundAllocation
    show_change_link = False
    fields = ["capture", "amount_display", "effect_summary"]
    readonly_fields = fields
    verbose_name_plural = "allocations to captures (customer invoices)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("refund__order", "capture")

    @admin.display(description="Amount")
    def amount_display(self, obj: RefundAllocation) -> str:
        return money(obj.amount, obj.refund.order)


class RepaymentInline(ReadOnlyInline):
    """Where the money went back to, and whether it arrived."""

    model = Repayment
    fields = [
        "amount_display",
        "payment_method",
        "status",
        "expected_by",
        "attempts",
        "failure_reason",
        "completed_at",
    ]
    readonly_fields = fields
    verbose_name_plural = "money back to the customer"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("refund__order", "payment_method")
        )

    @admin.display(description="Amount")
    def amount_display(self, obj: Repayment) -> str:
        return money(obj.amount, obj.refund.order)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "short_id",
        "created_at",
        "order_link",
        "merchant",
        "customer_email",
        "kind",
        "reason",
        "items_display",
        "fee_display",
        "refunded_display",
        "reference",
        "created_by",
    ]
    list_filter = [
        "kind",
        "reason",
        "channel",
        "store_credit",
        "merchant",
        "created_at",
    ]
    search_fields = [
        "=order__reference",
        "=reference",
        "=order__merchant_reference1",
        "order__customer__email",
    ]
    search_help_text = (
        "Refund or order id, order reference, refund reference, merchant order "
        "number or customer email."
    )
    list_select_related = ["order__customer", "merchant", "created_by"]
    show_full_result_count = False
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-pk"]
    fields = [
        ("refund_id", "order_link", "merchant"),
        ("kind", "items_display", "fee_display", "refunded_display"),
        ("store_credit", "channel", "created_by", "created_at"),
        ("reason", "description", "reference"),
        "internal_note",
    ]
    readonly_fields = [
        name for row in fields for name in (row if isinstance(row, tuple) else [row])
    ]
    inlines = [RefundLineInline, RefundAllocationInline, RepaymentInline]

    def get_search_results(self, request, queryset, search_term):
        try:
            key = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(refund_id=key) | queryset.filter(
            order__order_id=key
        ), False

    @admin.display(description="Refund", ordering="pk")
    def short_id(self, obj: Refund) -> str:
        return str(obj.refund_id)[:8]

    @admin.display(description="Order", ordering="order__reference")
    def order_link(self, obj: Refund) -> str:
        return admin_link(obj.order)

    @admin.display(description="Customer", ordering="order__customer__email")
    def customer_email(self, obj: Refund) -> str:
        return obj.order.customer.email

    @admin.display(description="Items", ordering="items_amount")
    def items_display(self, obj: Refund) -> str:
        return money(obj.items_amount, obj.order)

    @admin.display(description="Return fee", ordering="fee_amount")
    def fee_display(self, obj: Refund) -> str:
        return money(obj.fee_amount, obj.order)

    @admin.display(description="Refunded", ordering="refunded_amount")
    def refunded_display(self, obj: Refund) -> str:
        return money(obj.refunded_amount, obj.order)


@admin.register(RefundLine)
class RefundLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["refund", "reference", "name", "type", "quantity", "amount_display"]
    list_filter = ["type"]
    search_fields = ["=refund__order__reference", "reference"]
    list_select_related = ["refund__order"]
    show_full_result_count = False

    @admin.display(description="Amount", ordering="total_amount")
    def amount_display(self, obj: RefundLine) -> str:
        return money(obj.total_amount, obj.refund.order)


@admin.register(RefundAllocation)
class RefundAllocationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["refund", "capture", "amount_display", "effect_summary"]
    search_fields = ["=refund__order__reference"]
    list_select_related = ["refund__order", "capture__order"]
    show_full_result_count = False

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: RefundAllocation) -> str:
        return money(obj.amount, obj.refund.order)


@admin.register(RefundRequestKey)
class RefundRequestKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Idempotency keys (kept 24 hours' worth of meaning)."""

    list_display = ["key", "merchant", "refund", "created_at"]
    list_filter = ["merchant"]
    search_fields = ["=key"]
    list_select_related = ["merchant", "refund__order"]
    show_full_result_count = False
