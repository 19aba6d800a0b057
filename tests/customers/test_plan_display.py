"""What the customer's plan shows: the one-time card fee (issue 11, case 4), the
dates paused payments will really be charged (case 5), and one money style per
page (case 6)."""

from datetime import date

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from customers.models import Installment, Notification, ReturnReport
from customers.tasks import send_notification_email
from portal.models import PaymentProduct
from portal.money import format_money
from tests.factories import MerchantFactory, OrderFactory, line

pytestmark = pytest.mark.django_db


def eur(amount: int) -> str:
    return format_money(amount, "EUR", "de_DE")


def sek(amount: int) -> str:
    return format_money(amount, "SEK", "sv_SE")


STILL_CHARGED = "the service fee of 2,58\xa0€ is still charged"


@pytest.fixture
def scarf_on_one_time_card(make_order):
    """A 129,00 € scarf on one-time card Pay in 4: 4 × 32,25 € and a 2,58 € fee."""
    return make_order(
        product=PaymentProduct.ONE_TIME_CARD,
        lines=[line("SCARF-1", 12900, name="Kaschmirschal")],
        capture=True,
    )


def test_issue_11_case_4_payment_1_shows_the_one_time_card_fee_explicitly(
    scarf_on_one_time_card, customer_client
):
    plan = scarf_on_one_time_card.captures.get().plan
    assert plan.service_fee == 258
    assert [i.amount for i in plan.installments.all()] == [3225] * 4
    html = customer_client.get(
        reverse("customers:order_detail", args=[scarf_on_one_time_card.order_id])
    ).content.decode()
    assert (
        f'<span class="c-inst-amount">{eur(3225)}</span>\n              '
        f'<span class="c-inst-fee">+ {eur(258)} service fee = {eur(3483)}</span>'
        in html
    )
    assert html.count("c-inst-fee") == 1
    assert f"Service fee {eur(258)}, charged with the first payment" in html


def test_issue_11_case_4_a_partial_refund_says_the_fee_is_still_charged(
    scarf_on_one_time_card,
    customer_client,
    portal_client,
    django_capture_on_commit_callbacks,
):
    order = scarf_on_one_time_card
    preview = portal_client.post(
        reverse("refunds:preview", args=[order.order_id]),
        {"kind": "amount", "amount": "20,00", "idempotency_key": "k1"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "Remaining 3 payments become 25,59\xa0€, 25,58\xa0€, 25,58\xa0€" in preview
    assert STILL_CHARGED in preview

    with django_capture_on_commit_callbacks(execute=True):
        order.refund_amount(2000)
    [email] = mail.outbox
    assert (
        "The service fee of 2,58\xa0€ is still charged: a partial refund does not "
        "return it." in email.body
    )
    html = customer_client.get(
        reverse("customers:order_detail", args=[order.order_id])
    ).content.decode()
    assert STILL_CHARGED in html
    assert "it is still charged after a partial refund" in html
    assert f"+ {eur(258)} service fee = {eur(3483)}" in html


def test_a_full_refund_of_a_one_time_card_order_shows_the_fee_returned(
    scarf_on_one_time_card, customer_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        scarf_on_one_time_card.refund_complete()
    html = customer_client.get(
        reverse("customers:order_detail", args=[scarf_on_one_time_card.order_id])
    ).content.decode()
    assert f"service fee {eur(258)} returned" in html
    assert "still charged" not in html
    assert "The service fee of 2,58\xa0€ is returned with it." in mail.outbox[0].body


def test_issue_11_case_5_paused_payments_show_the_dates_they_will_be_charged(
    captured_order, customer_client, django_capture_on_commit_callbacks
):
    # A reported return pauses payments until 21 Dec; the installments were due
    # 6 Dec and 20 Dec (and 3 Jan).
    with django_capture_on_commit_callbacks(execute=True):
        report = ReturnReport.report(
            captured_order, tracking_number="T1", shipped_on=timezone.localdate()
        )
    ReturnReport.objects.filter(pk=report.pk).update(pause_until=date(2026, 12, 21))
    plan = captured_order.captures.get().plan
    for sequence, due in ((2, date(2026, 12, 6)), (3, date(2026, 12, 20))):
        Installment.objects.filter(plan=plan, sequence=sequence).update(due_date=due)
    Installment.objects.filter(plan=plan, sequence=4).update(due_date=date(2027, 1, 3))

    html = customer_client.get(
        reverse("customers:order_detail", args=[captured_order.order_id])
    ).content.decode()
    shown = [
        part.split("</span>")[0]
        for part in html.split('<span class="c-charge-date">')[1:]
    ]
    assert shown[1:] == ["21 Dec 2026", "21 Dec 2026", "3 Jan 2027"]
    assert '<s class="c-muted" aria-label="was">6 Dec 2026</s>' in html
    assert '<s class="c-muted" aria-label="was">20 Dec 2026</s>' in html
    assert "at the latest on 21 Dec 2026" in html

    notification = Notification.objects.get(kind=Notification.Kind.RETURN_REPORTED)
    notification.resend_email()
    mail.outbox.clear()
    send_notification_email.call(notification.pk)
    body = mail.outbox[0].body
    assert "2. 21 Dec 2026" in body and "3. 21 Dec 2026" in body
    assert "4. 3 Jan 2027" in body and "6 Dec 2026" not in body


def test_issue_11_case_6_a_swedish_order_shows_one_money_style_on_every_page(
    customer, customer_client, django_capture_on_commit_callbacks
):
    # A customer of a German locale, a Swedish order of 747,00 kr, 100,00 kr
    # refunded: the header, plan, notifications and "How it was applied" all
    # say "kr" (and, since issue 15, in Swedish: the order's language).
    assert customer.locale == "en_DE"
    store = MerchantFactory(name="Skog & Sten", slug="skog", country="SE")
    order = OrderFactory(
        merchant=store, customer=customer, lines=[line("VAS-1", 74700, name="Vas")]
    )
    order.capture()
    with django_capture_on_commit_callbacks(execute=True):
        order.refund_amount(10000)

    pages = {
        "order": reverse("customers:order_detail", args=[order.order_id]),
        "orders": reverse("customers:order_list"),
        "notifications": reverse("customers:notification_list"),
    }
    html = {
        name: customer_client.get(url).content.decode() for name, url in pages.items()
    }
    assert sek(74700) in html["order"] and sek(74700) in html["orders"]
    assert (
        f"De återstående 3 betalningarna blir {sek(15342)}, {sek(15342)}, "
        f"{sek(15341)}." in html["order"]
    )
    assert f"Återbetalning från Skog &amp; Sten: {sek(10000)}" in html["notifications"]
    assert f"{sek(15342)} den" in html["notifications"]
    for name, page in html.items():
        assert "SEK" not in page, name
    assert "SEK" not in mail.outbox[0].subject + mail.outbox[0].body


@pytest.mark.postgres
def test_the_customers_order_page_reads_in_two_round_trips(
    customer_client, make_order, pipelines_entered, django_capture_on_commit_callbacks
):
    """Issue 16: the plans, installments, due-date extensions, return reports
    and refunds of the order in one pipeline, the refunds' lines and
    allocations in a second; the page is the same as before."""
    from django.db import connection

    order = make_order(lines=[line("A", 4000, 2), line("B", 6000)], capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        order.refund_lines([("A", 1)])
    pipelines_entered.clear()  # the refund's own reads and writes
    page = customer_client.get(reverse("customers:order_detail", args=[order.order_id]))
    assert pipelines_entered == [connection.connection] * 2
    assert page.status_code == 200
    assert "40,00" in page.content.decode()  # what the refund of one A was
