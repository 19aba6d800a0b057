"""What a merchant does by hand that the API's new operations also do: remove an
item before capture, send an invoice again, extend a pay-later due date; and the
order page's "Customer & shipping" panel. The customer's page shows tracking and
the extension."""

from datetime import timedelta

import pytest
from django.urls import reverse

from customers.models import Installment, Notification
from portal.models import OrderStatus, PaymentProduct
from tests.customers.conftest import log_in
from tests.factories import line

pytestmark = pytest.mark.django_db


def remove_url(order) -> str:
    return reverse("portal:order_remove_item", args=[order.order_id])


def test_removing_an_uncaptured_item_lowers_the_order_and_tells_the_customer(
    portal_client, order
):
    response = portal_client.post(
        remove_url(order), {"line": "TSHIRT-1", "quantity": "1"}
    )

    assert response.status_code == 302
    order.refresh_from_db()
    assert (order.order_amount, order.original_order_amount) == (30000, 40000)
    assert order.lines.get(reference="TSHIRT-1").quantity == 1
    notification = Notification.objects.get(kind=Notification.Kind.ORDER_UPDATED)
    assert "1 × T-shirt removed" in notification.body
    page = portal_client.get(order.get_absolute_url()).content.decode()
    assert "Removed 100,00\xa0€ from the order" in page
    assert "Order amount changed" in page


def test_removing_the_rest_of_a_part_captured_order_closes_the_authorization(
    portal_client, order
):
    order.capture(lines=[("TSHIRT-1", 2)])

    portal_client.post(remove_url(order), {"line": "JEANS-1", "quantity": "1"})

    order.refresh_from_db()
    assert (order.order_amount, order.status) == (20000, OrderStatus.CAPTURED)
    assert list(order.lines.values_list("reference", flat=True)) == ["TSHIRT-1"]


def test_captured_units_cannot_be_removed(portal_client, order):
    order.capture(lines=[("TSHIRT-1", 1)])

    response = portal_client.post(
        remove_url(order), {"line": "TSHIRT-1", "quantity": "2"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["quantity"] == [
        "1 of “T-shirt” can be removed (the units not captured)."
    ]
    order.refresh_from_db()
    assert order.order_amount == 40000


def test_the_remove_item_page_offers_only_uncaptured_lines(portal_client, order):
    order.capture(lines=[("TSHIRT-1", 2)])

    response = portal_client.get(remove_url(order))

    assert [value for value, _ in response.context["form"].fields["line"].choices] == [
        "JEANS-1"
    ]


def test_a_cancelled_order_says_why_nothing_can_be_removed(portal_client, order):
    order.cancel()

    body = portal_client.get(remove_url(order)).content.decode()

    assert "Not possible:" in body
    assert '<form method="post" action="' + remove_url(order) not in body


def test_viewers_cannot_remove_items(client_as, order):
    response = client_as("viewer").post(
        remove_url(order), {"line": "TSHIRT-1", "quantity": "1"}
    )

    assert response.status_code == 403
    order.refresh_from_db()
    assert order.order_amount == 40000


def test_the_order_page_offers_remove_only_while_something_is_uncaptured(
    portal_client, order
):
    assert (
        remove_url(order)
        in portal_client.get(order.get_absolute_url()).content.decode()
    )
    order.capture()
    assert (
        remove_url(order)
        not in portal_client.get(order.get_absolute_url()).content.decode()
    )


def test_the_order_page_shows_customer_and_shipping(portal_client, order):
    order.billing_address = {
        "given_name": "Maja",
        "family_name": "Berg",
        "street_address": "Lindenstraße 5",
        "postal_code": "10115",
        "city": "Berlin",
        "country": "DE",
    }
    order.shipping_address = {"street_address": "Hafenweg 2", "city": "Hamburg"}
    order.selected_shipping_option = {"name": "DHL Home", "carrier": "DHL"}
    order.save()
    capture = order.capture_shipment(
        shipping_info=[{"shipping_company": "DHL Paket", "tracking_number": "0034X"}]
    )

    body = portal_client.get(order.get_absolute_url()).content.decode()

    assert "Customer &amp; shipping" in body
    assert "Lindenstraße 5" in body and "10115 Berlin · DE" in body
    assert "Hafenweg 2" in body
    assert "DHL Home · DHL" in body
    assert "Pay in 4 · 4 payments" in body
    assert 'DHL Paket · <span class="mono">0034X</span>' in body
    assert capture.klarna_reference in body


def test_sending_an_invoice_again_notifies_the_customer(portal_client, captured_order):
    capture = captured_order.captures.get()

    response = portal_client.post(
        reverse(
            "portal:capture_send_invoice",
            args=[captured_order.order_id, capture.capture_id],
        )
    )

    assert response.status_code == 302
    assert Notification.objects.filter(kind=Notification.Kind.INVOICE).count() == 1
    page = portal_client.get(captured_order.get_absolute_url()).content.decode()
    assert "was sent to the customer again" in page


@pytest.fixture
def pay_later_order(make_order):
    return make_order(
        product=PaymentProduct.PAY_LATER, lines=[line("COAT-1", 20000)], capture=True
    )


def test_extending_a_due_date_by_hand(portal_client, pay_later_order):
    capture = pay_later_order.captures.get()
    url = reverse(
        "portal:capture_extend_due_date",
        args=[pay_later_order.order_id, capture.capture_id],
    )
    due = Installment.objects.get(plan__capture=capture).due_date

    page = portal_client.get(url)
    response = portal_client.post(url, {"number_of_days": "30"})

    assert page.context["options"] == [(7, 200), (14, 400), (30, 600)]
    assert response.status_code == 302
    installment = Installment.objects.get(plan__capture=capture)
    assert installment.due_date == due + timedelta(days=30)
    again = portal_client.get(url).content.decode()
    assert "already extended" in again


def test_the_customer_sees_tracking_and_the_extension(
    client, customer, pay_later_order
):
    log_in(client, customer)
    capture = pay_later_order.captures.get()
    capture.add_shipping_info(
        [{"shipping_company": "DHL Paket", "tracking_number": "0034X"}]
    )
    capture.plan.extend_due_date(14)

    body = client.get(
        reverse("customers:order_detail", args=[pay_later_order.order_id])
    ).content.decode()

    assert "Shipped with DHL Paket" in body and "0034X" in body
    assert "gave you 14 more days to pay" in body


def test_a_capture_made_in_the_portal_keeps_the_addresses(portal_client, order):
    order.shipping_address = {"city": "Berlin"}
    order.save()
    url = reverse("portal:order_capture", args=[order.order_id])

    portal_client.post(url, {"kind": "all", "action": "confirm"})

    assert order.captures.get().shipping_address == {"city": "Berlin"}
