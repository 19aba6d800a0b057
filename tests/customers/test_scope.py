"""Every customer page is scoped: another customer's ids give 404, and without a
login every page that shows account data sends you to the login page. The
URLconf is walked, so a new page cannot be added without being covered."""

from datetime import timedelta

import pytest
from django.urls import URLPattern, get_resolver, reverse
from django.utils import timezone

from customers.models import Notification, Repayment, RepaymentStatus

pytestmark = pytest.mark.django_db

PUBLIC = {"login", "login_code", "resend_code", "logout"}


def customer_patterns() -> list[URLPattern]:
    resolver = get_resolver()
    for entry in resolver.url_patterns:
        if getattr(entry, "namespace", None) == "customers":
            return [p for p in entry.url_patterns if isinstance(p, URLPattern)]
    raise AssertionError("customers URLs are not mounted")


@pytest.fixture
def customers_things(captured_order, django_capture_on_commit_callbacks):
    """One of each thing a customer URL can point at, all the customer's own."""
    with django_capture_on_commit_callbacks(execute=True):
        refund = captured_order.refund_amount(35000)
    repayment = refund.repayments.get()
    Repayment.objects.filter(pk=repayment.pk).update(status=RepaymentStatus.BOUNCED)
    notification = Notification.objects.get(refund=refund)
    return {
        "order_id": captured_order.order_id,
        "repayment_id": repayment.repayment_id,
        "pk": notification.pk,
    }


def test_every_customer_url_is_known_to_this_test():
    names = {p.name for p in customer_patterns()}
    params = {key for p in customer_patterns() for key in p.pattern.converters}
    assert params <= {"order_id", "repayment_id", "pk"}, (
        "a new URL parameter needs a case"
    )
    assert names - PUBLIC, "customer pages exist"


def test_another_customers_ids_give_404_on_every_customer_url(
    other_client, customers_things
):
    checked = set()
    for pattern in customer_patterns():
        keys = set(pattern.pattern.converters)
        if not keys:
            continue
        url = reverse(
            f"customers:{pattern.name}", kwargs={k: customers_things[k] for k in keys}
        )
        for method in ("get", "post"):
            response = getattr(other_client, method)(url)
            if response.status_code != 405:
                assert response.status_code == 404, f"{pattern.name} {method}"
                checked.add(pattern.name)
    assert checked == {p.name for p in customer_patterns() if p.pattern.converters}


def test_the_owner_reaches_every_customer_url(customer_client, customers_things):
    for pattern in customer_patterns():
        keys = set(pattern.pattern.converters)
        url = reverse(
            f"customers:{pattern.name}", kwargs={k: customers_things[k] for k in keys}
        )
        response = customer_client.get(url)
        if response.status_code == 405:
            response = customer_client.post(url)
        assert response.status_code in (200, 302), (
            f"{pattern.name}: {response.status_code}"
        )


def test_every_account_page_needs_a_login(client, customers_things):
    for pattern in customer_patterns():
        if pattern.name in PUBLIC:
            continue
        keys = set(pattern.pattern.converters)
        url = reverse(
            f"customers:{pattern.name}", kwargs={k: customers_things[k] for k in keys}
        )
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            if response.status_code == 405:
                continue
            assert response.status_code == 302, f"{pattern.name} {method}"
            assert response.url.startswith(reverse("customers:login"))


def test_the_order_list_shows_only_the_customers_own_orders(
    other_client, captured_order, make_order, other_customer
):
    mine = make_order(
        customer=other_customer, capture=True, merchant_reference1="OLLE-1"
    )
    page = other_client.get(reverse("customers:order_list")).content.decode()
    assert "OLLE-1" in page
    assert captured_order.merchant_reference1 not in page
    assert mine.merchant_reference1 in page


def test_notifications_and_balance_show_only_the_customers_own(
    other_client, customers_things, other_customer
):
    Notification.objects.create(
        customer=other_customer,
        kind=Notification.Kind.RETURN_REPORTED,
        title="Olle's own note",
        body="Yours.",
        created_at=timezone.now() - timedelta(minutes=1),
    )
    inbox = other_client.get(reverse("customers:notification_list")).content.decode()
    assert "Olle&#x27;s own note" in inbox
    assert "Refund from" not in inbox
    balance = other_client.get(reverse("customers:balance")).content.decode()
    assert "Refund from" not in balance
