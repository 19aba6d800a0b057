"""Notifications inbox (unread count in the header, mark as read with and without
htmx) and the account balance page."""

import pytest
from django.urls import reverse

from customers.models import BalanceEntry, Customer, Notification
from tests.factories import line

pytestmark = pytest.mark.django_db

INBOX = reverse("customers:notification_list")


@pytest.fixture
def notifications(customer):
    return [
        Notification.objects.create(
            customer=customer,
            kind=Notification.Kind.RETURN_REPORTED,
            title=f"Note {n}",
            body=f"Body {n}",
        )
        for n in range(3)
    ]


def unread_badge(html: str) -> str:
    start = html.index('id="unread-count"')
    return html[start : html.index("</span>", html.index("</span>", start) + 1)]


def test_the_header_shows_the_unread_count_on_every_page(
    customer_client, notifications
):
    for url in (reverse("customers:order_list"), INBOX, reverse("customers:balance")):
        html = customer_client.get(url).content.decode()
        assert '>3<span class="visually-hidden"> unread</span>' in unread_badge(html)


def test_marking_a_notification_read_without_htmx_redirects_back(
    customer_client, notifications
):
    response = customer_client.post(
        reverse("customers:notification_read", args=[notifications[0].pk])
    )
    assert response.status_code == 302 and response.url == INBOX
    notifications[0].refresh_from_db()
    assert notifications[0].read_at is not None
    assert "2<span" in unread_badge(customer_client.get(INBOX).content.decode())


def test_marking_a_notification_read_with_htmx_swaps_the_item_and_the_count(
    customer_client, notifications
):
    response = customer_client.post(
        reverse("customers:notification_read", args=[notifications[1].pk]),
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert html.lstrip().startswith(f'<li id="notification-{notifications[1].pk}"')
    assert "is-unread" not in html.split("</li>")[0]
    assert 'hx-swap-oob="true"' in html and "2<span" in html
    assert "<html" not in html


def test_marking_read_twice_keeps_the_first_time(customer_client, notifications):
    url = reverse("customers:notification_read", args=[notifications[0].pk])
    customer_client.post(url)
    notifications[0].refresh_from_db()
    first = notifications[0].read_at
    customer_client.post(url)
    notifications[0].refresh_from_db()
    assert notifications[0].read_at == first


def test_mark_all_as_read(customer_client, notifications):
    response = customer_client.post(reverse("customers:notification_read_all"))
    assert response.url == INBOX
    assert not Notification.objects.unread().exists()
    htmx = customer_client.post(
        reverse("customers:notification_read_all"), headers={"HX-Request": "true"}
    )
    assert htmx.headers["HX-Redirect"] == INBOX


def test_a_bounced_notification_links_to_the_new_details_form(
    customer_client, make_order, django_capture_on_commit_callbacks
):
    from customers.models import PaymentMethod
    from portal.models import PaymentProduct

    order = make_order(product=PaymentProduct.PAY_NOW, capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        repayment = order.refund_amount(1000).repayments.get()
        PaymentMethod.objects.update(status=PaymentMethod.Status.FROZEN)
        from django.utils import timezone

        repayment.advance(timezone.now() + timezone.timedelta(days=3))
    html = customer_client.get(INBOX).content.decode()
    assert "Action needed: your refund of 10,00\xa0€ bounced" in html
    assert reverse("customers:repayment_details", args=[repayment.repayment_id]) in html


def test_the_inbox_runs_a_fixed_number_of_queries(
    customer_client, customer, captured_order, django_assert_max_num_queries
):
    Notification.objects.bulk_create(
        Notification(
            customer=customer,
            kind=Notification.Kind.REFUND,
            order=captured_order,
            title=f"Note {n}",
            body="Body",
        )
        for n in range(20)
    )
    with django_assert_max_num_queries(6):
        customer_client.get(INBOX)


def test_the_balance_page_shows_the_total_and_its_history(customer_client, customer):
    BalanceEntry.objects.create(
        customer=customer,
        amount=12345,
        currency="EUR",
        description="Refund from Nordic Threads",
    )
    BalanceEntry.objects.create(
        customer=customer, amount=-2345, currency="EUR", description="Used at Acme"
    )
    html = customer_client.get(reverse("customers:balance")).content.decode()
    assert "100,00\xa0€" in html
    assert "+123,45\xa0€" in html and "-23,45\xa0€" in html
    assert "Used at Acme" in html


def test_an_empty_balance_page_says_so(customer_client):
    html = customer_client.get(reverse("customers:balance")).content.decode()
    assert "Nothing yet." in html


def test_the_inbox_of_messages_written_from_refund_records_stays_bounded(
    customer_client,
    make_order,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
):
    order = make_order(lines=[line(f"SKU-{i}", 1000) for i in range(12)], capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(12):
            order.refund_lines([(f"SKU-{i}", 1)])
    with django_assert_max_num_queries(8):
        html = customer_client.get(INBOX).content.decode()
    # 90,00 € was still owed: eight refunds lower it, the ninth cancels the
    # rest, the last three go back to the card.
    assert html.count("Your remaining payments:") == 8
    assert html.count("Any remaining payments will be canceled.") == 1
    assert html.count("goes back to Visa •••• 4242") == 3


def test_the_customer_comes_with_the_unread_count_in_one_query(
    rf, customer, notifications, django_assert_num_queries
):
    from django.contrib.sessions.backends.db import SessionStore

    from customers.auth import SESSION_KEY, current_customer

    notifications[0].mark_read()
    request = rf.get("/my/")
    request.session = SessionStore()
    request.session[SESSION_KEY] = customer.pk
    with django_assert_num_queries(1):
        loaded = current_customer(request)
        assert loaded == customer and loaded.unread_notification_count() == 2
    assert [getattr(loaded, f.attname) for f in Customer._meta.concrete_fields] == [
        getattr(customer, f.attname) for f in Customer._meta.concrete_fields
    ]
    request.session[SESSION_KEY] = 987654
    assert current_customer(request) is None
