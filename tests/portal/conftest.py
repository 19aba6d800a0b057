"""Fixtures for the portal's view tests: an owner, and a second merchant whose
data must never show. Logged-in clients live in tests/conftest.py."""

import pytest

from portal.models import MerchantUser
from tests.conftest import member
from tests.factories import (
    CustomerFactory,
    MerchantFactory,
    OrderFactory,
    PaymentMethodFactory,
)


@pytest.fixture
def owner(merchant):
    return member(merchant, MerchantUser.Role.OWNER, "olga")


@pytest.fixture
def other_merchant(db):
    return MerchantFactory(name="Other Store", slug="other-store", country="SE")


@pytest.fixture
def other_order(other_merchant):
    customer = CustomerFactory(name="Sven Other", email="sven@example.com")
    PaymentMethodFactory(customer=customer)
    order = OrderFactory(merchant=other_merchant, customer=customer)
    order.capture()
    return order
