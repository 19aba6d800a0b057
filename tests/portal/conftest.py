"""Fixtures for the portal's view tests: logged-in clients by role, a second
merchant whose data must never show, and orders with many lines."""

import pytest

from portal.models import MerchantUser
from tests.factories import (
    CustomerFactory,
    MerchantFactory,
    MerchantUserFactory,
    OrderFactory,
    PaymentMethodFactory,
    UserFactory,
    line,
)


def member(merchant, role, username):
    return MerchantUserFactory(
        merchant=merchant, role=role, user=UserFactory(username=username)
    )


@pytest.fixture
def portal_client(client, merchant_user):
    client.force_login(merchant_user.user)
    return client


@pytest.fixture
def client_as(client, merchant):
    """``client_as("viewer")``: the test client logged in with that role."""

    def login(role: str):
        person = member(merchant, role, f"{role}-person")
        client.force_login(person.user)
        return client

    return login


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


@pytest.fixture
def many_lines_order(make_order):
    def make(count: int):
        lines = [line(f"SKU-{i:04d}", 1000 + i, 1 + i % 3) for i in range(count)]
        return make_order(lines=lines, capture=True)

    return make
