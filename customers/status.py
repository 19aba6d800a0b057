"""What the customer sees of an order: its status, its plan, and each refund's
timeline (store registered the return → refund issued → how it was applied →
money back → completed).

Read-only: builds plain objects for the customer pages and emails in a fixed
number of queries. Amounts about an order are shown in the order's currency and
locale (DOMAIN.md, "Money"), so each currency has one style on every page; the
account balance, which belongs to no order, in the customer's locale
(``MoneyContext`` works with the ``money`` template filter). Amounts are
formatted when shown, never stored as formatted text.
"""

import functools
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import date, datetime
from html import escape
from uuid import UUID

from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef
from django.utils.functional import Promise
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, gettext_lazy, pgettext, pgettext_lazy
from django.utils.translation import gettext as _

from portal.compiled import CompiledObjects, CompiledRows, give_prefetched, together
from portal.display import DateWriter, url_maker
from portal.models import Order, OrderLine, OrderStatus
from portal.money import format_money
from refunds.models import Refund, RefundAllocation, RefundKind, RefundLine

from .language import day
from .models import (
    OPEN_INSTALLMENT,
    BalanceEntry,
    Customer,
    DueDateExtension,
    Installment,
    InstallmentStatus,
    PaymentPlan,
    Repayment,
    RepaymentStatus,
    ReturnReport,
)

#: What the seed tells a customer whose money has not arrived (seed 000).
BOUNCE_GUIDANCE = gettext_lazy(
    "Did you recently change banks or close your linked bank account? Have you "
    "canceled, temporarily frozen, blocked or changed your connected card? If so, "
    "let us know: your refund may have bounced back to us, causing the delay."
)
#: What a customer whose money is overdue while processing is told (our rule:
#: it is traced, never sent twice; DOMAIN.md, "Repayments").
TRACING = gettext_lazy(
    "It has been more than 14 days and the money has not arrived. We are tracing "
    "the transfer; it is never sent twice. If it bounced back to us, we will ask "
    "you here for new details and send it again."
)


@dataclass(frozen=True)
class MoneyContext:
    """The currency and locale amounts are shown in (``{{ x|money:money }}``)."""

    currency: str
    locale: str

    def fmt(self, amount: int) -> str:
        return format_money(amount, self.currency, self.locale)

    @classmethod
    def for_order(cls, order: Order) -> "MoneyContext":
        """The order's currency in the order's locale (DOMAIN.md, "Money"): one
        style for every amount about the order, whoever reads it."""
        return cls(order.purchase_currency, order.locale)


class CustomerOrderStatus:
    """The order statuses a customer reads, most telling first: ``(key,
    label)``; the key is worked out by ``key``, the label (translated) when
    shown."""

    PAUSED = "paused", gettext_lazy("Payments paused")
    REFUNDED = "refunded", pgettext_lazy("order status", "Refunded")
    PARTLY_REFUNDED = "partly_refunded", gettext_lazy("Partly refunded")
    PAYING = "paying", pgettext_lazy("order status", "Paying")
    PAID = "paid", pgettext_lazy("order status", "Paid")
    CANCELLED = "cancelled", pgettext_lazy("order status", "Cancelled")
    AWAITING = "awaiting", gettext_lazy("Awaiting shipment")

    @classmethod
    def key(cls, order: Order, *, paused: bool, paying: bool) -> str:
        """The status of ``order``, most telling first: payments paused by a
        reported return (``paused``: an open ``ReturnReport``), refunded in full
        or in part, still paying (``paying``: an installment in
        ``OPEN_INSTALLMENT``), paid, cancelled (or expired), else awaiting
        shipment."""
        refunded = order.refunded_amount
        if paused:
            return cls.PAUSED[0]
        if refunded > 0 and refunded == order.captured_amount:
            return cls.REFUNDED[0]
        if refunded > 0:
            return cls.PARTLY_REFUNDED[0]
        if paying:
            return cls.PAYING[0]
        if order.captured_amount > 0:
            return cls.PAID[0]
        if order.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
            return cls.CANCELLED[0]
        return cls.AWAITING[0]

    @classmethod
    def label(cls, key: str) -> Promise:
        """The label for ``key``, lazy: it reads in the language active when it
        is shown (a page may choose its language after loading its rows)."""
        for value, label in (
            cls.PAUSED,
            cls.REFUNDED,
            cls.PARTLY_REFUNDED,
            cls.PAYING,
            cls.PAID,
            cls.CANCELLED,
            cls.AWAITING,
        ):
            if value == key:
                return label
        raise KeyError(key)


@dataclass(slots=True)
class OrderRow:
    """An order as the customer's order list shows it: its values, not a model
    instance (an order has some forty columns, two of them JSON), with what the
    page adds (``order_list_page``)."""

    pk: int
    order_id: UUID
    reference: str
    merchant_reference1: str
    created_at: datetime
    status: str
    order_amount: int
    captured_amount: int
    refunded_amount: int
    purchase_currency: str
    locale: str
    merchant_name: str
    #: A reported return is open: payments paused.
    paused: bool
    #: An installment is still to be paid (``OPEN_INSTALLMENT``).
    paying: bool
    money: MoneyContext | None = None
    customer_status: str = ""
    customer_status_label: Promise | str = ""
    url: str = ""


#: Where each value of an ``OrderRow`` comes from, in the order of its fields.
ORDER_ROW_VALUES = tuple(
    "merchant__name" if f.name == "merchant_name" else f.name
    for f in dataclass_fields(OrderRow)
    if f.name not in ("money", "customer_status", "customer_status_label", "url")
)


def customer_orders(customer: Customer):
    """The customer's orders, newest first, as ``OrderRow`` values (with
    ``paused`` and ``paying``: what ``CustomerOrderStatus.key`` needs beside the
    order's own columns); one query per page. The key itself is worked out in
    Python: as a SQL ``CASE`` its seven branches cost more to build and compile
    than the query took to run (issue 16)."""
    return _with_order_state(Order.objects.for_customer(customer))


def _with_order_state(orders):
    return (
        orders.annotate(
            paused=Exists(ReturnReport.objects.open().filter(order=OuterRef("pk"))),
            paying=Exists(
                Installment.objects.filter(
                    plan__order=OuterRef("pk"), status__in=OPEN_INSTALLMENT
                )
            ),
        )
        .order_by("-created_at", "-pk")
        .values_list(*ORDER_ROW_VALUES)
    )


@functools.cache
def _first_page(rows: int) -> CompiledRows:
    """The first ``rows`` of ``customer_orders``, by customer: compiled once
    (``portal.compiled``; building and compiling the query with its two
    subqueries cost more than running it, issue 16)."""
    return CompiledRows(_with_order_state(Order.objects.all()), "customer", limit=rows)


@dataclass
class Step:
    """One step of a refund's timeline. ``state``: done, current or action."""

    title: str
    state: str = "done"
    when: datetime | date | None = None
    details: list[str] = field(default_factory=list)
    repayment: Repayment | None = None


@dataclass
class RefundTimeline:
    refund: Refund
    steps: list[Step]
    repayments: list[Repayment]
    balance_entries: list[BalanceEntry]

    @property
    def needs_action(self) -> bool:
        return any(r.needs_new_details for r in self.repayments)

    @property
    def being_traced(self) -> bool:
        return any(r.is_being_traced for r in self.repayments)

    @property
    def completed(self) -> bool:
        return all(r.status == RepaymentStatus.COMPLETED for r in self.repayments)


@dataclass
class PlanRow:
    """One installment as the customer reads it. ``charge_date`` is when it will
    really be charged (after a pause); ``service_fee`` is the one-time card fee
    charged with it (the first payment only), shown as its own part."""

    installment: Installment
    charge_date: date
    service_fee: int = 0
    service_fee_returned: bool = False

    @property
    def status_label(self) -> str:
        return self.installment.get_status_display()

    @property
    def moved(self) -> bool:
        return self.charge_date != self.installment.due_date

    @property
    def charged_with_fee(self) -> int:
        """The installment plus the service fee charged with it, minor units."""
        fee = 0 if self.service_fee_returned else self.service_fee
        return self.installment.amount + fee


def plan_rows(plan: PaymentPlan, pause_until: date | None) -> list[PlanRow]:
    """The plan's installments for the customer, in sequence order."""
    return [
        PlanRow(
            i,
            charge_date=i.expected_charge_date(pause_until),
            service_fee=plan.service_fee if i.sequence == 1 else 0,
            service_fee_returned=plan.service_fee_refunded,
        )
        for i in sorted(plan.installments.all(), key=lambda i: i.sequence)
    ]


@dataclass
class OrderPage:
    order: Order
    money: MoneyContext
    status: str
    status_label: str
    plans: list[tuple[PaymentPlan, list[PlanRow]]]
    timelines: list[RefundTimeline]
    open_return: ReturnReport | None
    can_report_return: bool
    lines: list = field(default_factory=list)

    @classmethod
    def load(cls, order: Order) -> "OrderPage":
        """Everything the order page shows about ``order`` (loaded by the view,
        scoped to its customer, with its merchant), in a fixed number of
        queries. Its status comes from what the page loads anyway (the open
        return, the installments), not from subqueries."""
        money = MoneyContext.for_order(order)
        # One round trip to PostgreSQL for the five (``together``).
        key = (order.pk,)
        plans, installments, extensions, reports, refunds = together(
            (_PLANS, key),
            (_INSTALLMENTS, key),
            (_EXTENSIONS, key),
            (_RETURN_REPORTS, key),
            (_REFUNDS, key),
        )
        give_prefetched(plans, "installments", installments, "plan_id")
        give_prefetched(plans, "due_date_extensions", extensions, "plan_id")
        # Every return reported for the order, newest first: the open one (at
        # most one) pauses the plan, registered ones end timelines.
        open_return = next((r for r in reports if r.resolved_at is None), None)
        pause_until = open_return.pause_until if open_return else None
        rows_by_plan = [(plan, plan_rows(plan, pause_until)) for plan in plans]
        refunds = _load_refunds(order, refunds)
        # With several shipments (captures), say which one a refund changed.
        shipments = (
            {plan.capture_id: n for n, plan in enumerate(plans, start=1)}
            if len(plans) > 1
            else {}
        )
        entries: dict[int, list[BalanceEntry]] = {}
        to_balance = {r.pk for r in refunds if r.may_have_balance_entries}
        for entry in _BALANCE_ENTRIES.objects(order.pk) if to_balance else ():
            if entry.refund_id in to_balance:
                entries.setdefault(entry.refund_id, []).append(entry)
        registered = _returns_registered_by(
            refunds, [r for r in reports if r.resolution == "registered"]
        )
        timelines = [
            _timeline(
                order,
                refund,
                money,
                entries.get(refund.pk, []),
                shipments,
                registered.get(refund.pk),
            )
            for refund in refunds
        ]
        has_scheduled = any(
            row.installment.status == InstallmentStatus.SCHEDULED
            for _plan, rows in rows_by_plan
            for row in rows
        )
        status = CustomerOrderStatus.key(
            order,
            paused=open_return is not None,
            paying=any(
                installment.status in OPEN_INSTALLMENT
                for plan in plans
                for installment in plan.installments.all()
            ),
        )
        return cls(
            order=order,
            money=money,
            status=status,
            status_label=CustomerOrderStatus.label(status),
            plans=rows_by_plan,
            timelines=timelines,
            open_return=open_return,
            can_report_return=has_scheduled and open_return is None,
            lines=_LINES.objects(order.pk),
        )

    @property
    def needs_action(self) -> bool:
        return any(t.needs_action for t in self.timelines)

    @property
    def being_traced(self) -> bool:
        return any(t.being_traced for t in self.timelines)


def _load_refunds(order: Order, refunds: list[Refund]) -> list[Refund]:
    """The order's ``refunds`` (newest first) given their lines and
    allocations (one round trip) and, only where the record of what an
    allocation did says money may have gone back to a payment method, their
    repayments (``may_have_repayment``, as the merchant's order page); each
    says whether it may have credited the account balance
    (``may_have_balance_entries``). A refund that lowered the installments
    asks for neither (issue 16)."""
    if not refunds:
        return refunds
    lines, allocations = together(
        (_REFUND_LINES, (order.pk,)), (_ALLOCATIONS, (order.pk,))
    )
    give_prefetched(refunds, "lines", lines, "refund_id")
    give_prefetched(refunds, "allocations", allocations, "refund_id")
    repaying = []
    for refund in refunds:
        allocations = refund.allocations.all()
        refund.may_have_balance_entries = any(
            a.effect is None or a.effect.get("destination") == "account_balance"
            for a in allocations
        )
        if any(a.may_have_repayment(refund.store_credit) for a in allocations):
            repaying.append(refund)
        else:
            # Known empty: ``refund.repayments.all()`` asks nothing.
            empty = Repayment.objects.none()
            empty._result_cache, empty._prefetch_done = [], True
            refund._prefetched_objects_cache["repayments"] = empty
    if repaying:
        give_prefetched(
            repaying, "repayments", _REPAYMENTS.objects(order.pk), "refund_id"
        )
    return refunds


# The order page's queries by order, compiled once (``portal.compiled``): they
# cost more to build than to run (issue 16).
_PLANS = CompiledObjects(
    PaymentPlan.objects.select_related("payment_method", "capture").order_by("pk"),
    "order",
)
_INSTALLMENTS = CompiledObjects(Installment.objects.all(), "plan__order")
_EXTENSIONS = CompiledObjects(DueDateExtension.objects.all(), "plan__order")
_RETURN_REPORTS = CompiledObjects(ReturnReport.objects.all(), "order")
_REFUNDS = CompiledObjects(Refund.objects.order_by("-created_at", "-pk"), "order")
_REFUND_LINES = CompiledObjects(RefundLine.objects.all(), "refund__order")
_ALLOCATIONS = CompiledObjects(RefundAllocation.objects.all(), "refund__order")
_REPAYMENTS = CompiledObjects(
    Repayment.objects.select_related("payment_method").order_by("pk"), "refund__order"
)
_BALANCE_ENTRIES = CompiledObjects(BalanceEntry.objects.order_by("pk"), "refund__order")
_LINES = CompiledObjects(OrderLine.objects.all(), "order")


def _returns_registered_by(refunds, reports) -> dict[int, ReturnReport]:
    """Which refund registered each reported return: the store's refund ends the
    pause in its own transaction (``refunds.engine``), so it is the latest
    refund made before the report was resolved."""
    by_refund = {}
    for report in reports:
        made_before = [r for r in refunds if r.created_at <= report.resolved_at]
        if made_before:
            latest = max(made_before, key=lambda r: (r.created_at, r.pk))
            by_refund[latest.pk] = report
    return by_refund


def _timeline(
    order: Order,
    refund: Refund,
    money: MoneyContext,
    entries: list[BalanceEntry],
    shipments: dict[int, int],
    registered_return: ReturnReport | None = None,
) -> RefundTimeline:
    store = order.merchant.name
    items = [
        f"{line.quantity} × {line.name}"
        for line in refund.lines.all()
        if line.total_amount > 0
    ]
    if refund.kind == RefundKind.AMOUNT:
        registered = _("%(store)s registered a partial refund") % {"store": store}
    elif refund.kind == RefundKind.COMPLETE:
        registered = _("%(store)s registered the return or cancellation") % {
            "store": store
        }
    else:
        registered = _("%(store)s registered your return") % {"store": store}
    if registered_return is not None:
        items.append(
            _(
                "Your reported return (tracking number %(tracking_number)s) is "
                "registered: the pause on your payments ended, and they continue "
                "as shown in your plan."
            )
            % {"tracking_number": registered_return.tracking_number}
        )
    steps = [Step(registered, when=refund.created_at, details=items)]

    issued = [refund.description] if refund.description else []
    if refund.fee_amount:
        issued.append(
            _("A return fee of %(fee)s was deducted.")
            % {"fee": money.fmt(refund.fee_amount)}
        )
    steps.append(
        Step(
            _("Refund issued: %(amount)s")
            % {"amount": money.fmt(refund.refunded_amount)},
            details=issued,
        )
    )

    if refund.store_credit:
        applied = [
            _(
                "%(store)s handles this return as store credit. Your payments to "
                "us continue as planned."
            )
            % {"store": store}
        ]
    else:
        applied = [
            (
                shipment_prefix(shipments[a.capture_id])
                if a.capture_id in shipments
                else ""
            )
            + as_sentence(a.describe(money.fmt))
            for a in refund.allocations.all()
        ]
    applied += [
        _("%(amount)s credited to your account balance.")
        % {"amount": money.fmt(e.amount)}
        for e in entries
    ]
    steps.append(Step(_("How it was applied"), details=[d for d in applied if d]))

    repayments = list(refund.repayments.all())
    for repayment in repayments:
        steps.append(_repayment_step(repayment, money))
    done = all(r.status == RepaymentStatus.COMPLETED for r in repayments)
    last = max((r.completed_at for r in repayments if r.completed_at), default=None)
    steps.append(
        Step(
            pgettext("refund timeline", "Completed"),
            state="done" if done else "upcoming",
            when=last or (refund.created_at if not repayments else None),
        )
    )
    return RefundTimeline(refund, steps, repayments, entries)


def shipment_prefix(number: int) -> str:
    """ "Shipment 2: " before a sentence about one of several captures."""
    return _("Shipment %(number)s: ") % {"number": number}


def _repayment_step(repayment: Repayment, money: MoneyContext) -> Step:
    facts = {
        "amount": money.fmt(repayment.amount),
        "label": repayment.payment_method.label
        if repayment.payment_method
        else _("you"),
    }
    if repayment.status == RepaymentStatus.COMPLETED:
        return Step(
            _("%(amount)s paid back to %(label)s") % facts,
            when=repayment.completed_at,
            repayment=repayment,
        )
    if repayment.needs_new_details:
        return Step(
            _("%(amount)s to %(label)s: action needed") % facts,
            state="action",
            details=[
                _("Your refund bounced back: %(reason)s")
                % {"reason": repayment.failure_reason_display},
                str(BOUNCE_GUIDANCE),
            ],
            repayment=repayment,
        )
    if repayment.is_being_traced:
        return Step(
            _("%(amount)s to %(label)s: not arrived yet") % facts,
            state="current",
            details=[
                _("It was due by %(date)s.") % {"date": day(repayment.expected_by)}
                + " "
                + str(TRACING),
                str(BOUNCE_GUIDANCE),
            ],
            repayment=repayment,
        )
    title = (
        _("%(amount)s is being sent back to %(label)s")
        if repayment.status == RepaymentStatus.PROCESSING
        else _("%(amount)s will go back to %(label)s")
    )
    return Step(
        title % facts,
        state="current",
        details=[
            _(
                "Expected by %(date)s. It can take up to 14 days for your payment "
                "method to update."
            )
            % {"date": day(repayment.expected_by)}
        ],
        repayment=repayment,
    )


def as_sentence(text: str) -> str:
    """A clause as a sentence: capital first letter, full stop at the end."""
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def balance_totals(customer: Customer) -> list[tuple[MoneyContext, int]]:
    """The account balance per currency, from its entries (they are the truth)."""
    return [
        (MoneyContext(currency, customer.locale), total)
        for currency, total in customer.balances().items()
    ]


def balance_page(customer: Customer, number, per_page: int = 20):
    """A page of the balance history, newest first, each entry with ``money``
    and ``text`` (its description in the active language)."""
    entries = (
        BalanceEntry.objects.filter(customer=customer)
        .select_related("refund__order__merchant")
        .order_by("-created_at", "-pk")
    )
    page = Paginator(entries, per_page).get_page(number)
    for entry in page.object_list:
        entry.money = MoneyContext(entry.currency, customer.locale)
        entry.text = entry.description_display
    return page


def order_list_page(customer: Customer, number, per_page: int = 20) -> Page:
    """A page of ``customer_orders``, each order with ``money`` (its currency in
    its locale), ``customer_status`` and its label and ``url`` for the template.

    The first page of a customer with at most ``per_page`` orders is all their
    orders: it is read with one query more than it shows and the orders are
    not counted (most customers; the count was a query of its own)."""

    # Counted without the status subqueries, which a count does not need; the
    # queryset is built only when a count is needed (not for most customers).
    def count() -> int:
        return Order.objects.for_customer(customer).count()

    if str(number or "1") == "1":
        # The compiled first page: ``customer_orders`` is not built at all.
        first = _first_page(per_page + 1).rows(customer.pk)
        paginator = Paginator(first, per_page)
        if len(first) > per_page:
            paginator.count = count()
        page = Page(first[:per_page], 1, paginator)
    else:
        paginator = Paginator(customer_orders(customer), per_page)
        paginator.count = count()
        page = paginator.get_page(number)
    page.object_list = [OrderRow(*values) for values in page.object_list]
    url = url_maker("customers:order_detail")
    for order in page.object_list:
        order.money = MoneyContext.for_order(order)
        order.customer_status = CustomerOrderStatus.key(
            order, paused=order.paused, paying=order.paying
        )
        order.customer_status_label = CustomerOrderStatus.label(order.customer_status)
        order.url = url(order.order_id)
    return page


def order_list_rows(orders) -> list[SafeString]:
    """The order list's rows (``order_list_page``'s orders), escaped HTML built
    in the active language: store, date and order number, amount in the order's
    currency and locale, status. The markup the template wrote row by row, for
    a fraction of its cost (issue 16); build them after choosing the page's
    language."""
    dates = DateWriter()
    template = gettext("Order %(number)s")
    rows = []
    for order in orders:
        day = dates.date(order.created_at)
        number = template % {"number": order.merchant_reference1 or order.reference}
        rows.append(
            f'<li><a class="c-order-row" href="{escape(order.url)}">'
            f'<span class="c-order-store"><strong>{escape(order.merchant_name)}'
            f'</strong><span class="c-muted c-small">{escape(day)} · '
            f"{escape(number)}</span></span>"
            f'<span class="c-order-amount">'
            f"{escape(order.money.fmt(order.order_amount))}</span>"
            f'<span class="c-status c-status-{escape(order.customer_status)}">'
            f"{escape(str(order.customer_status_label))}</span></a></li>"
        )
    return [mark_safe(row) for row in rows]  # every value escaped above
