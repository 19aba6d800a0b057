"""Each refund kind on each payment product, as the customer sees it: the order
list status, the plan with its new amounts, and the refund's timeline."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import InstallmentStatus, PlanStatus, ReturnReport
from customers.views import PAGE_SIZE
from portal.models import PaymentProduct
from portal.money import format_money
from tests.factories import line

pytestmark = pytest.mark.django_db

LINES = [
    line("TSHIRT-1", 10000, 2, name="T-shirt"),
    line("JEANS-1", 20000, name="Jeans"),
]

KINDS = {
    "complete": lambda order: order.refund_complete(description="Order returned"),
    "items": lambda order: order.refund_lines(
        [("TSHIRT-1", 1)], description="T-shirt returned"
    ),
    "items_with_fee": lambda order: order.refund_lines(
        [("TSHIRT-1", 1)], return_fee=500, description="T-shirt returned"
    ),
    "amount": lambda order: order.refund_amount(5000, description="Price adjustment"),
}

# What the timeline says about how the refund was applied, per product and kind.
APPLIED = {
    (PaymentProduct.PAY_IN_4, "partial"): "Remaining 3 payments become",
    (PaymentProduct.PAY_IN_3, "partial"): "Remaining 2 payments become",
    (PaymentProduct.ONE_TIME_CARD, "partial"): "Remaining 3 payments become",
    (PaymentProduct.PAY_LATER, "partial"): "The remaining payment becomes",
    (PaymentProduct.FINANCING, "partial"): "deducted from the financing balance",
    (PaymentProduct.PAY_NOW, "partial"): "back to Visa •••• 4242",
    (PaymentProduct.PAY_IN_4, "complete"): "Any remaining payments will be canceled",
    (PaymentProduct.PAY_IN_3, "complete"): "Any remaining payments will be canceled",
    (PaymentProduct.ONE_TIME_CARD, "complete"): "service fee of 8,00\xa0€ returned",
    (PaymentProduct.PAY_LATER, "complete"): "Any remaining payments will be canceled",
    (PaymentProduct.FINANCING, "complete"): "Any remaining payments will be canceled",
    (PaymentProduct.PAY_NOW, "complete"): "400,00\xa0€ back to Visa •••• 4242",
}


def eur(amount: int) -> str:
    return format_money(amount, "EUR", "de_DE")


@pytest.mark.parametrize("product", list(PaymentProduct))
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_refund_kind_on_each_product_is_shown_on_the_order_page(
    product, kind, customer_client, make_order, django_capture_on_commit_callbacks
):
    order = make_order(product=product, lines=LINES, capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        refund = KINDS[kind](order)

    page = customer_client.get(reverse("customers:order_detail", args=[order.order_id]))
    html = page.content.decode()

    assert page.status_code == 200
    assert f"Refund issued: {eur(refund.refunded_amount)}" in html
    assert refund.description in html
    if kind == "items_with_fee":
        assert f"A return fee of {eur(500)} was deducted." in html
    if kind != "amount" and kind != "complete":
        assert "1 × T-shirt" in html
    assert APPLIED[(product, "complete" if kind == "complete" else "partial")] in html
    plan = order.captures.get().plan
    for installment in plan.installments.all():
        assert eur(installment.amount) in html
        if installment.amount != installment.original_amount:
            assert (
                f'<s class="c-muted" aria-label="was">{eur(installment.original_amount)}</s>'
                in html
            )
    for repayment in refund.repayments.all():
        assert f"{eur(repayment.amount)} will go back to Visa •••• 4242" in html
        assert f"Expected by {repayment.expected_by:%-d %b %Y}" in html

    listing = customer_client.get(reverse("customers:order_list")).content.decode()
    assert ("Refunded" if kind == "complete" else "Partly refunded") in listing


def test_pay_in_4_amount_refund_lowers_the_remaining_installments_evenly(
    customer_client, make_order, django_capture_on_commit_callbacks
):
    order = make_order(lines=LINES, capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        order.refund_amount(3001)
    html = customer_client.get(
        reverse("customers:order_detail", args=[order.order_id])
    ).content.decode()
    assert "Remaining 3 payments become 90,00\xa0€, 90,00\xa0€, 89,99\xa0€." in html
    assert html.count('<span class="c-pill c-pill-scheduled">Scheduled</span>') == 3


def test_financing_refund_larger_than_what_is_owed_goes_to_the_account_balance(
    customer_client, customer, make_order, django_capture_on_commit_callbacks
):
    order = make_order(product=PaymentProduct.FINANCING, lines=LINES, capture=True)
    plan = order.captures.get().plan
    plan.installments.filter(sequence__lte=3).update(status=InstallmentStatus.PAID)
    with django_capture_on_commit_callbacks(execute=True):
        order.refund_complete()

    html = customer_client.get(
        reverse("customers:order_detail", args=[order.order_id])
    ).content.decode()
    balance = customer_client.get(reverse("customers:balance")).content.decode()

    paid = sum(i.original_amount for i in plan.installments.filter(sequence__lte=3))
    assert f"{eur(paid)} credited to your account balance." in html
    assert eur(paid) in balance
    assert "Refund from Nordic Threads" in balance


def test_store_credit_refund_says_payments_continue(
    customer_client, merchant, make_order, django_capture_on_commit_callbacks
):
    merchant.store_credit_only = True
    merchant.save()
    order = make_order(lines=LINES, capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        order.refund_amount(5000)
    html = customer_client.get(
        reverse("customers:order_detail", args=[order.order_id])
    ).content.decode()
    assert "handles this return as store credit" in html
    assert "continue as planned" in html


def test_the_order_list_shows_each_status(
    customer_client, make_order, django_capture_on_commit_callbacks
):
    paying = make_order(merchant_reference1="PAYING", capture=True)
    paid = make_order(
        product=PaymentProduct.PAY_NOW, merchant_reference1="PAID", capture=True
    )
    refunded = make_order(merchant_reference1="REFUNDED", capture=True)
    partly = make_order(merchant_reference1="PARTLY", lines=LINES, capture=True)
    awaiting = make_order(merchant_reference1="AWAITING")
    with django_capture_on_commit_callbacks(execute=True):
        refunded.refund_complete()
        partly.refund_amount(1000)
    assert paid.captures.get().plan.status == PlanStatus.PAID

    page = customer_client.get(reverse("customers:order_list"))
    rows = {
        o.merchant_reference1: o.customer_status_label for o in page.context["page"]
    }

    assert rows == {
        "PAYING": "Paying",
        "PAID": "Paid",
        "REFUNDED": "Refunded",
        "PARTLY": "Partly refunded",
        "AWAITING": "Awaiting shipment",
    }
    assert paying and awaiting


def test_the_order_page_reads_the_status_the_order_list_reads(
    customer_client, make_order, django_capture_on_commit_callbacks
):
    orders = {
        "PAYING": make_order(capture=True),
        "PAID": make_order(product=PaymentProduct.PAY_NOW, capture=True),
        "REFUNDED": make_order(capture=True),
        "PARTLY": make_order(lines=LINES, capture=True),
        "AWAITING": make_order(),
        "CANCELLED": make_order(),
        "PAUSED": make_order(capture=True),
    }
    with django_capture_on_commit_callbacks(execute=True):
        orders["REFUNDED"].refund_complete()
        orders["PARTLY"].refund_amount(1000)
    orders["CANCELLED"].cancel()
    ReturnReport.report(
        orders["PAUSED"], tracking_number="1Z999AA1", shipped_on=timezone.localdate()
    )

    listed = {
        o.pk: o.customer_status_label
        for o in customer_client.get(reverse("customers:order_list")).context["page"]
    }
    shown = {
        o.pk: customer_client.get(reverse("customers:order_detail", args=[o.order_id]))
        .context["view"]
        .status_label
        for o in orders.values()
    }
    assert {name: shown[o.pk] for name, o in orders.items()} == {
        "PAYING": "Paying",
        "PAID": "Paid",
        "REFUNDED": "Refunded",
        "PARTLY": "Partly refunded",
        "AWAITING": "Awaiting shipment",
        "CANCELLED": "Cancelled",
        "PAUSED": "Payments paused",
    }
    assert listed == shown


def test_the_order_list_runs_a_fixed_number_of_queries(
    customer_client, make_order, django_assert_max_num_queries
):
    for _ in range(15):
        make_order(capture=True)
    # Session, customer (with the unread notifications), orders: a customer
    # with one page of orders is not counted.
    with django_assert_max_num_queries(3):
        customer_client.get(reverse("customers:order_list"))


def test_a_customer_with_more_orders_than_a_page_gets_pages(
    customer_client, make_order, django_assert_max_num_queries
):
    for n in range(PAGE_SIZE + 1):
        make_order(merchant_reference1=f"NW-{n:03d}")
    url = reverse("customers:order_list")
    with django_assert_max_num_queries(4):  # ... and the count
        first = customer_client.get(url)
    assert len(first.context["page"].object_list) == PAGE_SIZE
    assert "Page 1 of 2" in first.content.decode()
    second = customer_client.get(url, {"page": "2"})
    assert [o.merchant_reference1 for o in second.context["page"]] == ["NW-000"]
    assert "Page 2 of 2" in second.content.decode()
    assert customer_client.get(url, {"page": "x"}).context["page"].number == 1


def test_the_order_page_runs_a_fixed_number_of_queries(
    customer_client,
    make_order,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
):
    order = make_order(lines=LINES, capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            order.refund_amount(1000, description="Goodwill")
        order.refund_complete()
    with django_assert_max_num_queries(12):
        response = customer_client.get(
            reverse("customers:order_detail", args=[order.order_id])
        )
    assert response.content.decode().count("Refund issued") == 6


def test_a_refund_that_lowered_the_payments_asks_for_no_money_back(
    customer_client,
    make_order,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
):
    order = make_order(lines=LINES, capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        order.refund_amount(1000, description="Goodwill")
    # Session, customer, order, plans, installments, due date extensions,
    # reported returns, refunds, their lines and allocations, order lines: no
    # repayments, no account balance entries.
    with django_assert_max_num_queries(11):
        response = customer_client.get(
            reverse("customers:order_detail", args=[order.order_id])
        )
    assert "Refund issued" in response.content.decode()


def test_with_two_shipments_the_timeline_says_which_one_a_refund_changed(
    customer_client, make_order, django_capture_on_commit_callbacks
):
    order = make_order(lines=LINES)
    order.capture(lines=[("JEANS-1", 1)])
    order.capture(lines=[("TSHIRT-1", 2)])
    with django_capture_on_commit_callbacks(execute=True):
        order.refund_lines([("TSHIRT-1", 1)])
    html = customer_client.get(
        reverse("customers:order_detail", args=[order.order_id])
    ).content.decode()
    assert "Shipment 2: Remaining 3 payments become" in html
    assert "Shipment 1 · 200,00\xa0€" in html and "Shipment 2 · 200,00\xa0€" in html


@pytest.mark.parametrize("language", ["en", "de", "sv"])
def test_order_list_rows_read_like_the_template_they_replace(
    customer, make_order, language
):
    from django.template import Context, Template
    from django.utils import translation

    from customers.status import order_list_page, order_list_rows

    make_order(merchant_reference1='<NW> & "1"', capture=True)
    make_order(merchant_reference1="")
    page = order_list_page(customer, "1")
    template = Template(
        """{% load i18n %}{% for order in orders %}<li>
    <a class="c-order-row" href="{{ order.url }}">
      <span class="c-order-store">
        <strong>{{ order.merchant_name }}</strong>
        <span class="c-muted c-small">{{ order.created_at|date:_("j M Y") }} · {% blocktranslate with number=order.merchant_reference1|default:order.reference %}Order {{ number }}{% endblocktranslate %}</span>
      </span>
      <span class="c-order-amount">{{ order.order_amount|money:order.money }}</span>
      <span class="c-status c-status-{{ order.customer_status }}">{{ order.customer_status_label }}</span>
    </a>
  </li>{% endfor %}"""  # the template as it was
    )
    with translation.override(language):
        expected = template.render(Context({"orders": page.object_list}))
        rows = "".join(order_list_rows(page.object_list))
    assert re.sub(r">\s+<", "><", expected) == re.sub(r">\s+<", "><", rows)
