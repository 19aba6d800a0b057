"""Issue 13: the Klarna operations the API lacked, and the bodies that differed.

Each numbered case of the issue is a test with its values; the operations added
(authorization, customer details, acknowledge, shipping info, send-out, due-date
extension) are tested for what they do and what they refuse.
"""

from datetime import timedelta

import pytest

from customers.models import DueDateExtension, Notification
from portal.api.models import DescriptiveRefundLine
from portal.models import LedgerEntry, OrderEvent, OrderStatus, PaymentProduct
from tests.api.helpers import om
from tests.factories import line

pytestmark = pytest.mark.django_db

ADDRESS = {
    "given_name": "Maja",
    "family_name": "Berg",
    "street_address": "Lindenstraße 5",
    "postal_code": "10115",
    "city": "Berlin",
    "country": "de",
    "email": "maja@example.com",
}
TRACKING = {
    "shipping_company": "DHL Paket",
    "shipping_method": "Home",
    "tracking_number": "00340434161094042557",
    "tracking_uri": "https://www.dhl.de/track?00340434161094042557",
}


# Case 2: lists of captures and refunds -------------------------------------------


def test_get_captures_lists_the_orders_captures_oldest_first(api, order):
    order.capture(lines=[("TSHIRT-1", 1)])
    order.capture(lines=[("JEANS-1", 1)])

    response = api.get(om(order, "captures"))

    assert response.status_code == 200
    captures = response.json()
    assert [c["captured_amount"] for c in captures] == [10000, 20000]
    assert [c["klarna_reference"] for c in captures] == [
        f"{order.reference}-1",
        f"{order.reference}-2",
    ]


def test_get_refunds_lists_the_orders_refunds(api, captured_order):
    captured_order.refund_amount(1000)
    captured_order.refund_lines([("JEANS-1", 1)])

    response = api.get(om(captured_order, "refunds"))

    assert response.status_code == 200
    assert [r["refunded_amount"] for r in response.json()] == [1000, 20000]
    assert all(r["credit_invoice"] is False for r in response.json())


def test_lists_of_another_merchants_order_are_no_such_order(other_api, order):
    for part in ("captures", "refunds"):
        response = other_api.get(om(order, part))
        assert response.status_code == 404
        assert response.json()["error_code"] == "NO_SUCH_ORDER"


def test_lists_of_an_order_without_captures_are_empty(api, order):
    assert api.get(om(order, "captures")).json() == []
    assert api.get(om(order, "refunds")).json() == []


# Case 4: refund lines without reference, quantity 0 ------------------------------


def test_a_price_adjustment_line_without_reference_refunds_by_amount(
    api, captured_order
):
    body = {
        "refunded_amount": 500,
        "description": "Price adjustment",
        "order_lines": [
            {
                "name": "Price adjustment",
                "quantity": 1,
                "unit_price": 500,
                "total_amount": 500,
            }
        ],
    }

    response = api.post_json(om(captured_order, "refunds"), body)

    assert response.status_code == 201, response.content
    refund = captured_order.refunds.get()
    assert (refund.kind, refund.refunded_amount) == ("amount", 500)
    detail = api.get(om(captured_order, "refunds", response["Refund-Id"])).json()
    assert detail["order_lines"] == [
        {
            "type": "physical",
            "reference": "",
            "name": "Price adjustment",
            "quantity": 1,
            "quantity_unit": "",
            "unit_price": 500,
            "tax_rate": 0,
            "total_discount_amount": 0,
            "total_amount": 500,
            "total_tax_amount": 0,
        }
    ]
    captured_order.refresh_from_db()
    assert captured_order.refunded_amount == 500
    assert [line.refunded_quantity for line in captured_order.lines.all()] == [0, 0]


def test_item_lines_beside_a_price_adjustment_only_describe_the_refund(
    api, captured_order
):
    body = {
        "refunded_amount": 10500,
        "order_lines": [
            {
                "reference": "TSHIRT-1",
                "name": "T-shirt",
                "quantity": 1,
                "unit_price": 10000,
                "total_amount": 10000,
            },
            {
                "name": "Price adjustment",
                "quantity": 0,
                "unit_price": 0,
                "total_amount": 500,
            },
        ],
    }

    response = api.post_json(om(captured_order, "refunds"), body)

    assert response.status_code == 201, response.content
    refund = captured_order.refunds.get()
    assert (refund.kind, refund.refunded_amount) == ("amount", 10500)
    assert [(d.reference, d.quantity) for d in refund.descriptive_lines.all()] == [
        ("TSHIRT-1", 1),
        ("", 0),
    ]


def test_a_line_with_quantity_0_selects_nothing(api, captured_order):
    body = {
        "refunded_amount": 20000,
        "order_lines": [
            {"reference": "TSHIRT-1", "quantity": 0},
            {"reference": "JEANS-1", "quantity": 1, "total_amount": 20000},
        ],
    }

    response = api.post_json(om(captured_order, "refunds"), body)

    assert response.status_code == 201, response.content
    refund = captured_order.refunds.get()
    assert refund.kind == "items"
    assert [(rl.reference, rl.quantity) for rl in refund.lines.all()] == [
        ("JEANS-1", 1)
    ]


def test_a_price_adjustment_cannot_over_refund(api, captured_order):
    body = {
        "refunded_amount": 40001,
        "order_lines": [
            {"name": "Goodwill", "quantity": 1, "unit_price": 1, "total_amount": 1}
        ],
    }

    response = api.post_json(om(captured_order, "refunds"), body)

    assert response.status_code == 403
    assert not DescriptiveRefundLine.objects.exists()


def test_credit_invoice_true_is_refused_for_an_order_that_is_not_b2b(
    api, captured_order
):
    response = api.post_json(
        om(captured_order, "refunds"), {"refunded_amount": 100, "credit_invoice": True}
    )

    assert response.status_code == 422
    assert response.json()["error_messages"][0].startswith("credit_invoice:")


# Case 5: merchant references ---------------------------------------------------


def test_merchant_references_on_a_cancelled_order_are_403(api, order):
    order.cancel()

    response = api.patch_json(
        om(order, "merchant-references"), {"merchant_reference1": "NEW"}
    )

    assert response.status_code == 403
    assert response.json()["error_code"] == "NOT_ALLOWED"
    order.refresh_from_db()
    assert order.merchant_reference1 != "NEW"


@pytest.mark.parametrize("body", [{}, None])
def test_merchant_references_with_an_empty_body_change_nothing(api, order, body):
    before = order.merchant_reference1

    response = api.patch_json(om(order, "merchant-references"), body)

    assert response.status_code == 204
    order.refresh_from_db()
    assert order.merchant_reference1 == before
    assert not order.events.exists()


# Case 6: shipping info with a capture ---------------------------------------------


def test_shipping_info_and_delay_sent_with_a_capture_are_kept_and_returned(api, order):
    body = {"captured_amount": 40000, "shipping_info": [TRACKING], "shipping_delay": 2}

    response = api.post_json(om(order, "captures"), body)

    assert response.status_code == 201, response.content
    capture = order.captures.get()
    assert (capture.shipping_info, capture.shipping_delay) == ([TRACKING], 2)
    returned = api.get(om(order, "captures", response["Capture-Id"])).json()
    assert returned["shipping_info"] == [TRACKING]


def test_shipping_info_can_be_added_to_a_capture_later(api, captured_order):
    capture = captured_order.captures.get()
    url = om(captured_order, "captures", str(capture.capture_id), "shipping-info")

    first = api.post_json(url, {"shipping_info": [TRACKING]})
    second = api.post_json(
        url, {"shipping_info": [{"return_tracking_number": "RET-1"}]}
    )

    assert (first.status_code, second.status_code) == (204, 204)
    capture.refresh_from_db()
    assert capture.shipping_info == [TRACKING, {"return_tracking_number": "RET-1"}]


def test_shipping_info_needs_at_least_one_entry_and_a_known_method(api, captured_order):
    capture = captured_order.captures.get()
    url = om(captured_order, "captures", str(capture.capture_id), "shipping-info")

    assert api.post_json(url, {"shipping_info": []}).status_code == 400
    response = api.post_json(url, {"shipping_info": [{"shipping_method": "Drone"}]})
    assert response.status_code == 400
    assert response.json()["error_messages"][0].startswith(
        "shipping_info[0].shipping_method:"
    )


def test_shipping_info_on_an_unknown_capture_is_no_such_capture(api, captured_order):
    response = api.post_json(
        om(captured_order, "captures", "nope", "shipping-info"),
        {"shipping_info": [TRACKING]},
    )

    assert response.status_code == 404
    assert response.json()["error_code"] == "NO_SUCH_CAPTURE"


def test_shipping_info_can_be_added_to_the_order(api, order):
    response = api.post_json(om(order, "shipping-info"), {"shipping_info": [TRACKING]})

    assert response.status_code == 204
    assert api.get(om(order)).json()["shipping_info"] == [TRACKING]


# Case 7: the checkout's fields on orders, captures and refunds --------------------


def test_the_checkout_keeps_addresses_customer_and_shipping_option(api, merchant):
    body = {
        "customer": {
            "email": "maja@example.com",
            "date_of_birth": "1990-04-12",
        },
        "payment_product": "pay_later",
        "purchase_country": "DE",
        "purchase_currency": "EUR",
        "locale": "de-DE",
        "order_amount": 10000,
        "order_lines": [
            {
                "reference": "TSHIRT-1",
                "name": "T-shirt",
                "quantity": 1,
                "unit_price": 10000,
                "total_amount": 10000,
            }
        ],
        "billing_address": ADDRESS,
        "merchant_data": '{"cart": 77}',
        "selected_shipping_option": {"id": "dhl", "name": "DHL Home", "price": 0},
    }

    created = api.post_json("/payments/v1/orders", body)

    assert created.status_code == 201, created.content
    order = api.get(created["Location"]).json()
    stored_address = {**ADDRESS, "country": "DE"}
    assert order["fraud_status"] == "ACCEPTED"
    assert order["billing_address"] == stored_address
    assert order["shipping_address"] == stored_address
    assert order["customer"] == {"date_of_birth": "1990-04-12"}
    assert order["merchant_data"] == '{"cart": 77}'
    assert order["selected_shipping_option"] == {
        "id": "dhl",
        "name": "DHL Home",
        "price": 0,
    }
    assert order["initial_payment_method"] == {
        "type": "INVOICE",
        "description": "Pay later in 30 days",
    }


def test_a_capture_keeps_the_addresses_it_shipped_to(api, order):
    order.billing_address = order.shipping_address = {"city": "Berlin"}
    order.save()
    response = api.post_json(om(order, "captures"), {"captured_amount": 10000})
    api.patch_json(
        om(order, "customer-details"), {"shipping_address": {"city": "Hamburg"}}
    )

    capture = api.get(om(order, "captures", response["Capture-Id"])).json()

    assert capture["shipping_address"] == {"city": "Berlin"}
    assert api.get(om(order)).json()["shipping_address"] == {"city": "Hamburg"}


# Update authorization -------------------------------------------------------------


def tshirts(quantity: int, **overrides) -> dict:
    return {
        "reference": "TSHIRT-1",
        "name": "T-shirt",
        "quantity": quantity,
        "unit_price": 10000,
        "tax_rate": 2500,
        "total_amount": 10000 * quantity,
        **overrides,
    }


JEANS = {
    "reference": "JEANS-1",
    "name": "Jeans",
    "quantity": 1,
    "unit_price": 20000,
    "tax_rate": 2500,
    "total_amount": 20000,
}


def test_update_authorization_lowers_the_amount_and_tells_the_customer(api, order):
    body = {"order_amount": 30000, "order_lines": [tshirts(1), JEANS]}

    response = api.patch_json(om(order, "authorization"), body)

    assert response.status_code == 204, response.content
    order.refresh_from_db()
    assert (order.order_amount, order.original_order_amount) == (30000, 40000)
    assert [(ln.reference, ln.quantity) for ln in order.lines.all()] == [
        ("TSHIRT-1", 1),
        ("JEANS-1", 1),
    ]
    notification = Notification.objects.get(kind=Notification.Kind.ORDER_UPDATED)
    assert "from 400,00\xa0€ to 300,00\xa0€" in notification.body


def test_update_authorization_removes_a_line_left_out(api, order):
    response = api.patch_json(
        om(order, "authorization"),
        {"order_amount": 20000, "order_lines": [tshirts(2)]},
    )

    assert response.status_code == 204
    assert list(order.lines.values_list("reference", flat=True)) == ["TSHIRT-1"]


def test_update_authorization_is_never_below_the_captured_amount(api, order):
    order.capture(lines=[("JEANS-1", 1)])

    response = api.patch_json(
        om(order, "authorization"),
        {"order_amount": 10000, "order_lines": [tshirts(1)]},
    )

    assert response.status_code == 403
    order.refresh_from_db()
    assert order.order_amount == 40000


def test_update_authorization_is_never_above_the_authorized_amount(api, order):
    response = api.patch_json(
        om(order, "authorization"),
        {"order_amount": 50000, "order_lines": [tshirts(3), JEANS]},
    )

    assert response.status_code == 403
    assert "authorized at checkout (40000)" in response.json()["error_messages"][0]


def test_update_authorization_keeps_captured_units_as_they_were(api, order):
    order.capture(lines=[("TSHIRT-1", 1)])

    changed_price = api.patch_json(
        om(order, "authorization"),
        {
            "order_amount": 29000,
            "order_lines": [tshirts(1, unit_price=9000, total_amount=9000), JEANS],
        },
    )
    dropped = api.patch_json(
        om(order, "authorization"), {"order_amount": 20000, "order_lines": [JEANS]}
    )
    kept = api.patch_json(
        om(order, "authorization"), {"order_amount": 10000, "order_lines": [tshirts(1)]}
    )

    assert changed_price.status_code == 422
    assert dropped.status_code == 403
    assert kept.status_code == 204
    order.refresh_from_db()
    assert (order.order_amount, order.captured_amount, order.status) == (
        10000,
        10000,
        OrderStatus.CAPTURED,
    )


def test_update_authorization_lines_must_add_up(api, order):
    response = api.patch_json(
        om(order, "authorization"), {"order_amount": 30000, "order_lines": [JEANS]}
    )

    assert response.status_code == 422
    assert response.json()["error_messages"][0].startswith("order_amount:")


def test_update_authorization_on_a_cancelled_order_is_403(api, order):
    order.cancel()

    response = api.patch_json(
        om(order, "authorization"), {"order_amount": 20000, "order_lines": [JEANS]}
    )

    assert response.status_code == 403


# Customer details, acknowledge ------------------------------------------------------


def test_customer_details_replace_the_shipping_address(api, order):
    response = api.patch_json(
        om(order, "customer-details"), {"shipping_address": ADDRESS}
    )

    assert response.status_code == 204
    order.refresh_from_db()
    assert order.shipping_address == {**ADDRESS, "country": "DE"}
    assert order.events.filter(kind=OrderEvent.Kind.CUSTOMER_UPDATED).exists()


def test_customer_details_after_everything_shipped_are_403(api, captured_order):
    response = api.patch_json(
        om(captured_order, "customer-details"), {"shipping_address": ADDRESS}
    )

    assert response.status_code == 403
    assert response.json()["error_code"] == "NOT_ALLOWED"


def test_acknowledge_is_204_and_recorded_once(api, order):
    first = api.post(om(order, "acknowledge"))
    second = api.post(om(order, "acknowledge"))

    assert (first.status_code, second.status_code) == (204, 204)
    assert order.events.filter(kind=OrderEvent.Kind.ACKNOWLEDGED).count() == 1


# Trigger send-out -----------------------------------------------------------------


def test_trigger_send_out_sends_the_customer_the_invoice_again(
    api, captured_order, django_capture_on_commit_callbacks
):
    capture = captured_order.captures.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            om(captured_order, "captures", str(capture.capture_id), "trigger-send-out")
        )

    assert response.status_code == 204
    notification = Notification.objects.get(kind=Notification.Kind.INVOICE)
    assert capture.klarna_reference in notification.title
    notification.refresh_from_db()
    assert notification.email_sent_at is not None


# Due-date extension -----------------------------------------------------------------


@pytest.fixture
def invoice(make_order):
    """A captured pay-later order of 100.00: one invoice due in 30 days."""
    order = make_order(
        product=PaymentProduct.PAY_LATER, lines=[line("COAT-1", 10000)], capture=True
    )
    return order, order.captures.get()


def test_extension_options_are_the_merchants_fees_for_a_pay_later_invoice(api, invoice):
    order, capture = invoice

    response = api.get(
        om(order, "captures", str(capture.capture_id), "extend-due-date-options")
    )

    assert response.status_code == 200
    assert response.json() == {
        "currency": "EUR",
        "options": [
            {"number_of_days": 7, "amount": 100},
            {"number_of_days": 14, "amount": 200},
            {"number_of_days": 30, "amount": 300},
        ],
    }


def test_extending_a_due_date_moves_the_plan_and_charges_the_merchant(api, invoice):
    order, capture = invoice
    installment = capture.plan.installments.get()
    due = installment.due_date
    url = om(order, "captures", str(capture.capture_id), "extend-due-date")

    response = api.patch_json(url, {"number_of_days": 14})

    assert response.status_code == 204, response.content
    installment.refresh_from_db()
    assert installment.due_date == due + timedelta(days=14)
    assert installment.amount == 10000
    extension = DueDateExtension.objects.get()
    assert (extension.fee_amount, extension.new_due_date) == (200, installment.due_date)
    fee = LedgerEntry.objects.filter(capture=capture, reference__startswith="Due")
    assert list(fee.values_list("kind", "amount")) == [("FEE", -200)]
    assert Notification.objects.filter(
        kind=Notification.Kind.DUE_DATE_EXTENDED
    ).exists()
    again = api.patch_json(url, {"number_of_days": 7})
    assert again.status_code == 403
    assert installment.plan.due_date_extension_options() == []


def test_a_due_date_extension_must_be_an_offered_option(api, invoice):
    order, capture = invoice

    response = api.patch_json(
        om(order, "captures", str(capture.capture_id), "extend-due-date"),
        {"number_of_days": 10},
    )

    assert response.status_code == 403
    assert "7, 14, 30" in response.json()["error_messages"][0]


def test_only_pay_later_invoices_can_be_extended(api, captured_order):
    capture = captured_order.captures.get()
    base = om(captured_order, "captures", str(capture.capture_id))

    options = api.get(f"{base}/extend-due-date-options").json()
    response = api.patch_json(f"{base}/extend-due-date", {"number_of_days": 7})

    assert options["options"] == []
    assert response.status_code == 403


def test_the_lists_cost_the_same_queries_for_many_captures_and_refunds(
    api, make_order, django_assert_max_num_queries
):
    order = make_order(lines=[line(f"SKU-{i}", 1000, 2) for i in range(8)])
    for i in range(8):
        order.capture(lines=[(f"SKU-{i}", 2)])
        order.refund_lines([(f"SKU-{i}", 1)])

    with django_assert_max_num_queries(12):
        captures = api.get(om(order, "captures"))
    with django_assert_max_num_queries(12):
        refunds = api.get(om(order, "refunds"))

    assert (len(captures.json()), len(refunds.json())) == (8, 8)
