"""``update_rows`` and ``insert_rows``: many rows of one table in one statement."""

import pytest
from django.db import IntegrityError, transaction
from django.db.models.expressions import DatabaseDefault

from customers.models import Installment, InstallmentStatus
from portal.bulk import STATEMENT_PARAMS, insert_rows, update_rows
from portal.models import MerchantUser, OrderLine
from refunds.models import Refund, RefundLine
from tests.factories import UserFactory


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


def test_named_fields_are_added_and_the_others_replaced(captured_order):
    from portal.models import Order

    Order.objects.filter(pk=captured_order.pk).update(refunded_amount=100)
    update_rows(
        Order,
        ["refunded_amount", "status"],
        {captured_order.pk: (250, "CLOSED")},
        add={"refunded_amount"},
    )
    assert Order.objects.values_list("refunded_amount", "status").get(
        pk=captured_order.pk
    ) == (350, "CLOSED")


def test_no_rows_no_statement(django_assert_num_queries, db):
    with django_assert_num_queries(0):
        assert update_rows(OrderLine, ["refunded_quantity"], {}, add=True) == 0


def test_the_tables_constraints_judge_the_result(captured_order):
    tshirt = captured_order.lines.get(reference="TSHIRT-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        update_rows(OrderLine, ["refunded_quantity"], {tshirt.pk: (99,)}, add=True)


def test_inserted_rows_are_what_bulk_create_writes(
    captured_order, staff_user, django_assert_num_queries
):
    """Defaults (a UUID), auto_now_add and foreign keys as bulk_create writes
    them; each object gets its primary key, in the order given; one query."""

    def refund(**fields):
        return Refund(
            order=captured_order,
            merchant_id=captured_order.merchant_id,
            kind="items",
            items_amount=1000,
            refunded_amount=1000,
            created_by=staff_user,
            **fields,
        )

    ours, theirs = refund(reference="ours"), refund(reference="theirs")
    with django_assert_num_queries(1):
        insert_rows([ours])
    Refund.objects.bulk_create([theirs])
    assert ours.pk and not ours._state.adding
    fields = [f.attname for f in Refund._meta.concrete_fields]
    fields = [name for name in fields if name not in ("id", "refund_id", "reference")]
    saved_ours, saved_theirs = (
        Refund.objects.values(*fields, "refund_id").get(pk=r.pk) for r in (ours, theirs)
    )
    assert saved_ours.pop("refund_id") == ours.refund_id
    saved_theirs.pop("refund_id")
    created = saved_ours.pop("created_at"), saved_theirs.pop("created_at")
    assert created[0] is not None and created[0] <= created[1]
    assert saved_ours == saved_theirs

    tshirt = captured_order.lines.get(reference="TSHIRT-1")
    lines = [
        RefundLine(
            refund=ours,
            order_line=tshirt,
            reference="TSHIRT-1",
            name=f"T-shirt {n}",
            quantity=1,
            unit_price=1000,
            total_amount=1000,
        )
        for n in range(3)
    ]
    with django_assert_num_queries(1):
        insert_rows(lines)
    assert [line.pk for line in lines] == sorted(line.pk for line in lines)
    assert [RefundLine.objects.get(pk=line.pk).name for line in lines] == [
        "T-shirt 0",
        "T-shirt 1",
        "T-shirt 2",
    ]
    with django_assert_num_queries(0):
        insert_rows([])


@pytest.mark.parametrize("returning", [True, False])
@pytest.mark.parametrize("count, statements", [(3, [3]), (5, [3, 2]), (7, [7])])
def test_rows_are_inserted_in_statements_of_at_most_50_parameters_or_in_one(
    captured_order, django_assert_num_queries, returning, count, statements
):
    """psycopg keeps its conversion of a statement's ``%s`` markers only up to
    50 parameters: a refund line has 14 columns, so 5 lines are 3 + 2; more
    than two such statements' worth is one statement (the count stays flat)."""
    refund = Refund.objects.create(
        order=captured_order,
        merchant_id=captured_order.merchant_id,
        kind="amount",
        items_amount=100 * count,
        refunded_amount=100 * count,
    )
    lines = [
        RefundLine(
            refund=refund,
            kind="adjustment",
            name=f"line {n}",
            quantity=1,
            unit_price=100,
            total_amount=100,
        )
        for n in range(count)
    ]
    columns = len(
        [f for f in RefundLine._meta.concrete_fields if f is not RefundLine._meta.pk]
    )
    assert columns * 3 <= STATEMENT_PARAMS < columns * 4
    with django_assert_num_queries(len(statements)) as queries:
        insert_rows(lines, returning=returning)
    assert [q["sql"].count("), (") + 1 for q in queries] == statements
    names = sorted(refund.lines.values_list("pk", "name"))
    assert [name for _pk, name in names] == [f"line {n}" for n in range(count)]
    if returning:
        assert [line.pk for line in lines] == [pk for pk, _name in names]


def test_an_unset_database_default_is_inserted_by_bulk_create(merchant):
    person = MerchantUser(merchant=merchant, user=UserFactory(username="new"))
    field = MerchantUser._meta.get_field("language")
    # What a field with only a db_default holds until it is set.
    person.language = DatabaseDefault(field._db_default_expression, output_field=field)
    insert_rows([person])
    assert person.pk
    assert MerchantUser.objects.get(pk=person.pk).language == ""


def test_rows_inserted_without_returning_are_written_and_their_keys_not_read(
    captured_order, django_assert_num_queries
):
    refund = Refund.objects.create(
        order=captured_order,
        merchant_id=captured_order.merchant_id,
        kind="amount",
        items_amount=100,
        refunded_amount=100,
    )
    lines = [
        RefundLine(
            refund=refund,
            kind="adjustment",
            name=name,
            quantity=1,
            unit_price=50,
            total_amount=50,
        )
        for name in ("a", "b")
    ]
    with django_assert_num_queries(1):
        insert_rows(lines, returning=False)
    assert [line.pk for line in lines] == [None, None]
    assert sorted(refund.lines.values_list("name", "total_amount")) == [
        ("a", 50),
        ("b", 50),
    ]


@pytest.mark.postgres
def test_statements_sent_together_are_one_pipeline_and_all_run(
    captured_order, pipelines_entered
):
    from django.db import connection

    from portal.pipeline import sent_together

    tshirt, jeans = captured_order.lines.order_by("pk")
    with sent_together():
        update_rows(OrderLine, ["refunded_quantity"], {tshirt.pk: (1,)})
        update_rows(OrderLine, ["refunded_quantity"], {jeans.pk: (1,)})
    assert pipelines_entered == [connection.connection]
    assert list(
        OrderLine.objects.filter(order=captured_order)
        .order_by("pk")
        .values_list("refunded_quantity", flat=True)
    ) == [1, 1]


@pytest.mark.postgres
def test_an_error_sent_together_is_raised_as_djangos_integrity_error(
    captured_order,
):
    from portal.pipeline import sent_together

    tshirt, jeans = captured_order.lines.order_by("pk")
    with pytest.raises(IntegrityError), transaction.atomic(), sent_together():
        # More refunded than captured: the table's CHECK refuses it.
        update_rows(OrderLine, ["refunded_quantity"], {tshirt.pk: (99,)})
        update_rows(OrderLine, ["refunded_quantity"], {jeans.pk: (1,)})
    assert list(
        OrderLine.objects.filter(order=captured_order).values_list(
            "refunded_quantity", flat=True
        )
    ) == [0, 0]


@pytest.mark.postgres
def test_an_error_in_a_later_statement_sent_together_is_raised_once_and_not_logged(
    captured_order, caplog
):
    from portal.pipeline import sent_together

    tshirt, jeans = captured_order.lines.order_by("pk")
    with pytest.raises(IntegrityError), transaction.atomic(), sent_together():
        update_rows(OrderLine, ["refunded_quantity"], {tshirt.pk: (99,)})
        # Answered before this one is sent: raised here, in the block.
        list(OrderLine.objects.filter(pk=jeans.pk))
    assert not [r for r in caplog.records if r.name.startswith("psycopg")]
