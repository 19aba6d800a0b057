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
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from portal.models import Channel
from portal.money import MAX_AMOUNT


class RefundKind(models.TextChoices):
    COMPLETE = "complete", _("Complete order")
    ITEMS = "items", _("Selected items")
    ITEMS_WITH_FEE = "items_fee", _("Selected items with a return fee")
    AMOUNT = "amount", _("Amount")


class RefundReason(models.TextChoices):
    """Why the merchant refunds (our rule: the portal asks for one; API refunds,
    whose Klarna-shaped body has no reason, keep it empty)."""

    RETURNED = "returned", pgettext_lazy("refund reason", "Returned")
    DAMAGED = "damaged", pgettext_lazy("refund reason", "Damaged")
    NOT_AS_DESCRIBED = "not_as_described", _("Not as described")
    CANCELLED = "cancelled", pgettext_lazy("refund reason", "Cancelled")
    GOODWILL = "goodwill", _("Goodwill")
    OTHER = "other", pgettext_lazy("refund reason", "Other")


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
    reason = models.CharField(
        max_length=20,
        choices=RefundReason.choices,
        blank=True,
        default="",
        db_default="",
        help_text="Why it was refunded; empty for API refunds (Klarna has no reason).",
    )
    # For the merchant's staff only: never rendered on customer pages, in
    # notifications or emails, nor returned by the Klarna-shaped API.
    internal_note = models.TextField(
        max_length=1000,
        blank=True,
        default="",
        db_default="",
        help_text="Internal: never shown to the customer.",
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
    """One row of what a refund is made of; the rows sum to ``items_amount``
    minus the fee, i.e. to ``refunded_amount``.

    ``kind``:
    - ``item``: units of an order line taken from one capture line (positive);
    - ``share``: the proportional share of a negative line (discount, gift card,
      store credit) that comes off with the items (DOMAIN.md), quantity 1;
    - ``adjustment``: money of a capture not tied to lines — captured by amount
      and never itemized (positive), or already refunded by amount (negative);
    - ``fee``: the return fee (negative).
    Every row carries Klarna's line fields: ``total_amount = quantity ×
    unit_price − total_discount_amount``, with its exact part of the line's tax.
    """

    class Kind(models.TextChoices):
        ITEM = "item", _("Item")
        SHARE = "share", _("Share of a discount or gift card")
        ADJUSTMENT = "adjustment", _("Adjustment")
        FEE = "fee", _("Return fee")

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(
        "portal.OrderLine",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refund_lines",
    )
    capture_line = models.ForeignKey(
        "portal.CaptureLine",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refund_lines",
    )
    kind = models.CharField(
        max_length=10, choices=Kind.choices, default=Kind.ITEM, db_default="item"
    )
    type = models.CharField(max_length=14)
    reference = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=255)
    quantity = models.PositiveIntegerField()
    quantity_unit = models.CharField(max_length=10, default="pcs", db_default="pcs")
    unit_price = models.BigIntegerField(default=0, db_default=0)
    tax_rate = models.PositiveIntegerField(default=0, db_default=0)
    total_discount_amount = models.BigIntegerField(default=0, db_default=0)
    total_amount = models.BigIntegerField()
    total_tax_amount = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        ordering = ["refund_id", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="refund_line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(
                    total_amount=F("quantity") * F("unit_price")
                    - F("total_discount_amount")
                ),
                name="refund_line_total_consistent",
            ),
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
    # What the refund did to the plan when it happened (RefundEffect.as_record):
    # plan before/after, money back, fee kept or returned, destination. Every
    # message about the refund is written from it. Null for store credit (no
    # effect) and for refunds made before it was recorded (then the sentence in
    # effect_summary, written at the time, is all that is known).
    effect = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["refund_id", "capture_id"]
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

    def recorded_effect(self):
        """The ``customers.models.RefundEffect`` recorded when the refund was
        made, or None (store credit, or a refund from before the record)."""
        from customers.models import RefundEffect

        return RefundEffect.from_record(self.effect) if self.effect else None

    def may_have_repayment(self, store_credit: bool) -> bool:
        """Whether this allocation may have sent money back to a payment method
        (a ``customers.Repayment``), read from the recorded effect without a
        query: only money back or a returned service fee to the payment method
        makes one (``PaymentPlan.apply_refund_effect``). Store credit makes none;
        a refund from before the record may have, so it says True (our rule)."""
        if self.effect is None:
            return not store_credit
        back = self.effect.get("money_back", 0) + self.effect.get(
            "service_fee_returned", 0
        )
        return bool(back) and self.effect.get("destination") != "account_balance"

    def describe(self, fmt) -> str:
        """What this allocation did, for people, formatted with ``fmt`` now:
        from the record, else the sentence stored at the time."""
        effect = self.recorded_effect()
        return effect.describe(fmt) if effect is not None else self.effect_summary


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
