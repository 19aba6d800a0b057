"""``update_rows``: many rows of one table in one UPDATE … FROM (VALUES …)."""

import pytest
from django.db import IntegrityError, transaction

from customers.models import Installment, InstallmentStatus
from portal.bulk import update_rows
from portal.models import OrderLine


def test_counters_are_added_to_what_the_rows_hold(
    captured_order, django_assert_num_queries
):
    tshirt, jeans = captured_order.lines.order_by("pk")
    OrderLine.objects.filter(pk=tshirt.pk).update(refunded_quantity=1)
    with django_assert_num_queries(1):
        changed = update_rows(
            OrderLine,
            ["refunded_quantity"],
            {tshirt.pk: (1,), jeans.pk: (1,)},
            add=True,
        )
    assert changed == 2
    assert dict(
        OrderLine.objects.filter(order=captured_order).values_list(
            "reference", "refunded_quantity"
        )
    ) == {"TSHIRT-1": 2, "JEANS-1": 1}


def test_values_replace_the_columns_of_each_row(captured_order):
    first, second, *others = Installment.objects.filter(
        plan__order=captured_order
    ).order_by("sequence")
    update_rows(
        Installment,
        ["amount", "status"],
        {
            first.pk: (0, InstallmentStatus.CANCELLED),
            second.pk: (12345, InstallmentStatus.SCHEDULED),
        },
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.amount, first.status) == (0, InstallmentStatus.CANCELLED)
    assert (second.amount, second.status) == (12345, InstallmentStatus.SCHEDULED)
    assert all(
        i.amount == i.original_amount
        for i in Installment.objects.filter(pk__in=[o.pk for o in others])
    )


def test_no_rows_no_statement(django_assert_num_queries, db):
    with django_assert_num_queries(0):
        assert update_rows(OrderLine, ["refunded_quantity"], {}, add=True) == 0


def test_the_tables_constraints_judge_the_result(captured_order):
    tshirt = captured_order.lines.get(reference="TSHIRT-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        update_rows(OrderLine, ["refunded_quantity"], {tshirt.pk: (99,)}, add=True)
