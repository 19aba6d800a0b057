"""Scoped order querysets fetch forgotten relations for the whole page at once."""

import pytest

from portal.models import Order
from tests.factories import CustomerFactory, OrderFactory, PaymentMethodFactory

pytestmark = pytest.mark.django_db


def test_a_relation_not_selected_costs_one_query_for_all_orders(
    merchant, django_assert_num_queries
):
    for i in range(5):
        customer = CustomerFactory(email=f"peer{i}@example.com")
        PaymentMethodFactory(customer=customer)
        OrderFactory(merchant=merchant, customer=customer)
    with django_assert_num_queries(2):
        names = [o.customer.name for o in Order.objects.for_merchant(merchant)]
    assert len(names) == 5


def test_customer_scope_fetches_merchants_of_all_orders_at_once(
    merchant, us_merchant, customer, django_assert_num_queries
):
    OrderFactory(merchant=merchant, customer=customer)
    OrderFactory(merchant=us_merchant, customer=customer)
    with django_assert_num_queries(2):
        stores = {o.merchant.name for o in Order.objects.for_customer(customer)}
    assert stores == {merchant.name, us_merchant.name}
