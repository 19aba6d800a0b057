"""``portal.compiled.CompiledShapes`` and the order list's compiled query: the
rows the ORM's queryset gives, from SQL compiled once per shape (issue 16)."""

from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from portal.compiled import CompiledShapes
from portal.forms import ORDER_LIST, OrderSearchForm, order_list_query
from portal.models import Order, OrderStatus, PaymentProduct
from tests.factories import CustomerFactory, MerchantFactory, PaymentMethodFactory


@pytest.fixture
def orders(make_order, merchant):
    """Orders whose texts hold LIKE's wildcards and escape, accents and an
    "@", over several days, statuses and products; one other merchant's."""
    made = []
    people = [
        ("Jürgen Müller", "j.mueller@example.net", "NW-10886"),
        ("Ida 100% Lund", "ida_lund@example.org", "50%_OFF"),
        ("Back\\Slash", "back\\slash@example.com", "A\\B"),
        ("Maja Berg", "maja@example.com", "#7"),
        ("Zoë Ek", "zoe@example.se", "NW-10887"),
    ]
    now = timezone.now()
    for index, (name, email, number) in enumerate(people):
        person = CustomerFactory(name=name, email=email)
        PaymentMethodFactory(customer=person)
        for day in range(3):
            made.append(
                make_order(
                    customer=person,
                    merchant_reference1=f"{number}-{day}",
                    created_at=now - timedelta(days=day, minutes=index),
                    product=[PaymentProduct.PAY_IN_4, PaymentProduct.PAY_NOW][day % 2],
                    status=[OrderStatus.AUTHORIZED, OrderStatus.CANCELLED][index % 2],
                )
            )
    same_time = make_order(created_at=made[0].created_at, merchant_reference1="TIE")
    made.append(same_time)
    stranger = CustomerFactory(name="Jürgen Müller", email="other@example.net")
    PaymentMethodFactory(customer=stranger)
    make_order(merchant=MerchantFactory(), customer=stranger)
    return made


SEARCHES = [
    {},
    {"q": "muller"},
    {"q": "MÜLLER"},
    {"q": "100%"},
    {"q": "%"},
    {"q": "_"},
    {"q": "ida_"},
    {"q": "\\"},
    {"q": "back\\slash@"},
    {"q": "maja@"},
    {"q": "#7"},
    {"q": "nw-1088"},
    {"q": "ze"},
    {"q": "example.org"},
    {"q": "zz"},
    {"status": "CANCELLED"},
    {"status": "partially_refunded"},
    {"product": "pay_now", "q": "example"},
    {"date_from": "2020-01-01", "date_to": "2100-01-01", "q": "e"},
]


def _orm_page(form, merchant, size):
    shape, values = form.criteria(merchant, size)
    return list(order_list_query(shape, **values))


@pytest.mark.parametrize("data", SEARCHES)
@pytest.mark.parametrize("size", [2, 25])
def test_the_compiled_order_list_reads_what_the_orm_reads(orders, merchant, data, size):
    """Every page, followed by its cursors both ways."""
    form = OrderSearchForm(data)
    assert form.is_valid(), form.errors
    seen = []
    page = form.page(merchant, size)
    while True:
        assert list(page.orders) == _orm_page(form, merchant, size)[:size]
        seen += [row.pk for row in page.orders]
        if not page.next_cursor:
            break
        form = OrderSearchForm({**data, "after": page.next_cursor})
        assert form.is_valid()
        page = form.page(merchant, size)
    expected = Order.objects.filter(merchant=merchant).order_by("-created_at", "-id")
    if data.get("q"):
        expected = expected.search(data["q"])
    assert seen == [o.pk for o in expected.filter(pk__in=seen)]
    if page.previous_cursor:
        form = OrderSearchForm({**data, "before": page.previous_cursor})
        assert form.is_valid()
        back = form.page(merchant, size)
        assert [row.pk for row in back.orders] == seen[
            -size - len(page.orders) : -len(page.orders)
        ]


def test_rows_are_named_like_the_orms_values_list(orders, merchant):
    form = OrderSearchForm({"q": "muller"})
    form.is_valid()
    (first, *_rest) = form.page(merchant).orders
    assert first._fields[:3] == ("pk", "order_id", "reference")
    assert first.customer__name == "Jürgen Müller"
    assert first.created_at.tzinfo is not None


def test_a_shape_is_built_twice_once_then_only_bound(orders, merchant):
    calls = []

    def build(shape, **values):
        calls.append(values)
        return order_list_query(shape, **values)

    compiled = CompiledShapes(build, ORDER_LIST.fields)
    for text in ("muller", "example", "berg"):
        form = OrderSearchForm({"q": text})
        form.is_valid()
        shape, values = form.criteria(merchant)
        assert compiled.rows(shape, **values) == list(order_list_query(shape, **values))
    assert len(calls) == 2  # the two probe compilations of the one shape


def test_values_other_than_the_shapes_keys_are_refused(orders, merchant):
    form = OrderSearchForm({"q": "muller"})
    form.is_valid()
    shape, values = form.criteria(merchant)
    ORDER_LIST.rows(shape, **values)
    with pytest.raises(ValueError, match="expected"):
        ORDER_LIST.rows(shape, **values, status="CANCELLED")


def test_a_value_the_orm_changes_cannot_be_bound(orders, merchant):
    """A value must reach the SQL as its field's value or LIKE pattern; one
    the build changes (here upper-cased) is refused when first compiled."""
    shapes = CompiledShapes(
        lambda shape, **values: Order.objects.filter(
            merchant_reference1=values["number"].upper()
        ).values_list("pk"),
        {"number": Order._meta.get_field("merchant_reference1")},
    )
    with pytest.raises(ValueError, match="follows no value"):
        shapes.rows("upper", number="nw-10886-0")


def test_a_constant_of_the_shape_stays_in_its_sql(orders, merchant):
    shapes = CompiledShapes(
        lambda shape, **values: Order.objects.filter(
            merchant=values["merchant"], refunded_amount__lt=F("captured_amount") + 0
        ).values_list("pk", flat=False),
        {"merchant": Order._meta.get_field("merchant")},
    )
    assert shapes.rows("partly", merchant=merchant.pk) == list(
        Order.objects.filter(
            merchant=merchant, refunded_amount__lt=F("captured_amount")
        ).values_list("pk")
    )
