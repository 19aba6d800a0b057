"""Shared fixtures. Tests that need PostgreSQL are marked ``postgres`` and skipped
on SQLite with a reason that says so."""

import pytest
from django.db import connection
from django.utils import translation

from portal.models import MerchantUser, PaymentProduct
from tests.factories import (
    CustomerFactory,
    MerchantFactory,
    MerchantUserFactory,
    OrderFactory,
    PaymentMethodFactory,
    UserFactory,
    line,
)

pytest_plugins = ["tests.browser_fixtures"]


def pytest_collection_modifyitems(config, items):
    if connection.vendor != "postgresql":
        skip = pytest.mark.skip(
            reason="needs PostgreSQL (row locks, concurrent connections): "
            "set DATABASE_URL=postgres://... to run it"
        )
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def default_language_after_each_test():
    """A request activates its reader's language in the test's thread (as in a
    server's); the next test starts from the default again."""
    yield
    translation.deactivate()


@pytest.fixture
def pipelines_entered(monkeypatch) -> list:
    """The psycopg connections a pipeline (``portal.pipeline``) was entered on,
    one item per pipeline, in the test."""
    import psycopg

    entered = []
    pipeline = psycopg.Connection.pipeline

    def counting(self):
        entered.append(self)
        return pipeline(self)

    monkeypatch.setattr(psycopg.Connection, "pipeline", counting)
    return entered


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def merchant(db):
    """A German store whose orders are in English ("en_DE": German number and
    money format, English words), so tests about behaviour read English; the
    translation tests make their own "de_DE" and "sv_SE" orders."""
    return MerchantFactory(
        name="Nordic Threads", slug="nordic-threads", country="DE", locale="en_DE"
    )


@pytest.fixture
def us_merchant(db):
    return MerchantFactory(name="Acme Outfitters", slug="acme", country="US")


@pytest.fixture
def merchant_user(merchant):
    return MerchantUserFactory(
        merchant=merchant,
        user=UserFactory(username="anna"),
        role=MerchantUser.Role.ADMIN,
    )


@pytest.fixture
def staff_user(merchant_user):
    return merchant_user.user


@pytest.fixture
def customer(db):
    customer = CustomerFactory(
        name="Maja Berg", email="maja@example.com", locale="en_DE"
    )  # English words, German number format, like ``merchant``
    PaymentMethodFactory(customer=customer, label="Visa •••• 4242")
    return customer


@pytest.fixture
def order(merchant, customer):
    """A 400.00 EUR pay-in-4 order: two T-shirts at 100.00 and jeans at 200.00."""
    return OrderFactory(merchant=merchant, customer=customer)


@pytest.fixture
def captured_order(order, staff_user):
    order.capture(by=staff_user)
    return order


@pytest.fixture
def make_order(merchant, customer):
    """``make_order(product=..., lines=[line("SKU", 1000, 2)], capture=True)``."""

    def make(product=PaymentProduct.PAY_IN_4, lines=None, capture=False, **fields):
        fields.setdefault("merchant", merchant)
        fields.setdefault("customer", customer)
        order = OrderFactory(
            payment_product=product,
            lines=lines or [line("TSHIRT-1", 10000)],
            **fields,
        )
        if capture:
            order.capture()
        return order

    return make


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
def many_lines_order(make_order):
    def make(count: int):
        lines = [line(f"SKU-{i:04d}", 1000 + i, 1 + i % 3) for i in range(count)]
        return make_order(lines=lines, capture=True)

    return make


def _redis_reachable() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["redis", "database"])
def shared_cache(request, settings, db):
    """The cache that production shares between processes: Redis (CACHE_URL), or
    the database cache without it. Redis keys get a prefix of their own, so
    nothing else on the server is read or cleared."""
    import uuid

    if request.param == "redis":
        if not _redis_reachable():
            pytest.skip("needs Redis on 127.0.0.1:6379")
        settings.CACHES = {
            "default": {
                "BACKEND": "portal.cache.RedisCache",
                "LOCATION": "redis://127.0.0.1:6379/0",
                "OPTIONS": {"parser_class": "redis._parsers.hiredis._HiredisParser"},
                "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
            }
        }
    else:
        settings.CACHES = {
            "default": {
                "BACKEND": "portal.cache.DatabaseCache",
                "LOCATION": "portal_cache",
            }
        }
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    return request.param
