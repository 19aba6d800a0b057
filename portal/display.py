"""Display rows for the portal's largest tables, formatted once in Python.

The order page shows every order line (up to 1,000) and every line of every
capture; the order list shows 25 orders a page. Rendered cell by cell in a Django
template, each cell paid a variable lookup, localization, a filter call and
escaping (about 70 µs a row, as much for an integer cell as for a money cell).
Here each row is one escaped HTML string built from values formatted once, which
the template inserts as it is: the same markup, a tenth of the cost (issue 16).

Every value from the database is escaped (``html.escape``, as Django's
``escape``); translatable words go through ``gettext``, so the i18n layer keeps
working. Dates read like the template filters ``date:"j M Y"``, ``date:"j M Y,
H:i"`` and ``time:"H:i"`` in the current time zone and language.
"""

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from html import escape

from django.urls import reverse
from django.utils import formats, timezone
from django.utils.dates import MONTHS_3
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext

from portal.models import Order, PaymentProduct, RefundState
from portal.money import format_money

#: A placeholder order id, swapped for each row's: one ``reverse`` per page.
_PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"


def _local(value: datetime) -> datetime:
    return timezone.localtime(value) if timezone.is_aware(value) else value


def short_date(value: datetime | None) -> str:
    """``value`` as the ``date:_("j M Y")`` filter writes it ("3 Dec 2026"), in the
    current time zone and language; "" for None."""
    if value is None:
        return ""
    value = _local(value)
    # The pattern is a translation (en "j M Y", de "j. M Y", sv "j b Y"): the
    # three known ones are written here directly (a row costs no format
    # parsing), any other through Django's ``date_format``.
    pattern = gettext("j M Y")
    month = str(MONTHS_3[value.month])
    if pattern == "j M Y":
        return f"{value.day} {month.title()} {value.year}"
    if pattern == "j. M Y":
        return f"{value.day}. {month.title()} {value.year}"
    if pattern == "j b Y":
        return f"{value.day} {month} {value.year}"
    return formats.date_format(value, pattern)


def short_time(value: datetime | None) -> str:
    """``value`` as the ``time:"H:i"`` filter writes it ("09:05"); "" for None."""
    if value is None:
        return ""
    value = _local(value)
    return f"{value.hour:02d}:{value.minute:02d}"


def short_datetime(value: datetime | None) -> str:
    """``value`` as ``date:_("j M Y, H:i")`` writes it ("3 Dec 2026, 09:05")."""
    if value is None:
        return ""
    return f"{short_date(value)}, {short_time(value)}"


def url_maker(viewname: str) -> Callable[[object], str]:
    """A function from an order id to the URL of ``viewname`` (a view whose one
    argument is an order id): ``reverse`` once, then a string per row
    (``Order.get_absolute_url`` per row cost 65 µs). The id is a UUID, so it
    needs no quoting."""
    template = reverse(viewname, args=[_PLACEHOLDER_ID])
    before, _, after = template.partition(_PLACEHOLDER_ID)
    return lambda order_id: f"{before}{order_id}{after}"


def order_line_rows(lines: Sequence, fmt: Callable[[int], str]) -> list[SafeString]:
    """The order page's order-lines table rows: item (name, reference and type
    unless physical), unit price, ordered, captured and refunded units, total.
    ``fmt`` formats minor units in the order's currency and locale."""
    physical = "physical"
    rows = []
    for line in lines:
        kind = "" if line.type == physical else f" · {escape(line.get_type_display())}"
        rows.append(
            f'<tr><td>{escape(line.name)}<span class="cell-sub">'
            f"{escape(line.reference)}{kind}</span></td>"
            f'<td class="num">{escape(fmt(line.unit_price))}</td>'
            f'<td class="num">{line.quantity}</td>'
            f'<td class="num">{line.captured_quantity}</td>'
            f'<td class="num">{line.refunded_quantity}</td>'
            f'<td class="num">{escape(fmt(line.total_amount))}</td></tr>'
        )
    return [mark_safe(row) for row in rows]  # every value escaped above


#: A capture holding more lines than this, each in full, is summarised in its
#: items cell instead of naming every line again (the order-lines table above
#: names them, with the captured and refunded units). Our rule.
SUMMARISE_ITEMS_OVER = 5


def capture_items(capture, order_lines: Sequence, capture_count: int) -> SafeString:
    """The captures table's items cell: "2 × Name (1 refunded)" per capture line,
    "By amount" for a capture without lines.

    When the order has this one capture and it holds every order line in full,
    and there are more than ``SUMMARISE_ITEMS_OVER`` lines, the cell says so
    ("All 500 order lines, in full") instead of repeating every name: the
    order-lines table shows the same captured and refunded units per line
    (with one capture they are this capture's). Our rule (issue 16).
    """
    lines = capture.lines.all()
    if not lines:
        return mark_safe(f'<span class="muted">{escape(gettext("By amount"))}</span>')
    if (
        capture_count == 1
        and len(lines) == len(order_lines) > SUMMARISE_ITEMS_OVER
        and all(cl.quantity == cl.order_line.quantity for cl in lines)
    ):
        text = ngettext(
            "All %(count)d order line, in full",
            "All %(count)d order lines, in full",
            len(lines),
        ) % {"count": len(lines)}
        return mark_safe(f'<span class="item-line">{escape(text)}</span>')
    refunded = gettext("refunded")
    parts = []
    for cl in lines:
        note = (
            f' <span class="muted">({cl.refunded_quantity} {escape(refunded)})</span>'
            if cl.refunded_quantity
            else ""
        )
        parts.append(
            f'<span class="item-line">{cl.quantity} × '
            f"{escape(cl.order_line.name)}{note}</span>"
        )
    return mark_safe("".join(parts))  # every value escaped above


class PageDates:
    """``short_date`` and ``short_time`` for the rows of one page: the time zone,
    the pattern and the month names are looked up once per page instead of once
    per row (the same text, tested against the template filters)."""

    #: The translated "j M Y" patterns written here directly -> (text, whether
    #: the month is title-cased); any other pattern goes through ``short_date``.
    PATTERNS = {
        "j M Y": ("{day} {month} {year}", True),
        "j. M Y": ("{day}. {month} {year}", True),
        "j b Y": ("{day} {month} {year}", False),
    }

    def __init__(self) -> None:
        self.zone = timezone.get_current_timezone()
        self.pattern = self.PATTERNS.get(gettext("j M Y"))
        self.months: dict[int, str] = {}

    def date_and_time(self, value: datetime) -> tuple[str, str]:
        """``(short_date(value), short_time(value))``."""
        if self.pattern is None:
            return short_date(value), short_time(value)
        if timezone.is_aware(value):
            value = value.astimezone(self.zone)
        month = self.months.get(value.month)
        if month is None:
            text, title = str(MONTHS_3[value.month]), self.pattern[1]
            month = self.months[value.month] = text.title() if title else text
        day = self.pattern[0].format(day=value.day, month=month, year=value.year)
        return day, f"{value.hour:02d}:{value.minute:02d}"


def order_list_rows(orders: Iterable) -> list[SafeString]:
    """The order list's rows: reference (link) and store order number, date and
    time, customer name and email, product, status badge, amount and refunded
    amount in each order's currency and locale. ``orders`` are rows of
    ``portal.views.ORDER_LIST_FIELDS`` (``values_list(..., named=True)``).

    Labels are translated once per distinct value on the page, from the choices
    themselves: Django's ``get_FOO_display`` hashes every lazy choice label (a
    translation each) on every call, about 60 µs; two a row were a fifth of the
    page (issue 16)."""
    url = url_maker("portal:order_detail")
    dates = PageDates()
    none = RefundState.NONE
    products: dict[str, str] = {}
    statuses: dict[tuple[str, str], str] = {}
    rows = []
    for order in orders:
        currency, locale = order.purchase_currency, order.locale
        state = RefundState.of(order.refunded_amount, order.captured_amount)
        badge = state if state != none else order.status.lower()
        status = statuses.get((order.status, state))
        if status is None:
            text = Order.status_text(order.status, state)
            status = statuses[order.status, state] = escape(str(text))
        product = products.get(order.payment_product)
        if product is None:
            label = PaymentProduct(order.payment_product).label
            product = products[order.payment_product] = escape(str(label))
        ref1 = (
            f'<span class="cell-sub">{escape(order.merchant_reference1)}</span>'
            if order.merchant_reference1
            else ""
        )
        refunded = (
            escape(format_money(order.refunded_amount, currency, locale))
            if order.refunded_amount
            else '<span class="muted">—</span>'
        )
        day, time = dates.date_and_time(order.created_at)
        rows.append(
            f'<tr><td><a class="row-link" href="{url(order.order_id)}">'
            f"{escape(order.reference)}</a>{ref1}</td>"
            f'<td class="nowrap">{escape(day)}'
            f'<span class="cell-sub">{time}</span></td>'
            f'<td>{escape(order.customer__name)}<span class="cell-sub">'
            f"{escape(order.customer__email)}</span></td>"
            f"<td>{product}</td>"
            f'<td><span class="badge badge-{escape(badge)}">{status}</span></td>'
            f'<td class="num">{escape(format_money(order.order_amount, currency, locale))}</td>'
            f'<td class="num">{refunded}</td></tr>'
        )
    return [mark_safe(row) for row in rows]  # every value escaped above


def ledger_rows(entries: Iterable, fmt: Callable[[int], str]) -> list[SafeString]:
    """The order page's payout entries: date, kind badge, reference, the payout
    that holds the entry (or the next payout), amount. One ``reverse`` per
    payout and one for the next payout, not one per row."""
    next_url = reverse("portal:payout_next")
    next_link = f'<a href="{next_url}">{escape(gettext("Next payout"))}</a>'
    payout_links: dict[int, str] = {}
    rows = []
    for entry in entries:
        payout = entry.payout
        if payout is None:
            link = next_link
        else:
            link = payout_links.get(payout.pk)
            if link is None:
                label = gettext("Payout #%(number)s") % {"number": payout.number}
                link = payout_links[payout.pk] = (
                    f'<a href="{escape(payout.get_absolute_url())}">{escape(label)}</a>'
                )
        rows.append(
            f'<tr><td class="nowrap">{escape(short_datetime(entry.created_at))}</td>'
            f'<td><span class="badge badge-{escape(entry.kind.lower())}">'
            f"{escape(entry.get_kind_display())}</span></td>"
            f"<td>{escape(entry.reference or '—')}</td>"
            f"<td>{link}</td>"
            f'<td class="num">{escape(fmt(entry.amount))}</td></tr>'
        )
    return [mark_safe(row) for row in rows]  # every value escaped above


def allocation_items(allocations: Iterable, fmt: Callable[[int], str]) -> SafeString:
    """The refunds a capture received, under its row: "Refund of 12,00 € on 3 Dec
    2026: <what it did>" per ``(refund, allocation)``, each linking to the refund."""
    items = []
    for refund, allocation in allocations:
        text = gettext("Refund of %(amount)s") % {"amount": fmt(allocation.amount)}
        on = gettext("on %(date)s") % {"date": short_date(refund.created_at)}
        summary = (
            f': <span class="muted">{escape(allocation.summary)}</span>'
            if allocation.summary
            else ""
        )
        items.append(
            f'<li><a href="#refund-{refund.refund_id}">{escape(text)}</a> '
            f"{escape(on)}{summary}</li>"
        )
    return mark_safe("".join(items))  # every value escaped above
