"""The refund engine: one function computes a refund *plan*, the same plan executes.

``preview_refund`` reads the order and returns what a refund would do; nothing is
written. ``execute_refund`` locks the order, builds the plan again from the locked
rows with the same ``build_plan``, and writes exactly that. A preview therefore
cannot disagree with the result; if the order changed in between, a caller that
passes the preview's ``fingerprint`` gets ``RefundChanged`` with the fresh plan.

Locking: the order row first (it serializes every money movement on the order),
then its captures, lines and payment plans, each in primary-key order. Database
constraints (refunded ≤ captured, per line, per capture, per order) back it up.

Rules of our own, where DOMAIN.md is silent:
- Units of a line are refunded in order, and a refunded unit is credited to the
  capture that captured it; captures are therefore credited oldest first.
- "Complete order" refunds what remains on every capture; a return fee is allowed
  on it as on selected items (it is a selection of every item).
- A return fee must be smaller than the items (a refund of nothing is refused).
- When the store does not refund shipping fees, captured shipping is held back
  from complete-order and amount refunds too.
- Store-credit-only stores: the refund is recorded and counts against what can be
  refunded, but no money moves, the customer's plan continues and the payout is
  not debited.
- An idempotency key older than 24 hours is forgotten; reusing it starts afresh.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from customers.models import (
    BalanceEntry,
    Installment,
    PaymentPlan,
    RefundEffect,
    Repayment,
    ReturnReport,
)
from portal.models import (
    RETURN_FEE_MARKETS,
    Capture,
    CaptureLine,
    Channel,
    LedgerEntry,
    Order,
    OrderLine,
)
from portal.money import MAX_AMOUNT, format_money

from .exceptions import (
    IdempotencyConflict,
    InvalidRequest,
    RefundChanged,
    RefundNotAllowed,
)
from .models import Refund, RefundAllocation, RefundKind, RefundLine, RefundRequestKey

IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_TEXT = 255

__all__ = [
    "RefundKind",
    "RefundPlan",
    "RefundRequest",
    "build_plan",
    "execute_refund",
    "preview_refund",
]


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class RefundRequest:
    """What the merchant asks for. ``lines`` are ``(line reference, quantity)``.

    ``kind`` is COMPLETE, ITEMS or AMOUNT; a return fee (a positive amount the
    customer pays) turns ITEMS into "items with a return fee". ``expected_amount``
    is the caller's own total (the API's ``refunded_amount``), checked, not trusted.
    """

    kind: str
    lines: tuple[tuple[str, int], ...] = ()
    amount: int | None = None
    return_fee: int = 0
    description: str = ""
    reference: str = ""
    currency: str | None = None
    expected_amount: int | None = None

    def fingerprint(self) -> str:
        payload = {
            "kind": self.kind,
            "lines": sorted([str(r), q] for r, q in self.lines),
            "amount": self.amount,
            "fee": self.return_fee,
            "description": self.description,
            "reference": self.reference,
            "currency": self.currency,
            "expected": self.expected_amount,
        }
        return hashlib.sha256(
            json.dumps(payload, sort_keys=True, default=str).encode()
        ).hexdigest()


@dataclass(frozen=True)
class PlannedLine:
    order_line: OrderLine
    quantity: int
    amount: int
    # (capture pk, units, amount) for each capture the units were captured in.
    per_capture: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class PlannedAllocation:
    capture: Capture
    number: int  # 1 = the order's first capture (invoice)
    amount: int
    remaining_after: int
    effect: RefundEffect | None


@dataclass(frozen=True)
class RefundPlan:
    order: Order
    kind: str
    items_amount: int
    fee_amount: int
    refunded_amount: int
    lines: tuple[PlannedLine, ...]
    allocations: tuple[PlannedAllocation, ...]
    store_credit: bool
    description: str
    reference: str
    refundable_before: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def payout_deduction(self) -> int:
        return 0 if self.store_credit else self.refunded_amount

    @property
    def refundable_after(self) -> int:
        return self.refundable_before - self.refunded_amount

    @property
    def fingerprint(self) -> str:
        """Everything that moves money; equal fingerprints mean an identical refund."""
        payload = [
            self.order.pk,
            self.kind,
            self.items_amount,
            self.fee_amount,
            self.refunded_amount,
            self.store_credit,
            [(pl.order_line.pk, pl.quantity, pl.amount) for pl in self.lines],
            [
                (
                    a.capture.pk,
                    a.amount,
                    (
                        a.effect.before,
                        a.effect.after,
                        a.effect.money_back,
                        a.effect.service_fee_returned,
                    )
                    if a.effect
                    else None,
                )
                for a in self.allocations
            ],
        ]
        return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()[
            :32
        ]

    def fmt(self, amount: int) -> str:
        return format_money(amount, self.order.purchase_currency, self.order.locale)

    def effect_summaries(self) -> list[tuple[PlannedAllocation, str]]:
        return [
            (a, a.effect.describe(self.fmt) if a.effect else "")
            for a in self.allocations
        ]


@dataclass
class OrderState:
    """The rows a refund depends on, loaded in a fixed number of queries."""

    order: Order
    lines: list[OrderLine]
    captures: list[Capture]
    capture_lines: dict[
        int, list[CaptureLine]
    ]  # order line pk -> its capture lines by unit
    plans: dict[int, PaymentPlan]  # capture pk -> plan
    installments: dict[int, list[Installment]]  # plan pk -> installments

    @classmethod
    def load(cls, order: Order, *, lock: bool) -> "OrderState":
        def rows(qs):
            return qs.select_for_update(of=("self",)) if lock else qs

        captures = list(rows(Capture.objects.filter(order=order)).order_by("pk"))
        lines = list(rows(OrderLine.objects.filter(order=order)).order_by("pk"))
        capture_lines: dict[int, list[CaptureLine]] = {}
        for cl in rows(CaptureLine.objects.filter(capture__order=order)).order_by("pk"):
            capture_lines.setdefault(cl.order_line_id, []).append(cl)
        for cls_ in capture_lines.values():
            cls_.sort(key=lambda cl: cl.unit_start)
        plans = {
            p.capture_id: p
            for p in rows(
                PaymentPlan.objects.filter(order=order).select_related("payment_method")
            ).order_by("pk")
        }
        installments: dict[int, list[Installment]] = {}
        for inst in rows(Installment.objects.filter(plan__order=order)).order_by("pk"):
            installments.setdefault(inst.plan_id, []).append(inst)
        for plan in plans.values():
            plan.order = order
        for capture in captures:
            capture.order = order
        for line in lines:
            line.order = order
        return cls(order, lines, captures, capture_lines, plans, installments)


def _shipping_reserve(state: OrderState) -> dict[int, int]:
    """Per capture: captured, unrefunded shipping the store does not refund."""
    reserve: dict[int, int] = {}
    if state.order.merchant.shipping_fees_refundable:
        return reserve
    for line in state.lines:
        if not line.is_shipping:
            continue
        for capture_pk, _units, amount in _units_to_captures(
            state, line, line.refunded_quantity, line.refundable_quantity
        ):
            reserve[capture_pk] = reserve.get(capture_pk, 0) + amount
    return reserve


def _units_to_captures(state: OrderState, line: OrderLine, start: int, count: int):
    """Split units ``start..start+count-1`` of ``line`` by the capture holding them."""
    out = []
    end = start + count
    for cl in state.capture_lines.get(line.pk, []):
        lo, hi = max(start, cl.unit_start), min(end, cl.unit_start + cl.quantity)
        if hi > lo:
            out.append((cl.capture_id, hi - lo, line.amount_for_units(lo, hi - lo)))
    return out


def _check_text(request: RefundRequest) -> None:
    for name in ("description", "reference"):
        value = getattr(request, name)
        if not isinstance(value, str):
            raise InvalidRequest(
                "INVALID_TEXT", f"The {name} must be text.", field=name
            )
        if len(value) > MAX_TEXT:
            raise InvalidRequest(
                "TEXT_TOO_LONG",
                f"The {name} can be at most {MAX_TEXT} characters.",
                field=name,
            )


def build_plan(state: OrderState, request: RefundRequest) -> RefundPlan:
    """Compute the refund ``request`` would make on ``state``; raise if not allowed.

    Pure: reads ``state`` only, writes nothing.
    """
    order = state.order
    _check_text(request)
    if request.currency and request.currency.upper() != order.purchase_currency:
        raise InvalidRequest(
            "CURRENCY_MISMATCH",
            f"The order is in {order.purchase_currency}; a refund in {request.currency} is not possible.",
            field="currency",
        )
    if not state.captures:
        raise RefundNotAllowed("NO_CAPTURES", "Order has no captures.")
    fee = request.return_fee or 0
    if not _is_whole(fee) or fee < 0 or fee > MAX_AMOUNT:
        raise InvalidRequest(
            "INVALID_FEE",
            "The return fee must be a whole, non-negative amount.",
            field="return_fee",
        )
    remaining = {c.pk: c.remaining_amount for c in state.captures}
    reserve = _shipping_reserve(state)
    available = {pk: max(remaining[pk] - reserve.get(pk, 0), 0) for pk in remaining}
    refundable_before = sum(available.values())

    planned_lines: list[PlannedLine] = []
    per_capture: dict[int, int] = {}
    if request.kind == RefundKind.COMPLETE:
        if refundable_before == 0:
            raise RefundNotAllowed(
                "NOTHING_TO_REFUND",
                "Over refund is not allowed: everything captured was already refunded.",
            )
        for line in state.lines:
            if line.refundable_quantity and not (line.is_shipping and reserve):
                parts = _units_to_captures(
                    state, line, line.refunded_quantity, line.refundable_quantity
                )
                planned_lines.append(
                    PlannedLine(
                        line,
                        line.refundable_quantity,
                        sum(p[2] for p in parts),
                        tuple(parts),
                    )
                )
        per_capture = {pk: amount for pk, amount in available.items() if amount}
        items_amount = refundable_before
    elif request.kind == RefundKind.ITEMS:
        planned_lines = _plan_lines(state, request)
        for pl in planned_lines:
            for capture_pk, _units, amount in pl.per_capture:
                per_capture[capture_pk] = per_capture.get(capture_pk, 0) + amount
        items_amount = sum(pl.amount for pl in planned_lines)
        if items_amount <= 0 or any(v < 0 for v in per_capture.values()):
            raise InvalidRequest(
                "NOTHING_TO_REFUND",
                "The selected lines add up to nothing to refund; a discount is refunded "
                "together with the items it applies to.",
                field="lines",
            )
        for capture in state.captures:
            if per_capture.get(capture.pk, 0) > remaining[capture.pk]:
                raise RefundNotAllowed(
                    "OVER_REFUND",
                    f"Over refund is not allowed: invoice {_number(state, capture)} has only "
                    f"{_fmt(order, remaining[capture.pk])} left to refund (earlier "
                    "refunds by amount used the rest). Refund an amount instead.",
                )
        per_capture = {pk: v for pk, v in per_capture.items() if v}
    elif request.kind == RefundKind.AMOUNT:
        amount = request.amount
        if not _is_whole(amount) or amount <= 0 or amount > MAX_AMOUNT:
            raise InvalidRequest(
                "INVALID_AMOUNT", "Enter an amount greater than zero.", field="amount"
            )
        if fee:
            raise RefundNotAllowed(
                "FEE_NEEDS_ITEMS",
                "A return fee is taken from returned items: refund items instead of an amount.",
                field="return_fee",
            )
        if amount > refundable_before:
            raise RefundNotAllowed(
                "OVER_REFUND",
                f"Over refund is not allowed: at most {_fmt(order, refundable_before)} can be refunded.",
                field="amount",
            )
        left = amount
        for capture in state.captures:  # oldest first
            take = min(left, available[capture.pk])
            if take:
                per_capture[capture.pk] = take
                left -= take
        items_amount = amount
    else:
        raise InvalidRequest(
            "INVALID_KIND", "Choose how to refund: complete order, items or amount."
        )

    if fee:
        _check_fee(state, fee, items_amount, planned_lines)
        only = state.captures[0].pk
        per_capture[only] -= fee
    refunded = items_amount - fee
    if refunded > order.captured_amount - order.refunded_amount:
        raise RefundNotAllowed("OVER_REFUND", "Over refund is not allowed.")
    if request.expected_amount is not None and request.expected_amount != refunded:
        raise InvalidRequest(
            "AMOUNT_MISMATCH",
            f"refunded_amount {request.expected_amount} does not match the order lines, "
            f"which add up to {refunded}.",
            field="refunded_amount",
        )

    store_credit = order.merchant.store_credit_only
    allocations = []
    for capture in state.captures:
        amount = per_capture.get(capture.pk, 0)
        if amount <= 0:
            continue
        after = remaining[capture.pk] - amount
        effect = None
        if not store_credit:
            plan = state.plans[capture.pk]
            effect = plan.refund_effect(
                amount,
                full=after == 0,
                installments=state.installments.get(plan.pk, []),
            )
        allocations.append(
            PlannedAllocation(capture, _number(state, capture), amount, after, effect)
        )
    kind = (
        RefundKind.ITEMS_WITH_FEE
        if fee and request.kind == RefundKind.ITEMS
        else request.kind
    )
    return RefundPlan(
        order=order,
        kind=kind,
        items_amount=items_amount,
        fee_amount=fee,
        refunded_amount=refunded,
        lines=tuple(planned_lines),
        allocations=tuple(allocations),
        store_credit=store_credit,
        description=request.description,
        reference=request.reference,
        refundable_before=refundable_before,
    )


def _plan_lines(state: OrderState, request: RefundRequest) -> list[PlannedLine]:
    if not request.lines:
        raise InvalidRequest(
            "NO_LINES", "Select at least one item to refund.", field="lines"
        )
    by_reference = {line.reference: line for line in state.lines}
    seen: set[str] = set()
    planned = []
    for reference, quantity in request.lines:
        line = by_reference.get(reference)
        if line is None:
            raise InvalidRequest(
                "UNKNOWN_LINE",
                f"This order has no line with reference “{reference}”.",
                field="lines",
            )
        if reference in seen:
            raise InvalidRequest(
                "DUPLICATE_LINE", f"“{line.name}” is listed twice.", field="lines"
            )
        seen.add(reference)
        if not _is_whole(quantity) or quantity <= 0:
            raise InvalidRequest(
                "INVALID_QUANTITY",
                f"The quantity for “{line.name}” must be a whole number of at least 1.",
                field=f"line-{line.pk}",
            )
        if line.is_shipping and not state.order.merchant.shipping_fees_refundable:
            raise RefundNotAllowed(
                "SHIPPING_NOT_REFUNDABLE",
                f"{state.order.merchant.name} does not refund shipping fees (“{line.name}”).",
                field=f"line-{line.pk}",
            )
        if line.captured_quantity == 0:
            raise RefundNotAllowed(
                "NOT_CAPTURED",
                f"“{line.name}” has not been captured; only captured items can be refunded.",
                field=f"line-{line.pk}",
            )
        if quantity > line.refundable_quantity:
            raise RefundNotAllowed(
                "OVER_REFUND",
                f"Over refund is not allowed: only {line.refundable_quantity} of “{line.name}” "
                "can be refunded.",
                field=f"line-{line.pk}",
            )
        parts = _units_to_captures(state, line, line.refunded_quantity, quantity)
        planned.append(
            PlannedLine(line, quantity, sum(p[2] for p in parts), tuple(parts))
        )
    return planned


def _check_fee(
    state: OrderState, fee: int, items_amount: int, lines: list[PlannedLine]
) -> None:
    order = state.order
    if order.purchase_country not in RETURN_FEE_MARKETS:
        raise RefundNotAllowed(
            "FEE_MARKET",
            f"Return fees are not supported for orders from {order.purchase_country}.",
            field="return_fee",
        )
    if len(state.captures) != 1:
        raise RefundNotAllowed(
            "FEE_MULTI_CAPTURE",
            "A return fee is only possible on an order captured in one single capture.",
            field="return_fee",
        )
    if sum(pl.amount for pl in lines) != items_amount:
        raise RefundNotAllowed(
            "FEE_LINES_MISMATCH",
            "A return fee needs the refunded order lines to add up exactly to the refund.",
            field="return_fee",
        )
    if fee >= items_amount:
        raise RefundNotAllowed(
            "FEE_TOO_LARGE",
            f"The return fee must be smaller than the refunded items ({_fmt(order, items_amount)}).",
            field="return_fee",
        )


def _number(state: OrderState, capture: Capture) -> int:
    return next(i for i, c in enumerate(state.captures, start=1) if c.pk == capture.pk)


def _fmt(order: Order, amount: int) -> str:
    return format_money(amount, order.purchase_currency, order.locale)


def preview_refund(order: Order, request: RefundRequest) -> RefundPlan:
    """What ``request`` would do now. Writes nothing; raises what execution would."""
    order = Order.objects.select_related("merchant").get(pk=order.pk)
    return build_plan(OrderState.load(order, lock=False), request)


def execute_refund(
    order: Order,
    request: RefundRequest,
    *,
    by=None,
    channel: str = Channel.PORTAL,
    idempotency_key: str | None = None,
    expected_fingerprint: str | None = None,
) -> Refund:
    """Lock, plan, write. Returns the refund (``refund.replayed`` is True when an
    idempotency key returned an earlier one). Raises a ``DomainError`` and changes
    nothing when the refund is not allowed.
    """
    if idempotency_key is not None and (
        not idempotency_key or len(idempotency_key) > MAX_TEXT
    ):
        raise InvalidRequest(
            "INVALID_IDEMPOTENCY_KEY",
            "The idempotency key must be 1 to 255 characters.",
        )
    request_fingerprint = request.fingerprint()
    try:
        with transaction.atomic():
            locked = (
                Order.objects.select_for_update(of=("self",))
                .select_related("merchant")
                .get(pk=order.pk)
            )
            if idempotency_key:
                earlier = _replay(locked, idempotency_key, request_fingerprint)
                if earlier is not None:
                    return earlier
            state = OrderState.load(locked, lock=True)
            plan = build_plan(state, request)
            if expected_fingerprint and expected_fingerprint != plan.fingerprint:
                raise RefundChanged(plan)
            refund = _write(plan, state, by=by, channel=channel)
            if idempotency_key:
                RefundRequestKey.objects.create(
                    merchant_id=locked.merchant_id,
                    key=idempotency_key,
                    fingerprint=request_fingerprint,
                    refund=refund,
                )
    except IntegrityError:
        if not idempotency_key:
            raise
        # The same key was committed by a concurrent request on another order.
        with transaction.atomic():
            locked = Order.objects.get(pk=order.pk)
            earlier = _replay(locked, idempotency_key, request_fingerprint)
            if earlier is None:
                raise
            return earlier
    order._refresh_from(locked)
    return refund


def _replay(order: Order, key: str, fingerprint: str) -> Refund | None:
    row = (
        RefundRequestKey.objects.select_for_update()
        .filter(merchant_id=order.merchant_id, key=key)
        .select_related("refund")
        .first()
    )
    if row is None:
        return None
    if row.created_at < timezone.now() - IDEMPOTENCY_WINDOW:
        row.delete()
        return None
    if row.fingerprint != fingerprint or row.refund.order_id != order.pk:
        raise IdempotencyConflict(
            "IDEMPOTENCY_KEY_REUSED",
            "This idempotency key was already used for a different refund request.",
        )
    refund = row.refund
    refund.replayed = True
    return refund


def _write(plan: RefundPlan, state: OrderState, *, by, channel: str) -> Refund:
    order = state.order
    refund = Refund.objects.create(
        order=order,
        merchant_id=order.merchant_id,
        kind=plan.kind,
        items_amount=plan.items_amount,
        fee_amount=plan.fee_amount,
        refunded_amount=plan.refunded_amount,
        store_credit=plan.store_credit,
        description=plan.description,
        reference=plan.reference,
        created_by=by,
        channel=channel,
    )
    refund.replayed = False
    refund_lines = [
        RefundLine(
            refund=refund,
            order_line=pl.order_line,
            type=pl.order_line.type,
            reference=pl.order_line.reference,
            name=pl.order_line.name,
            quantity=pl.quantity,
            total_amount=pl.amount,
        )
        for pl in plan.lines
    ]
    if plan.fee_amount:
        refund_lines.append(
            RefundLine(
                refund=refund,
                type=OrderLine.Type.RETURN_FEE,
                reference="return-fee",
                name="Return fee",
                quantity=1,
                total_amount=-plan.fee_amount,
            )
        )
    RefundLine.objects.bulk_create(refund_lines)

    # Line and capture-line counters.
    capture_lines_changed = []
    for pl in plan.lines:
        start, end = (
            pl.order_line.refunded_quantity,
            pl.order_line.refunded_quantity + pl.quantity,
        )
        for cl in state.capture_lines.get(pl.order_line.pk, []):
            lo, hi = max(start, cl.unit_start), min(end, cl.unit_start + cl.quantity)
            if hi > lo:
                cl.refunded_quantity += hi - lo
                capture_lines_changed.append(cl)
        pl.order_line.refunded_quantity += pl.quantity
    OrderLine.objects.bulk_update(
        [pl.order_line for pl in plan.lines], ["refunded_quantity"]
    )
    CaptureLine.objects.bulk_update(capture_lines_changed, ["refunded_quantity"])

    # Allocations, capture counters, the customer's plans.
    allocations, repayments, balance_entries = [], [], []
    for a in plan.allocations:
        a.capture.refunded_amount += a.amount
        allocations.append(
            RefundAllocation(
                refund=refund,
                capture=a.capture,
                amount=a.amount,
                effect_summary=a.effect.describe(plan.fmt)[:500]
                if a.effect
                else "Store credit",
                effect=a.effect.as_record() if a.effect else None,
            )
        )
        if a.effect is not None:
            payment_plan = state.plans[a.capture.pk]
            for obj in payment_plan.apply_refund_effect(
                a.effect,
                refund=refund,
                installments=state.installments.get(payment_plan.pk, []),
            ):
                (
                    balance_entries if isinstance(obj, BalanceEntry) else repayments
                ).append(obj)
    RefundAllocation.objects.bulk_create(allocations)
    # Increments in SQL, not absolute values: even without the lock, the CHECK
    # constraints (refunded <= captured) would refuse an over-refund.
    for a in plan.allocations:
        Capture.objects.filter(pk=a.capture.pk).update(
            refunded_amount=F("refunded_amount") + a.amount
        )
    Repayment.objects.bulk_create(repayments)
    BalanceEntry.objects.bulk_create(balance_entries)

    order.refunded_amount += plan.refunded_amount
    order.status = order._status_after_change()
    Order.objects.filter(pk=order.pk).update(
        refunded_amount=F("refunded_amount") + plan.refunded_amount, status=order.status
    )
    if not plan.store_credit:
        LedgerEntry.record_return(refund)
    # The store registered the return: paused payments resume.
    for report in ReturnReport.objects.filter(order=order, resolved_at__isnull=True):
        report.resolve("registered")

    from customers.tasks import notify_refund

    transaction.on_commit(lambda: notify_refund.enqueue(refund.pk))
    return refund
