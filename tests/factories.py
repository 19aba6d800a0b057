"""factory-boy factories, one per model; used by the tests and by ``seed_demo``.

Captures and refunds are made through the model methods (``order.capture``,
``order.refund_lines``...), never by inserting rows, so that every counter, plan and
ledger entry is exactly what the product would have written.
"""

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from factory.django import DjangoModelFactory

from customers.models import Customer, PaymentMethod
from portal.models import Merchant, MerchantUser, Order, OrderLine, PaymentProduct

MARKETS = {
    "US": ("USD", "en_US"),
    "DE": ("EUR", "de_DE"),
    "SE": ("SEK", "sv_SE"),
    "GB": ("GBP", "en_GB"),
    "NL": ("EUR", "nl_NL"),
}


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class MerchantFactory(DjangoModelFactory):
    class Meta:
        model = Merchant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Store {n}")
    slug = factory.Sequence(lambda n: f"store-{n}")
    country = "DE"
    currency = factory.LazyAttribute(
        lambda m: MARKETS.get(m.country, ("EUR", "en_US"))[0]
    )
    locale = factory.LazyAttribute(
        lambda m: MARKETS.get(m.country, ("EUR", "en_US"))[1]
    )


class MerchantUserFactory(DjangoModelFactory):
    class Meta:
        model = MerchantUser

    user = factory.SubFactory(UserFactory)
    merchant = factory.SubFactory(MerchantFactory)
    role = MerchantUser.Role.ADMIN
    # English unless a test says otherwise: blank would follow the store's locale
    # (the default store is German), and most tests read the English pages.
    language = "en"


class CustomerFactory(DjangoModelFactory):
    class Meta:
        model = Customer
        django_get_or_create = ("email",)

    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    locale = "en_US"


class PaymentMethodFactory(DjangoModelFactory):
    class Meta:
        model = PaymentMethod

    customer = factory.SubFactory(CustomerFactory)
    kind = PaymentMethod.Kind.CARD
    label = factory.Sequence(lambda n: f"Visa •••• {4000 + n % 6000:04d}")
    is_default = True


class OrderLineFactory(DjangoModelFactory):
    class Meta:
        model = OrderLine

    order = None  # Lines are made by OrderFactory(lines=...).
    type = OrderLine.Type.PHYSICAL
    reference = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Faker("word")
    quantity = 1
    unit_price = 1000
    tax_rate = 2500
    total_discount_amount = 0
    total_amount = factory.LazyAttribute(
        lambda o: o.quantity * o.unit_price - o.total_discount_amount
    )
    total_tax_amount = factory.LazyAttribute(
        lambda o: OrderLine.tax_for(o.total_amount, o.tax_rate)
    )


class OrderFactory(DjangoModelFactory):
    """An authorized order. ``lines`` is a list of dicts of OrderLine fields
    (``reference``, ``name``, ``quantity``, ``unit_price``, ``type``...); the order
    amount is their sum."""

    class Meta:
        model = Order

    merchant = factory.SubFactory(MerchantFactory)
    customer = factory.SubFactory(CustomerFactory)
    payment_method = factory.LazyAttribute(
        lambda o: (
            o.customer.default_payment_method()
            or PaymentMethodFactory(customer=o.customer)
        )
    )
    merchant_reference1 = factory.Sequence(lambda n: f"{100000 + n}")
    merchant_reference2 = ""
    purchase_country = factory.LazyAttribute(lambda o: o.merchant.country)
    purchase_currency = factory.LazyAttribute(lambda o: o.merchant.currency)
    locale = factory.LazyAttribute(lambda o: o.merchant.locale)
    payment_product = PaymentProduct.PAY_IN_4
    created_at = factory.LazyFunction(timezone.now)
    lines = factory.LazyFunction(
        lambda: [
            {
                "reference": "TSHIRT-1",
                "name": "T-shirt",
                "quantity": 2,
                "unit_price": 10000,
            },
            {
                "reference": "JEANS-1",
                "name": "Jeans",
                "quantity": 1,
                "unit_price": 20000,
            },
        ]
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        line_specs = kwargs.pop("lines", None) or []
        built = [
            OrderLineFactory.build(position=i, **spec)
            for i, spec in enumerate(line_specs)
        ]
        amount = sum(line.total_amount for line in built)
        kwargs.setdefault("order_amount", amount)
        kwargs.setdefault("original_order_amount", kwargs["order_amount"])
        order = super()._create(model_class, *args, **kwargs)
        if "expires_at" not in kwargs:
            order.expires_at = order.created_at + timezone.timedelta(days=28)
            order.save(update_fields=["expires_at"])
        for line in built:
            line.order = order
        OrderLine.objects.bulk_create(built)
        return order

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        kwargs.pop("lines", None)
        return super()._build(model_class, *args, **kwargs)


def line(reference: str, unit_price: int, quantity: int = 1, **fields) -> dict:
    """A line spec for ``OrderFactory(lines=[...])``."""
    return {
        "reference": reference,
        "name": fields.pop("name", reference.title()),
        "unit_price": unit_price,
        "quantity": quantity,
        **fields,
    }
