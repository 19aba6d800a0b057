"""The merchant portal's refund form: one form for every kind of refund.

The form only turns what was typed into a ``RefundRequest``; the refund engine
decides. Four kinds (DOMAIN.md "Refunds"): complete order, selected items,
selected items with a return fee, amount. Only the chosen kind's fields count:
the others are still in the page (hidden by CSS, so it works without
JavaScript) but ignored here, never validated nor applied (our rule: a return
fee typed and then left by choosing "Amount" neither blocks the amount nor
comes off it). ``preview()`` shows the plan the engine would execute, ``save()`` executes
it with the previewed plan's fingerprint, so what runs is what was previewed, and
with the form's idempotency key, so a double submit refunds once.
"""

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from django import forms
from django.db import IntegrityError, transaction
from django.http import QueryDict
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from customers.language import order_language
from customers.models import Notification
from customers.notifications import Message, render
from portal import widgets
from portal.exceptions import DomainError
from portal.forms import SharedFields, TemplateLookups
from portal.models import Channel, Order, OrderLine
from portal.money import (
    amount_input_text,
    format_money,
    parse_amount,
    parse_quantity,
)
from portal.widgets import error_slots

from .display import line_rows, preview_panel
from .engine import (
    OrderState,
    RefundKind,
    RefundPlan,
    RefundRequest,
    execute_refund,
    preview_refund,
    replayed_refund,
)
from .exceptions import IdempotencyConflict, RefundChanged
from .models import Refund, RefundAllocation, RefundReason


class RefundsGone(Exception):
    """Every item a confirm selected was refunded in full since its form was
    opened (``RefundForm.save``)."""

    def __init__(self, items: list[str]):
        super().__init__(items)
        self.items = items


#: Where each refund-engine error ``field`` is shown in this form.
ERROR_FIELDS = {
    "amount": "amount",
    "refunded_amount": "amount",
    "return_fee": "return_fee",
    "lines": "lines",
    "description": "description",
    "reference": "reference",
    "reason": "reason",
    "internal_note": "internal_note",
}

#: What the refund page's header shows of the order, read again after a refusal.
ORDER_COUNTERS = [
    "status",
    "order_amount",
    "captured_amount",
    "refunded_amount",
    "released_at",
]

#: The fields each kind of refund reads; the others are ignored.
KIND_FIELDS = {
    RefundKind.COMPLETE: set(),
    RefundKind.ITEMS: {"lines"},
    RefundKind.ITEMS_WITH_FEE: {"lines", "return_fee"},
    RefundKind.AMOUNT: {"amount"},
}


@dataclass
class LineRow:
    line: OrderLine
    selected: forms.BoundField
    quantity: forms.BoundField
    kept: bool = False  # shipping the store's policy does not refund


class RefundForm(TemplateLookups, forms.Form):
    kind = forms.ChoiceField(
        label=_("How to refund"),
        choices=[
            (RefundKind.COMPLETE, _("Complete order")),
            (RefundKind.ITEMS, _("Selected items")),
            (RefundKind.ITEMS_WITH_FEE, _("Selected items with a return fee")),
            (RefundKind.AMOUNT, _("Amount")),
        ],
        initial=RefundKind.ITEMS,
        widget=widgets.RadioSelect,
    )
    lines = forms.Field(label=_("Items"), required=False, widget=forms.HiddenInput)
    amount = forms.CharField(
        label=_("Amount to refund"),
        required=False,
        max_length=20,
        widget=widgets.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    return_fee = forms.CharField(
        label=_("Return fee"),
        required=False,
        max_length=20,
        help_text=_("Paid by the customer: deducted from the refunded items."),
        widget=widgets.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    # The select always sends one (Returned at first); a POST without any
    # records none, like an API refund (our rule).
    reason = forms.ChoiceField(
        label=_("Reason"),
        choices=RefundReason.choices,
        initial=RefundReason.RETURNED,
        required=False,
        widget=widgets.Select,
    )
    description = forms.CharField(
        label=_("Description (shown to the customer)"),
        required=False,
        max_length=255,
        widget=widgets.TextInput,
    )
    reference = forms.CharField(
        label=_("Reference (for your books and settlement reports)"),
        required=False,
        max_length=255,
        widget=widgets.TextInput,
    )
    internal_note = forms.CharField(
        label=_("Internal note (never shown to the customer)"),
        required=False,
        max_length=1000,
        widget=widgets.Textarea(attrs={"rows": 2}),
    )
    idempotency_key = forms.CharField(max_length=255, widget=widgets.HiddenInput)
    expected_fingerprint = forms.CharField(
        required=False, max_length=64, widget=widgets.HiddenInput
    )

    def __init__(self, order: Order, *args, state: OrderState | None = None, **kwargs):
        """``state``: the order's rows as this request read them; locked in the
        caller's transaction (``OrderState.lock_merchants_order``) for a confirm, which ``save``
        then executes on."""
        super().__init__(*args, **kwargs)
        self.order = order
        self.plan: RefundPlan | None = None
        # Per form, not on the field: the fields are shared (``SharedFields``).
        self.initial = {**self.initial, "idempotency_key": uuid.uuid4().hex}
        # The order's rows, read once (one round trip) for the fields, the
        # header and the preview: with the customer's plans when the form was
        # sent (a preview shows them), without for the empty form.
        if state is None:
            state = OrderState.load(order, lock=False, with_plans=self.is_bound)
        self.locked = state.locked
        self.state = state
        self._lines, self._captures = state.lines, state.captures
        lines = sorted(self._lines, key=lambda line: (line.position, line.pk))
        # Negative lines (discounts, gift cards) are never chosen: their share
        # comes off the items in proportion, as its own row in the preview.
        self.captured_lines = [
            line for line in lines if line.captured_quantity and not line.is_negative
        ]
        self.negative_lines = [
            line for line in lines if line.captured_quantity and line.is_negative
        ]
        self.uncaptured_lines = [line for line in lines if not line.captured_quantity]
        self.keeps_shipping = not order.merchant.shipping_fees_refundable
        self.shipping_lines = [line for line in lines if line.is_shipping]
        for line in self.captured_lines:
            # A line with nothing left to refund is shown, but cannot be chosen;
            # nor can shipping the store does not refund.
            done = line.refundable_quantity == 0 or self.is_kept(line)
            self.fields[f"line-{line.pk}-selected"] = forms.BooleanField(
                label=gettext("Refund %(name)s") % {"name": line.name},
                required=False,
                disabled=done,
                widget=widgets.CheckboxInput,
            )
            self.fields[f"line-{line.pk}-quantity"] = forms.CharField(
                label=_("Quantity to refund"),
                required=False,
                max_length=9,
                disabled=done,
                initial="" if done else line.refundable_quantity,
                # A text input: the server reads exactly what was typed (a number
                # input silently empties "٣" or keeps "1.5" as typed).
                widget=widgets.TextInput(
                    attrs={
                        "class": "input-qty",
                        "inputmode": "numeric",
                        "autocomplete": "off",
                    }
                ),
            )
        self.capture_count = len(self._captures)
        # Captured as an amount while lines are still uncaptured: such money
        # holds no items until the whole order is captured (DOMAIN.md).
        self.captured_by_amount = sum(
            c.captured_amount for c in self._captures if c.by_amount
        )
        self.return_fee_unavailable = self._return_fee_unavailable()
        if self.return_fee_unavailable:
            del self.fields["return_fee"]
            # This form's own copy of the shared field, with fewer choices.
            kind = self.fields["kind"] = copy.deepcopy(self.fields["kind"])
            kind.choices = [
                choice
                for choice in kind.choices
                if choice[0] != RefundKind.ITEMS_WITH_FEE
            ]

    def is_kept(self, line: OrderLine) -> bool:
        """Shipping the store's policy keeps (``Merchant.shipping_fees_refundable``)."""
        return line.is_shipping and self.keeps_shipping

    def _return_fee_unavailable(self) -> str:
        """Why a return fee cannot be offered on this order ("" when it can)."""
        if not self.order.return_fee_market:
            return gettext(
                "return fees are not supported for orders from %(country)s."
            ) % {"country": self.order.purchase_country}
        if self.capture_count == 0:
            return gettext("nothing has been captured yet.")
        if self.capture_count != 1:
            return gettext(
                "a return fee is only possible on an order captured in one single "
                "capture; this order has %(count)d captures."
            ) % {"count": self.capture_count}
        return ""

    @property
    def refundable(self) -> tuple[int, int]:
        """``(refundable, held_back)`` as the engine counts them now (minor units):
        from the plan this request previewed or confirmed (a refused confirm's
        plan read the locked order), else from the rows this form read."""
        if self.plan is not None:
            return self.plan.refundable_before, self.plan.held_back
        return self.state.refundable(), self.state.held_back()

    @property
    def line_rows(self) -> list[LineRow]:
        return [
            LineRow(
                line,
                self[f"line-{line.pk}-selected"],
                self[f"line-{line.pk}-quantity"],
                self.is_kept(line),
            )
            for line in self.captured_lines
        ]

    def line_rows_html(self) -> list[SafeString]:
        """``line_rows`` as the page's table rows (``refunds.display``)."""
        return line_rows(self)

    def preview_panel(self) -> SafeString:
        """The preview of ``plan`` as the page shows it (``refunds.display``)."""
        return preview_panel(self)

    def fmt(self, amount: int) -> str:
        """``amount`` (minor units) in the order's currency and locale."""
        return format_money(amount, self.order.purchase_currency, self.order.locale)

    def error_slots(self) -> SafeString:
        """Each field's error container in the page, with its errors, swapped
        out of band on each preview (``portal.widgets.error_slots``)."""
        return error_slots(self, self._error_slot_names())

    def _error_slot_names(self) -> list[str]:
        """Fields with an error container in the page."""
        names = [
            "kind",
            "lines",
            "amount",
            "return_fee",
            "reason",
            "description",
            "reference",
            "internal_note",
        ]
        names += [f"line-{line.pk}-quantity" for line in self.captured_lines]
        return [name for name in names if name in self.fields]

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
                self.add_error(
                    name, gettext("Enter at least 1, or leave the item unselected.")
                )
                continue
            selected.append((line.reference, quantity))
        return selected

    def _ignore_other_kinds(self, kind: str) -> None:
        """Drop what the fields of the other kinds said (e.g. too long): they
        are not part of this refund."""
        used = KIND_FIELDS[kind]
        ignored = {"lines", "amount", "return_fee"} - used
        if "lines" in ignored:
            ignored |= {name for name in self.fields if name.startswith("line-")}
        for name in ignored:
            self._errors.pop(name, None)
            self.cleaned_data.pop(name, None)

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind is None:
            return cleaned
        self._ignore_other_kinds(kind)
        lines, amount, fee = (), None, 0
        if kind in (RefundKind.ITEMS, RefundKind.ITEMS_WITH_FEE):
            lines = tuple(self._selected_lines())
        if kind == RefundKind.AMOUNT:
            amount = self._money("amount")
        # Until the fee is typed, the items are previewed without it; confirming
        # needs it (``save``).
        self.fee_missing = False
        if kind == RefundKind.ITEMS_WITH_FEE:
            if (cleaned.get("return_fee") or "").strip():
                fee = self._money("return_fee")
            else:
                self.fee_missing = True
        if not self.errors:
            cleaned["request"] = RefundRequest(
                # The engine's "items" with a fee is items with a return fee.
                kind=RefundKind.ITEMS if kind == RefundKind.ITEMS_WITH_FEE else kind,
                lines=lines,
                amount=amount,
                return_fee=fee,
                description=cleaned.get("description", ""),
                reference=cleaned.get("reference", ""),
                currency=self.order.purchase_currency,
                reason=cleaned.get("reason", ""),
                internal_note=cleaned.get("internal_note", ""),
            )
        return cleaned

    def maximum_data(self) -> QueryDict:
        """The submitted data with the largest refund of the chosen kind filled
        in: every refundable unit of every item the store refunds ("Selected
        items", with or without a fee), or the largest refundable amount
        (minor units, written as the order's locale types it). "Complete order"
        is already the maximum. A new preview must follow (no fingerprint)."""
        data = self.data.copy()
        kind = data.get("kind") or RefundKind.ITEMS
        if kind == RefundKind.AMOUNT:
            data["amount"] = amount_input_text(
                self.refundable[0], self.order.purchase_currency, self.order.locale
            )
        elif kind in (RefundKind.ITEMS, RefundKind.ITEMS_WITH_FEE):
            for line in self.captured_lines:
                if line.refundable_quantity and not self.is_kept(line):
                    data[f"line-{line.pk}-selected"] = "on"
                    data[f"line-{line.pk}-quantity"] = str(line.refundable_quantity)
        data["expected_fingerprint"] = ""
        return data

    @property
    def email_language(self) -> str:
        """The language the customer reads this order's emails in (the order's
        locale: ``customers.language.order_language``)."""
        return order_language(self.order)

    def email_preview(self) -> Message | None:
        """The refund email the customer would get for the previewed plan,
        written by the customers app's own ``render`` from an unsaved refund
        carrying the plan's effects (nothing is stored). None without a plan."""
        plan = self.plan
        if plan is None:
            return None
        refund = Refund(
            order=self.order,
            kind=plan.kind,
            items_amount=plan.items_amount,
            fee_amount=plan.fee_amount,
            refunded_amount=plan.refunded_amount,
            store_credit=plan.store_credit,
            description=plan.description,
            created_at=timezone.now(),
        )
        allocations = [
            RefundAllocation(
                refund=refund,
                capture=a.capture,
                amount=a.amount,
                effect=a.effect.as_record() if a.effect else None,
                effect_summary=a.effect.describe(plan.fmt) if a.effect else "",
            )
            for a in plan.allocations
        ]
        # ``render`` reads ``refund.allocations.all()``: an unsaved refund has
        # no rows to query, so the planned ones stand in as if prefetched. The
        # pk is never used to save (the refund is thrown away).
        refund.pk = 0
        refund._prefetched_objects_cache = {"allocations": allocations}
        notification = Notification(
            customer=self.order.customer,
            kind=Notification.Kind.REFUND,
            order=self.order,
            refund=refund,
            data={"version": 1},
        )
        return render(notification)

    def add_domain_error(self, error: DomainError) -> None:
        name = ERROR_FIELDS.get(error.field)
        if error.field and error.field.startswith("line-"):
            name = f"{error.field}-quantity"
        self.add_error(name if name in self.fields else None, error.message)

    def preview(self) -> RefundPlan | None:
        """The plan this refund would execute, or None (errors are on the form)."""
        if not self.is_valid():
            return None
        gone = self._refunded_since_opened()
        if gone and not self.cleaned_data["request"].lines:
            self.add_error(
                None,
                gettext("Refunded in full since this form was opened: %(items)s.")
                % {"items": ", ".join(gone)},
            )
            self.plan = None
            return None
        try:
            # The view loaded the order (with its merchant) in this request, the
            # form its lines and captures.
            self.plan = preview_refund(
                self.order, self.cleaned_data["request"], state=self.state
            )
        except DomainError as error:
            self.add_domain_error(error)
            self.plan = None
        return self.plan

    @classmethod
    def confirm(
        cls, lock: Callable[[], OrderState], data: QueryDict, *, by
    ) -> tuple["RefundForm", Refund | None]:
        """Bind ``data`` to the order's rows read under its lock and execute it on
        those same rows, in one transaction: the form and the refund, or None
        (the errors are on the form, nothing was written). ``lock`` reads and
        locks the order's rows in that transaction
        (``OrderState.lock_merchants_order``); what it raises propagates.

        Lost a race on the idempotency key (another request committed the same
        key meanwhile, e.g. a form posted to two orders): tried once more, when
        the key is found and answers (``execute_refund``).
        """
        for attempt in range(2):
            try:
                with transaction.atomic():
                    state = lock()
                    form = cls(state.order, data, state=state)
                    return form, form.save(by=by)
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _refunded_since_opened(self) -> list[str]:
        """The names of the items this form selected that have been refunded in
        full since it was opened (in another tab, by someone else, or by this
        form sent again): their fields are now disabled, so the request would
        otherwise look like one without them ("Select at least one item").
        Our rule."""
        if self.cleaned_data["request"].kind != RefundKind.ITEMS:
            return []
        return [
            line.name
            for line in self.captured_lines
            if self.data.get(f"line-{line.pk}-selected")
            and line.refundable_quantity == 0
        ]

    def _earlier_refund_of_this_form(self) -> Refund | None:
        """The refund this form's idempotency key already made, when the request
        as submitted (the items selected, whatever their fields say now) is the
        one it made; raises ``IdempotencyConflict`` when the key made another."""
        lines = []
        for line in self.captured_lines:
            if not self.data.get(f"line-{line.pk}-selected"):
                continue
            try:
                lines.append(
                    (
                        line.reference,
                        parse_quantity(self.data[f"line-{line.pk}-quantity"]),
                    )
                )
            except (KeyError, ValueError):
                return None
        submitted = replace(self.cleaned_data["request"], lines=tuple(lines))
        return replayed_refund(
            self.order, self.cleaned_data["idempotency_key"], submitted
        )

    def save(self, *, by) -> Refund | None:
        """Execute exactly the previewed plan; None (with errors) when refused.

        Without a previewed plan nothing is executed: the preview is shown first.
        """
        fingerprint = self.data.get("expected_fingerprint", "")
        if not fingerprint:
            if self.preview() is not None:
                self.add_error(
                    None, gettext("Check the preview, then confirm the refund.")
                )
            return None
        if not self.is_valid():
            return None
        if self.fee_missing:
            self.preview()
            self.add_error(
                "return_fee",
                gettext(
                    "Enter the return fee the customer pays, or choose "
                    "“Selected items” to refund without one."
                ),
            )
            return None
        try:
            gone = self._refunded_since_opened()
            if gone:
                # Refunded in full since the preview: by this very form (sent
                # again, e.g. after Back) or by someone else.
                earlier = self._earlier_refund_of_this_form()
                if earlier is not None:
                    return earlier
                if not self.cleaned_data["request"].lines:
                    raise RefundsGone(gone)
            return execute_refund(
                self.order,
                self.cleaned_data["request"],
                by=by,
                channel=Channel.PORTAL,
                idempotency_key=self.cleaned_data["idempotency_key"],
                expected_fingerprint=fingerprint,
                state=self.state if self.locked else None,
            )
        except RefundChanged as changed:
            # The fresh plan read the locked order: the header shows it too.
            self.plan = changed.plan
            self.order._refresh_from(changed.plan.order)
            self.add_error(None, changed.message)
            return None
        except RefundsGone as gone:
            self.add_error(
                None,
                gettext(
                    "Refunded in full since this form was opened: %(items)s. "
                    "Nothing was refunded now."
                )
                % {"items": ", ".join(gone.items)},
            )
        except IdempotencyConflict:
            self._new_idempotency_key()
            self.add_error(
                None,
                gettext(
                    "This form was already used for a different refund. Check the "
                    "preview and confirm again to make a new refund."
                ),
            )
            self.plan = None
        except DomainError as error:
            self.add_domain_error(error)
            self.plan = None
        # Refused under the lock: the header shows the order as it is now (e.g.
        # refunded from another tab), not as this request first read it.
        if self.locked:
            self.order._refresh_from(self.state.order)
        else:
            self.order.refresh_from_db(fields=ORDER_COUNTERS)
            self.state = OrderState.load(self.order, lock=False, with_plans=False)
        return None

    def _new_idempotency_key(self) -> None:
        self.data = self.data.copy()
        self.data["idempotency_key"] = uuid.uuid4().hex
        self.data["expected_fingerprint"] = ""


# A form changes only its own copies: the per-line fields it adds, and the kind
# of refund it copies before narrowing its choices. The rest are shared.
RefundForm.base_fields = SharedFields(RefundForm.base_fields)
