"""Fixtures for the customer side: a second customer, logged-in clients, and
orders refunded every way on every payment product."""

import pytest

from tests.factories import CustomerFactory, PaymentMethodFactory


def log_in(client, customer) -> None:
    """What a successful code login leaves in the session."""
    session = client.session
    session["customer_id"] = customer.pk
    session.save()


@pytest.fixture
def customer_client(client, customer):
    log_in(client, customer)
    return client


@pytest.fixture
def other_customer(db):
    other = CustomerFactory(name="Olle Other", email="olle@example.com", locale="sv_SE")
    PaymentMethodFactory(customer=other, label="Mastercard •••• 5555")
    return other


@pytest.fixture
def other_client(client, other_customer):
    log_in(client, other_customer)
    return client


@pytest.fixture
def notifications_on_commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (the notification jobs) when the block exits."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
