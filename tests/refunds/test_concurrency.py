"""Many people clicking Refund at once: real threads, separate PostgreSQL connections.

The refundable amount fits only some of the requests; the total refunded must be
exactly what was refundable and every loser must get the over-refund reason.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from portal.models import Order, PaymentProduct
from refunds.exceptions import DomainError
from refunds.models import Refund
from tests.factories import line

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CLIENTS = 24


def race(order_pk: int, attempt) -> list:
    """Run ``attempt(order)`` in CLIENTS threads released at the same instant."""
    barrier = threading.Barrier(CLIENTS)

    def one(i: int):
        try:
            order = Order.objects.select_related("merchant").get(pk=order_pk)
            connection.close()  # back to the pool: every thread starts the race equal
            barrier.wait(timeout=30)
            try:
                return ("ok", attempt(order, i))
            except DomainError as refused:
                return ("refused", refused.code)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return list(pool.map(one, range(CLIENTS)))


def test_concurrent_amount_refunds_never_exceed_what_was_captured(make_order):
    order = make_order(
        product=PaymentProduct.PAY_NOW, lines=[line("COAT", 10000)], capture=True
    )
    results = race(order.pk, lambda o, i: o.refund_amount(1000).pk)
    winners = [r for r in results if r[0] == "ok"]
    losers = [r for r in results if r[0] == "refused"]
    assert len(winners) == 10
    assert {code for _, code in losers} == {"OVER_REFUND"}
    order.refresh_from_db()
    assert order.refunded_amount == 10000
    assert order.verify_totals() == []
    assert (
        sum(
            Refund.objects.filter(order=order).values_list("refunded_amount", flat=True)
        )
        == 10000
    )


def test_concurrent_item_refunds_never_exceed_the_captured_quantity(make_order):
    order = make_order(lines=[line("SOCKS", 700, 10)], capture=True)
    results = race(order.pk, lambda o, i: o.refund_lines([("SOCKS", 1)]).pk)
    assert sum(1 for r in results if r[0] == "ok") == 10
    assert {r[1] for r in results if r[0] == "refused"} == {"OVER_REFUND"}
    order.refresh_from_db()
    assert order.lines.get().refunded_quantity == 10
    assert order.refunded_amount == 7000
    assert order.verify_totals() == []


def test_concurrent_mixed_refunds_leave_consistent_plans_and_ledger(make_order):
    order = make_order(lines=[line("SHIRT", 2500, 8)], capture=True)

    def attempt(o, i):
        if i % 3 == 0:
            return o.refund_lines([("SHIRT", 1)]).pk
        if i % 3 == 1:
            return o.refund_amount(1700).pk
        return o.refund_complete().pk

    race(order.pk, attempt)
    order.refresh_from_db()
    assert order.refunded_amount == 20000
    assert order.verify_totals() == []
    plan = order.captures.get().plan
    assert all(i.amount == 0 for i in plan.installments.exclude(status="paid"))
    paid = sum(i.amount for i in plan.installments.filter(status="paid"))
    assert sum(plan.repayments.values_list("amount", flat=True)) == paid


def test_concurrent_requests_with_one_idempotency_key_refund_once(make_order):
    order = make_order(
        product=PaymentProduct.PAY_NOW, lines=[line("COAT", 10000)], capture=True
    )
    results = race(
        order.pk, lambda o, i: o.refund_amount(1000, idempotency_key="double-click").pk
    )
    assert {r[0] for r in results} == {"ok"}
    assert len({r[1] for r in results}) == 1
    order.refresh_from_db()
    assert order.refunded_amount == 1000


def portal_race(merchant_user, order, data: dict, clients: int = 8) -> list:
    """``clients`` browsers confirm ``data`` on the refund page at the same
    instant (``order`` and ``data`` may be callables of the browser's number)."""
    from django.test import Client
    from django.urls import reverse

    browsers = []
    for _ in range(clients):
        browser = Client()
        browser.force_login(merchant_user.user)
        browsers.append(browser)
    connection.close()
    barrier = threading.Barrier(clients)

    def one(i: int):
        try:
            barrier.wait(timeout=30)
            target = order(i) if callable(order) else order
            response = browsers[i].post(
                reverse("refunds:create", args=[target.order_id]),
                data(i) if callable(data) else data,
            )
            return response.status_code, response.content.decode()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(one, range(clients)))


def previewed(client, order, data: dict) -> dict:
    from django.urls import reverse

    response = client.post(
        reverse("refunds:preview", args=[order.order_id]),
        data,
        HTTP_HX_REQUEST="true",
    )
    return {
        **data,
        "action": "confirm",
        "expected_fingerprint": response.context["plan"].fingerprint,
    }


def test_people_confirming_the_same_preview_at_once_refund_it_once(
    make_order, merchant_user, portal_client
):
    order = make_order(lines=[line("SOCKS", 700, 10)], capture=True)
    socks = order.lines.get()
    data = previewed(
        portal_client,
        order,
        {
            "kind": "items",
            f"line-{socks.pk}-selected": "on",
            f"line-{socks.pk}-quantity": "3",
            "idempotency_key": "preview",
        },
    )
    # Each person's own form (idempotency key), the same previewed refund.
    results = portal_race(
        merchant_user, order, lambda i: {**data, "idempotency_key": f"form-{i}"}
    )
    assert sorted(status for status, _ in results) == [200] * 7 + [302]
    refused = [body for status, body in results if status == 200]
    assert all("The order changed since your preview" in body for body in refused)
    order.refresh_from_db()
    assert order.lines.get().refunded_quantity == 3
    assert Refund.objects.filter(order=order).count() == 1
    assert order.verify_totals() == []


def test_one_form_submitted_many_times_at_once_refunds_once(
    make_order, merchant_user, portal_client
):
    order = make_order(lines=[line("SOCKS", 700, 10)], capture=True)
    socks = order.lines.get()
    data = previewed(
        portal_client,
        order,
        {
            "kind": "items",
            f"line-{socks.pk}-selected": "on",
            f"line-{socks.pk}-quantity": "3",
            "idempotency_key": "one-form",
        },
    )
    results = portal_race(merchant_user, order, data)
    assert [status for status, _ in results] == [302] * 8
    order.refresh_from_db()
    assert order.lines.get().refunded_quantity == 3
    assert Refund.objects.filter(order=order).count() == 1
    assert order.verify_totals() == []


def test_one_form_key_confirmed_on_two_orders_at_once_refunds_one_of_them(
    make_order, merchant_user, portal_client
):
    orders = [make_order(lines=[line("SOCKS", 700, 10)], capture=True) for _ in "ab"]
    forms = []
    for order in orders:
        socks = order.lines.get()
        forms.append(
            previewed(
                portal_client,
                order,
                {
                    "kind": "items",
                    f"line-{socks.pk}-selected": "on",
                    f"line-{socks.pk}-quantity": "3",
                    "idempotency_key": "shared",
                },
            )
        )
    results = portal_race(
        merchant_user, lambda i: orders[i % 2], lambda i: forms[i % 2]
    )
    (refund,) = Refund.objects.all()
    won = orders.index(next(o for o in orders if o.pk == refund.order_id))
    assert [status for i, (status, _) in enumerate(results) if i % 2 == won] == [
        302
    ] * 4
    lost = [body for i, (_, body) in enumerate(results) if i % 2 != won]
    assert all("This form was already used for a different refund" in b for b in lost)
    for order in orders:
        order.refresh_from_db()
        assert order.verify_totals() == []
