"""Payouts: the next payout with every entry, past payouts, streamed CSV export."""

import codecs
import csv
import io

from django.http import StreamingHttpResponse
from django.urls import reverse

from portal.models import LedgerEntry, Payout


def csv_rows(response, delimiter=";") -> list[list[str]]:
    """The rows of a CSV as a German Excel reads it: UTF-8 after a BOM, ";"."""
    assert isinstance(response, StreamingHttpResponse)
    data = b"".join(response.streaming_content)
    assert data.startswith(codecs.BOM_UTF8)
    text = data.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def test_next_payout_shows_sales_returns_and_fees_with_every_entry(
    portal_client, captured_order, merchant_user
):
    captured_order.refund_amount(2500, by=merchant_user.user, reference="RMA-1")
    response = portal_client.get(reverse("portal:payout_next"))
    body = response.content.decode()
    assert response.status_code == 200
    kinds = sorted(entry.kind for entry in response.context["entries"])
    assert kinds == ["FEE", "RETURN", "SALE"]
    assert "RMA-1" in body
    assert "−25,00\xa0€" in body or "-25,00\xa0€" in body
    payout = response.context["payout"]
    assert payout.sales_amount == 40000 and payout.returns_amount == -2500


def test_payout_list_shows_the_next_payout_and_past_payouts(
    portal_client, captured_order, merchant
):
    closed = Payout.close_next(merchant)
    response = portal_client.get(reverse("portal:payout_list"))
    body = response.content.decode()
    assert response.status_code == 200
    assert f"Next payout (#{closed.number + 1})" in body
    assert closed.get_absolute_url() in body
    detail = portal_client.get(closed.get_absolute_url())
    assert len(detail.context["entries"]) == closed.entry_count == 2


def test_payout_entries_are_paged_by_id(
    portal_client, make_order, merchant, django_assert_max_num_queries
):
    for _ in range(110):
        make_order(capture=True)  # a SALE and a FEE each
    with django_assert_max_num_queries(10):
        first = portal_client.get(reverse("portal:payout_next"))
    assert len(first.context["entries"]) == 200
    second = portal_client.get(
        reverse("portal:payout_next"), {"after": first.context["more"]}
    )
    assert len(second.context["entries"]) == 20
    assert second.context["more"] is None


def test_csv_export_streams_every_entry_of_a_payout(
    portal_client, captured_order, merchant, merchant_user
):
    captured_order.refund_amount(1050, by=merchant_user.user, reference="=HYPERLINK()")
    payout = Payout.close_next(merchant)
    response = portal_client.get(reverse("portal:payout_csv", args=[payout.number]))
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="payout-{payout.number}.csv"' in response["Content-Disposition"]
    header, *rows = csv_rows(response)
    assert header[:2] == ["date", "type"]
    assert sorted((row[1], row[6]) for row in rows) == [
        ("FEE", "-11,96"),
        ("RETURN", "-10,50"),
        ("SALE", "400,00"),
    ]
    assert {row[2] for row in rows} == {str(captured_order.order_id)}
    # A reference a spreadsheet would run as a formula is neutralised.
    assert "'=HYPERLINK()" in [row[5] for row in rows]


def test_next_payout_csv_has_the_unpaid_entries(portal_client, captured_order):
    response = portal_client.get(reverse("portal:payout_next_csv"))
    rows = csv_rows(response)[1:]
    assert len(rows) == LedgerEntry.objects.filter(payout__isnull=True).count() == 2


def test_csv_export_reads_entries_in_chunks_not_all_at_once(
    portal_client, captured_order, merchant, django_assert_max_num_queries
):
    payout = Payout.close_next(merchant)
    response = portal_client.get(reverse("portal:payout_csv", args=[payout.number]))
    # Nothing is read until the response is consumed: then one streamed query.
    with django_assert_max_num_queries(1):
        rows = csv_rows(response)
    assert len(rows) == 3


def test_a_us_stores_csv_uses_commas_and_a_decimal_point(client, us_merchant):
    from tests.conftest import member
    from tests.factories import CustomerFactory, OrderFactory, PaymentMethodFactory

    person = CustomerFactory(email="sam@example.com")
    PaymentMethodFactory(customer=person)
    order = OrderFactory(merchant=us_merchant, customer=person)
    order.capture()
    client.force_login(member(us_merchant, "owner", "us-owner").user)
    rows = csv_rows(client.get(reverse("portal:payout_next_csv")), delimiter=",")
    assert rows[0][:3] == ["date", "type", "order_id"]
    assert sorted(row[6] for row in rows[1:]) == ["-11.96", "400.00"]


def test_a_swedish_stores_csv_uses_semicolons_and_a_decimal_comma():
    from portal.exports import SpreadsheetDialect

    assert SpreadsheetDialect.for_locale("sv_SE") == SpreadsheetDialect(";", ",")
    assert SpreadsheetDialect.for_locale("de_DE") == SpreadsheetDialect(";", ",")
    assert SpreadsheetDialect.for_locale("en_US") == SpreadsheetDialect(",", ".")
    assert SpreadsheetDialect.for_locale("sv_SE").amount(-123450, "SEK") == "-1234,50"
