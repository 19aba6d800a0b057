"""The merchant portal's refund form: one form for every kind of refund.

The form only turns what was typed into a ``RefundRequest``; the refund engine
decides. ``preview()`` shows the plan the engine would execute, ``save()`` executes
it with the previewed plan's fingerprint, so what runs is what was previewed, and
with the form's idempotency key, so a double submit refunds once.
"""

import uuid
from dataclasses import dataclass

from django import forms
from django.utils.functional import cached_property

from portal.exceptions import DomainError
from portal.models import Capture, Channel, Order, OrderLine
from portal.money import parse_amount, parse_quantity

from .engine import (
    PlannedAllocation,
    RefundKind,
    RefundPlan,
    RefundRequest,
    execute_refund,
    preview_refund,
    refundable_now,
)
from .exceptions import IdempotencyConflict, RefundChanged
from .models import Refund

#: Where each refund-engine error ``field`` is shown in this form.
ERROR_FIELDS = {
    "amount": "amount",
    "refunded_amount": "amount",
    "return_fee": "return_fee",
    "lines": "lines",
    "description": "description",
    "reference": "reference",
}


@dataclass
class LineRow:
    line: OrderLine
    selected: forms.BoundField
    quantity: forms.BoundField


@dataclass
class AllocationRow:
    allocation: PlannedAllocation
    summary: str
    installments: list[tuple[int, int]]  # (before, after) per open installment


def allocation_rows(plan: RefundPlan) -> list[AllocationRow]:
    """The plan's allocations with the customer's installments before -> after."""
    rows = []
    for allocation, summary in plan.effect_summaries():
        effect = allocation.effect
        pairs = list(zip(effect.before, effect.after, strict=True)) if effect else []
        rows.append(AllocationRow(allocation, summary, pairs))
    return rows


class RefundForm(forms.Form):
    kind = forms.ChoiceField(
        label="How to refund",
        choices=[
            (RefundKind.COMPLETE, "Complete order"),
            (RefundKind.ITEMS, "Selected items"),
            (RefundKind.AMOUNT, "Amount"),
        ],
        initial=RefundKind.ITEMS,
        widget=forms.RadioSelect,
    )
    lines = forms.Field(label="Items", required=False, widget=forms.HiddenInput)
    amount = forms.CharField(
        label="Amount to refund",
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    return_fee = forms.CharField(
        label="Return fee",
        required=False,
        max_length=20,
        help_text="Paid by the customer: deducted from the refunded items.",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    description = forms.CharField(
        label="Description (shown to the customer)", required=False, max_length=255
    )
    reference = forms.CharField(
        label="Reference (for your books and settlement reports)",
        required=False,
        max_length=255,
    )
    idempotency_key = forms.CharField(max_length=255, widget=forms.HiddenInput)
    expected_fingerprint = forms.CharField(
        required=False, max_length=64, widget=forms.HiddenInput
    )

    def __init__(self, order: Order, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order = order
        self.plan: RefundPlan | None = None
        self.fields["idempotency_key"].initial = uuid.uuid4().hex
        lines = list(order.lines.order_by("position", "pk"))
        # Negative lines (discounts, gift cards) are never chosen: their share
        # comes off the items in proportion, as its own row in the preview.
        self.captured_lines = [
            line for line in lines if line.captured_quantity and not line.is_negative
        ]
        self.negative_lines = [
            line for line in lines if line.captured_quantity and line.is_negative
        ]
        self.uncaptured_lines = [line for line in lines if not line.captured_quantity]
        for line in self.captured_lines:
            # A line with nothing left to refund is shown, but cannot be chosen.
            done = line.refundable_quantity == 0
            self.fields[f"line-{line.pk}-selected"] = forms.BooleanField(
                label=f"Refund {line.name}", required=False, disabled=done
            )
            self.fields[f"line-{line.pk}-quantity"] = forms.CharField(
                label="Quantity to refund",
                required=False,
                max_length=9,
                disabled=done,
                initial=line.refundable_quantity or "",
                # A text input: the server reads exactly what was typed (a number
                # input silently empties "٣" or keeps "1.5" as typed).
                widget=forms.TextInput(
                    attrs={
                        "class": "input-qty",
                        "inputmode": "numeric",
                        "autocomplete": "off",
                    }
                ),
            )
        captures = list(
            Capture.objects.filter(order=order).values_list(
                "by_amount", "captured_amount"
            )
        )
        self.capture_count = len(captures)
        # Captured as an amount while lines are still uncaptured: such money
        # holds no items until the whole order is captured (DOMAIN.md).
        self.captured_by_amount = sum(a for by_amount, a in captures if by_amount)
        self.return_fee_unavailable = self._return_fee_unavailable()
        if self.return_fee_unavailable:
            del self.fields["return_fee"]

    def _return_fee_unavailable(self) -> str:
        """Why a return fee cannot be offered on this order ("" when it can)."""
        if not self.order.return_fee_market:
            return (
                "return fees are not supported for orders from "
                f"{self.order.purchase_country}."
            )
        if self.capture_count == 0:
            return "nothing has been captured yet."
        if self.capture_count != 1:
            return (
                "a return fee is only possible on an order captured in one single "
                f"capture; this order has {self.capture_count} captures."
            )
        return ""

    @cached_property
    def refundable(self) -> tuple[int, int]:
        """``(refundable, held_back)`` as the engine counts them now (minor units)."""
        return refundable_now(self.order)

    @property
    def line_rows(self) -> list[LineRow]:
        return [
            LineRow(
                line, self[f"line-{line.pk}-selected"], self[f"line-{line.pk}-quantity"]
            )
            for line in self.captured_lines
        ]

    def error_slots(self) -> list[forms.BoundField]:
        """Fields with an error container in the page (replaced on each preview)."""
        names = ["kind", "lines", "amount", "return_fee", "description", "reference"]
        names += [f"line-{line.pk}-quantity" for line in self.captured_lines]
        return [self[name] for name in names if name in self.fields]

    def _money(self, name: str) -> int:
        try:
            return parse_amount(
                self.cleaned_data.get(name, ""),
                self.order.purchase_currency,
                self.order.locale,
            )
        except ValueError as error:
            self.add_error(name, str(error))
            return 0

    def _selected_lines(self) -> list[tuple[str, int]]:
        selected = []
        for line in self.captured_lines:
            if not self.cleaned_data.get(f"line-{line.pk}-selected"):
                continue
            name = f"line-{line.pk}-quantity"
            text = (self.cleaned_data.get(name) or "").strip()
            if not text:
                quantity = line.refundable_quantity
            else:
                try:
                    quantity = parse_quantity(text)
                except ValueError as error:
                    self.add_error(name, str(error))
                    continue
            if quantity == 0:
                self.add_error(name, "Enter at least 1, or leave the item unselected.")
                continue
            selected.append((line.reference, quantity))
        return selected

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind is None:
            return cleaned
        lines, amount, fee = (), None, 0
        if kind == RefundKind.ITEMS:
            lines = tuple(self._selected_lines())
        if kind == RefundKind.AMOUNT:
            amount = self._money("amount")
        if cleaned.get("return_fee", "").strip():
            fee = self._money("return_fee")
        if not self.errors:
            cleaned["request"] = RefundRequest(
                kind=kind,
                lines=lines,
                amount=amount,
                return_fee=fee,
                description=cleaned.get("description", ""),
                reference=cleaned.get("reference", ""),
                currency=self.order.purchase_currency,
            )
        return cleaned

    def add_domain_error(self, error: DomainError) -> None:
        name = ERROR_FIELDS.get(error.field)
        if error.field and error.field.startswith("line-"):
            name = f"{error.field}-quantity"
        self.add_error(name if name in self.fields else None, error.message)

    def preview(self) -> RefundPlan | None:
        """The plan this refund would execute, or None (errors are on the form)."""
        if not self.is_valid():
            return None
        try:
            # The view loaded the order (with its merchant) in this request.
            self.plan = preview_refund(
                self.order, self.cleaned_data["request"], reload=False
            )
        except DomainError as error:
            self.add_domain_error(error)
            self.plan = None
        return self.plan

    def save(self, *, by) -> Refund | None:
        """Execute exactly the previewed plan; None (with errors) when refused.

        Without a previewed plan nothing is executed: the preview is shown first.
        """
        fingerprint = self.data.get("expected_fingerprint", "")
        if not fingerprint:
            if self.preview() is not None:
                self.add_error(None, "Check the preview, then confirm the refund.")
            return None
        if not self.is_valid():
            return None
        try:
            return execute_refund(
                self.order,
                self.cleaned_data["request"],
                by=by,
                channel=Channel.PORTAL,
                idempotency_key=self.cleaned_data["idempotency_key"],
                expected_fingerprint=fingerprint,
            )
        except RefundChanged as changed:
            self.plan = changed.plan
            self.add_error(None, changed.message)
        except IdempotencyConflict:
            self._new_idempotency_key()
            self.add_error(
                None,
                "This form was already used for a different refund. Check the "
                "preview and confirm again to make a new refund.",
            )
            self.plan = None
        except DomainError as error:
            self.add_domain_error(error)
            self.plan = None
        return None

    def _new_idempotency_key(self) -> None:
        self.data = self.data.copy()
        self.data["idempotency_key"] = uuid.uuid4().hex
        self.data["expected_fingerprint"] = ""
