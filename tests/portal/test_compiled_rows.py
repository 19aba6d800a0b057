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
    expected = list(compiled.queryset.filter(**{compiled.lookups[0]: paid_now}))
    assert expected  # every query has rows for this order
    assert compiled.rows(paid_now.pk) == expected
    assert compiled.rows(order.pk) == list(
        compiled.queryset.filter(**{compiled.lookups[0]: order})
    )
    assert compiled.rows(0) == []


def test_rows_are_tuples_with_the_fields_converted(captured_order, merchant_user):
    captured_order.refund_lines([("TSHIRT-1", 1)], by=merchant_user.user)
    refund = Refund.objects.get()
    # The converters are found on the first call and kept for the next.
    for _ in range(2):
        (row,) = overview.REFUNDS_WITH_ALLOCATIONS.rows(captured_order.pk)
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
        Order.objects.extra(select={"one": "1"}).values_list("pk", "one"),
    ],
    ids=["models", "dicts", "flat", "extra"],
)
def test_only_values_list_of_fields_and_annotations_is_compiled(queryset):
    with pytest.raises(ValueError):
        CompiledRows(queryset, "order")


def test_annotations_and_a_limit_read_what_the_orm_reads(make_order, order):
    """Annotations come back where the values_list names them, converted."""
    make_order(lines=[line("A", 4000, 2), line("B", 6000)])
    make_order()
    queryset = (
        Order.objects.annotate(line_count=Count("lines"))
        .order_by("-pk")
        .values_list("line_count", "reference", "created_at")
    )
    compiled = CompiledRows(queryset, "customer", limit=2)
    expected = list(queryset.filter(customer=order.customer)[:2])
    assert [count for count, *_ in expected] == [1, 2]
    assert compiled.rows(order.customer_id) == expected
    assert compiled.rows(0) == []


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


REFUND_READS = [
    ("_ORDER", "pk"),
    ("_CAPTURES", "order"),
    ("_LINES", "order"),
    ("_CAPTURE_LINES", "capture__order"),
    ("_PLANS", "order"),
    ("_INSTALLMENTS", "plan__order"),
]


@pytest.mark.parametrize(("name", "lookup"), REFUND_READS)
def test_the_refund_engines_reads_give_the_objects_the_orm_gives(
    name, lookup, make_order, merchant_user, django_capture_on_commit_callbacks
):
    """``refunds.engine``'s reads (``portal.compiled.CompiledObjects``), read
    only and locked: the same objects, in the same order, with the related
    objects ``select_related`` loads."""
    from django.db import transaction

    from refunds import engine

    two = make_order(lines=[line("A", 4000, 2), line("B", 6000)], capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        two.refund_lines([("A", 1)], by=merchant_user.user)
    read = getattr(engine, name)
    expected = list(read.read.queryset.filter(**{lookup: two.pk}))
    assert expected
    with transaction.atomic():
        for got in (read(two.pk, lock=False), read(two.pk, lock=True)):
            assert [_fields(o) for o in got] == [_fields(o) for o in expected]
            for obj, orm in zip(got, expected, strict=True):
                for related in read.read.queryset.query.select_related or ():
                    assert _fields(getattr(obj, related)) == _fields(
                        getattr(orm, related)
                    )
    assert read(0, lock=False) == []


def test_a_locked_refund_read_outside_a_transaction_is_refused(transactional_db):
    from django.db.transaction import TransactionManagementError

    from refunds import engine

    with pytest.raises(TransactionManagementError):
        engine._CAPTURES(1, lock=True)


@pytest.mark.postgres
def test_a_locked_read_locks_in_its_sql(db):
    from django.db import transaction

    from refunds import engine

    with transaction.atomic():
        sql = engine._CAPTURE_LINES.locked._compiled[1]
    assert "FOR UPDATE OF" in sql
    assert "ORDER BY" in sql


def test_children_given_as_prefetched_are_read_without_a_query_and_chain_as_usual(
    make_order, django_assert_num_queries
):
    from portal.compiled import CompiledObjects, give_prefetched

    first = make_order(lines=[line("A", 4000, 2), line("B", 6000)])
    second = make_order(lines=[line("C", 1000)])
    lines = CompiledObjects(OrderLine.objects.all(), "order")
    give_prefetched([first], "lines", lines.objects(first.pk), "order_id")
    give_prefetched([second], "lines", [], "order_id")
    with django_assert_num_queries(0):
        assert [x.reference for x in first.lines.all()] == ["A", "B"]
        assert list(second.lines.all()) == []
    # Chained, it is the related manager's own query again.
    assert [x.reference for x in second.lines.filter(reference="C")] == ["C"]


def test_a_query_compiled_with_two_keys_binds_both(order, other_order):
    from portal.compiled import CompiledObjects

    by_merchant_and_id = CompiledObjects(Order.objects.all(), "merchant", "order_id")
    assert by_merchant_and_id.objects(order.merchant_id, order.order_id) == [order]
    assert by_merchant_and_id.objects(other_order.merchant_id, order.order_id) == []
    assert by_merchant_and_id.objects(order.merchant_id, other_order.order_id) == []


def test_the_customers_first_page_reads_what_the_orm_reads(
    captured_order, make_order, customer
):
    from customers.status import _first_page, customer_orders

    make_order()  # not captured: nothing to pay yet
    expected = list(customer_orders(customer)[:21])
    assert [row[-1] for row in expected] == [False, True]  # paying
    assert _first_page(21).rows(customer.pk) == expected


def test_queries_sent_together_give_what_each_gives_alone(
    make_order, merchant_user, django_capture_on_commit_callbacks
):
    from portal.compiled import together
    from refunds import engine

    two = make_order(lines=[line("A", 4000, 2), line("B", 6000)], capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        two.refund_lines([("A", 1)], by=merchant_user.user)
    reads = [getattr(engine, name).read for name, _lookup in REFUND_READS]
    together = together(*[(read, (two.pk,)) for read in reads])
    alone = [read.objects(two.pk) for read in reads]
    assert [[_fields(o) for o in objs] for objs in together] == [
        [_fields(o) for o in objs] for objs in alone
    ]
    assert all(together)


@pytest.mark.postgres
def test_queries_sent_together_are_one_pipeline_on_postgresql(
    captured_order, pipelines_entered
):
    """Sent in one pipeline (one round trip), not one query after another."""
    from django.db import connection

    from portal.compiled import together
    from refunds import engine

    captures, lines = together(
        (engine._CAPTURES.read, (captured_order.pk,)),
        (engine._LINES.read, (captured_order.pk,)),
    )
    assert pipelines_entered == [connection.connection]
    assert captures and lines


@pytest.mark.postgres
def test_an_error_in_queries_sent_together_is_raised_as_djangos_error(
    captured_order, caplog
):
    from django.db import DataError, transaction
    from django.db.models import F

    from portal.compiled import CompiledObjects, together
    from refunds import engine

    failing = CompiledObjects(
        Order.objects.annotate(broken=F("pk") / (F("pk") - F("pk"))), "pk"
    )
    with pytest.raises(DataError), transaction.atomic():
        together(
            (engine._CAPTURES.read, (captured_order.pk,)),
            (failing, (captured_order.pk,)),
            (engine._LINES.read, (captured_order.pk,)),
        )
    # Raised once, not also logged when the pipeline ends; the connection goes
    # on as usual after the rollback.
    assert not [r for r in caplog.records if r.name.startswith("psycopg")]
    assert engine._LINES.read.objects(captured_order.pk)


def test_what_each_capture_refunded_as_money_is_read_as_the_orm_sums_it(
    make_order, merchant_user, django_capture_on_commit_callbacks
):
    from django.db.models import Sum

    from refunds import engine
    from refunds.models import RefundAllocation

    order = make_order(lines=[line("A", 4000, 2), line("B", 6000)], capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        order.refund_lines([("A", 1)], by=merchant_user.user)
        order.refund_amount(1500, by=merchant_user.user)
        order.merchant.store_credit_only = True
        order.merchant.save(update_fields=["store_credit_only"])
        order.refresh_from_db()
        order.refund_amount(700, by=merchant_user.user)  # store credit: not money
    expected = dict(
        RefundAllocation.objects.filter(
            capture__order=order, refund__store_credit=False
        )
        .values_list("capture_id")
        .annotate(amount=Sum("amount"))
        .order_by()
    )
    assert expected == {order.captures.get().pk: 4000 + 1500}
    assert dict(engine._MONEY_REFUNDED.rows(order.pk)) == expected


def _instance(obj, seen=()) -> tuple:
    """Everything an instance holds: its attributes in order, its state's, and
    the same of each related object it holds (``select_related``; one that
    points back is compared by its model and key)."""
    if obj is None or obj in seen:
        return obj and (type(obj), obj.pk)
    state = vars(obj._state)
    return (
        type(obj),
        [(k, v) for k, v in vars(obj).items() if k != "_state"],
        {k: v for k, v in state.items() if k != "fields_cache"},
        {
            k: _instance(v, (*seen, obj))
            for k, v in state.get("fields_cache", {}).items()
        },
    )


@pytest.mark.parametrize(("name", "lookup"), REFUND_READS)
def test_instances_built_directly_are_what_model_from_db_builds(
    name, lookup, make_order, merchant_user, django_capture_on_commit_callbacks
):
    """``portal.compiled._from_db`` skips ``Model.__init__`` for plain models;
    the instances are the ones ``Model.from_db`` builds (attributes in the same
    order, the same state), and a ``post_init`` listener gets the slow path."""
    from django.db.models.signals import post_init

    from refunds import engine

    two = make_order(lines=[line("A", 4000, 2), line("B", 6000)], capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        two.refund_lines([("A", 1)], by=merchant_user.user)
    read = getattr(engine, name)
    direct = read(two.pk, lock=False)
    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(listener)
    try:
        through_init = read(two.pk, lock=False)
    finally:
        post_init.disconnect(listener)
    assert direct
    assert len(seen) >= len(through_init)  # Model.__init__ ran for each
    assert [_instance(o) for o in direct] == [_instance(o) for o in through_init]
    for obj in direct:
        assert obj._state.adding is False
        assert obj._state.db == "default"


def test_the_user_and_customer_are_built_as_model_from_db_builds(
    merchant_user, customer
):
    from django.db.models.signals import pre_init

    from customers.auth import _customer_query
    from portal.backends import user_query

    def listener(**kwargs):
        pass

    for query, pk in (
        (user_query("default"), merchant_user.user.pk),
        (_customer_query("default"), customer.pk),
    ):
        direct = query.get(pk)
        pre_init.connect(listener)
        try:
            through_init = query.get(pk)
        finally:
            pre_init.disconnect(listener)
        assert _instance(direct) == _instance(through_init)


def test_rows_bind_several_lookups_in_order(make_order, staff_user):
    """``CompiledRows`` with two lookups, as ``CompiledObjects`` takes them:
    each key is its own parameter, bound in the lookups' order; the refunded
    sums of an order read by its merchant and order id find nothing for
    another merchant (refunds.engine, issue 16)."""
    from refunds.engine import _MONEY_REFUNDED_OF_ORDER_ID
    from tests.factories import MerchantFactory, line

    order = make_order(lines=[line("A", 4000, 2)], capture=True)
    order.refund_lines([("A", 1)], by=staff_user)
    capture = order.captures.get()
    other = MerchantFactory(slug="elsewhere")
    assert _MONEY_REFUNDED_OF_ORDER_ID.rows(order.merchant_id, order.order_id) == [
        (capture.pk, 4000)
    ]
    assert _MONEY_REFUNDED_OF_ORDER_ID.rows(other.pk, order.order_id) == []
