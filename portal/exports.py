"""Spreadsheet exports of the merchant portal: the payouts' transactions and the
refunds, as CSV and XLSX, streamed.

A CSV opens correctly when double-clicked in Excel (our rule, from how Excel
reads CSV): UTF-8 with a byte-order mark, so "Müller" and "€" survive; and where
the merchant's locale writes decimals with a comma (de_DE, sv_SE...), amounts use
a decimal comma and cells are separated by ";", the list separator Excel expects
there. Elsewhere: "," and a decimal point. XLSX carries amounts as numbers in
major units (XlsxWriter, constant-memory mode: one row in memory at a time).

Text a spreadsheet would run as a formula (=, +, -, @ first) gets a leading
apostrophe in every export.

Column titles and the words in cells (refund kind, repayment status) are English
whatever the reader's language (our rule): they are keys that accounting imports
match on, like the API's fields, and a file must not change with who exported it.
"""

import csv
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import xlsxwriter
from babel.numbers import get_decimal_symbol
from django.db.models import Prefetch, QuerySet
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone, translation

from customers.models import Repayment
from portal.models import LedgerEntry, Merchant, day_bounds
from portal.money import currency_digits, to_major_string
from refunds.models import Refund

CHUNK_SIZE = 2000
BOM = "\ufeff"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Column:
    title: str
    is_amount: bool = False


@dataclass(frozen=True)
class SpreadsheetDialect:
    """How a merchant's spreadsheet program reads a CSV."""

    delimiter: str
    decimal: str

    @classmethod
    def for_locale(cls, locale: str) -> "SpreadsheetDialect":
        decimal = get_decimal_symbol(locale or "en_US")
        return cls(delimiter=";" if decimal == "," else ",", decimal=decimal)

    def amount(self, minor: int, currency: str) -> str:
        return to_major_string(minor, currency).replace(".", self.decimal)


def safe_cell(value: str) -> str:
    """Text a spreadsheet would run as a formula gets a leading apostrophe."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def spreadsheet_time(moment: datetime) -> str:
    """``2026-11-30 14:05:09`` in the portal's time zone: a date and time every
    Excel reads as one (an ISO string with "T" and an offset stays text)."""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


class _Echo:
    def write(self, value: str) -> str:
        return value


# Rows: (cells, currency); an amount cell holds minor units ----------------------

Row = tuple[list, str]


def csv_response(
    columns: list[Column], rows: Iterable[Row], merchant: Merchant, filename: str
) -> StreamingHttpResponse:
    """``rows`` streamed as a CSV Excel opens correctly in ``merchant``'s locale."""
    dialect = SpreadsheetDialect.for_locale(merchant.locale)

    def lines() -> Iterator[str]:
        writer = csv.writer(_Echo(), delimiter=dialect.delimiter)
        yield BOM + writer.writerow([c.title for c in columns])
        for cells, currency in rows:
            yield writer.writerow(
                [
                    dialect.amount(value, currency)
                    if column.is_amount
                    else safe_cell(str(value))
                    for column, value in zip(columns, cells, strict=True)
                ]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def xlsx_response(
    columns: list[Column], rows: Iterable[Row], filename: str
) -> FileResponse:
    """``rows`` as one XLSX sheet, written row by row to a temporary file that
    is then streamed; amounts are numbers in major units, formatted with the
    currency's decimals."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it
    book = xlsxwriter.Workbook(
        out, {"constant_memory": True, "strings_to_formulas": False}
    )
    sheet = book.add_worksheet("Export")
    bold = book.add_format({"bold": True})
    formats = {}
    for x, column in enumerate(columns):
        sheet.write_string(0, x, column.title, bold)
    for y, (cells, currency) in enumerate(rows, start=1):
        digits = currency_digits(currency)
        if digits not in formats:
            pattern = "#,##0" + ("." + "0" * digits if digits else "")
            formats[digits] = book.add_format({"num_format": pattern})
        for x, (column, value) in enumerate(zip(columns, cells, strict=True)):
            if column.is_amount:
                sheet.write_number(
                    y, x, Decimal(value).scaleb(-digits), formats[digits]
                )
            else:
                sheet.write_string(y, x, safe_cell(str(value)))
    book.close()
    out.seek(0)
    return FileResponse(
        out, as_attachment=True, filename=filename, content_type=XLSX_TYPE
    )


# The payouts' transactions -------------------------------------------------------

LEDGER_COLUMNS = [
    Column("date"),
    Column("type"),
    Column("order_id"),
    Column("order_reference"),
    Column("merchant_reference1"),
    Column("reference"),
    Column("amount", is_amount=True),
    Column("currency"),
]


def ledger_rows(entries: QuerySet) -> Iterator[Row]:
    rows = entries.order_by("id").values_list(
        "created_at",
        "kind",
        "order__order_id",
        "order__reference",
        "order__merchant_reference1",
        "reference",
        "amount",
        "currency",
    )
    for row in rows.iterator(chunk_size=CHUNK_SIZE):
        created, *middle, amount, currency = row
        yield [spreadsheet_time(created), *middle, amount, currency], currency


# Refunds ---------------------------------------------------------------------------

REFUND_COLUMNS = [
    Column("date"),
    Column("order_id"),
    Column("order_reference"),
    Column("merchant_reference1"),
    Column("merchant_reference2"),
    Column("refund_id"),
    Column("refund_reference"),
    Column("kind"),
    Column("reason"),
    Column("description"),
    Column("by"),
    Column("lines"),
    Column("items", is_amount=True),
    Column("return_fee", is_amount=True),
    Column("refunded", is_amount=True),
    Column("currency"),
    Column("repayment_status"),
    Column("payout"),
]


def refunds_between(
    merchant: Merchant, start: date | None, end: date | None
) -> QuerySet:
    """The merchant's refunds made from ``start`` to ``end`` (whole days in the
    portal's time zone; either may be open), oldest first."""
    refunds = Refund.objects.for_merchant(merchant)
    lower, upper = day_bounds(start, end)
    if lower:
        refunds = refunds.filter(created_at__gte=lower)
    if upper:
        refunds = refunds.filter(created_at__lt=upper)
    return refunds.order_by("created_at", "pk")


def refund_rows(refunds: QuerySet) -> Iterator[Row]:
    """One row per refund: what was refunded, by whom, how the money went back
    to the customer, and the payout it was deducted in ("next" while open).
    Lines, repayments and ledger entries are prefetched per chunk: a fixed
    number of queries per ``CHUNK_SIZE`` refunds."""
    refunds = refunds.select_related("order", "created_by").prefetch_related(
        "lines",
        Prefetch("repayments", queryset=Repayment.objects.order_by("pk")),
        Prefetch(
            "ledger_entries",
            queryset=LedgerEntry.objects.filter(kind=LedgerEntry.Kind.RETURN)
            .select_related("payout")
            .order_by("pk"),
        ),
    )
    for refund in refunds.iterator(chunk_size=CHUNK_SIZE):
        order = refund.order
        lines = "; ".join(
            f"{line.quantity} × {line.reference}"
            for line in refund.lines.all()
            if line.order_line_id
        )
        yield (
            [
                spreadsheet_time(refund.created_at),
                order.order_id,
                order.reference,
                order.merchant_reference1,
                order.merchant_reference2,
                refund.refund_id,
                refund.reference,
                _english(refund.get_kind_display),
                _english(refund.get_reason_display),  # "" for API refunds
                refund.description,
                refund.created_by.username if refund.created_by else "API",
                lines,
                refund.items_amount,
                refund.fee_amount,
                refund.refunded_amount,
                order.purchase_currency,
                repayment_status(refund),
                payout_of(refund),
            ],
            order.purchase_currency,
        )


def _english(display) -> str:
    with translation.override("en"):
        return str(display())


def repayment_status(refund: Refund) -> str:
    """How the money went back: each repayment's status and date, or why none
    (store credit; or the refund only lowered what is still owed)."""
    repayments = refund.repayments.all()
    if refund.store_credit:
        return "store credit: no money moved"
    if not repayments:
        return "no money back: what is owed was lowered"
    return "; ".join(
        f"{_english(r.get_status_display).lower()} "
        + (
            f"{timezone.localtime(r.completed_at):%Y-%m-%d}"
            if r.completed_at
            else f"expected by {r.expected_by:%Y-%m-%d}"
        )
        for r in repayments
    )


def payout_of(refund: Refund) -> str:
    entries = refund.ledger_entries.all()
    if not entries:
        return ""
    payout = entries[0].payout
    return f"#{payout.number}" if payout else "next payout"
