"""Searches are planned for what they look for, not with a prepared statement's
generic plan (``portal.prepared``; issue 16: the email prefix search "maja@" took
324 ms at 1,000,000 orders once PostgreSQL switched it to a generic plan)."""

import pytest
from django.db import connection
from django.urls import reverse

from portal.models import Order
from portal.prepared import planned_per_call
from tests.factories import UserFactory

pytestmark = pytest.mark.postgres

URL = reverse("portal:order_list")


def prepared_statements() -> list[str]:
    """The statements prepared on this connection (PostgreSQL keeps them per
    session), read without preparing this query itself."""
    with connection.cursor() as cursor:
        cursor.cursor.execute(
            "SELECT statement FROM pg_prepared_statements", prepare=False
        )
        return [row[0] for row in cursor.fetchall()]


def test_a_query_run_inside_planned_per_call_is_never_prepared(db):
    query = Order.objects.filter(reference__startswith="MAJA").values_list("pk")
    with planned_per_call():
        for _ in range(8):
            list(query.all())
    assert not [s for s in prepared_statements() if "portal_order" in s]
    for _ in range(3):
        list(query.all())
    assert [s for s in prepared_statements() if "portal_order" in s]


def test_repeated_text_searches_are_not_prepared_and_the_rest_of_the_list_is(
    portal_client, make_order
):
    order = make_order()
    for _ in range(8):
        assert portal_client.get(URL, {"q": "maja@"}).status_code == 200
    assert [s for s in prepared_statements() if "LIKE" in s] == []
    # An order id is unique and every filter has an index that serves any value:
    # their plans do not depend on what is looked for, so they are prepared.
    for _ in range(3):
        portal_client.get(URL)
        portal_client.get(URL, {"status": "CANCELLED"})
        portal_client.get(URL, {"q": str(order.order_id)})
    prepared = [s for s in prepared_statements() if '"portal_order"' in s]
    assert [s for s in prepared if '"status" =' in s]
    assert [s for s in prepared if '"order_id" =' in s]


def test_the_staff_admins_order_search_is_not_prepared(client, make_order):
    make_order()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("admin:portal_order_changelist")
    for _ in range(8):
        response = client.get(url, {"q": "maja@"})
        assert response.status_code == 200
    assert not [s for s in prepared_statements() if "LIKE" in s]
