"""The checkout hook: a shop's checkout places an authorized order with us.

Rules of our own (Klarna's checkout is out of scope; this is the smallest
stand-in that lets a shop, and the tests, create real orders through the API):
- The customer is found by email, or created with the order's locale and
  currency; a customer without a payment method gets a card on file, which is
  where money back goes.
- The order is authorized at once for ``order_amount`` (no credit decision), so
  its ``fraud_status`` is ACCEPTED.
- The addresses, the ``customer`` details (date of birth, national id), the
  ``merchant_data`` and the selected shipping option are stored as sent, with
  Klarna's field names; without a shipping address, goods go to the billing
  address.
"""

from dataclasses import asdict

from django.db import transaction

from customers.models import Customer, PaymentMethod
from portal.models import FraudStatus, Merchant, Order, OrderLine

from .validation import CheckoutBody


def place_order(merchant: Merchant, body: CheckoutBody) -> Order:
    """Create the customer if new, then the authorized order and its lines."""
    with transaction.atomic():
        customer, _created = Customer.objects.get_or_create(
            email=body.email,
            defaults={
                "name": body.customer_name or body.email.split("@")[0],
                "locale": body.locale,
            },
        )
        payment_method = customer.default_payment_method()
        if payment_method is None:
            payment_method = PaymentMethod.objects.create(
                customer=customer,
                kind=PaymentMethod.Kind.CARD,
                label="Card on file",
                is_default=True,
            )
        order = Order.objects.create(
            merchant=merchant,
            customer=customer,
            payment_method=payment_method,
            merchant_reference1=body.merchant_reference1,
            merchant_reference2=body.merchant_reference2,
            purchase_country=body.purchase_country,
            purchase_currency=body.purchase_currency,
            locale=body.locale,
            payment_product=body.payment_product,
            order_amount=body.order_amount,
            original_order_amount=body.order_amount,
            fraud_status=FraudStatus.ACCEPTED,
            billing_address=body.billing_address,
            shipping_address=body.shipping_address or body.billing_address,
            customer_details=body.customer_details,
            merchant_data=body.merchant_data,
            selected_shipping_option=body.selected_shipping_option,
        )
        OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                position=position,
                **asdict(line),
            )
            for position, line in enumerate(body.lines)
        )
        return order
