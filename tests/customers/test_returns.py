"""Report a return: the order's scheduled payments pause until the store
registers the return, for at most 21 days, then resume."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from customers.models import InstallmentStatus, Notification, ReturnReport
from customers.tasks import run_periodic

pytestmark = pytest.mark.django_db


def statuses(order) -> list[str]:
    return list(
        order.captures.get()
        .plan.installments.order_by("sequence")
        .values_list("status", flat=True)
    )


@pytest.fixture
def return_url(captured_order):
    return reverse("customers:report_return", args=[captured_order.order_id])


def test_reporting_a_return_pauses_the_orders_payments(
    customer_client, captured_order, return_url, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = customer_client.post(
            return_url,
            {"tracking_number": " 1Z999AA1 ", "shipped_on": timezone.localdate()},
        )

    order_page = reverse("customers:order_detail", args=[captured_order.order_id])
    assert response.status_code == 302 and response.url == order_page
    assert statuses(captured_order) == ["paid", "paused", "paused", "paused"]
    report = ReturnReport.objects.get()
    assert report.tracking_number == "1Z999AA1"
    assert report.pause_until == timezone.localdate() + timedelta(days=21)
    html = customer_client.get(order_page).content.decode()
    assert "Return reported" in html and "1Z999AA1" in html
    assert html.count('<span class="c-pill c-pill-paused">Paused</span>') == 3
    assert (
        "Payments paused"
        in customer_client.get(reverse("customers:order_list")).content.decode()
    )
    assert Notification.objects.get().kind == Notification.Kind.RETURN_REPORTED
    assert (
        mail.outbox[0].subject == "Return reported: payments for Nordic Threads paused"
    )


def test_a_return_report_with_htmx_redirects_by_header_or_rerenders_the_form(
    customer_client, captured_order, return_url
):
    bad = customer_client.post(
        return_url,
        {
            "tracking_number": "T1",
            "shipped_on": timezone.localdate() + timedelta(days=2),
        },
        headers={"HX-Request": "true"},
    )
    assert bad.content.decode().lstrip().startswith('<form id="return-form"')
    assert "cannot be in the future" in bad.content.decode()
    assert statuses(captured_order) == ["paid", "scheduled", "scheduled", "scheduled"]

    good = customer_client.post(
        return_url,
        {"tracking_number": "T1", "shipped_on": timezone.localdate()},
        headers={"HX-Request": "true"},
    )
    assert good.headers["HX-Redirect"].endswith(f"{captured_order.order_id}/")


def test_the_return_form_page_renders_without_htmx(customer_client, return_url):
    html = customer_client.get(return_url).content.decode()
    assert "<html" in html and "Report a return" in html
    bad = customer_client.post(
        return_url, {"tracking_number": "", "shipped_on": "yesterday"}
    )
    assert "This field is required." in bad.content.decode()
    assert "Enter a valid date." in bad.content.decode()
    assert not ReturnReport.objects.exists()


def test_a_second_report_while_one_is_open_is_refused(
    customer_client, captured_order, return_url
):
    data = {"tracking_number": "T1", "shipped_on": timezone.localdate()}
    customer_client.post(return_url, data)
    response = customer_client.post(return_url, data)
    assert "already reported a return" in response.content.decode()
    assert ReturnReport.objects.count() == 1


def test_an_order_with_nothing_left_to_pay_cannot_be_paused(
    customer_client, make_order
):
    from portal.models import PaymentProduct

    order = make_order(product=PaymentProduct.PAY_NOW, capture=True)
    url = reverse("customers:report_return", args=[order.order_id])
    response = customer_client.post(
        url, {"tracking_number": "T1", "shipped_on": timezone.localdate()}
    )
    assert "no upcoming payments to pause" in response.content.decode()


def test_payments_resume_after_21_days_without_the_store_registering_the_return(
    captured_order, django_capture_on_commit_callbacks
):
    ReturnReport.report(
        captured_order, tracking_number="T1", shipped_on=timezone.localdate()
    )
    assert run_periodic(timezone.now() + timedelta(days=20)).returns_expired == 0
    assert statuses(captured_order)[1:] == ["paused"] * 3

    with django_capture_on_commit_callbacks(execute=True):
        report = run_periodic(timezone.now() + timedelta(days=21))
    assert report.returns_expired == 1
    assert statuses(captured_order)[1] != "paused"
    assert ReturnReport.objects.get().resolution == "expired"
    resumed = Notification.objects.get(kind=Notification.Kind.PAYMENTS_RESUMED)
    assert "continue as planned" in resumed.body


def test_the_store_registering_the_return_ends_the_pause(captured_order):
    ReturnReport.report(
        captured_order, tracking_number="T1", shipped_on=timezone.localdate()
    )
    captured_order.refund_lines([("TSHIRT-1", 1)])
    assert statuses(captured_order) == ["paid", "scheduled", "scheduled", "scheduled"]
    assert ReturnReport.objects.get().resolution == "registered"


def test_a_refund_that_cancels_every_paused_payment_still_ends_the_pause(
    captured_order,
):
    ReturnReport.report(
        captured_order, tracking_number="T1", shipped_on=timezone.localdate()
    )
    captured_order.refund_complete()
    assert statuses(captured_order) == ["paid", "cancelled", "cancelled", "cancelled"]
    assert ReturnReport.objects.get().resolution == "registered"


def test_a_refund_of_an_order_without_paused_payments_does_not_look_for_reports(
    captured_order,
):
    with CaptureQueriesContext(connection) as queries:
        captured_order.refund_lines([("TSHIRT-1", 1)])
    assert not [q for q in queries if "customers_returnreport" in q["sql"]]


def test_paused_installments_are_not_charged(captured_order):
    ReturnReport.report(
        captured_order, tracking_number="T1", shipped_on=timezone.localdate()
    )
    report = run_periodic(timezone.now() + timedelta(days=15))
    assert report.installments_collected == 0
    assert InstallmentStatus.PAID not in statuses(captured_order)[1:]


def test_a_pause_that_ran_out_cannot_be_renewed_by_reporting_again(captured_order):
    from portal.exceptions import DomainError

    today = timezone.localdate()
    report = ReturnReport.report(captured_order, tracking_number="T1", shipped_on=today)
    report.expire(today + timedelta(days=21))
    with pytest.raises(DomainError) as refused:
        ReturnReport.report(captured_order, tracking_number="T2", shipped_on=today)
    assert refused.value.code == "RETURN_PAUSE_USED"
    assert InstallmentStatus.PAUSED not in statuses(captured_order)


def test_a_return_the_store_registers_ends_the_pause_at_once_on_the_timeline(
    captured_order, customer_client, django_capture_on_commit_callbacks
):
    captured_order.refund_amount(1000, description="Goodwill")  # before the return
    ReturnReport.report(
        captured_order, tracking_number="1Z999AA1", shipped_on=timezone.localdate()
    )
    with django_capture_on_commit_callbacks(execute=True):
        captured_order.refund_lines([("TSHIRT-1", 1)], description="T-shirt back")
    assert statuses(captured_order) == ["paid", "scheduled", "scheduled", "scheduled"]

    html = customer_client.get(
        reverse("customers:order_detail", args=[captured_order.order_id])
    ).content.decode()
    registered = (
        "Your reported return (tracking number 1Z999AA1) is registered: the pause "
        "on your payments ended"
    )
    assert html.count(registered) == 1
    # On the return's refund (the newest, shown first), not on the goodwill one.
    detail = '<p class="c-step-detail">{}</p>'.format
    assert (
        html.index(registered)
        < html.index(detail("T-shirt back"))
        < html.index(detail("Goodwill"))
    )
    assert 'id="return-report"' not in html
    assert "c-pill-paused" not in html
