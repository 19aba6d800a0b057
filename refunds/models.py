"""Refunds: append-only records of money (or store credit) going back for an order.

A refund is never edited or deleted, only followed by new ones. Its allocations say
which captures (customer invoices) it credits; the engine (``refunds.engine``)
computes and writes them. ``refunded_amount = items_amount − fee_amount``.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from portal.models import Channel
from portal.money import MAX_AMOUNT


class RefundKind(models.TextChoices):
    COMPLETE = "complete", "Complete order"
    ITEMS = "items", "Selected items"
    ITEMS_WITH_FEE = "items_fee", "Selected items with a return fee"
    AMOUNT = "amount", "Amount"


class RefundQuerySet(models.QuerySet):
    def for_merchant(self, merchant) -> "RefundQuerySet":
        return self.filter(merchant=merchant)


class Refund(models.Model):
    refund_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    order = models.ForeignKey(
        "portal.Order", on_delete=models.PROTECT, related_name="refunds"
    )
    # Denormalized from the order so idempotency keys are unique per merchant.
    merchant = models.ForeignKey(
        "portal.Merchant", on_delete=models.PROTECT, related_name="refunds"
    )
    kind = models.CharField(max_length=10, choices=RefundKind.choices)
    items_amount = models.BigIntegerField(
        help_text="What the refunded items or amount are worth."
    )
    fee_amount = models.BigIntegerField(
        default=0, help_text="Return fee the customer pays."
    )
    refunded_amount = models.BigIntegerField(help_text="What goes back: items − fee.")
    store_credit = models.BooleanField(
        default=False, help_text="Handled as store credit by the store: no money moved."
    )
    description = models.CharField(
        max_length=255, blank=True, help_text="Shown to the customer."
    )
    reference = models.CharField(
        max_length=255, blank=True, help_text="The merchant's; in settlement reports."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    channel = models.CharField(
        max_length=10, choices=Channel.choices, default=Channel.PORTAL
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Klarna's flag for B2B invoice orders (the refund as a credit invoice). No
    # payment product here is a B2B invoice, so it is always False (our rule).
    credit_invoice = models.BooleanField(default=False, db_default=False)

    objects = RefundQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["order", "created_at"], name="refund_order")]
        constraints = [
            models.CheckConstraint(
                condition=Q(refunded_amount__gt=0) & Q(refunded_amount__lte=MAX_AMOUNT),
                name="refund_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(fee_amount__gte=0), name="refund_fee_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount=F("items_amount") - F("fee_amount")),
                name="refund_amount_is_items_minus_fee",
            ),
        ]

    def __str__(self) -> str:
        return f"Refund {str(self.refund_id)[:8]} of {self.order}"

    def get_absolute_url(self) -> str:
        return (
            reverse("portal:order_detail", args=[self.order.order_id])
            + f"#refund-{self.refund_id}"
        )


class RefundLine(models.Model):
    """An order line refunded (positive) or the return fee (negative, no order line)."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(
        "portal.OrderLine",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refund_lines",
    )
    type = models.CharField(max_length=14)
    reference = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    quantity = models.PositiveIntegerField()
    total_amount = models.BigIntegerField()

    class Meta:
        ordering = ["refund", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="refund_line_quantity_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.name}"


class RefundAllocation(models.Model):
    """The part of a refund credited to one capture (customer invoice)."""

    refund = models.ForeignKey(
        Refund, on_delete=models.CASCADE, related_name="allocations"
    )
    capture = models.ForeignKey(
        "portal.Capture", on_delete=models.PROTECT, related_name="refund_allocations"
    )
    amount = models.BigIntegerField()
    effect_summary = models.CharField(
        max_length=500, blank=True, help_text="What it did to the plan."
    )

    class Meta:
        ordering = ["refund", "capture"]
        constraints = [
            models.UniqueConstraint(
                fields=["refund", "capture"], name="refund_allocation_unique"
            ),
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="refund_allocation_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} of {self.refund} to {self.capture}"


class RefundRequestKey(models.Model):
    """An idempotency key: the same key from the same merchant within 24 hours
    returns the first refund; with a different request it is refused."""

    merchant = models.ForeignKey(
        "portal.Merchant", on_delete=models.CASCADE, related_name="+"
    )
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    refund = models.OneToOneField(
        Refund, on_delete=models.CASCADE, related_name="request_key"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "key"], name="refund_key_unique_per_merchant"
            )
        ]

    def __str__(self) -> str:
        return self.key
