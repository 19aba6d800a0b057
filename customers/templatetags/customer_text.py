"""Template filters for the customer's pages and emails."""

from django import template
from django.utils.translation import pgettext_lazy

from customers.language import day
from portal.models import PaymentProduct

register = template.Library()

#: The payment products as customers read them, in their language (context
#: "payment product": the merchant portal names them on its own).
PRODUCT_NAMES = {
    PaymentProduct.PAY_IN_4: pgettext_lazy("payment product", "Pay in 4"),
    PaymentProduct.PAY_IN_3: pgettext_lazy("payment product", "Pay in 3"),
    PaymentProduct.PAY_LATER: pgettext_lazy("payment product", "Pay later in 30 days"),
    PaymentProduct.PAY_NOW: pgettext_lazy("payment product", "Pay now"),
    PaymentProduct.FINANCING: pgettext_lazy("payment product", "Financing"),
    PaymentProduct.ONE_TIME_CARD: pgettext_lazy(
        "payment product", "One-time card Pay in 4"
    ),
}


@register.filter
def product_name(product: str) -> str:
    """``{{ order.payment_product|product_name }}``: the product in the active
    language; an unknown value as it is."""
    return str(PRODUCT_NAMES.get(product, product))


@register.filter
def customer_day(value) -> str:
    """``{{ due|customer_day }}``: a date as the customers' sentences write it in
    the active language (``customers.language.day``)."""
    return day(value) if value else ""
