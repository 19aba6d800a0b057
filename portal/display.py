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

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from html import escape

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.dates import MONTHS_3
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext, ngettext, pgettext

from customers.models import RepaymentStatus
from portal.models import (
    Channel,
    LedgerEntry,
    MerchantUser,
    Order,
    OrderLine,
    PaymentProduct,
    RefundState,
)
from portal.money import format_money
from portal.templatetags.urls import reversed_once
from refunds.models import RefundKind, RefundReason

#: A placeholder order id, swapped for each row's: one ``reverse`` per page.
_PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"


@functools.cache
def _day_month_year(language: str | None) -> tuple[str, tuple[str, ...], bool] | None:
    """How ``date:_("j M Y")`` writes a date in ``language`` (the active one):
    what follows the day ("" or ".") and the twelve month abbreviations, and
    whether ``date:_("j M Y, H:i")`` writes the same followed by ", H:i"; None
    for a pattern other than the three known ones. Translated once per
    language, not once a row."""
    # The pattern is a translation (en "j M Y", de "j. M Y", sv "j b Y").
    pattern = gettext("j M Y")
    with_time = gettext("j M Y, H:i") == f"{pattern}, H:i"
    months = [str(MONTHS_3[month]) for month in range(1, 13)]
    if pattern == "j M Y":
        return "", tuple(month.title() for month in months), with_time
    if pattern == "j. M Y":
        return ".", tuple(month.title() for month in months), with_time
    if pattern == "j b Y":
        return "", tuple(months), with_time
    return None


class DateWriter:
    """Writes moments as the template filters ``date:_("j M Y")``,
    ``time:"H:i"`` and ``date:_("j M Y, H:i")`` do, in the time zone and
    language active when it is made: looked up once a table, not once a date
    (each lookup is a context-local read). A ``date`` is written as it is;
    "" for None."""

    __slots__ = ("words", "zone")

    def __init__(self) -> None:
        self.zone = timezone.get_current_timezone()
        self.words = _day_month_year(get_language())

    def local(self, value: date) -> date:
        """``value`` in the time zone (a naive value or a date as it is)."""
        if isinstance(value, datetime) and value.utcoffset() is not None:
            return value.astimezone(self.zone)
        return value

    def _day(self, local: date) -> str:
        if self.words is None:  # any other pattern: Django's date_format
            return formats.date_format(local, gettext("j M Y"))
        after_day, months, _ = self.words
        return f"{local.day}{after_day} {months[local.month - 1]} {local.year}"

    def date(self, value: date | None) -> str:
        return "" if value is None else self._day(self.local(value))

    def time(self, value: datetime | None) -> str:
        if value is None:
            return ""
        local = self.local(value)
        return f"{local.hour:02d}:{local.minute:02d}"

    def datetime(self, value: datetime | None) -> str:
        if value is None:
            return ""
        local = self.local(value)
        if self.words is None or not self.words[2]:
            return formats.date_format(local, gettext("j M Y, H:i"))
        return f"{self._day(local)}, {local.hour:02d}:{local.minute:02d}"


def short_date(value: datetime | None) -> str:
    """``value`` as the ``date:_("j M Y")`` filter writes it ("3 Dec 2026"), in the
    current time zone and language; "" for None."""
    return DateWriter().date(value)


def short_time(value: datetime | None) -> str:
    """``value`` as the ``time:"H:i"`` filter writes it ("09:05"); "" for None."""
    if value is None:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return f"{value.hour:02d}:{value.minute:02d}"


def short_datetime(value: datetime | None) -> str:
    """``value`` as ``date:_("j M Y, H:i")`` writes it ("3 Dec 2026, 09:05")."""
    return DateWriter().datetime(value)


def joined(rows: Iterable[SafeString]) -> SafeString:
    """Rows built here, one per line, as one string for a template to insert
    (one variable instead of a loop over hundreds of rows)."""
    return SafeString("\n".join(rows))


def url_maker(viewname: str) -> Callable[[object], str]:
    """A function from an order id to the URL of ``viewname`` (a view whose one
    argument is an order id): ``reverse`` once per process (about 100 µs; once
    per page was 3 % of the lightest pages), then a string per row
    (``Order.get_absolute_url`` per row cost 65 µs). The id is a UUID, so it
    needs no quoting. Raises ``NoReverseMatch`` as ``reverse`` does."""
    template = reversed_once(viewname, (_PLACEHOLDER_ID,))
    before, _, after = template.partition(_PLACEHOLDER_ID)
    return lambda order_id: f"{before}{order_id}{after}"


def order_line_rows(lines: Sequence, fmt: Callable[[int], str]) -> list[SafeString]:
    """The order page's order-lines table rows: item (name, reference and type
    unless physical), unit price, ordered, captured and refunded units, total.
    ``fmt`` formats minor units in the order's currency and locale."""
    physical = "physical"
    types = ChoiceLabels(OrderLine.Type.choices)
    rows = []
    for line in lines:
        kind = "" if line.type == physical else f" · {escape(types[line.type])}"
        rows.append(
            f'<tr><td>{escape(line.name)}<span class="cell-sub">'
            f"{escape(line.reference)}{kind}</span></td>"
            f'<td class="num">{escape(fmt(line.unit_price))}</td>'
            f'<td class="num">{line.quantity}</td>'
            f'<td class="num">{line.captured_quantity}</td>'
            f'<td class="num">{line.refunded_quantity}</td>'
            f'<td class="num">{escape(fmt(line.total_amount))}</td></tr>'
        )
    return list(map(SafeString, rows))  # every value escaped above


#: A capture holding more lines than this, each in full, is summarised in its
#: items cell instead of naming every line again (the order-lines table above
#: names them, with the captured and refunded units). Our rule.
SUMMARISE_ITEMS_OVER = 5


def capture_items(
    lines: Sequence, order_lines: Sequence, capture_count: int
) -> SafeString:
    """The captures table's items cell from a capture's ``lines`` (each with its
    ``order_line``): "2 × Name (1 refunded)" per capture line, "By amount" for
    a capture without lines.

    When the order has this one capture and it holds every order line in full,
    and there are more than ``SUMMARISE_ITEMS_OVER`` lines, the cell says so
    ("All 500 order lines, in full") instead of repeating every name: the
    order-lines table shows the same captured and refunded units per line
    (with one capture they are this capture's). Our rule (issue 16).
    """
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


def order_list_rows(orders: Iterable) -> list[SafeString]:
    """The order list's rows: reference (link) and store order number, date and
    time, customer name and email, product, status badge, amount and refunded
    amount in each order's currency and locale. ``orders`` are rows of
    ``portal.forms.ORDER_LIST_FIELDS`` (``values_list(..., named=True)``).

    Labels are translated once per distinct value on the page, from the choices
    themselves: Django's ``get_FOO_display`` hashes every lazy choice label (a
    translation each) on every call, about 60 µs; two a row were a fifth of the
    page (issue 16)."""
    url = url_maker("portal:order_detail")
    dates = DateWriter()
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
        day, time = dates.date(order.created_at), dates.time(order.created_at)
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
    """The order page's payout entries from ``(created_at, kind, reference,
    amount, payout number)`` values: date, kind badge, reference, the payout
    that holds the entry (or the next payout), amount. One ``reverse`` per
    payout and one for the next payout, not one per row."""
    kinds = ChoiceLabels(LedgerEntry.Kind.choices)
    dates = DateWriter()
    next_url = reverse("portal:payout_next")
    next_link = f'<a href="{next_url}">{escape(gettext("Next payout"))}</a>'
    payout_links: dict[int, str] = {}
    rows = []
    for created_at, kind, reference, amount, number in entries:
        if number is None:
            link = next_link
        else:
            link = payout_links.get(number)
            if link is None:
                label = gettext("Payout #%(number)s") % {"number": number}
                url = reverse("portal:payout_detail", args=[number])
                link = payout_links[number] = (
                    f'<a href="{escape(url)}">{escape(label)}</a>'
                )
        rows.append(
            f'<tr><td class="nowrap">{escape(dates.datetime(created_at))}</td>'
            f'<td><span class="badge badge-{escape(kind.lower())}">'
            f"{escape(kinds[kind])}</span></td>"
            f"<td>{escape(reference or '—')}</td>"
            f"<td>{link}</td>"
            f'<td class="num">{escape(fmt(amount))}</td></tr>'
        )
    return list(map(SafeString, rows))  # every value escaped above


def allocation_items(allocations: Iterable, fmt: Callable[[int], str]) -> SafeString:
    """The refunds a capture received, under its row: "Refund of 12,00 € on 3 Dec
    2026: <what it did>" per ``(refund, allocation)``, each linking to the refund."""
    if not allocations:
        return SafeString()
    dates = DateWriter()
    refund_of, on_date = gettext("Refund of %(amount)s"), gettext("on %(date)s")
    items = []
    for refund, allocation in allocations:
        text = refund_of % {"amount": fmt(allocation.amount)}
        on = on_date % {"date": dates.date(refund.created_at)}
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


class ChoiceLabels(dict):
    """The labels of ``choices`` in the active language, each translated once:
    ``labels[value]`` reads like ``get_FOO_display`` (an unknown value as it
    is). Make one per request: the language may change between requests."""

    def __init__(self, choices: Iterable[tuple[str, object]]) -> None:
        super().__init__()
        self._choices = dict(choices)

    def __missing__(self, value: str) -> str:
        label = self[value] = str(self._choices.get(value, value))
        return label


def refund_rows(refunds: Iterable, fmt: Callable[[int], str]) -> list[SafeString]:
    """The order page's refunds table rows (``portal.overview.RefundRow``): when,
    who and through which channel; kind, store credit, the lines and the
    invoices credited; reason, description, reference and internal note; the
    amount and return fee; the money back (each repayment with its status) or
    why there is none. ``fmt`` formats minor units in the order's currency and
    locale."""
    kinds = ChoiceLabels(RefundKind.choices)
    channels = ChoiceLabels(Channel.choices)
    reasons = ChoiceLabels(RefundReason.choices)
    statuses = ChoiceLabels(RepaymentStatus.choices)
    dates = DateWriter()
    # Translated once a table, not once a row.
    store_credit = escape(gettext("Store credit"))
    invoice = gettext("Invoice %(number)s: %(amount)s")
    reference = gettext("Ref. %(reference)s")
    internal_note = gettext("Internal note: %(note)s")
    return_fee = gettext("Return fee −%(amount)s")
    no_money_back = {
        "store credit": escape(gettext("None: store credit")),
        "balance": escape(gettext("Credited to the customer’s account balance")),
        "owed": escape(gettext("None: it lowered what the customer owes")),
    }
    rows = []
    for refund in refunds:
        badge = (
            f' <span class="badge">{store_credit}</span>' if refund.store_credit else ""
        )
        lines = "".join(
            f'<span class="cell-sub">{quantity} × {escape(name)}</span>'
            if order_line_id
            else f'<span class="cell-sub">{escape(name)} {escape(fmt(total))}</span>'
            for order_line_id, quantity, name, total in refund.lines
        )
        allocations = "".join(
            '<span class="cell-sub">'
            f"{escape(invoice % {'number': a.capture.number, 'amount': fmt(a.amount)})}"
            "</span>"
            for a in refund.allocations
        )
        why = (
            f'<span class="refund-reason">{escape(reasons[refund.reason])}</span>'
            '<span class="cell-sub">'
            if refund.reason
            else "<span>"
        )
        notes = ""
        if refund.reference:
            text = reference % {"reference": refund.reference}
            notes += f'<span class="cell-sub">{escape(text)}</span>'
        if refund.internal_note:
            text = internal_note % {"note": refund.internal_note}
            notes += f'<span class="cell-sub internal-note">{escape(text)}</span>'
        fee = (
            '<span class="cell-sub refund-fee">'
            f"{escape(return_fee % {'amount': fmt(refund.fee_amount)})}</span>"
            if refund.fee_amount
            else ""
        )
        if refund.repayments:
            money_back = "".join(
                f'<span class="repayment-status">{escape(fmt(r.amount))} '
                f'<span class="badge badge-repayment-{escape(r.status)}">'
                f"{escape(statuses[r.status])}</span>"
                f'<span class="cell-sub">{escape(r.status_note)}</span></span>'
                for r in refund.repayments
            )
        else:
            why_none = (
                "store credit"
                if refund.store_credit
                else "balance"
                if refund.to_balance
                else "owed"
            )
            money_back = f'<span class="muted">{no_money_back[why_none]}</span>'
        rows.append(
            f'<tr id="refund-{refund.refund_id}">\n'
            f"<td>{escape(dates.datetime(refund.created_at))}"
            f'<span class="cell-sub">{escape(refund.created_by or "—")} · '
            f"{escape(channels[refund.channel])}</span></td>\n"
            f"<td>{escape(kinds[refund.kind])}{badge}\n{lines}\n{allocations}\n</td>\n"
            f"<td>{why}{escape(refund.description or '—')}</span>{notes}</td>\n"
            f'<td class="num">{escape(fmt(refund.refunded_amount))}{fee}</td>\n'
            f"<td>{money_back}</td>\n</tr>"
        )
    return list(map(SafeString, rows))  # every value escaped above


def timeline_items(entries: Iterable) -> list[SafeString]:
    """The order page's timeline (``portal.overview.TimelineEntry``, newest
    first): title, detail, when (``<time>`` with its ISO 8601 moment) and
    who."""
    dates = DateWriter()
    items = []
    for entry in entries:
        when = dates.local(entry.when)
        detail = (
            f'<div class="small">{escape(entry.detail)}</div>\n' if entry.detail else ""
        )
        by = f" · {escape(entry.by)}" if entry.by else ""
        items.append(
            f'<li class="t-{escape(entry.kind)}">\n'
            f'<div class="timeline-title">{escape(entry.title)}</div>\n{detail}'
            f'<div class="timeline-meta"><time datetime="{when.isoformat()}">'
            f"{escape(dates.datetime(when))}</time>{by}</div>\n</li>"
        )
    return list(map(SafeString, items))  # every value escaped above


_CURRENT = ' aria-current="page"'


def _role_name(texts: dict[str, str], role: str) -> str:
    """A role's name from ``_header_texts``, escaped; as ``get_role_display``,
    a value without a choice is shown as it is."""
    return texts.get(f"role:{role}") or escape(str(role))


#: The top bar's words by language (``_header_texts``).
_HEADER_TEXTS: dict[str | None, dict[str, str]] = {}


@receiver(setting_changed)
def _forget_header_texts(*, setting: str, **kwargs) -> None:
    """Settings that change what a language's catalog says (as Django's own
    translation caches are reset for them, in tests)."""
    if setting in {"LANGUAGES", "LANGUAGE_CODE", "LOCALE_PATHS", "INSTALLED_APPS"}:
        _HEADER_TEXTS.clear()


def _header_texts() -> dict[str, str]:
    """The top bar's words in the active language, escaped, and each role's
    name (``"role:<value>"``, as ``get_role_display`` gives it), looked up
    once per process and language: a dozen lookups and escapes on every
    page otherwise (issue 16; our rule)."""
    language = get_language()
    texts = _HEADER_TEXTS.get(language)
    if texts is None:
        texts = _HEADER_TEXTS[language] = _looked_up_header_texts()
    return texts


def _looked_up_header_texts() -> dict[str, str]:
    """``_header_texts`` in the active language, looked up here, outside
    f-strings, where ``makemessages`` finds them."""
    return {
        **{
            f"role:{value}": escape(str(label))
            for value, label in MerchantUser.Role.choices
        },
        "merchant": escape(gettext("Merchant")),
        "portal": escape(gettext("Merchant portal")),
        "main": escape(pgettext("navigation", "Main")),
        "orders": escape(gettext("Orders")),
        "payouts": escape(gettext("Payouts")),
        "settings": escape(gettext("Settings")),
        "users": escape(gettext("Users and roles")),
        "credentials": escape(gettext("API credentials")),
        "log": escape(gettext("API request log")),
        "language": escape(gettext("Language")),
        "password": escape(gettext("Change password")),
        "logout": escape(gettext("Log out")),
    }


def portal_header(request, csrf_token) -> SafeString:
    """The merchant portal's top bar, as ``portal/layout.html`` wrote it with
    tags: the merchant, the main navigation with the current section marked,
    the settings menu (users and API credentials for those who manage users),
    the user with their role, and the log-out form (``csrf_token``: the
    template context's token, so the page masks one token, not two). The
    layout's header cost more template work than the order list's rows; here it
    is one string (issue 16). ``request.merchant_user`` is absent on pages
    outside ``merchant_required`` (changing a password): no merchant, no role,
    no user menu."""
    from portal.templatetags.urls import fixed_url

    text = _header_texts()
    match = request.resolver_match
    section = (match.url_name or "") if match else ""
    namespace = (match.namespace or "") if match else ""
    member = getattr(request, "merchant_user", None)
    orders = fixed_url("portal:order_list")
    merchant = user = manage = ""
    if member:
        merchant = (
            f'<span class="merchant-name" title="{text["merchant"]}">'
            f"{escape(member.merchant.name)}</span>"
        )
        name = request.user.get_full_name() or request.user.username
        user = (
            f'<span class="account-name">{escape(name)} '
            f'<span class="role">{_role_name(text, member.role)}</span>'
            "</span>"
        )
        if member.can_manage_users:
            manage = (
                f'<a href="{fixed_url("portal:user_list")}">{text["users"]}</a>'
                f'<a href="{fixed_url("api:credential_list")}">'
                f"{text['credentials']}</a>"
            )
    in_orders = section[:5] == "order" or namespace == "refunds"
    in_settings = section[:4] == "user" or section == "language" or namespace == "api"
    token = str(csrf_token) if csrf_token else ""
    token = (
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(token)}">'
        if token and token != "NOTPROVIDED"
        else ""
    )
    return mark_safe(  # every value escaped above
        '<header class="topbar"><div class="topbar-inner">'
        f'<a class="brand" href="{orders}">'
        '<span class="brand-mark" aria-hidden="true">R</span>'
        f'<span class="brand-text">{text["portal"]}</span></a>'
        f"{merchant}"
        f'<nav class="mainnav" aria-label="{text["main"]}">'
        f'<a href="{orders}"{_CURRENT if in_orders else ""}>{text["orders"]}</a>'
        f'<a href="{fixed_url("portal:payout_list")}"'
        f"{_CURRENT if section[:6] == 'payout' else ''}>{text['payouts']}</a>"
        f'<details class="menu{" is-current" if in_settings else ""}">'
        f"<summary>{text['settings']}</summary>"
        f'<div class="menu-panel" role="group" aria-label="{text["settings"]}">'
        f"{manage}"
        f'<a href="{fixed_url("api:request_log")}">{text["log"]}</a>'
        f'<a href="{fixed_url("portal:language")}"'
        f"{_CURRENT if section == 'language' else ''}>{text['language']}</a>"
        f'<a href="{fixed_url("portal:password_change")}">{text["password"]}</a>'
        "</div></details></nav>"
        f'<div class="account">{user}'
        f'<form method="post" action="{fixed_url("portal:logout")}">{token}'
        '<button type="submit" class="btn btn-quiet btn-small">'
        f"{text['logout']}</button></form></div>"
        "</div></header>"
    )
