"""The refund engine: one function computes a refund *plan*, the same plan executes.

``preview_refund`` reads the order and returns what a refund would do; nothing is
written. ``execute_refund`` locks the order, builds the plan again from the locked
rows with the same ``build_plan``, and writes exactly that. A preview therefore
cannot disagree with the result; if the order changed in between, a caller that
passes the preview's ``fingerprint`` gets ``RefundChanged`` with the fresh plan.

Locking: the order row first (it serializes every money movement on the order),
then its captures, lines and payment plans, each in primary-key order. Database
constraints (refunded ≤ captured, per line, per capture, per order) back it up.

The line ledger (DOMAIN.md "Rules added after the first review"): every refund
is made of rows (``PlannedRow`` → ``RefundLine``) that sum exactly to its
``items_amount``: units of order lines taken from capture lines, the
proportional share of the negative lines (discount, gift card, store credit)
that comes off with them, adjustments for money not tied to lines, and the
return fee. Each row carries its exact part of the line's tax.

Rules of our own, where DOMAIN.md is silent:
- Units of a line are refunded from its capture lines oldest capture first; a
  capture that cannot take them (its money was refunded by amount) is skipped,
  so an item refund is refused only when no capture can take it.
- Captures by amount hold no lines until the capture that completes the order
  takes every line still uncaptured; the money of those lines is held by the
  order's captures by amount together (the *pool*) and an item refund of them is
  credited to those captures oldest first. Before the order is complete, their
  money can be refunded by amount or as part of "complete order".
- A negative line is never refunded by itself: its share is computed
  cumulatively (``N × refunded positive / all positive``, rounded half up, less
  what earlier refunds took), split over the negative lines by what each has
  left (largest remainder).
- "Complete order" refunds everything the engine allows on every capture: every
  unit left, the negative lines' share, and an adjustment row for money not tied
  to lines (captured by amount and never itemized: positive; already refunded by
  amount: negative). A return fee is allowed on it as on selected items.
- A return fee must be smaller than the items it is taken from (our rule), and
  the refund must have items.
- When the store does not refund shipping fees, captured shipping (less its
  share of the negative lines) is held back from every kind of refund, and the
  pages say so.
- Store-credit-only stores: the refund is recorded and counts against what can be
  refunded, but no money moves, the customer's plan continues and the payout is
  not debited. A later money refund is "full" for a plan only when all money of
  its capture was refunded as money.
- An idempotency key older than 24 hours is forgotten; reusing it starts afresh.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from customers.models import (
    BalanceEntry,
    Installment,
    InstallmentStatus,
    PaymentPlan,
    RefundEffect,
    ReturnReport,
)
from portal.bulk import insert_rows, update_rows
from portal.compiled import CompiledObjects, CompiledRows, together
from portal.models import (
    RETURN_FEE_MARKETS,
    Capture,
    CaptureLine,
    Channel,
    LedgerEntry,
    Order,
    OrderLine,
)
from portal.money import MAX_AMOUNT, allocate, format_money, proportion
from portal.pipeline import sent_together

from .exceptions import (
    IdempotencyConflict,
    InvalidRequest,
    RefundChanged,
    RefundNotAllowed,
)
from .models import (
    Refund,
    RefundAllocation,
    RefundKind,
    RefundLine,
    RefundReason,
    RefundRequestKey,
)

IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_TEXT = 255

__all__ = [
    "RefundKind",
    "RefundPlan",
    "RefundRequest",
    "build_plan",
    "execute_refund",
    "preview_refund",
    "refundable_now",
]


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class RefundRequest:
    """What the merchant asks for. ``lines`` are ``(line reference, quantity)``.

    ``kind`` is COMPLETE, ITEMS or AMOUNT; a return fee (a positive amount the
    customer pays) turns ITEMS into "items with a return fee". ``expected_amount``
    is the caller's own total (the API's ``refunded_amount``), checked, not trusted.
    ``reason`` (a ``RefundReason`` value or "") and ``internal_note`` are recorded
    on the refund and move no money; the note is for the merchant's staff only.
    """

    kind: str
    lines: tuple[tuple[str, int], ...] = ()
    amount: int | None = None
    return_fee: int = 0
    description: str = ""
    reference: str = ""
    currency: str | None = None
    expected_amount: int | None = None
    reason: str = ""
    internal_note: str = ""

    def fingerprint(self) -> str:
        # The reason and the note join the payload only when given, so requests
        # without them keep the fingerprints stored before they existed.
        extra = {
            name: getattr(self, name)
            for name in ("reason", "internal_note")
            if getattr(self, name)
        }
        payload = {
            **extra,
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
class PlannedRow:
    """One row of the refund: what becomes a ``RefundLine`` (see its docstring).

    ``amount`` and ``total_tax_amount`` are minor units; ``kind`` is a
    ``RefundLine.Kind``. ``capture_line`` is None for adjustments and the fee.
    """

    kind: str
    type: str
    reference: str
    name: str
    quantity: int
    unit_price: int
    amount: int
    total_tax_amount: int = 0
    tax_rate: int = 0
    quantity_unit: str = "pcs"
    capture_line: CaptureLine | None = None
    order_line: OrderLine | None = None
    invoice: int = 0  # the number of the capture holding it (0: not tied to one)

    @property
    def total_discount_amount(self) -> int:
        return self.quantity * self.unit_price - self.amount


@dataclass(frozen=True)
class PlannedAllocation:
    capture: Capture
    number: int  # 1 = the order's first capture (invoice)
    amount: int
    remaining_after: int  # what the engine would still allow on it afterwards
    held_back: int  # non-refundable shipping that stays on it
    effect: RefundEffect | None


@dataclass(frozen=True)
class RefundPlan:
    order: Order
    kind: str
    items_amount: int
    fee_amount: int
    refunded_amount: int
    rows: tuple[PlannedRow, ...]
    allocations: tuple[PlannedAllocation, ...]
    store_credit: bool
    description: str
    reference: str
    refundable_before: int
    held_back: int = 0
    warnings: tuple[str, ...] = field(default=())
    reason: str = ""
    internal_note: str = ""

    @property
    def item_rows(self) -> tuple[PlannedRow, ...]:
        return tuple(r for r in self.rows if r.kind == RefundLine.Kind.ITEM)

    @property
    def other_rows(self) -> tuple[PlannedRow, ...]:
        """Shares of discounts and gift cards, and adjustments (not the fee)."""
        return tuple(r for r in self.rows if r.kind != RefundLine.Kind.ITEM)

    @property
    def payout_deduction(self) -> int:
        return 0 if self.store_credit else self.refunded_amount

    @property
    def refundable_after(self) -> int:
        """What the engine would still allow after this refund (minor units)."""
        return max(self.refundable_before - self.refunded_amount, 0)

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
            [
                (
                    r.kind,
                    r.capture_line.pk if r.capture_line else None,
                    r.quantity,
                    r.amount,
                )
                for r in self.rows
            ],
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


class Holding:
    """Capture lines held together and the captures whose money backs them.

    A capture by lines holds its own lines. The order's captures by amount form
    one *pool* holding the lines the completing capture took (DOMAIN.md "Captures
    by amount"); its money is credited to those captures oldest first.
    """

    def __init__(self, captures: list[Capture], lines: list[CaptureLine], merchant):
        self.captures = captures
        self.lines = lines
        self.positive = [cl for cl in lines if not cl.is_negative]
        self.negative = [cl for cl in lines if cl.is_negative]
        self.positive_total = sum(cl.amount for cl in self.positive)
        self.positive_refunded = sum(cl.refunded_amount for cl in self.positive)
        self.negative_refunded = sum(cl.refunded_amount for cl in self.negative)
        self.remaining = sum(c.remaining_amount for c in captures)
        self.refunds_shipping = merchant.shipping_fees_refundable
        self.reserve = self._reserve()
        self.available = max(self.remaining - self.reserve, 0)

    @property
    def is_pool(self) -> bool:
        return self.captures[0].by_amount

    def is_reserved(self, cl: CaptureLine) -> bool:
        return cl.order_line.is_shipping and not self.refunds_shipping

    def negative_share(self, positive_added: int) -> list[tuple[CaptureLine, int]]:
        """The negative lines' share that comes off when ``positive_added`` more of
        the positive lines' money is refunded (DOMAIN.md "Negative lines").

        Cumulative: the share of everything refunded so far is ``N × p / P``
        rounded half up (N: the negative lines' total, P: the positive lines'),
        minus what earlier refunds already took, split over the negative lines
        by what each has left (largest remainder). Refunding every unit, in any
        order, therefore takes exactly N.
        """
        if not self.negative or not self.positive_total:
            return []
        negative_total = sum(cl.amount for cl in self.negative)
        target = proportion(
            negative_total,
            self.positive_refunded + positive_added,
            self.positive_total,
        )
        share = target - self.negative_refunded  # <= 0
        if share >= 0:
            return []
        parts = allocate(-share, [-cl.remaining_amount for cl in self.negative])
        return [
            (cl, -part) for cl, part in zip(self.negative, parts, strict=True) if part
        ]

    def _reserve(self) -> int:
        """Money that stays because the store does not refund shipping: the
        unrefunded shipping minus its share of the negative lines."""
        if self.refunds_shipping:
            return 0
        shipping = sum(
            cl.remaining_amount for cl in self.positive if self.is_reserved(cl)
        )
        if not shipping:
            return 0
        others = sum(
            cl.remaining_amount for cl in self.positive if not self.is_reserved(cl)
        )
        negative_left = sum(cl.remaining_amount for cl in self.negative)
        share_with_others = sum(amount for _, amount in self.negative_share(others))
        return shipping + negative_left - share_with_others

    def split(self, amount: int) -> dict[int, int]:
        """``amount`` credited to this holding's captures, oldest first."""
        out, left = {}, amount
        for capture in self.captures:
            take = min(left, capture.remaining_amount)
            if take > 0:
                out[capture.pk] = take
                left -= take
        return out

    def capture_available(self) -> dict[int, int]:
        """What the engine allows per capture; the reserve stays on the newest."""
        return self.split(self.available)


class _Read:
    """One of the queries a refund reads an order's rows with, filtered by
    ``lookup``, in ``order``: compiled once per process, read only or ``FOR
    UPDATE`` (``portal.compiled``; building and compiling these queries
    cost more than running them, issue 16). Locked, the rows are locked in that
    order."""

    def __init__(self, queryset, lookup: str, order: tuple[str, ...] = ("pk",)):
        queryset = queryset.order_by(*order)
        self.read = CompiledObjects(queryset, lookup)
        self.locked = CompiledObjects(queryset.select_for_update(of=("self",)), lookup)
        # The same rows by the order's merchant and order id, read in the
        # round trip that reads the order (``merchants_order``) or locks it
        # (``lock_merchants_order``).
        by_order_id = (f"{lookup}__merchant", f"{lookup}__order_id")
        self.by_order_id, self.locked_by_order_id = (
            (None, None)
            if lookup == "pk"
            else (
                CompiledObjects(queryset, *by_order_id),
                CompiledObjects(queryset.select_for_update(of=("self",)), *by_order_id),
            )
        )

    def __call__(self, key, *, lock: bool) -> list:
        return self.query(lock=lock).objects(key)

    def query(self, *, lock: bool) -> CompiledObjects:
        """The compiled query, read only or ``FOR UPDATE`` (raises
        ``TransactionManagementError`` for the lock outside a transaction)."""
        if lock and not transaction.get_connection().in_atomic_block:
            raise transaction.TransactionManagementError(
                "A refund locks an order's rows only inside a transaction."
            )
        return self.locked if lock else self.read


_ORDER = _Read(Order.objects.select_related("merchant"), "pk")
_CAPTURES = _Read(Capture.objects.all(), "order")
_LINES = _Read(OrderLine.objects.all(), "order")
_CAPTURE_LINES = _Read(
    CaptureLine.objects.all(),
    "capture__order",
    order=("capture_id", "order_line_id", "unit_start"),
)
_PLANS = _Read(PaymentPlan.objects.select_related("payment_method"), "order")
_INSTALLMENTS = _Read(Installment.objects.all(), "plan__order")
#: An idempotency key and its refund, locked.
_REQUEST_KEYS = CompiledObjects(
    RefundRequestKey.objects.select_for_update().select_related("refund"),
    "merchant",
    "key",
)
#: A merchant's order by its order id, with what the refund form and its
#: messages show of it: read only (``OrderState.merchants_order``) or locked
#: (``OrderState.lock_merchants_order``).
_MERCHANTS_ORDER_ROWS = Order.objects.select_related(
    "merchant", "customer", "payment_method"
).order_by()
_MERCHANTS_ORDER = CompiledObjects(_MERCHANTS_ORDER_ROWS, "merchant", "order_id")
_MERCHANTS_ORDER_LOCKED = CompiledObjects(
    _MERCHANTS_ORDER_ROWS.select_for_update(of=("self",)), "merchant", "order_id"
)
#: Read only, with their plans: one query instead of two; by the order, or by
#: the order's merchant and order id.
_INSTALLMENTS_WITH_PLANS_ROWS = Installment.objects.select_related(
    "plan__payment_method"
).order_by("pk")
_INSTALLMENTS_WITH_PLANS = CompiledObjects(_INSTALLMENTS_WITH_PLANS_ROWS, "plan__order")
_INSTALLMENTS_WITH_PLANS_OF_ORDER_ID = CompiledObjects(
    _INSTALLMENTS_WITH_PLANS_ROWS, "plan__order__merchant", "plan__order__order_id"
)
#: ``(capture pk, amount)``: what each capture refunded as money (not store
#: credit), minor units; by the order, or by the order's merchant and order id
#: (read with the order, like every row of ``merchants_order`` and
#: ``lock_merchants_order``: another merchant's order id reads nothing).
_MONEY_REFUNDED_ROWS = (
    RefundAllocation.objects.filter(refund__store_credit=False)
    .values_list("capture_id")
    .annotate(amount=Sum("amount"))
    .order_by()
)
_MONEY_REFUNDED = CompiledRows(_MONEY_REFUNDED_ROWS, "capture__order")
_MONEY_REFUNDED_OF_ORDER_ID = CompiledRows(
    _MONEY_REFUNDED_ROWS, "capture__order__merchant", "capture__order__order_id"
)


@dataclass
class OrderState:
    """The rows a refund depends on, loaded in a fixed number of queries."""

    order: Order
    lines: list[OrderLine]
    captures: list[Capture]
    capture_lines: list[CaptureLine]
    plans: dict[int, PaymentPlan]  # capture pk -> plan
    installments: dict[int, list[Installment]]  # plan pk -> installments
    money_refunded: dict[int, int]  # capture pk -> refunded as money (not store credit)
    plans_read: bool = False  # whether plans, installments, money_refunded are
    locked: bool = False  # read FOR UPDATE in the current transaction
    #: (merchant pk, idempotency key) -> its rows, read and locked with the
    #: order's rows (``lock_merchants_order``), for ``execute_refund``.
    request_keys: dict = field(default_factory=dict)

    @classmethod
    def load(cls, order: Order, *, lock: bool, with_plans: bool = True) -> "OrderState":
        """Load the order's rows in one round trip to PostgreSQL (three to five
        queries sent together, ``portal.compiled.together``; one more
        when the order has refunds, for what its captures refunded as money).
        ``with_plans=False`` skips the customer's plans (enough to count what is
        refundable and to show the form). ``lock``: every row ``FOR UPDATE``,
        table by table, each in primary-key order (the caller holds the order)."""
        key = (order.pk,)
        calls = [
            (_CAPTURES.query(lock=lock), key),
            (_LINES.query(lock=lock), key),
            (_CAPTURE_LINES.query(lock=lock), key),
        ]
        if with_plans and lock:
            # A plan is opened by a capture. Plans, then installments.
            calls += [
                (_PLANS.query(lock=True), key),
                (_INSTALLMENTS.query(lock=True), key),
            ]
        elif with_plans:
            # Read only: the installments with their plans in one query.
            calls.append((_INSTALLMENTS_WITH_PLANS, key))
        # Nothing refunded yet (the order's counter, read with the order): no
        # allocations to sum, no query (issue 16).
        if with_plans and order.refunded_amount:
            calls.append((_MONEY_REFUNDED, key))
        captures, lines, capture_lines, *plan_rows = together(*calls)
        state = cls._assemble(order, lines, captures, capture_lines)
        state.locked = lock
        if with_plans:
            state._set_plans(plan_rows, lock=lock)
        return state

    @classmethod
    def merchants_order(cls, merchant_pk: int, order_id) -> "OrderState | None":
        """The order ``order_id`` of merchant ``merchant_pk`` and its rows,
        with the customer's plans, read only, in one round trip (the order and
        its rows by the merchant and the order id, sent together): the refund
        preview's read (``load`` needs the order first, one round trip more).
        None when the merchant has no such order (another merchant's order
        does not exist here). Our rule (issue 16)."""
        key = (merchant_pk, order_id)
        found, captures, lines, capture_lines, installments, money = together(
            (_MERCHANTS_ORDER, key),
            (_CAPTURES.by_order_id, key),
            (_LINES.by_order_id, key),
            (_CAPTURE_LINES.by_order_id, key),
            (_INSTALLMENTS_WITH_PLANS_OF_ORDER_ID, key),
            (_MONEY_REFUNDED_OF_ORDER_ID, key),
        )
        if not found:
            return None
        (order,) = found
        state = cls._assemble(order, lines, captures, capture_lines)
        state._set_plans([installments, money], lock=False)
        return state

    @classmethod
    def lock_merchants_order(
        cls, merchant_pk: int, order_id, *, request_key: str | None = None
    ) -> "OrderState | None":
        """The order ``order_id`` of merchant ``merchant_pk``, its row locked,
        then its rows ``FOR UPDATE`` (as ``load`` locks them), for
        ``execute_refund(..., state=)``; the caller's transaction holds them.
        None when the merchant has no such order (another merchant's order does
        not exist here, and none of its rows is locked). One round trip: the
        order's row is locked first and the rest is read after it, in the same
        pipeline, by the merchant and the order id; with ``request_key``, that
        idempotency key's row too, locked last (``execute_refund`` then reads
        it from here). Raises ``TransactionManagementError`` outside a
        transaction."""
        if not transaction.get_connection().in_atomic_block:
            raise transaction.TransactionManagementError(
                "A refund locks an order's rows only inside a transaction."
            )
        key = (merchant_pk, order_id)
        calls = [
            (_MERCHANTS_ORDER_LOCKED, key),
            (_CAPTURES.locked_by_order_id, key),
            (_LINES.locked_by_order_id, key),
            (_CAPTURE_LINES.locked_by_order_id, key),
            (_PLANS.locked_by_order_id, key),
            (_INSTALLMENTS.locked_by_order_id, key),
            (_MONEY_REFUNDED_OF_ORDER_ID, key),
        ]
        if request_key:
            calls.append((_REQUEST_KEYS, (merchant_pk, request_key)))
        found, captures, lines, capture_lines, plans, installments, money, *keys = (
            together(*calls)
        )
        if not found:
            return None
        (order,) = found
        state = cls._assemble(order, lines, captures, capture_lines)
        state.locked = True
        state._set_plans([plans, installments, money], lock=True)
        if request_key:
            state.request_keys[(merchant_pk, request_key)] = keys[0]
        return state

    def read_plans(self) -> None:
        """Read the customer's plans into a state read without them (no lock)."""
        if not self.plans_read:
            key = (self.order.pk,)
            calls = [(_INSTALLMENTS_WITH_PLANS, key)]
            if self.order.refunded_amount:
                calls.append((_MONEY_REFUNDED, key))
            self._set_plans(together(*calls), lock=False)

    @classmethod
    def _assemble(
        cls, order: Order, lines: list, captures: list, capture_lines: list
    ) -> "OrderState":
        by_pk = {line.pk: line for line in lines}
        captures_by_pk = {c.pk: c for c in captures}
        for cl in capture_lines:
            cl.order_line = by_pk[cl.order_line_id]
            cl.capture = captures_by_pk[cl.capture_id]
        for number, capture in enumerate(captures, 1):
            capture.order = order
            capture.number = number  # invoice number (``Capture.number``), no query
        for line in lines:
            line.order = order
        return cls(order, lines, captures, capture_lines, {}, {}, {})

    def _set_plans(self, rows: list[list], *, lock: bool) -> None:
        """The customer's plans from ``load``'s plan queries: ``[plans,
        installments]`` locked, ``[installments with their plans]`` read only,
        then ``_MONEY_REFUNDED``'s rows when the order has refunds."""
        order = self.order
        plans: dict[int, PaymentPlan] = {}
        installments: dict[int, list[Installment]] = {}
        if lock:
            found_plans, found_installments, *money = rows
            for plan in found_plans:
                plans.setdefault(plan.capture_id, plan)
            for inst in found_installments:
                installments.setdefault(inst.plan_id, []).append(inst)
        else:
            found_installments, *money = rows
            for inst in found_installments:
                inst.plan = plans.setdefault(inst.plan.capture_id, inst.plan)
                installments.setdefault(inst.plan_id, []).append(inst)
            # Every capture opens a plan with at least one installment
            # (``PaymentPlan.open_for_capture``); a plan found without any is
            # read by itself.
            if len(plans) < len(self.captures):
                for plan in _PLANS(order.pk, lock=False):
                    plans.setdefault(plan.capture_id, plan)
        self.money_refunded = dict(money[0]) if money else {}
        for plan in plans.values():
            plan.order = order
        self.plans, self.installments = plans, installments
        self.plans_read = True

    @classmethod
    def from_rows(cls, order: Order, lines, captures, capture_lines) -> "OrderState":
        """A read-only state from rows a page already loaded: no query. Without
        plans: for counting. The lines may be model objects or rows loaded as
        values with the fields and properties the count reads (the order
        page's ``portal.overview.OrderLineRow`` and ``CaptureLineRow``); each
        capture line gets its order line and capture from ``lines`` and
        ``captures``."""
        by_pk = {line.pk: line for line in lines}
        captures_by_pk = {capture.pk: capture for capture in captures}
        for cl in capture_lines:
            cl.order_line = by_pk[cl.order_line_id]
            cl.capture = captures_by_pk[cl.capture_id]
        return cls(order, list(lines), list(captures), list(capture_lines), {}, {}, {})

    @cached_property
    def holdings(self) -> list[Holding]:
        """One per capture by lines, then the pool of captures by amount."""
        merchant = self.order.merchant
        own = {c.pk: [] for c in self.captures}
        for cl in self.capture_lines:
            own[cl.capture_id].append(cl)
        holdings = [
            Holding([c], own[c.pk], merchant) for c in self.captures if not c.by_amount
        ]
        pool = [c for c in self.captures if c.by_amount]
        if pool:
            pool_lines = [cl for c in pool for cl in own[c.pk]]
            holdings.append(Holding(pool, pool_lines, merchant))
        return holdings

    def holding_of(self, cl: CaptureLine) -> Holding:
        return next(h for h in self.holdings if cl.capture in h.captures)

    def number(self, capture: Capture) -> int:
        return next(i for i, c in enumerate(self.captures, 1) if c.pk == capture.pk)

    def capture_available(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for holding in self.holdings:
            out.update(holding.capture_available())
        return out

    def refundable(self) -> int:
        """What the engine allows in all (minor units): captured, not refunded,
        and not held back by the store's shipping policy."""
        return sum(h.available for h in self.holdings)

    def held_back(self) -> int:
        return sum(min(h.reserve, h.remaining) for h in self.holdings)


#: The request's text fields as refusals name them (translated when raised).
FIELD_NAMES = {
    "description": gettext_lazy("description"),
    "reference": gettext_lazy("reference"),
}


def _check_text(request: RefundRequest) -> None:
    if request.reason not in ("", *RefundReason.values):
        raise InvalidRequest(
            "INVALID_REASON",
            "Choose a reason: " + ", ".join(RefundReason.labels).lower() + ".",
            field="reason",
        )
    if not isinstance(request.internal_note, str) or len(request.internal_note) > 1000:
        raise InvalidRequest(
            "TEXT_TOO_LONG",
            "The internal note can be at most 1000 characters.",
            field="internal_note",
        )
    for name in ("description", "reference"):
        value = getattr(request, name)
        if not isinstance(value, str):
            raise InvalidRequest(
                "INVALID_TEXT",
                _("The %(field)s must be text.") % {"field": FIELD_NAMES[name]},
                field=name,
            )
        if len(value) > MAX_TEXT:
            raise InvalidRequest(
                "TEXT_TOO_LONG",
                _("The %(field)s can be at most %(count)d characters.")
                % {"field": FIELD_NAMES[name], "count": MAX_TEXT},
                field=name,
            )


def _item_row(state: OrderState, cl: CaptureLine, count: int) -> PlannedRow:
    line = cl.order_line
    return PlannedRow(
        kind=RefundLine.Kind.ITEM,
        type=line.type,
        reference=line.reference,
        name=line.name,
        quantity=count,
        unit_price=line.unit_price,
        amount=cl.amount_for_units(count),
        total_tax_amount=cl.tax_for_units(count),
        tax_rate=line.tax_rate,
        quantity_unit=line.quantity_unit,
        capture_line=cl,
        order_line=line,
        invoice=state.number(cl.capture),
    )


def _share_rows(state: OrderState, shares) -> list[PlannedRow]:
    rows = []
    for cl, amount in shares:
        line = cl.order_line
        tax = cl.tax_for_refunded_amount(
            cl.refunded_amount + amount
        ) - cl.tax_for_refunded_amount(cl.refunded_amount)
        rows.append(
            PlannedRow(
                kind=RefundLine.Kind.SHARE,
                type=line.type,
                reference=line.reference,
                name=line.name,
                quantity=1,
                unit_price=amount,
                amount=amount,
                total_tax_amount=tax,
                tax_rate=line.tax_rate,
                quantity_unit=line.quantity_unit,
                capture_line=cl,
                order_line=line,
                invoice=state.number(cl.capture),
            )
        )
    return rows


def _adjustment_row(state: OrderState, holding: Holding, amount: int) -> PlannedRow:
    if amount > 0:
        name, type_ = "Captured by amount, not itemized", OrderLine.Type.PHYSICAL
    else:
        name, type_ = "Already refunded by amount", OrderLine.Type.DISCOUNT
    return PlannedRow(
        kind=RefundLine.Kind.ADJUSTMENT,
        type=type_,
        reference="",
        name=name,
        quantity=1,
        unit_price=amount,
        amount=amount,
        invoice=state.number(holding.captures[0]) if not holding.is_pool else 0,
    )


class _Selection:
    """Units chosen per holding while planning an item refund."""

    def __init__(self):
        self.units: dict[int, int] = {}  # capture line pk -> units
        self.positive: dict[int, int] = {}  # id(holding) -> positive money

    def money(self, holding: Holding, extra: int = 0) -> int:
        positive = self.positive.get(id(holding), 0) + extra
        share = sum(a for _, a in holding.negative_share(positive))
        return positive + share

    def fits(self, holding: Holding, extra: int) -> bool:
        return self.money(holding, extra) <= holding.available


def build_plan(state: OrderState, request: RefundRequest) -> RefundPlan:
    """Compute the refund ``request`` would make on ``state``; raise if not allowed.

    Pure: reads ``state`` only, writes nothing. Raises ``InvalidRequest`` for
    malformed input and ``RefundNotAllowed`` (with a reason true of this order)
    when a rule forbids it; see the module docstring for the rules.
    """
    order = state.order
    _check_text(request)
    if request.currency and request.currency.upper() != order.purchase_currency:
        raise InvalidRequest(
            "CURRENCY_MISMATCH",
            _("The order is in %(order)s; a refund in %(refund)s is not possible.")
            % {"order": order.purchase_currency, "refund": request.currency},
            field="currency",
        )
    if not state.captures:
        raise RefundNotAllowed("NO_CAPTURES", _("Order has no captures."))
    fee = request.return_fee or 0
    if not _is_whole(fee) or fee < 0 or fee > MAX_AMOUNT:
        raise InvalidRequest(
            "INVALID_FEE",
            _("The return fee must be a whole, non-negative amount."),
            field="return_fee",
        )
    refundable_before = state.refundable()
    rows: list[PlannedRow] = []
    per_holding: list[tuple[Holding, int]] = []
    if request.kind == RefundKind.COMPLETE:
        if refundable_before == 0:
            raise RefundNotAllowed(
                "NOTHING_TO_REFUND",
                _(
                    "Over refund is not allowed: everything captured was already "
                    "refunded (shipping is not refundable)."
                )
                if state.held_back()
                else _(
                    "Over refund is not allowed: everything captured was already "
                    "refunded."
                ),
            )
        for holding in state.holdings:
            holding_rows = [
                _item_row(state, cl, cl.refundable_quantity)
                for cl in holding.positive
                if cl.refundable_quantity and not holding.is_reserved(cl)
            ]
            positive = sum(r.amount for r in holding_rows)
            holding_rows += _share_rows(state, holding.negative_share(positive))
            itemized = sum(r.amount for r in holding_rows)
            if holding.available != itemized:
                holding_rows.append(
                    _adjustment_row(state, holding, holding.available - itemized)
                )
            if holding_rows:
                rows += holding_rows
                per_holding.append((holding, holding.available))
    elif request.kind == RefundKind.ITEMS:
        rows, per_holding = _plan_items(state, request)
    elif request.kind == RefundKind.AMOUNT:
        amount = request.amount
        if not _is_whole(amount) or amount <= 0 or amount > MAX_AMOUNT:
            raise InvalidRequest(
                "INVALID_AMOUNT",
                _("Enter an amount greater than zero."),
                field="amount",
            )
        if fee:
            raise RefundNotAllowed(
                "FEE_NEEDS_ITEMS",
                _(
                    "A return fee is taken from returned items: refund items "
                    "instead of an amount."
                ),
                field="return_fee",
            )
        if amount > refundable_before:
            raise RefundNotAllowed(
                "OVER_REFUND",
                _("Over refund is not allowed: at most %(amount)s can be refunded.")
                % {"amount": _fmt(order, refundable_before)}
                + _held_back_clause(state),
                field="amount",
            )
    else:
        raise InvalidRequest(
            "INVALID_KIND",
            _("Choose how to refund: complete order, items or amount."),
        )

    per_capture: dict[int, int] = {}
    if request.kind == RefundKind.AMOUNT:
        left = request.amount
        available = state.capture_available()
        for capture in state.captures:  # oldest first (our rule)
            take = min(left, available.get(capture.pk, 0))
            if take:
                per_capture[capture.pk] = take
                left -= take
    else:
        for holding, money in per_holding:
            for pk, amount in holding.split(money).items():
                per_capture[pk] = per_capture.get(pk, 0) + amount
    items_amount = (
        request.amount
        if request.kind == RefundKind.AMOUNT
        else sum(r.amount for r in rows)
    )
    if fee:
        _check_fee(state, fee, items_amount, rows)
        per_capture[state.captures[0].pk] -= fee
    refunded = items_amount - fee
    if request.expected_amount is not None and request.expected_amount != refunded:
        raise InvalidRequest(
            "AMOUNT_MISMATCH",
            f"refunded_amount {request.expected_amount} does not match the order lines, "
            f"which add up to {refunded}.",
            field="refunded_amount",
        )

    store_credit = order.merchant.store_credit_only
    available = state.capture_available()
    allocations = []
    for capture in state.captures:
        amount = per_capture.get(capture.pk, 0)
        if amount <= 0:
            continue
        effect = None
        if not store_credit:
            plan = state.plans[capture.pk]
            money_after = state.money_refunded.get(capture.pk, 0) + amount
            effect = plan.refund_effect(
                amount,
                full=money_after == capture.captured_amount,
                installments=state.installments.get(plan.pk, []),
            )
        before = available.get(capture.pk, 0)
        allocations.append(
            PlannedAllocation(
                capture,
                state.number(capture),
                amount,
                max(before - amount, 0),
                capture.remaining_amount - before,
                effect,
            )
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
        rows=tuple(rows),
        allocations=tuple(allocations),
        store_credit=store_credit,
        description=request.description,
        reference=request.reference,
        refundable_before=refundable_before,
        held_back=state.held_back(),
        reason=request.reason,
        internal_note=request.internal_note,
    )


def _held_back_clause(state: OrderState) -> str:
    held = state.held_back()
    if not held:
        return ""
    return " " + _(
        "%(amount)s of shipping stays: %(store)s does not refund shipping fees."
    ) % {"amount": _fmt(state.order, held), "store": state.order.merchant.name}


def _plan_items(
    state: OrderState, request: RefundRequest
) -> tuple[list[PlannedRow], list[tuple[Holding, int]]]:
    """Rows and money per holding for an item refund.

    Units of a line are taken from its capture lines oldest capture first,
    skipping a capture that cannot take them (earlier refunds by amount used its
    money); the item's share of the holding's negative lines comes off.
    """
    if not request.lines:
        raise InvalidRequest(
            "NO_LINES", _("Select at least one item to refund."), field="lines"
        )
    order = state.order
    by_reference = {line.reference: line for line in state.lines}
    capture_lines: dict[int, list[CaptureLine]] = {}
    for cl in state.capture_lines:
        capture_lines.setdefault(cl.order_line_id, []).append(cl)
    seen: set[str] = set()
    selection = _Selection()
    item_rows: list[PlannedRow] = []
    for reference, quantity in request.lines:
        line = by_reference.get(reference)
        if line is None:
            raise InvalidRequest(
                "UNKNOWN_LINE",
                _("This order has no line with reference “%(reference)s”.")
                % {"reference": reference},
                field="lines",
            )
        if reference in seen:
            raise InvalidRequest(
                "DUPLICATE_LINE",
                _("“%(item)s” is listed twice.") % {"item": line.name},
                field="lines",
            )
        seen.add(reference)
        field_name = f"line-{line.pk}"
        if not _is_whole(quantity) or quantity <= 0:
            raise InvalidRequest(
                "INVALID_QUANTITY",
                _("The quantity for “%(item)s” must be a whole number of at least 1.")
                % {"item": line.name},
                field=field_name,
            )
        if line.is_negative:
            raise RefundNotAllowed(
                "NEGATIVE_LINE",
                _(
                    "“%(item)s” is not refunded by itself: its share comes off the "
                    "items refunded, in proportion. Select items instead."
                )
                % {"item": line.name},
                field=field_name,
            )
        if line.is_shipping and not order.merchant.shipping_fees_refundable:
            raise RefundNotAllowed(
                "SHIPPING_NOT_REFUNDABLE",
                _("%(store)s does not refund shipping fees (“%(item)s”).")
                % {"store": order.merchant.name, "item": line.name},
                field=field_name,
            )
        if line.captured_quantity == 0:
            raise RefundNotAllowed(
                "NOT_CAPTURED", _not_captured_reason(state, line), field=field_name
            )
        if quantity > line.refundable_quantity:
            raise RefundNotAllowed(
                "OVER_REFUND",
                (
                    _(
                        "Over refund is not allowed: only %(count)d of “%(item)s” "
                        "can be refunded (%(uncaptured)d not captured yet)."
                    )
                    if line.captured_quantity < line.quantity
                    else _(
                        "Over refund is not allowed: only %(count)d of “%(item)s” "
                        "can be refunded."
                    )
                )
                % {
                    "count": line.refundable_quantity,
                    "item": line.name,
                    "uncaptured": line.quantity - line.captured_quantity,
                },
                field=field_name,
            )
        need = quantity
        for cl in capture_lines.get(line.pk, []):
            if not need:
                break
            holding = state.holding_of(cl)
            count = _units_that_fit(
                selection, holding, cl, min(need, cl.refundable_quantity)
            )
            if count:
                row = _item_row(state, cl, count)
                item_rows.append(row)
                selection.positive[id(holding)] = (
                    selection.positive.get(id(holding), 0) + row.amount
                )
                need -= count
        if need:
            raise RefundNotAllowed(
                "OVER_REFUND", _over_refund_reason(state, line), field=field_name
            )
    rows: list[PlannedRow] = []
    per_holding = []
    for holding in state.holdings:
        if id(holding) not in selection.positive:
            continue
        holding_items = [
            r for r in item_rows if state.holding_of(r.capture_line) is holding
        ]
        shares = _share_rows(
            state, holding.negative_share(selection.positive[id(holding)])
        )
        rows += holding_items + shares
        per_holding.append((holding, selection.money(holding)))
    if sum(r.amount for r in rows) <= 0:
        raise RefundNotAllowed(
            "NOTHING_TO_REFUND",
            _(
                "The selected items are worth nothing after their share of the "
                "order's discounts and gift cards."
            ),
            field="lines",
        )
    return rows, per_holding


def _units_that_fit(
    selection: _Selection, holding: Holding, cl: CaptureLine, most: int
) -> int:
    """The most units (≤ ``most``) of ``cl`` whose money the holding can still take."""
    if most <= 0:
        return 0
    if selection.fits(holding, cl.amount_for_units(most)):
        return most
    low, high = 0, most  # fits(low) holds, fits(high) does not
    while high - low > 1:
        mid = (low + high) // 2
        if selection.fits(holding, cl.amount_for_units(mid)):
            low = mid
        else:
            high = mid
    return low


def _not_captured_reason(state: OrderState, line: OrderLine) -> str:
    pool = [c for c in state.captures if c.by_amount]
    if pool:
        captured = sum(c.captured_amount for c in pool)
        return _(
            "“%(item)s” has not been captured: %(amount)s was captured as an "
            "amount, which holds no items until the whole order is captured. "
            "Refund an amount instead."
        ) % {"item": line.name, "amount": _fmt(state.order, captured)}
    return _(
        "“%(item)s” has not been captured; only captured items can be refunded."
    ) % {"item": line.name}


def _over_refund_reason(state: OrderState, line: OrderLine) -> str:
    """Why the units of ``line`` left cannot be refunded: true of this order."""
    invoices = []
    for holding in state.holdings:
        if not any(
            cl.order_line_id == line.pk and cl.refundable_quantity
            for cl in holding.lines
        ):
            continue
        numbers = _(" and ").join(str(state.number(c)) for c in holding.captures)
        by_amount = sum(c.refunded_amount for c in holding.captures) - sum(
            cl.refunded_amount for cl in holding.lines
        )
        values = {
            "invoice": numbers,
            "left": _fmt(state.order, holding.available),
            "by_amount": _fmt(state.order, by_amount),
        }
        if by_amount > 0:
            text = _(
                "invoice %(invoice)s has only %(left)s left to refund (%(by_amount)s "
                "of it was refunded by amount)"
            )
        elif holding.reserve:
            text = _(
                "invoice %(invoice)s has only %(left)s left to refund (shipping is "
                "not refundable)"
            )
        else:
            text = _("invoice %(invoice)s has only %(left)s left to refund")
        invoices.append(text % values)
    return _(
        "Over refund is not allowed: “%(item)s” is worth more than what is left: "
        "%(invoices)s. Refund an amount instead."
    ) % {"item": line.name, "invoices": "; ".join(invoices)}


def _check_fee(
    state: OrderState, fee: int, items_amount: int, rows: list[PlannedRow]
) -> None:
    order = state.order
    if order.purchase_country not in RETURN_FEE_MARKETS:
        raise RefundNotAllowed(
            "FEE_MARKET",
            _("Return fees are not supported for orders from %(country)s.")
            % {"country": order.purchase_country},
            field="return_fee",
        )
    if len(state.captures) != 1:
        raise RefundNotAllowed(
            "FEE_MULTI_CAPTURE",
            ngettext(
                "A return fee is only possible on an order captured in one single "
                "capture; this order has %(count)d capture.",
                "A return fee is only possible on an order captured in one single "
                "capture; this order has %(count)d captures.",
                len(state.captures),
            )
            % {"count": len(state.captures)},
            field="return_fee",
        )
    if not any(r.kind == RefundLine.Kind.ITEM for r in rows):
        raise RefundNotAllowed(
            "FEE_NEEDS_ITEMS",
            _("A return fee is taken from returned items: this refund has none."),
            field="return_fee",
        )
    if fee >= items_amount:
        raise RefundNotAllowed(
            "FEE_TOO_LARGE",
            _("The return fee must be smaller than the refunded items (%(amount)s).")
            % {"amount": _fmt(order, items_amount)},
            field="return_fee",
        )


def _fmt(order: Order, amount: int) -> str:
    return format_money(amount, order.purchase_currency, order.locale)


def refundable_now(order: Order) -> tuple[int, int]:
    """``(refundable, held_back)`` in minor units: what the engine would allow
    now, and the captured shipping it keeps because the store does not refund
    shipping fees. Reads only."""
    state = OrderState.load(order, lock=False, with_plans=False)
    return state.refundable(), state.held_back()


def preview_refund(
    order: Order,
    request: RefundRequest,
    *,
    reload: bool = True,
    state: OrderState | None = None,
) -> RefundPlan:
    """What ``request`` would do now. Writes nothing; raises what execution would.

    The order is read again unless ``reload=False``: a caller that loaded it
    with its merchant in the same request (the portal's refund views) saves that
    query, and one that read its rows too (``OrderState.load``, the refund form)
    passes them as ``state``. Execution locks and re-reads everything and
    refuses a plan that changed since its preview (the fingerprint), so a
    preview never needs fresher rows than the request's own (our rule, issue 16).
    """
    if state is not None:
        state.read_plans()
        return build_plan(state, request)
    if reload:
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
    state: OrderState | None = None,
) -> Refund:
    """Lock, plan, write. Returns the refund (``refund.replayed`` is True when an
    idempotency key returned an earlier one). Raises a ``DomainError`` and changes
    nothing when the refund is not allowed.

    ``state``: the order's rows already locked in the caller's transaction
    (``OrderState.lock_merchants_order``), e.g. by the refund form that
    validated ``request`` against them; they are used as they are, not read
    again. That transaction
    is then the refund's own (no savepoint): a refusal marks it for rollback
    (nothing was written), and an ``IntegrityError`` (another request committed
    the same idempotency key meanwhile) is the caller's to retry, when the key
    is found.
    """
    if idempotency_key is not None and (
        not idempotency_key or len(idempotency_key) > MAX_TEXT
    ):
        raise InvalidRequest(
            "INVALID_IDEMPOTENCY_KEY",
            _("The idempotency key must be 1 to 255 characters."),
        )
    request_fingerprint = request.fingerprint()
    try:
        with transaction.atomic(savepoint=state is None):
            locked = _lock_order(order) if state is None else state.order
            if idempotency_key:
                earlier = _replay(
                    locked, idempotency_key, request_fingerprint, state=state
                )
                if earlier is not None:
                    return earlier
            if state is None:
                state = OrderState.load(locked, lock=True)
            plan = build_plan(state, request)
            if expected_fingerprint and expected_fingerprint != plan.fingerprint:
                raise RefundChanged(plan)
            refund = _write(
                plan,
                state,
                by=by,
                channel=channel,
                request_key=RefundRequestKey(
                    merchant_id=locked.merchant_id,
                    key=idempotency_key,
                    fingerprint=request_fingerprint,
                )
                if idempotency_key
                else None,
            )
    except IntegrityError:
        if not idempotency_key or state is not None:
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


def _lock_order(order: Order) -> Order:
    """The order's row, locked: it serializes every money movement on the order."""
    return _ORDER(order.pk, lock=True)[0]


def replayed_refund(order: Order, key: str, request: RefundRequest) -> Refund | None:
    """The refund that idempotency key ``key`` already made on ``order`` for
    ``request`` (``refund.replayed`` is True), or None when the key made none in
    the last 24 hours. Raises ``IdempotencyConflict`` when it made a refund for
    another request. Run it in the transaction that holds the order's lock
    (the key's row is locked too). DOMAIN.md, "Idempotency"."""
    return _replay(order, key, request.fingerprint())


def _replay(
    order: Order, key: str, fingerprint: str, *, state: OrderState | None = None
) -> Refund | None:
    # At most one row (unique per merchant); read with ``state`` when it was.
    read = state.request_keys if state is not None else {}
    found = read.get((order.merchant_id, key))
    if found is None:
        found = _REQUEST_KEYS.objects(order.merchant_id, key)
    if not found:
        return None
    (row,) = found
    if row.created_at < timezone.now() - IDEMPOTENCY_WINDOW:
        row.delete()
        return None
    if row.fingerprint != fingerprint or row.refund.order_id != order.pk:
        raise IdempotencyConflict(
            "IDEMPOTENCY_KEY_REUSED",
            _("This idempotency key was already used for a different refund request."),
        )
    refund = row.refund
    refund.replayed = True
    return refund


def _write(
    plan: RefundPlan,
    state: OrderState,
    *,
    by,
    channel: str,
    request_key: RefundRequestKey | None = None,
) -> Refund:
    """Write ``plan`` on ``state``'s locked rows: the refund, then its rows and
    the notification's job in one round trip (``portal.pipeline.sent_together``:
    none of them is read back), then what reads (a return report to resolve).
    ``request_key`` (its refund unset) is saved with them."""
    order = state.order
    refund = Refund(
        order=order,
        merchant_id=order.merchant_id,
        kind=plan.kind,
        items_amount=plan.items_amount,
        fee_amount=plan.fee_amount,
        refunded_amount=plan.refunded_amount,
        store_credit=plan.store_credit,
        description=plan.description,
        reference=plan.reference,
        reason=plan.reason,
        internal_note=plan.internal_note,
        created_by=by,
        channel=channel,
    )
    insert_rows([refund])
    refund.replayed = False
    from customers.tasks import enqueue_after_commit, notify_refund

    with sent_together():
        paused = _write_rows(plan, state, refund, request_key)
        # The job's row (``django_tasks_db``) is an insert that reads nothing
        # back: it travels with the refund's rows.
        enqueue_after_commit(notify_refund, refund.pk)
    # The store registered the return: paused payments resume.
    if paused:
        for report in ReturnReport.objects.filter(
            order=order, resolved_at__isnull=True
        ):
            report.resolve("registered")
    return refund


def _write_rows(
    plan: RefundPlan,
    state: OrderState,
    refund: Refund,
    request_key: RefundRequestKey | None,
) -> bool:
    """The refund's rows and counters (``_write``); nothing here reads a
    result or a row count. Whether the order has paused installments."""
    order = state.order
    refund_lines = [
        RefundLine(
            refund=refund,
            order_line=row.order_line,
            capture_line=row.capture_line,
            kind=row.kind,
            type=row.type,
            reference=row.reference,
            name=row.name,
            quantity=row.quantity,
            quantity_unit=row.quantity_unit,
            unit_price=row.unit_price,
            tax_rate=row.tax_rate,
            total_discount_amount=row.total_discount_amount,
            total_amount=row.amount,
            total_tax_amount=row.total_tax_amount,
        )
        for row in plan.rows
    ]
    if plan.fee_amount:
        refund_lines.append(
            RefundLine(
                refund=refund,
                kind=RefundLine.Kind.FEE,
                type=OrderLine.Type.RETURN_FEE,
                reference="return-fee",
                name="Return fee",
                quantity=1,
                unit_price=-plan.fee_amount,
                total_amount=-plan.fee_amount,
            )
        )
    insert_rows(refund_lines, returning=False)

    # The line ledger's counters, on rows locked by OrderState.load. Added in
    # SQL (one statement per table), like the capture and order counters below.
    line_units: dict[int, int] = {}  # order line pk -> units refunded now
    capture_line_added: dict[int, list[int]] = {}  # pk -> [units, amount]
    for row in plan.rows:
        cl = row.capture_line
        if cl is None:
            continue
        line = cl.order_line
        units = 0
        cl.refunded_amount += row.amount
        if row.kind == RefundLine.Kind.ITEM:
            units = row.quantity
        elif cl.refunded_amount == cl.amount:  # a negative line, now all refunded
            units = cl.quantity - cl.refunded_quantity
        cl.refunded_quantity += units
        line.refunded_quantity += units
        added = capture_line_added.setdefault(cl.pk, [0, 0])
        added[0] += units
        added[1] += row.amount
        line_units[line.pk] = line_units.get(line.pk, 0) + units
    update_rows(
        OrderLine,
        ["refunded_quantity"],
        {pk: (units,) for pk, units in line_units.items() if units},
        add=True,
    )
    update_rows(
        CaptureLine,
        ["refunded_quantity", "refunded_amount"],
        capture_line_added,
        add=True,
    )

    # An open return report always has paused installments: reporting pauses at
    # least one (``ReturnReport.report``) and only resolving it resumes them. So
    # an order whose installments (locked, read before this refund changes them)
    # have none has no report to resolve, and is not asked (issue 16).
    paused = any(
        i.status == InstallmentStatus.PAUSED
        for installments in state.installments.values()
        for i in installments
    )

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
    insert_rows(allocations, returning=False)
    # Increments in SQL, not absolute values: even without the lock, the CHECK
    # constraints (refunded <= captured) would refuse an over-refund.
    update_rows(
        Capture,
        ["refunded_amount"],
        {a.capture.pk: (a.amount,) for a in plan.allocations},
        add=True,
    )
    insert_rows(repayments, returning=False)
    insert_rows(balance_entries, returning=False)

    order.refunded_amount += plan.refunded_amount
    order.status = order._status_after_change()
    update_rows(
        Order,
        ["refunded_amount", "status"],
        {order.pk: (plan.refunded_amount, order.status)},
        add={"refunded_amount"},
    )
    if not plan.store_credit:
        LedgerEntry.record_return(refund)
    if request_key is not None:
        request_key.refund = refund
        insert_rows([request_key], returning=False)
    return paused
