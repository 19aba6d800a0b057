"""What the merchant's order page shows, loaded as rows (issue 16).

``OrderOverview.load`` reads an order's lines, captures, refunds, repayments,
payout entries, events and reported returns in a fixed number of queries, as
values rather than model objects (the page only shows them; a model object per
line cost ten times as much on a 500-line order), and builds the largest
tables' rows once in Python (``portal.display``). The rows keep the models'
rules: their properties are the models' own (``OrderLineRow.is_shipping`` is
``OrderLine.is_shipping``), so the refund engine counts what is refundable from
them as from model objects.
"""

import functools
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar
from uuid import UUID

from django.db.models import Exists, OuterRef
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from customers.models import PlanStatus, Repayment, ReturnReport
from portal.compiled import CompiledRows, together
from portal.display import (
    ChoiceLabels,
    allocation_items,
    capture_items,
    joined,
    ledger_rows,
    order_line_rows,
    refund_rows,
    timeline_items,
)
from portal.models import (
    Capture,
    CaptureLine,
    Channel,
    LedgerEntry,
    MerchantUser,
    Order,
    OrderEvent,
    OrderLine,
    PaymentProduct,
)
from portal.money import format_money
from refunds.engine import OrderState
from refunds.models import Refund, RefundAllocation, RefundKind, RefundLine


@dataclass
class TimelineEntry:
    """One line of the order's timeline (``portal.display.timeline_items``)."""

    when: datetime
    kind: str  # created | capture | refund | event
    title: str
    detail: str = ""
    by: str | None = None  # the username of who did it


@dataclass
class OrderOverview:
    """Everything the order page shows, loaded in a fixed number of queries."""

    order: Order
    lines: list
    captures: list
    refunds: list
    ledger_entries: list  # (created_at, kind, reference, amount, payout number)
    events: list
    return_reports: list = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    # The largest tables' rows, built and escaped once (portal.display), one
    # string each: the template inserts them as they are.
    line_rows: SafeString = field(default_factory=SafeString)
    ledger_rows: SafeString = field(default_factory=SafeString)
    refund_rows: SafeString = field(default_factory=SafeString)
    timeline_items: SafeString = field(default_factory=SafeString)
    refundable: int = 0  # minor units, as the refund engine counts it
    held_back: int = 0  # captured shipping the store does not refund
    can_refund: bool = False
    can_capture: bool = False
    can_release: bool = False
    can_cancel: bool = False
    can_remove_item: bool = False
    can_manage_captures: bool = False

    @staticmethod
    def annotate(orders):
        """``orders`` with ``has_events`` and ``has_return_reports``: whether the
        order has any, as EXISTS subqueries of the order's own query, so that
        ``load`` skips the queries for the relations an order does not have
        (one index probe each instead of a round trip). Whether to ask for
        repayments is read from the refunds' recorded effects instead."""
        return orders.annotate(
            has_events=Exists(OrderEvent.objects.filter(order=OuterRef("pk"))),
            has_return_reports=Exists(
                ReturnReport.objects.filter(order=OuterRef("pk"))
            ),
        )

    @classmethod
    def load(cls, order: Order, merchant_user: MerchantUser) -> "OrderOverview":
        """Load what the page shows: at most 8 queries whatever the order's size
        (order lines with their capture lines, captures, refunds with their
        allocations, refund lines, repayments, payout entries, events,
        customer's return reports), fewer for an order without captures,
        refunds or money back. The first six are compiled once per process
        (``portal.compiled``); the lines, captures, payout entries, refunds and
        refund lines are sent to PostgreSQL together (one round trip).

        Relations an order does not have are not queried (our rule, issue 16):
        no captures while nothing is captured (and then no refunds, payout
        entries, repayments or reported returns), no refunds while nothing is
        refunded, no repayments when no allocation's recorded effect sent money
        back (``RefundAllocation.may_have_repayment``); and, for an order loaded
        through ``annotate``, no events or reported returns when its EXISTS
        flags say there are none. Each order line is loaded once: capture
        lines point at the same objects.
        """
        captured = order.captured_amount > 0
        refunded = order.refunded_amount > 0
        # The compiled queries this order needs, in one round trip.
        key = (order.pk,)
        calls = [(ORDER_LINES_WITH_CAPTURE_LINES, key)]
        if captured:
            calls += [(CAPTURES, key), (LEDGER_ENTRIES, key)]
        if refunded:
            calls += [(REFUNDS_WITH_ALLOCATIONS, key), (REFUND_LINES, key)]
        results = dict(zip((c for c, _key in calls), together(*calls), strict=True))
        # Each order line with the capture lines holding its units: a LEFT
        # JOIN, one row per capture line (one for a line nothing captured).
        lines: list[OrderLineRow] = []
        capture_lines: list[CaptureLineRow] = []
        width = len(OrderLineRow.COLUMNS)
        line = None
        for row in results[ORDER_LINES_WITH_CAPTURE_LINES]:
            if line is None or line.pk != row[0]:
                line = OrderLineRow(*row[:width])
                lines.append(line)
            if row[width] is not None:
                capture_lines.append(CaptureLineRow(*row[width:]))
        captures = [CaptureRow(*row) for row in results.get(CAPTURES, ())]
        products = ChoiceLabels(PaymentProduct.choices)
        plan_statuses = ChoiceLabels(PlanStatus.choices)
        numbers = {}
        for number, capture in enumerate(captures, start=1):
            capture.number = number
            capture.order = order
            if capture.plan_product:
                capture.plan_label = (
                    f"{products[capture.plan_product]} · "
                    f"{plan_statuses[capture.plan_status]}"
                )
            numbers[capture.pk] = capture
        # Capture by capture, in the order of the order lines (as the page
        # lists them).
        for cl in capture_lines:
            numbers[cl.capture_id].held_lines.append(cl)
        refunds = (
            cls._load_refunds(
                order,
                numbers,
                results[REFUNDS_WITH_ALLOCATIONS],
                results[REFUND_LINES],
            )
            if refunded
            else []
        )
        overview = cls(
            order=order,
            lines=lines,
            captures=captures,
            refunds=refunds,
            # Sales, fees and returns: only for something captured.
            ledger_entries=results.get(LEDGER_ENTRIES, []),
            events=list(
                OrderEvent.objects.filter(order=order).select_related("created_by")
            )
            if getattr(order, "has_events", True)
            else [],
            # Returns the customer reported (only on something captured): the
            # store sees the tracking number and that the customer's payments
            # are paused until it refunds.
            return_reports=(
                list(order.return_reports.order_by("-created_at"))
                if captured and getattr(order, "has_return_reports", True)
                else []
            ),
        )
        fmt = functools.partial(
            format_money, currency=order.purchase_currency, locale=order.locale
        )
        # What the refund engine allows: non-refundable shipping left out. It
        # also points every capture line at its order line in ``lines``.
        state = OrderState.from_rows(order, lines, captures, capture_lines)
        overview.line_rows = joined(order_line_rows(lines, fmt))
        overview.ledger_rows = joined(ledger_rows(overview.ledger_entries, fmt))
        for capture in captures:
            capture.items = capture_items(capture.held_lines, lines, len(captures))
            capture.allocation_items = allocation_items(capture.allocations, fmt)
        overview.refund_rows = joined(refund_rows(refunds, fmt))
        overview.timeline = order_timeline(order, captures, refunds, overview.events)
        overview.timeline_items = joined(timeline_items(overview.timeline))
        remaining = order.remaining_authorized_amount
        manages = merchant_user.can_manage_orders
        overview.refundable, overview.held_back = state.refundable(), state.held_back()
        overview.can_refund = merchant_user.can_refund and overview.refundable > 0
        overview.can_capture = manages and remaining > 0
        overview.can_release = manages and remaining > 0 and order.captured_amount > 0
        overview.can_cancel = manages and remaining > 0 and order.captured_amount == 0
        overview.can_remove_item = (
            manages
            and order.authorization_update_refusal() is None
            and any(line.capturable_quantity for line in lines)
        )
        overview.can_manage_captures = manages
        return overview

    @staticmethod
    def _load_refunds(
        order: Order, captures_by_pk: dict, refund_rows: list, refund_line_rows: list
    ) -> list["RefundRow"]:
        """The order's refunds as ``RefundRow`` objects, oldest first, from the
        rows of ``REFUNDS_WITH_ALLOCATIONS`` (one per allocation, a LEFT JOIN)
        and ``REFUND_LINES``, and, only where an allocation's recorded effect
        may have sent money back, repayments (one more query).

        Values, not model objects: the page only shows them. Each allocation
        (``AllocationRow``) is linked to its capture in ``captures_by_pk`` and
        appended to that capture's ``allocations``."""
        fmt = functools.partial(
            format_money, currency=order.purchase_currency, locale=order.locale
        )
        refunds: dict[int, RefundRow] = {}
        width = len(RefundRow.COLUMNS)
        for row in refund_rows:
            refund = refunds.get(row[0])
            if refund is None:
                refund = refunds[row[0]] = RefundRow(*row[:width])
            capture_id, amount, effect_summary, effect = row[width:]
            if capture_id is None:  # a refund without allocations (LEFT JOIN)
                continue
            capture = captures_by_pk[capture_id]
            allocation = AllocationRow(
                capture_id, amount, effect_summary, effect, capture
            )
            # From the record of what the refund did, formatted now.
            allocation.summary = allocation.describe(fmt)
            capture.allocations.append((refund, allocation))
            refund.allocations.append(allocation)
        # The lines the page names; a return fee is shown as the fee amount.
        fee = RefundLine.Kind.FEE
        for refund_pk, kind, *line in refund_line_rows:
            if kind != fee:
                refunds[refund_pk].lines.append(line)
        repaying = {}
        for refund in refunds.values():
            refund.to_balance = any(
                (a.effect or {}).get("destination") == "account_balance"
                for a in refund.allocations
            )
            if any(
                a.may_have_repayment(refund.store_credit) for a in refund.allocations
            ):
                repaying[refund.pk] = refund
        if repaying:
            for row in REPAYMENTS.rows(order.pk):
                refund = repaying.get(row[0])
                if refund is not None:
                    refund.repayments.append(RepaymentRow(*row))
        return list(refunds.values())


@dataclass(slots=True)
class RefundRow:
    """A refund as the order page shows it: its columns, the (order line id,
    quantity, name, total amount) of its lines except the return fee, its
    allocations (``AllocationRow``) and repayments."""

    #: Loaded columns, in the order of the fields below.
    COLUMNS: ClassVar = (
        "pk",
        "refund_id",
        "kind",
        "channel",
        "reason",
        "store_credit",
        "description",
        "reference",
        "internal_note",
        "refunded_amount",
        "fee_amount",
        "created_at",
        "created_by__username",
    )
    ALLOCATION_COLUMNS: ClassVar = (
        "allocations__capture_id",
        "allocations__amount",
        "allocations__effect_summary",
        "allocations__effect",
    )

    pk: int
    refund_id: UUID
    kind: str
    channel: str
    reason: str
    store_credit: bool
    description: str
    reference: str
    internal_note: str
    refunded_amount: int  # minor units
    fee_amount: int  # minor units
    created_at: datetime
    created_by: str | None  # the username
    lines: list = field(default_factory=list)
    allocations: list = field(default_factory=list)
    repayments: list = field(default_factory=list)
    #: Money went to the customer's account balance (financing), not back.
    to_balance: bool = False


@dataclass(slots=True)
class AllocationRow:
    """The part of a refund credited to one capture, loaded as values with its
    refund. Its rules are ``RefundAllocation``'s own methods."""

    capture_id: int
    amount: int  # minor units
    effect_summary: str
    effect: dict | None
    capture: "CaptureRow"
    summary: str = ""  # what it did, in the active language

    recorded_effect = RefundAllocation.recorded_effect
    may_have_repayment = RefundAllocation.may_have_repayment
    describe = RefundAllocation.describe


@dataclass(slots=True)
class OrderLineRow:
    """An order line as the order page and the refund engine's count read it,
    loaded as values (a model object per line cost ten times as much on a
    500-line order). Its rules are ``OrderLine``'s own properties."""

    COLUMNS: ClassVar = (
        "pk",
        "position",
        "type",
        "reference",
        "name",
        "quantity",
        "unit_price",
        "total_amount",
        "captured_quantity",
        "refunded_quantity",
    )
    Type: ClassVar = OrderLine.Type

    pk: int
    position: int
    type: str
    reference: str
    name: str
    quantity: int
    unit_price: int  # minor units
    total_amount: int  # minor units
    captured_quantity: int
    refunded_quantity: int

    is_shipping = OrderLine.is_shipping
    capturable_quantity = OrderLine.capturable_quantity
    refundable_quantity = OrderLine.refundable_quantity


@dataclass(slots=True)
class CaptureLineRow:
    """A capture line as the order page and the refund engine's count read it,
    loaded as values; ``OrderState.from_rows`` sets its ``order_line`` and
    ``capture``. Its rules are ``CaptureLine``'s own properties."""

    COLUMNS: ClassVar = (
        "pk",
        "capture_id",
        "order_line_id",
        "quantity",
        "amount",
        "refunded_quantity",
        "refunded_amount",
    )

    #: The same, through the order line's ``capture_lines``.
    JOINED_COLUMNS: ClassVar = tuple(f"capture_lines__{name}" for name in COLUMNS)

    pk: int
    capture_id: int
    order_line_id: int
    quantity: int
    amount: int  # minor units
    refunded_quantity: int
    refunded_amount: int  # minor units
    order_line: OrderLineRow | None = None
    capture: "CaptureRow | None" = None

    is_negative = CaptureLine.is_negative
    refundable_quantity = CaptureLine.refundable_quantity
    remaining_amount = CaptureLine.remaining_amount


@dataclass(slots=True)
class CaptureRow:
    """A capture (customer invoice) as the order page and the refund engine's
    count read it, loaded as values with who made it and its plan's product
    and status. Its rules are ``Capture``'s own properties; ``number``,
    ``order``, ``held_lines``, ``allocations`` and the display strings are set
    by ``OrderOverview.load``."""

    COLUMNS: ClassVar = (
        "pk",
        "capture_id",
        "captured_amount",
        "refunded_amount",
        "by_amount",
        "description",
        "channel",
        "created_at",
        "shipping_info",
        "created_by__username",
        "plan__product",
        "plan__status",
    )

    pk: int
    capture_id: UUID
    captured_amount: int  # minor units
    refunded_amount: int  # minor units
    by_amount: bool
    description: str
    channel: str
    created_at: datetime
    shipping_info: list
    created_by: str | None  # the username
    plan_product: str | None
    plan_status: str | None
    number: int = 0  # 1 for the order's first capture
    order: Order | None = None
    plan_label: str = ""  # product · status, in the active language
    held_lines: list = field(default_factory=list)  # CaptureLineRow
    allocations: list = field(default_factory=list)  # (RefundRow, allocation)
    items: SafeString = field(default_factory=SafeString)
    allocation_items: SafeString = field(default_factory=SafeString)

    remaining_amount = Capture.remaining_amount
    klarna_reference = Capture.klarna_reference
    tracking = Capture.tracking


@dataclass(slots=True)
class RepaymentRow:
    """Money going back to the customer for a refund, as the order page shows
    it, loaded as values. Its rules are ``Repayment``'s own properties."""

    COLUMNS: ClassVar = (
        "refund_id",
        "amount",
        "status",
        "failure_reason",
        "expected_by",
        "created_at",
        "updated_at",
        "completed_at",
    )

    refund_id: int
    amount: int  # minor units
    status: str
    failure_reason: str
    expected_by: date
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    is_being_traced = Repayment.is_being_traced
    failure_reason_display = Repayment.failure_reason_display
    status_note = Repayment.status_note


# The order page's queries, each compiled once per process
# (portal.compiled): a request runs them for its order.
ORDER_LINES_WITH_CAPTURE_LINES = CompiledRows(
    OrderLine.objects.order_by("position", "pk", "capture_lines__pk").values_list(
        *OrderLineRow.COLUMNS, *CaptureLineRow.JOINED_COLUMNS
    ),
    "order",
)
CAPTURES = CompiledRows(
    Capture.objects.order_by("pk").values_list(*CaptureRow.COLUMNS), "order"
)
REFUNDS_WITH_ALLOCATIONS = CompiledRows(
    Refund.objects.order_by("created_at", "pk", "allocations__capture_id").values_list(
        *RefundRow.COLUMNS, *RefundRow.ALLOCATION_COLUMNS
    ),
    "order",
)
REFUND_LINES = CompiledRows(
    RefundLine.objects.order_by("refund_id", "pk").values_list(
        "refund_id", "kind", "order_line_id", "quantity", "name", "total_amount"
    ),
    "refund__order",
)
REPAYMENTS = CompiledRows(
    Repayment.objects.order_by("pk").values_list(*RepaymentRow.COLUMNS),
    "refund__order",
)
LEDGER_ENTRIES = CompiledRows(
    LedgerEntry.objects.order_by("created_at", "pk").values_list(
        "created_at", "kind", "reference", "amount", "payout__number"
    ),
    "order",
)
# The order itself, with the flags of what it has: built once, filtered by the
# merchant and the order id on each request.
ORDER_PAGE_ORDERS = OrderOverview.annotate(
    Order.objects.select_related("customer", "payment_method")
)


def order_timeline(order: Order, captures, refunds, events) -> list[TimelineEntry]:
    """Captures (``CaptureRow``), refunds (``RefundRow``) and order events merged
    into one list, newest first; ``by`` is the username of who did it."""

    def fmt(amount: int) -> str:
        return format_money(amount, order.purchase_currency, order.locale)

    entries = [
        TimelineEntry(
            order.created_at,
            "created",
            _("Order placed"),
            _("%(amount)s with %(product)s")
            % {
                "amount": fmt(order.original_order_amount),
                "product": order.get_payment_product_display(),
            },
        )
    ]
    channels = ChoiceLabels(Channel.choices)
    captured = _("Captured %(amount)s (invoice %(invoice)s)")
    for capture in captures:
        entries.append(
            TimelineEntry(
                capture.created_at,
                "capture",
                captured
                % {"amount": fmt(capture.captured_amount), "invoice": capture.number},
                capture.description or channels[capture.channel],
                capture.created_by,
            )
        )
    kinds = ChoiceLabels(RefundKind.choices)
    refunded, with_fee = _("Refunded %(amount)s"), _("%(kind)s, return fee %(fee)s")
    for refund in refunds:
        detail = kinds[refund.kind]
        if refund.fee_amount:
            # "Selected items, return fee 4,95 €": the fee is named once, not
            # also by the kind's label ("Selected items with a return fee").
            kind = (
                kinds[RefundKind.ITEMS]
                if refund.kind == RefundKind.ITEMS_WITH_FEE
                else detail
            )
            detail = with_fee % {"kind": kind, "fee": fmt(refund.fee_amount)}
        entries.append(
            TimelineEntry(
                refund.created_at,
                "refund",
                refunded % {"amount": fmt(refund.refunded_amount)},
                detail,
                refund.created_by,
            )
        )
    for event in events:
        entries.append(
            TimelineEntry(
                event.created_at,
                "event",
                event.get_kind_display(),
                " · ".join(
                    part
                    for part in (fmt(event.amount) if event.amount else "", event.note)
                    if part
                ),
                event.created_by.username if event.created_by else None,
            )
        )
    order_of_kinds = {"created": 0, "capture": 1, "refund": 2, "event": 3}
    entries.sort(key=lambda e: (e.when, order_of_kinds[e.kind]), reverse=True)
    return entries
