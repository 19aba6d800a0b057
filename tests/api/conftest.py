"""Fixtures for the Order Management API: credentials and an authenticated client."""

import pytest
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

from portal.api.models import ApiCredential
from tests.api.helpers import ApiClient, basic
from tests.factories import MerchantFactory, MerchantUserFactory

#: The project's WSGI app, which schemathesis calls.
WSGI_APP = get_wsgi_application()


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """The rate limit counts in the cache, which outlives each test's database."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def credential(merchant, merchant_user):
    """``(credential, secret)`` for the ``merchant`` fixture's store."""
    return ApiCredential.issue(merchant, "Shop backend", by=merchant_user.user)


@pytest.fixture
def api(credential) -> ApiClient:
    cred, secret = credential
    return ApiClient(basic(cred.username, secret))


@pytest.fixture
def other_api(db) -> ApiClient:
    """A client authenticated as a different merchant."""
    other = MerchantFactory(name="Other Store", slug="other-store", country="SE")
    admin = MerchantUserFactory(merchant=other)
    cred, secret = ApiCredential.issue(other, "Other backend", by=admin.user)
    client = ApiClient(basic(cred.username, secret))
    client.merchant = other
    return client


@pytest.fixture
def anonymous() -> ApiClient:
    return ApiClient()


@pytest.fixture
def wsgi_keeps_the_test_connection():
    """The WSGI app closes the database connection after each request, which would
    drop the test's transaction on PostgreSQL; Django's own test client
    disconnects the same signal handlers."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
