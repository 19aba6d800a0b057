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


# Issue 16's fresh review: edited cursors and dates answer 200, never a 500.


def _b64(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "2026-10-20T12:00:00+00:00|100000000000000000000",
        "2026-10-20T12:00:00+00:00|9223372036854775808",
        "2026-10-20T12:00:00+00:00|-5",
        "9999-12-31T23:59:59-14:00|1",
        "0001-01-01T00:00:00+14:00|1",
        "9000-01-01T00:00:00+00:00|1",
        "1990-01-01T00:00:00+00:00|1",
    ],
)
@pytest.mark.parametrize("direction", ["after", "before"])
def test_an_edited_cursor_shows_the_newest_orders(
    portal_client, orders, merchant, cursor, direction
):
    """An id beyond the key's range was a 500 on SQLite (OverflowError), a time
    beyond what UTC holds too; a cursor past either end showed "No orders
    yet." with no links. Each now shows the first page."""
    from django.urls import reverse

    url = reverse("portal:order_list")
    newest = portal_client.get(url).context["rows"]
    response = portal_client.get(url, {direction: _b64(cursor)})
    assert response.status_code == 200
    assert response.context["rows"] == newest


def test_the_last_day_a_date_holds_is_an_open_end_of_the_order_list(
    portal_client, orders
):
    from django.urls import reverse

    url = reverse("portal:order_list")
    response = portal_client.get(
        url, {"date_from": "0001-01-01", "date_to": "9999-12-31"}
    )
    assert response.status_code == 200
    assert response.context["rows"] == portal_client.get(url).context["rows"]


@pytest.mark.parametrize("change", [str.lower, str.upper, str.strip])
def test_a_text_the_build_changes_is_found_out_when_first_compiled(orders, change):
    shapes = CompiledShapes(
        lambda shape, **values: Order.objects.filter(
            customer_search_email__istartswith=change(values["email"])
        ).values_list("pk"),
        {"email": Order._meta.get_field("customer_search_email")},
    )
    with pytest.raises(ValueError, match="follows no value"):
        shapes.rows("changed", email="Maja@")


def test_none_and_out_of_range_integers_are_refused_not_bound(orders, merchant):
    form = OrderSearchForm({"q": "muller"})
    form.is_valid()
    shape, values = form.criteria(merchant)
    with pytest.raises(ValueError, match="None"):
        ORDER_LIST.rows(shape, **{**values, "customer_name": None})
    form = OrderSearchForm({})
    form.is_valid()
    shape, values = form.criteria(merchant)
    with pytest.raises(ValueError, match="range"):
        ORDER_LIST.rows(shape, **{**values, "merchant": 2**70})
