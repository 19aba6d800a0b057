"""``portal.compiled.CompiledRows``: the rows the filtered queryset gives,
from SQL compiled once."""

import pytest
from django.db.models import Count

from portal import overview
from portal.compiled import CompiledRows
from portal.models import Order, OrderLine, PaymentProduct
from refunds.models import Refund
from tests.factories import line

ORDER_PAGE_QUERIES = [
    overview.ORDER_LINES_WITH_CAPTURE_LINES,
    overview.CAPTURES,
    overview.REFUNDS_WITH_ALLOCATIONS,
    overview.REFUND_LINES,
    overview.REPAYMENTS,
    overview.LEDGER_ENTRIES,
]


@pytest.mark.parametrize("compiled", ORDER_PAGE_QUERIES)
def test_the_order_pages_queries_read_what_the_orm_reads(
    compiled, make_order, order, merchant_user, django_capture_on_commit_callbacks
):
    paid_now = make_order(
        product=PaymentProduct.PAY_NOW,
        lines=[line("A", 4000, 2), line("B", 6000)],
        capture=True,
    )
    with django_capture_on_commit_callbacks(execute=True):
        paid_now.refund_lines(
            [("A", 1)], return_fee=500, by=merchant_user.user, reference="R-1"
        )
        paid_now.refund_amount(2000)
    expected = list(compiled.queryset.filter(**{compiled.lookup: paid_now}))
    assert expected  # every query has rows for this order
    assert compiled.rows(paid_now.pk) == expected
    assert compiled.rows(order.pk) == list(
        compiled.queryset.filter(**{compiled.lookup: order})
    )
    assert compiled.rows(0) == []


def test_rows_are_tuples_with_the_fields_converted(captured_order, merchant_user):
    captured_order.refund_lines([("TSHIRT-1", 1)], by=merchant_user.user)
    (row,) = overview.REFUNDS_WITH_ALLOCATIONS.rows(captured_order.pk)
    refund = Refund.objects.get()
    assert isinstance(row, tuple)
    assert row[overview.RefundRow.COLUMNS.index("refund_id")] == refund.refund_id
    assert row[overview.RefundRow.COLUMNS.index("created_at")] == refund.created_at
    assert isinstance(row[-1], dict)  # the allocation's recorded effect (JSON)


def test_one_query_a_call(captured_order, django_assert_num_queries):
    with django_assert_num_queries(1):
        overview.LEDGER_ENTRIES.rows(captured_order.pk)


@pytest.mark.parametrize(
    "queryset",
    [
        OrderLine.objects.all(),
        OrderLine.objects.values("name"),
        OrderLine.objects.values_list("name", flat=True),
        Order.objects.annotate(line_count=Count("lines")).values_list(
            "pk", "line_count"
        ),
    ],
    ids=["models", "dicts", "flat", "annotation"],
)
def test_only_values_list_of_fields_is_compiled(queryset):
    with pytest.raises(ValueError):
        CompiledRows(queryset, "order")
