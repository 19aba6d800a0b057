"""The refunds export (issue 14): CSV and XLSX, streamed, by date range, one row
per refund with what reconciliation needs; only the merchant's own refunds."""

import codecs
import csv
import io
import re
import zipfile
from datetime import timedelta

import pytest
from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from portal.models import PaymentProduct, Payout
from refunds.models import Refund

URL = reverse("portal:refund_export")


def csv_table(response) -> list[dict]:
    assert isinstance(response, StreamingHttpResponse)
    data = b"".join(response.streaming_content)
    assert data.startswith(codecs.BOM_UTF8)
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";")
    return list(reader)


@pytest.fixture
def refunds(make_order, merchant_user, django_capture_on_commit_callbacks):
    """A return with a fee on a pay-now order (money back), an amount refund on
    a pay-in-4 order (lowers what is owed), and a refund from last month."""
    by = merchant_user.user
    with django_capture_on_commit_callbacks(execute=True):
        paid = make_order(
            product=PaymentProduct.PAY_NOW, capture=True, merchant_reference1="NW-1"
        )
        returned = paid.refund_lines(
            [("TSHIRT-1", 1)], return_fee=500, by=by, reference="RMA-7"
        )
        owed = make_order(capture=True, merchant_reference1="NW-2")
        lowered = owed.refund_amount(2500, description="Goodwill")
        old = make_order(capture=True).refund_amount(1000, by=by)
    Refund.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    return {"returned": returned, "lowered": lowered, "old": old}


def test_the_csv_has_one_row_per_refund_with_what_reconciliation_needs(
    portal_client, refunds, merchant
):
    today = timezone.localdate()
    response = portal_client.get(
        URL,
        {"date_from": today - timedelta(days=7), "date_to": today, "format": "csv"},
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        f'filename="refunds-{today - timedelta(days=7)}-to-{today}.csv"'
        in (response["Content-Disposition"])
    )
    rows = {row["refund_id"]: row for row in csv_table(response)}
    assert set(rows) == {
        str(refunds["returned"].refund_id),
        str(refunds["lowered"].refund_id),
    }
    returned = rows[str(refunds["returned"].refund_id)]
    order = refunds["returned"].order
    assert returned["order_reference"] == order.reference
    assert returned["order_id"] == str(order.order_id)
    assert returned["merchant_reference1"] == "NW-1"
    assert returned["refund_reference"] == "RMA-7"
    assert returned["kind"] == refunds["returned"].get_kind_display()
    assert returned["by"] == "anna"
    assert returned["lines"] == "1 × TSHIRT-1"
    assert (returned["items"], returned["return_fee"], returned["refunded"]) == (
        "100,00",
        "5,00",
        "95,00",
    )
    assert returned["currency"] == "EUR"
    assert returned["repayment_status"].startswith("scheduled expected by ")
    assert returned["payout"] == "next payout"

    lowered = rows[str(refunds["lowered"].refund_id)]
    assert lowered["by"] == "API"
    assert lowered["description"] == "Goodwill"
    assert lowered["refunded"] == "25,00"
    assert lowered["repayment_status"] == "no money back: what is owed was lowered"


def test_a_refund_shows_the_payout_it_was_deducted_in(portal_client, refunds, merchant):
    payout = Payout.close_next(merchant)
    rows = csv_table(portal_client.get(URL, {"format": "csv"}))
    assert len(rows) == 3  # no dates: every refund
    assert {row["payout"] for row in rows} == {f"#{payout.number}"}


def test_another_merchants_refunds_are_not_exported(
    portal_client, refunds, other_order
):
    other_order.refund_amount(1000)
    rows = csv_table(portal_client.get(URL, {"format": "csv"}))
    assert other_order.reference not in {row["order_reference"] for row in rows}
    assert len(rows) == 3


def test_the_export_reads_refunds_in_a_fixed_number_of_queries(
    portal_client, refunds, make_order, django_assert_max_num_queries
):
    for _ in range(5):
        make_order(capture=True).refund_amount(1000)
    response = portal_client.get(URL, {"format": "csv"})
    # The refunds with their orders and people, then lines, repayments and
    # ledger entries with their payouts: one query each per chunk.
    with django_assert_max_num_queries(5):
        rows = csv_table(response)
    assert len(rows) == 8


def xlsx_cells(response) -> str:
    assert isinstance(response, FileResponse)
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        return book.read("xl/worksheets/sheet1.xml").decode()


def test_the_xlsx_has_the_same_rows_with_amounts_as_numbers(portal_client, refunds):
    response = portal_client.get(URL, {"format": "xlsx"})
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert 'filename="refunds-start-to-today.xlsx"' in response["Content-Disposition"]
    sheet = xlsx_cells(response)
    assert str(refunds["returned"].refund_id) in sheet
    assert "RMA-7" in sheet and "1 × TSHIRT-1" in sheet
    numbers = re.findall(r"<v>([^<]+)</v>", sheet)  # numeric cells
    assert {"95.00", "5.00", "100.00", "25.00", "10.00"} <= set(numbers)
    assert len(re.findall(r"<row ", sheet)) == 4  # the header and three refunds


def test_formula_like_text_is_neutralised_in_both_formats(
    portal_client, captured_order, merchant_user
):
    captured_order.refund_amount(1000, by=merchant_user.user, reference="=cmd|x")
    rows = csv_table(portal_client.get(URL, {"format": "csv"}))
    assert rows[0]["refund_reference"] == "'=cmd|x"
    assert "'=cmd|x" in xlsx_cells(portal_client.get(URL, {"format": "xlsx"}))


def test_the_export_page_offers_dates_and_formats(portal_client, db):
    response = portal_client.get(URL)
    body = response.content.decode()
    assert response.status_code == 200
    assert 'name="date_from"' in body and 'value="xlsx"' in body
    assert "“;”" in body  # a German store's Excel separates cells by ";"
    listing = portal_client.get(reverse("portal:payout_list")).content.decode()
    assert URL in listing


def test_a_range_that_ends_before_it_starts_is_explained(portal_client, db):
    response = portal_client.get(
        URL, {"date_from": "2026-11-30", "date_to": "2026-11-01", "format": "csv"}
    )
    assert response.status_code == 200
    assert "The end date is before the start date." in response.content.decode()


def test_the_export_needs_a_merchant_login(client, db):
    response = client.get(URL, {"format": "csv"})
    assert response.status_code == 302


def test_dates_are_written_as_excel_reads_them(portal_client, captured_order):
    refund = captured_order.refund_amount(1000)
    (row,) = csv_table(portal_client.get(URL, {"format": "csv"}))
    local = timezone.localtime(refund.created_at)
    assert row["date"] == local.strftime("%Y-%m-%d %H:%M:%S")


def test_a_german_readers_export_has_the_same_english_keys_and_words(
    client, refunds, merchant_user
):
    """Cells that are words stay English for every reader (portal.exports)."""
    merchant_user.language = "de"
    merchant_user.save()
    client.force_login(merchant_user.user)
    today = timezone.localdate()

    response = client.get(URL, {"date_to": today, "format": "csv"})
    page = client.get(URL).content.decode()

    returned = {row["refund_id"]: row for row in csv_table(response)}[
        str(refunds["returned"].refund_id)
    ]
    assert "Erstattungen exportieren" in page
    assert returned["kind"] == "Selected items with a return fee"
    assert returned["repayment_status"].startswith("scheduled expected by ")


@pytest.mark.parametrize(
    ("start", "end"),
    [("0001-01-01", "9999-12-31"), ("9999-12-31", ""), ("", "0001-01-01")],
)
def test_the_first_and_last_days_a_date_holds_are_open_ends(
    portal_client, refunds, start, end
):
    """Issue 16's fresh review: the day after 9999-12-31 does not exist (a
    500 before); such an end means no bound."""
    response = portal_client.get(
        URL, {"date_from": start, "date_to": end, "format": "csv"}
    )
    assert response.status_code == 200
    expected = 3 if (start, end) == ("0001-01-01", "9999-12-31") else 0
    assert len(csv_table(response)) == expected
