"""The order list: search, filters, keyset pagination and HTMX live search."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.models import OrderStatus, PaymentProduct
from tests.factories import CustomerFactory, OrderFactory, PaymentMethodFactory

URL = reverse("portal:order_list")


def refs(response) -> list[str]:
    return [order.reference for order in response.context["page"].orders]


def test_root_redirects_to_the_order_list(portal_client):
    response = portal_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == URL


def test_anonymous_visitor_is_sent_to_the_login_page(client, db):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))


def test_list_shows_the_merchants_orders_newest_first_and_nobody_elses(
    portal_client, make_order, other_order
):
    old = make_order(created_at=timezone.now() - timedelta(days=2))
    new = make_order()
    response = portal_client.get(URL)
    assert response.status_code == 200
    assert refs(response) == [new.reference, old.reference]
    assert other_order.reference not in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "order_id",
        "reference",
        "reference_lower",
        "merchant_reference1",
        "email",
        "name",
        "surname",
        "part_of_name",
        "store_number_lower",
        "store_number_with_hash",
    ],
)
def test_search_finds_an_order_by_each_identifier(portal_client, make_order, query):
    customer = CustomerFactory(name="Zelda Quist", email="Zelda.Quist@example.com")
    PaymentMethodFactory(customer=customer)
    target = make_order(customer=customer, merchant_reference1="SHOP-7731")
    make_order()
    text = {
        "order_id": str(target.order_id),
        "reference": target.reference,
        "reference_lower": target.reference.lower(),
        "merchant_reference1": "SHOP-7731",
        "email": "zelda.quist@EXAMPLE.com",
        "name": "zel",
        "surname": "quist",
        "part_of_name": "uis",
        "store_number_lower": "shop-7731",
        "store_number_with_hash": "#SHOP-7731",
    }[query]
    response = portal_client.get(URL, {"q": text})
    assert refs(response) == [target.reference]


def test_search_by_another_merchants_order_id_finds_nothing(portal_client, other_order):
    response = portal_client.get(URL, {"q": str(other_order.order_id)})
    assert refs(response) == []
    assert "No orders match" in response.content.decode()


def test_status_filter_includes_partially_and_fully_refunded(
    portal_client, make_order, merchant_user
):
    untouched = make_order(capture=True)
    partial = make_order(capture=True)
    partial.refund_amount(100, by=merchant_user.user)
    full = make_order(capture=True)
    full.refund_complete(by=merchant_user.user)
    authorized = make_order()

    def status(value):
        return refs(portal_client.get(URL, {"status": value}))

    assert status("partially_refunded") == [partial.reference]
    assert status("fully_refunded") == [full.reference]
    assert status(OrderStatus.AUTHORIZED) == [authorized.reference]
    assert untouched.reference in status(OrderStatus.CAPTURED)


def test_product_and_date_filters_narrow_the_list(portal_client, make_order):
    now = timezone.now()
    old_pay_later = make_order(
        product=PaymentProduct.PAY_LATER, created_at=now - timedelta(days=10)
    )
    new_pay_later = make_order(product=PaymentProduct.PAY_LATER)
    make_order(product=PaymentProduct.PAY_IN_4)
    response = portal_client.get(URL, {"product": PaymentProduct.PAY_LATER})
    assert refs(response) == [new_pay_later.reference, old_pay_later.reference]
    day = (now - timedelta(days=10)).date().isoformat()
    response = portal_client.get(
        URL, {"product": PaymentProduct.PAY_LATER, "date_from": day, "date_to": day}
    )
    assert refs(response) == [old_pay_later.reference]


def test_an_end_date_before_the_start_date_is_explained(portal_client, db):
    response = portal_client.get(
        URL, {"date_from": "2026-05-02", "date_to": "2026-05-01"}
    )
    assert response.status_code == 200
    assert "The end date is before the start date." in response.content.decode()


def test_keyset_pagination_walks_every_order_once_in_both_directions(
    portal_client, merchant, customer
):
    start = timezone.now()
    orders = [
        OrderFactory(
            merchant=merchant,
            customer=customer,
            created_at=start - timedelta(minutes=i),
        )
        for i in range(60)
    ]
    # Two orders with the same timestamp: the id breaks the tie.
    orders.append(
        OrderFactory(
            merchant=merchant, customer=customer, created_at=orders[30].created_at
        )
    )
    seen, pages, params = [], [], {}
    while True:
        page = portal_client.get(URL, params).context["page"]
        pages.append(page)
        seen += [o.pk for o in page.orders]
        if not page.next_cursor:
            break
        params = {"after": page.next_cursor}
    assert len(seen) == len(set(seen)) == 61
    assert [len(p.orders) for p in pages] == [25, 25, 11]
    back = portal_client.get(URL, {"before": pages[2].previous_cursor}).context["page"]
    assert [o.pk for o in back.orders] == [o.pk for o in pages[1].orders]


def test_a_broken_cursor_shows_the_first_page(portal_client, make_order):
    order = make_order()
    response = portal_client.get(URL, {"after": "not-a-cursor!"})
    assert refs(response) == [order.reference]


def test_htmx_search_returns_only_the_results_partial(portal_client, make_order):
    order = make_order()
    response = portal_client.get(URL, {"q": order.reference}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="order-results"')
    assert "<html" not in body
    assert order.reference in body
    assert "HX-Request" in response["Vary"]


def test_without_htmx_the_search_returns_the_whole_page(portal_client, make_order):
    order = make_order()
    body = portal_client.get(URL, {"q": order.reference}).content.decode()
    assert "<html" in body and 'id="order-results"' in body
    assert f'value="{order.reference}"' in body


def test_htmx_history_restore_gets_the_whole_page(portal_client, make_order):
    make_order()
    response = portal_client.get(
        URL, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.content.decode()


def test_the_search_form_keeps_the_url_in_sync_for_back_button_and_links(
    portal_client, db
):
    body = portal_client.get(URL).content.decode()
    assert 'hx-push-url="true"' in body
    assert 'hx-target="#order-results"' in body


def test_order_list_queries_do_not_grow_with_the_page(
    portal_client, make_order, django_assert_max_num_queries
):
    for _ in range(30):
        make_order()
    with django_assert_max_num_queries(3):
        response = portal_client.get(URL, {"q": "", "status": ""})
    assert len(response.context["page"].orders) == 25


def test_a_name_prefix_matching_many_customers_still_finds_every_order(
    portal_client, make_order
):
    orders = []
    for name in ("Zelda Quist", "Zelda Berg", "Zeno Hart"):  # all contain "ze"
        customer = CustomerFactory(name=name)
        PaymentMethodFactory(customer=customer)
        orders.append(make_order(customer=customer))
    make_order()
    response = portal_client.get(URL, {"q": "ze"})
    assert sorted(refs(response)) == sorted(o.reference for o in orders)


def test_live_search_results_say_what_is_wrong_with_the_filters(portal_client, db):
    response = portal_client.get(
        URL,
        {"date_from": "2026-11-30", "date_to": "2026-10-31"},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert "The end date is before the start date." in body


# Issue 14: finding orders from part of what people remember --------------------------

DEMO_SEARCHES = ["10886", "hh9wz", "maja@", "example.org", "muller"]


@pytest.fixture
def searched_orders(make_order, customer):
    """One order per search of issue 14, each matching only its own search."""

    def someone(name: str, email: str):
        person = CustomerFactory(name=name, email=email)
        PaymentMethodFactory(customer=person)
        return person

    orders = {
        "10886": make_order(
            merchant_reference1="NW-10886",
            customer=someone("Lena Vogt", "lena.vogt@example.com"),
        ),
        "hh9wz": make_order(
            reference="HH9WZ2K", customer=someone("Tom Berger", "tb@example.net")
        ),
        "maja@": make_order(customer=customer),  # Maja Berg, maja@example.com
        "example.org": make_order(customer=someone("Ida Lund", "ida.lund@example.org")),
        "muller": make_order(
            customer=someone("Jürgen Müller", "j.mueller@example.net")
        ),
    }
    make_order(
        merchant_reference1="NW-10887",
        customer=someone("Karl Mahler", "km@example.com"),
    )
    return orders


@pytest.mark.parametrize("text", DEMO_SEARCHES)
def test_a_part_of_what_people_remember_finds_the_order(
    portal_client, searched_orders, text
):
    response = portal_client.get(URL, {"q": text})
    assert refs(response) == [searched_orders[text].reference]


@pytest.mark.parametrize("text", DEMO_SEARCHES)
def test_the_staff_admins_order_search_finds_the_same_order(
    client, searched_orders, text
):
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get(reverse("admin:portal_order_changelist"), {"q": text})
    assert list(response.context["cl"].result_list) == [searched_orders[text]]


@pytest.mark.parametrize("text", DEMO_SEARCHES)
def test_a_text_search_is_one_query_on_the_orders_planned_for_its_text(
    portal_client, searched_orders, text, monkeypatch
):
    """Issue 16: the customer is matched on the order's copies of their name
    and email, so a search reads no customers first (it took up to three
    queries, 1.7 ms for "muller" at 1,000,000 orders), and its one query is
    planned for the text (``planned_per_call``)."""
    from contextlib import contextmanager

    from portal import prepared

    unprepared = []
    real = prepared.planned_per_call

    def record(execute, sql, params, many, context):
        unprepared.append(sql)
        return execute(sql, params, many, context)

    @contextmanager
    def recording(*args, **kwargs):
        # Outside: the unprepared execution does not call the wrappers inside it.
        with connection.execute_wrapper(record), real(*args, **kwargs):
            yield

    monkeypatch.setattr("portal.views.planned_per_call", recording)
    with CaptureQueriesContext(connection) as queries:
        response = portal_client.get(URL, {"q": text})
    assert refs(response) == [searched_orders[text].reference]
    assert not [q for q in queries if 'FROM "customers_customer"' in q["sql"]]
    assert len([q for q in queries if 'FROM "portal_order"' in q["sql"]]) == 1
    assert len(unprepared) == 1
    assert 'FROM "portal_order"' in unprepared[0]


def test_an_order_id_search_is_not_planned_per_call(
    portal_client, searched_orders, monkeypatch
):
    """A unique order id has one best plan: the prepared statement keeps it."""
    calls = []
    monkeypatch.setattr(
        "portal.views.planned_per_call", lambda *a, **k: calls.append(a) or None
    )
    order = searched_orders["muller"]
    response = portal_client.get(URL, {"q": str(order.order_id)})
    assert refs(response) == [order.reference]
    assert calls == []


def test_a_renamed_customer_is_found_by_the_new_name_and_email_only(
    portal_client, searched_orders
):
    """Customer.save keeps the orders' search copies (issue 16)."""
    order = searched_orders["muller"]
    person = order.customer
    person.name = "Jürgen Ötztal"
    person.save(update_fields=["name"])
    assert refs(portal_client.get(URL, {"q": "otztal"})) == [order.reference]
    assert refs(portal_client.get(URL, {"q": "muller"})) == []
    person.email = "jo@example.dk"
    person.save()
    assert refs(portal_client.get(URL, {"q": "jo@"})) == [order.reference]
    assert refs(portal_client.get(URL, {"q": "mueller"})) == []


def test_a_customer_saved_without_a_name_or_email_change_updates_no_orders(
    searched_orders, django_assert_num_queries
):
    person = searched_orders["muller"].customer
    with django_assert_num_queries(1):
        person.save(update_fields=["locale"])
    with django_assert_num_queries(2):  # the customer, then orders whose copies differ
        person.save()


def test_an_order_saved_by_the_release_before_the_copies_is_found_after_the_periodic_job(
    portal_client, searched_orders
):
    """Issue 16's fresh review: during a deploy of migration 0011 the old
    servers save orders without the copies; the columns' database default
    lets them, and the periodic job fills them in."""
    from django.db import connection

    from customers.tasks import run_periodic
    from portal.models import Order

    old = searched_orders["muller"]
    fields = [
        f
        for f in Order._meta.concrete_fields
        if f.name not in ("id", "customer_search_name", "customer_search_email")
    ]
    values = [f.get_db_prep_save(f.pre_save(old, True), connection) for f in fields]
    values[[f.name for f in fields].index("order_id")] = "5" * 32
    values[[f.name for f in fields].index("reference")] = "OLDREL1"
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO portal_order ({columns}) VALUES ({marks})", values)
    assert Order.objects.get(reference="OLDREL1").customer_search_email == ""
    assert "OLDREL1" not in refs(portal_client.get(URL, {"q": "muller"}))
    assert run_periodic().order_search_copies_filled == 1
    assert "OLDREL1" in refs(portal_client.get(URL, {"q": "muller"}))
    assert run_periodic().order_search_copies_filled == 0


def test_a_customer_renamed_by_the_release_before_the_copies_is_found_after_the_refresh(
    portal_client, searched_orders
):
    """Issue 16's third fresh review: the previous release, serving while
    migration 0011 is deployed, renames a customer without copying it to the
    orders (here the same UPDATE of the customer alone);
    ``manage.py refresh_order_search`` then copies it."""
    from io import StringIO

    from django.core.management import call_command

    from customers.models import Customer

    order = searched_orders["muller"]
    Customer.objects.filter(pk=order.customer_id).update(
        name="Günter Økland", search_name="gunter økland", email="g.okland@example.com"
    )
    assert refs(portal_client.get(URL, {"q": "g.okland@"})) == []
    out = StringIO()
    call_command("refresh_order_search", stdout=out)
    assert out.getvalue().strip() == "Orders whose search copies were refreshed: 1"
    assert refs(portal_client.get(URL, {"q": "g.okland@"})) == [order.reference]
    assert refs(portal_client.get(URL, {"q": "gunter"})) == [order.reference]
    assert refs(portal_client.get(URL, {"q": "muller"})) == []
    call_command("refresh_order_search", stdout=out)
    assert out.getvalue().strip().endswith("refreshed: 0")


def test_the_migration_fills_every_orders_copies_from_its_customer(searched_orders):
    from importlib import import_module

    from django.apps import apps

    from portal.models import Order

    Order.objects.update(customer_search_name="", customer_search_email="")
    migration = import_module("portal.migrations.0011_order_customer_search")
    migration.fill_copies(apps, None)
    order = Order.objects.get(pk=searched_orders["muller"].pk)
    assert (order.customer_search_name, order.customer_search_email) == (
        "jurgen muller",
        "j.mueller@example.net",
    )
    assert not Order.objects.filter(customer_search_email="").exists()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("MÜLLER", "muller"),
        ("Jurgen", "muller"),
        ("#10886", "10886"),
        ("nw-10886", "10886"),
        ("HH9WZ2K", "hh9wz"),
        ("ida.lund@", "example.org"),
    ],
)
def test_search_ignores_case_accents_and_a_leading_hash(
    portal_client, searched_orders, text, key
):
    response = portal_client.get(URL, {"q": text})
    assert refs(response) == [searched_orders[key].reference]


def test_an_email_with_an_at_matches_only_from_its_start(portal_client, make_order):
    person = CustomerFactory(name="Ann Lee", email="annemaja@example.com")
    PaymentMethodFactory(customer=person)
    make_order(customer=person)
    assert refs(portal_client.get(URL, {"q": "maja@"})) == []


def test_an_empty_result_says_what_was_searched_and_what_to_try(
    portal_client, searched_orders
):
    response = portal_client.get(URL, {"q": "zzqx", "product": "pay_now"})
    body = response.content.decode()
    assert refs(response) == []
    assert "No orders match “zzqx” with Payment product: Pay now." in body
    assert "Searched: order IDs, the start of references" in body
    assert "part of your order number (10886)" in body
    assert "Clear the filters or widen the dates." in body


def test_an_empty_email_search_explains_how_emails_match(portal_client, db):
    body = portal_client.get(URL, {"q": "nobody@"}).content.decode()
    assert "An email is matched from its start (maja@)" in body


def test_a_common_surname_or_domain_finds_every_customers_orders(
    portal_client, make_order
):
    expected = []
    for name, email in (
        ("Jonas Müller", "jonas@example.org"),
        ("Ida Muller", "ida@example.net"),
    ):
        customer = CustomerFactory(name=name, email=email)
        PaymentMethodFactory(customer=customer)
        expected.append(make_order(customer=customer))
    other = CustomerFactory(name="Eva Berg", email="eva@example.org")
    PaymentMethodFactory(customer=other)
    by_domain = make_order(customer=other)
    make_order()
    response = portal_client.get(URL, {"q": "muller"})
    assert sorted(refs(response)) == sorted(o.reference for o in expected)
    response = portal_client.get(URL, {"q": "example.org"})
    assert sorted(refs(response)) == sorted(
        o.reference for o in (expected[0], by_domain)
    )


@pytest.mark.postgres
@pytest.mark.parametrize("text", ["hh9wz", "ze", "maja@", "muller", "10886"])
def test_every_branch_of_a_text_search_has_an_index(searched_orders, text):
    """Migrations 0007, 0011 and 0012 (issue 16): with sequential and plain
    index scans priced out, PostgreSQL answers the search's OR with a BitmapOr
    of the branches' indexes, which it can only do when every branch has one
    (else it scans). Across merchants, as staff search: the merchant's own
    index would otherwise serve as a bitmap too."""
    from portal.models import Order

    orders = Order.objects.search(text)
    sql, params = orders.order_by("-created_at", "-id")[:26].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "BitmapOr" in plan, plan
    assert "Seq Scan on portal_order" not in plan, plan


@pytest.mark.parametrize(
    ("language", "orders", "text"),
    [
        ("en", 1, "1 order on this page"),
        ("en", 2, "2 orders on this page"),
        ("de", 1, "1 Bestellung auf dieser Seite"),
        ("de", 3, "3 Bestellungen auf dieser Seite"),
    ],
)
def test_the_pager_counts_the_orders_on_the_page_in_the_users_language(
    portal_client, merchant_user, make_order, language, orders, text
):
    merchant_user.language = language
    merchant_user.save(update_fields=["language"])
    for _ in range(orders):
        make_order()
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        page = portal_client.get(reverse("portal:order_list"), **headers)
        assert text in page.content.decode()


def test_a_live_search_brings_the_filters_errors_next_to_them(portal_client, db):
    """The live search replaces the results, not the form: each filter's error
    container comes out of band, empty once the filters are fine again; the
    whole page renders them in place."""
    url = reverse("portal:order_list")
    dates = {"date_from": "2026-03-01", "date_to": "2026-01-01"}
    live = portal_client.get(url, dates, HTTP_HX_REQUEST="true").content.decode()
    assert (
        '<div class="field-errors" id="id_date_to_error" hx-swap-oob="true">'
        "<p>The end date is before the start date.</p></div>"
    ) in live
    assert '<div class="field-errors" id="id_q_error" hx-swap-oob="true"></div>' in live
    fixed = portal_client.get(
        url, {"date_from": "2026-01-01"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert (
        '<div class="field-errors" id="id_date_to_error" hx-swap-oob="true"></div>'
    ) in fixed
    whole = portal_client.get(url, dates).content.decode()
    assert "hx-swap-oob" not in whole
    assert 'id="id_date_to_error"><p>The end date is before the start date.' in whole
