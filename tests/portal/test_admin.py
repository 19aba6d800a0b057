"""The staff admin: every page opens, money shows like the portal, money rows are
read-only, the order list stays cheap as it grows, and search finds orders."""

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.db import connection
from django.urls import reverse

from portal import admin as portal_admin
from portal.models import Capture, Order, OrderEvent, PaymentProduct, Payout
from refunds.models import Refund
from tests.factories import CustomerFactory, OrderFactory, UserFactory, line

REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
OUR_APPS = {"portal", "refunds"}


def admin_url(model, view: str, *args) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def every_kind_of_row(
    make_order, merchant_user, staff_user, django_capture_on_commit_callbacks
):
    """At least one row of every portal and refunds model (and of most others)."""
    with django_capture_on_commit_callbacks(execute=True):
        shipped_twice = make_order(
            lines=[line("TSHIRT-1", 10000, 2), line("CAP-1", 2500)]
        )
        shipped_twice.capture(lines=[("TSHIRT-1", 2)], by=staff_user)
        shipped_twice.capture(by=staff_user)
        shipped_twice.refund_lines([("CAP-1", 1)], by=staff_user, reference="RMA-1")

        with_fee = make_order(product=PaymentProduct.PAY_NOW, capture=True)
        with_fee.refund_lines(
            [("TSHIRT-1", 1)], return_fee=500, by=staff_user, idempotency_key="k-1"
        )
        financed = make_order(product=PaymentProduct.FINANCING, capture=True)
        financed.refund_complete(by=staff_user)
        make_order().cancel(by=staff_user)
        Payout.close_next(merchant_user.merchant)
    return shipped_twice


@pytest.mark.parametrize(
    ("model", "model_admin"),
    REGISTERED,
    ids=[model._meta.label for model, _ in REGISTERED],
)
def test_every_admin_page_opens_for_a_superuser(
    admin_client, superuser, rf, every_kind_of_row, model, model_admin
):
    request = rf.get("/admin/")
    request.user = superuser
    assert admin_client.get(admin_url(model, "changelist")).status_code == 200
    if model_admin.has_add_permission(request):
        assert admin_client.get(admin_url(model, "add")).status_code == 200
    obj = model._default_manager.order_by("pk").first()
    if obj is None:
        assert model._meta.app_label not in OUR_APPS, "no row to open"
        return
    assert admin_client.get(admin_url(model, "change", obj.pk)).status_code == 200


def test_every_portal_and_refunds_model_is_in_the_admin():
    from django.apps import apps

    for app_label in OUR_APPS:
        for model in apps.get_app_config(app_label).get_models():
            assert admin.site.is_registered(model), model._meta.label


# The order list ------------------------------------------------------------------


def test_the_order_list_shows_money_like_the_portal(admin_client, order):
    response = admin_client.get(admin_url(Order, "changelist"))
    assert response.status_code == 200
    assert "400,00\xa0€" in response.text
    assert order.reference in response.text
    assert order.customer.email in response.text


def test_the_order_list_issues_a_bounded_number_of_queries(
    admin_client, merchant, django_assert_max_num_queries
):
    # Session, user, the merchant filter, the count (on PostgreSQL: the planner
    # estimate first), the page, and nothing per row.
    url = admin_url(Order, "changelist")
    OrderFactory(merchant=merchant)
    with django_assert_max_num_queries(7):
        assert admin_client.get(url).status_code == 200

    for _ in range(29):
        OrderFactory(merchant=merchant, customer=CustomerFactory())
    with django_assert_max_num_queries(7):
        response = admin_client.get(url)
    assert response.text.count('class="field-reference"') == 30


def test_the_order_list_does_not_show_a_full_count(admin_client, order):
    response = admin_client.get(admin_url(Order, "changelist") + "?q=nothing")
    assert response.context["cl"].full_result_count is None


@pytest.mark.parametrize(
    "term",
    [
        lambda o: str(o.order_id),
        lambda o: str(o.order_id).upper(),
        lambda o: o.reference,
        lambda o: o.reference.lower(),
        lambda o: o.customer.email,
        lambda o: "maja@",
        lambda o: o.merchant_reference1,
    ],
    ids=[
        "order id",
        "order id upper",
        "reference",
        "reference lower",
        "email",
        "email start",
        "merchant reference",
    ],
)
def test_order_search_finds_the_order(admin_client, order, merchant, term):
    other = OrderFactory(
        merchant=merchant, customer=CustomerFactory(email="x@example.com")
    )
    response = admin_client.get(admin_url(Order, "changelist"), {"q": term(order)})
    assert list(response.context["cl"].result_list) == [order]
    assert other.reference not in response.text


def test_orders_filter_by_refund_state(admin_client, make_order):
    untouched = make_order(capture=True)
    partly = make_order(capture=True)
    partly.refund_amount(1000)
    fully = make_order(capture=True)
    fully.refund_complete()

    def listed(state):
        response = admin_client.get(
            admin_url(Order, "changelist"), {"refund_state": state}
        )
        return set(response.context["cl"].result_list)

    assert listed("none") == {untouched}
    assert listed("partial") == {partly}
    assert listed("full") == {fully}


def test_orders_filter_by_status_product_and_country(admin_client, make_order):
    pay_now = make_order(product=PaymentProduct.PAY_NOW, capture=True)
    make_order(product=PaymentProduct.PAY_IN_4)
    response = admin_client.get(
        admin_url(Order, "changelist"),
        {
            "status__exact": "CAPTURED",
            "payment_product__exact": "pay_now",
            "purchase_country__exact": "DE",
        },
    )
    assert list(response.context["cl"].result_list) == [pay_now]


# Orders change only through their verbs -------------------------------------------


def test_orders_cannot_be_added_or_deleted_in_the_admin(admin_client, order):
    assert admin_client.get(admin_url(Order, "add")).status_code == 403
    assert admin_client.get(admin_url(Order, "delete", order.pk)).status_code == 403


def test_an_orders_money_fields_are_read_only(admin_client, captured_order):
    url = admin_url(Order, "change", captured_order.pk)
    page = admin_client.get(url)
    form = page.context["adminform"].form
    assert set(form.fields) == {"merchant_reference1", "merchant_reference2"}
    assert "400,00\xa0€" in page.text

    data = form_data(page)
    data.update(merchant_reference1="SO-9", captured_amount="1", status="CANCELLED")
    assert admin_client.post(url, data).status_code == 302
    captured_order.refresh_from_db()
    assert captured_order.captured_amount == 40000
    assert captured_order.status == "CAPTURED"
    assert captured_order.merchant_reference1 == "SO-9"
    assert captured_order.events.get().kind == OrderEvent.Kind.REFERENCES_UPDATED


def form_data(page) -> dict:
    """What the browser would post back from an admin change page."""
    form = page.context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(
            {
                f"{formset.prefix}-{key}": value
                for key, value in formset.management_form.initial.items()
            }
        )
        for inline_form in formset.forms:
            for name in inline_form.fields:
                value = inline_form[name].value()
                data[inline_form.add_prefix(name)] = "" if value is None else value
    return data


def test_the_verify_totals_action_reports_agreement(admin_client, captured_order):
    response = admin_client.post(
        admin_url(Order, "changelist"),
        {"action": "verify_totals", "_selected_action": [captured_order.pk]},
    )
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == [
        "1 order(s) verified: cached totals agree with their captures and refunds."
    ]


def test_the_verify_totals_action_reports_disagreement(admin_client, captured_order):
    Order.objects.filter(pk=captured_order.pk).update(refunded_amount=5)
    response = admin_client.post(
        admin_url(Order, "changelist"),
        {"action": "verify_totals", "_selected_action": [captured_order.pk]},
        follow=True,
    )
    assert (
        f"1 disagreement(s) in 1 order(s): {captured_order.reference}: "
        "refunded_amount 5 != refunds 0"
    ) in response.text


# Refunds are append-only ---------------------------------------------------------


def test_refunds_cannot_be_added_changed_or_deleted(admin_client, captured_order):
    refund = captured_order.refund_amount(2500)
    assert admin_client.get(admin_url(Refund, "add")).status_code == 403
    assert admin_client.get(admin_url(Refund, "delete", refund.pk)).status_code == 403

    url = admin_url(Refund, "change", refund.pk)
    page = admin_client.get(url)
    assert page.status_code == 200
    assert "25,00\xa0€" in page.text
    assert 'name="_save"' not in page.text
    assert admin_client.post(url, {"description": "changed"}).status_code == 403
    refund.refresh_from_db()
    assert refund.description == ""


def test_refund_search_finds_by_order_reference_and_email(admin_client, captured_order):
    refund = captured_order.refund_amount(2500, reference="RMA-42")
    for term in (
        captured_order.reference,
        "RMA-42",
        captured_order.customer.email,
        str(refund.refund_id),
        str(captured_order.order_id),
    ):
        response = admin_client.get(admin_url(Refund, "changelist"), {"q": term})
        assert list(response.context["cl"].result_list) == [refund], term


# Counting large tables -----------------------------------------------------------


def test_a_filtered_or_sqlite_order_list_is_counted_exactly(db, make_order):
    make_order()
    paginator = portal_admin.EstimatedCountPaginator(Order.objects.all(), 50)
    assert paginator.count == 1
    filtered = portal_admin.EstimatedCountPaginator(
        Order.objects.filter(status="CAPTURED"), 50
    )
    assert filtered.count == 0


@pytest.mark.postgres
def test_an_unfiltered_large_order_list_uses_the_planner_estimate(
    db, make_order, monkeypatch, django_assert_num_queries
):
    for _ in range(3):
        make_order()
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Order._meta.db_table}")
    monkeypatch.setattr(portal_admin, "ESTIMATE_COUNT_ABOVE", 1)
    paginator = portal_admin.EstimatedCountPaginator(Order.objects.all(), 50)
    with django_assert_num_queries(1) as captured:
        assert paginator.count == 3
    assert "pg_class" in captured.captured_queries[0]["sql"]
    assert "COUNT" not in captured.captured_queries[0]["sql"].upper()


@pytest.mark.parametrize(
    ("rate_bp", "shown"),
    [(2500, "25%"), (1900, "19%"), (888, "8.88%"), (750, "7.5%"), (0, "0%")],
)
def test_tax_rates_show_as_percentages(rate_bp, shown):
    assert portal_admin.basis_points_as_percent(rate_bp) == shown


def test_a_capture_shows_the_customers_payment_plan(admin_client, captured_order):
    capture = captured_order.captures.get()
    page = admin_client.get(admin_url(Capture, "change", capture.pk))
    assert "Pay in 4 plan for" in page.text
    assert "1. 100,00\xa0€ due" in page.text  # paid at capture
    assert "4. 100,00\xa0€ due" in page.text


def test_staff_who_may_only_view_cannot_run_money_moving_actions(client, merchant):
    from django.contrib.auth.models import Permission

    from portal.models import Payout
    from tests.factories import UserFactory

    viewer = UserFactory(username="view-only-staff", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_merchant"))
    client.force_login(viewer)
    client.post(
        "/admin/portal/merchant/",
        {"action": "close_next_payout", "_selected_action": [merchant.pk]},
    )
    assert not Payout.objects.exists()


# Staff cannot break money ------------------------------------------------------------

#: Money rows and the amounts on them: the admin never deletes or changes these.
MONEY_AMOUNTS = {
    "portal.Order": ["order_amount", "captured_amount", "refunded_amount"],
    "portal.OrderLine": ["total_amount", "captured_quantity", "refunded_quantity"],
    "portal.Capture": ["captured_amount", "refunded_amount"],
    "portal.CaptureLine": ["amount", "refunded_quantity"],
    "portal.LedgerEntry": ["amount"],
    "portal.Payout": ["total", "paid_amount"],
    "refunds.Refund": ["refunded_amount", "fee_amount"],
    "refunds.RefundLine": ["total_amount", "quantity"],
    "refunds.RefundAllocation": ["amount"],
    "customers.PaymentPlan": ["amount", "service_fee"],
    "customers.Installment": ["amount", "original_amount"],
    "customers.Repayment": ["amount"],
    "customers.BalanceEntry": ["amount"],
}


def money_fingerprint() -> dict:
    """Every money row's primary key and amounts, by model."""
    from django.apps import apps

    return {
        label: sorted(
            apps.get_model(label).objects.values_list("pk", *fields).order_by("pk")
        )
        for label, fields in MONEY_AMOUNTS.items()
    }


@pytest.fixture
def every_admin_row(every_kind_of_row, customer, merchant, staff_user):
    """A row of every registered model: orders, refunds, plans, repayments, a
    return report, a balance entry, a login code, an API credential."""
    from django.utils import timezone

    from customers.models import BalanceEntry, LoginCode, ReturnReport
    from portal.api.models import ApiCredential

    open_order = Order.objects.filter(status="PART_CAPTURED").first()
    ReturnReport.report(
        open_order or every_kind_of_row,
        tracking_number="T-1",
        shipped_on=timezone.localdate(),
    )
    BalanceEntry.objects.create(
        customer=customer, amount=500, currency="EUR", description="Refund"
    )
    LoginCode.issue(customer.email, "127.0.0.1")
    ApiCredential.issue(merchant, "Shop", by=staff_user)
    return every_kind_of_row


@pytest.fixture
def view_only_staff(db):
    from django.contrib.auth.models import Permission

    user = UserFactory(username="looks-only", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    return user


def every_admin_url(model, acting_user) -> list[str]:
    urls = [admin_url(model, "changelist"), admin_url(model, "add")]
    objects = model._default_manager.exclude(pk=acting_user.pk).order_by("pk")
    if model._meta.label != "auth.User":
        objects = model._default_manager.order_by("pk")
    for obj in objects[:3]:
        urls += [
            admin_url(model, "change", obj.pk),
            admin_url(model, "history", obj.pk),
            admin_url(model, "delete", obj.pk),
        ]
    return urls


@pytest.mark.parametrize("who", ["superuser", "view-only staff"])
def test_every_admin_url_opens_for_staff_without_an_error(
    client, superuser, view_only_staff, every_admin_row, who
):
    acting = superuser if who == "superuser" else view_only_staff
    client.force_login(acting)
    before = money_fingerprint()
    for model, _ in REGISTERED:
        for url in every_admin_url(model, acting):
            # The test client re-raises a server error: a 500 fails here.
            status = client.get(url).status_code
            assert status in (200, 302, 403), (url, status)
    assert money_fingerprint() == before


def test_no_admin_add_change_or_delete_post_breaks_money(
    admin_client, superuser, every_admin_row
):
    """Post every add form empty, every change form as shown, and confirm every
    delete page: nothing fails, and no money row is deleted or changed."""
    before = money_fingerprint()
    for model, _ in REGISTERED:
        assert admin_client.post(admin_url(model, "add"), {}).status_code in (
            200,
            403,
        ), model
        obj = model._default_manager.exclude(pk=superuser.pk).order_by("pk").first()
        if obj is None:
            continue
        change = admin_url(model, "change", obj.pk)
        page = admin_client.get(change)
        if page.context and "adminform" in page.context:
            response = admin_client.post(change, form_data(page))
            assert response.status_code in (200, 302, 403), (change, response)
        delete = admin_url(model, "delete", obj.pk)
        response = admin_client.post(delete, {"post": "yes"})
        assert response.status_code in (200, 302, 403), delete
    assert money_fingerprint() == before


@pytest.mark.parametrize("label", sorted(MONEY_AMOUNTS))
def test_money_rows_have_no_delete_and_no_add_in_the_admin(rf, superuser, label):
    from django.apps import apps

    model = apps.get_model(label)
    request = rf.get("/admin/")
    request.user = superuser
    model_admin = admin.site._registry.get(model)
    if model_admin is None:  # installments: only inside their plan
        assert label == "customers.Installment"
        return
    assert not model_admin.has_delete_permission(request)
    assert not model_admin.has_add_permission(request)


@pytest.mark.parametrize(
    "model_name", ["repayment", "paymentplan", "balanceentry", "notification"]
)
def test_rows_made_by_verbs_have_no_add_page(admin_client, model_name):
    # These add pages showed only read-only fields, and Save was a 500.
    url = reverse(f"admin:customers_{model_name}_add")
    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {}).status_code == 403


def test_a_payment_plan_cannot_be_deleted(admin_client, captured_order):
    from django.db.models import ProtectedError

    from customers.models import PaymentPlan

    plan = PaymentPlan.objects.get(order=captured_order)
    url = reverse("admin:customers_paymentplan_delete", args=[plan.pk])
    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    with pytest.raises(ProtectedError):
        plan.delete()
    assert PaymentPlan.objects.filter(pk=plan.pk).exists()
    assert plan.installments.count() == 4


def test_a_merchants_currency_and_country_lock_once_it_has_orders(
    admin_client, merchant, order
):
    url = admin_url(portal_admin.Merchant, "change", merchant.pk)
    page = admin_client.get(url)
    assert {"currency", "country"}.isdisjoint(page.context["adminform"].form.fields)
    data = form_data(page)
    data.update(currency="USD", country="US", name="Nordic Threads GmbH")
    assert admin_client.post(url, data).status_code == 302
    merchant.refresh_from_db()
    assert (merchant.currency, merchant.country) == ("EUR", "DE")
    assert merchant.name == "Nordic Threads GmbH"
    delete = admin_url(portal_admin.Merchant, "delete", merchant.pk)
    assert admin_client.get(delete).status_code == 403


def test_a_merchant_without_orders_can_still_be_set_up(admin_client, us_merchant):
    url = admin_url(portal_admin.Merchant, "change", us_merchant.pk)
    form = admin_client.get(url).context["adminform"].form
    assert {"currency", "country"} <= set(form.fields)


@pytest.mark.parametrize(
    ("changelist", "action"),
    [
        ("admin:portal_merchant_changelist", "close_next_payout"),
        ("admin:customers_repayment_changelist", "retry_bounced"),
        ("admin:customers_repayment_changelist", "resend_notification"),
        ("admin:customers_notification_changelist", "resend_notification"),
        ("admin:portal_order_changelist", "delete_selected"),
        ("admin:customers_paymentplan_changelist", "delete_selected"),
    ],
)
def test_view_only_staff_cannot_run_actions_that_move_money(
    client, view_only_staff, every_admin_row, changelist, action
):
    from customers.models import Notification, Repayment

    Repayment.objects.update(status="bounced", failure_reason="Card frozen.")
    client.force_login(view_only_staff)
    before = money_fingerprint()
    url = reverse(changelist)
    model = client.get(url).context["cl"].model
    pks = list(model._default_manager.values_list("pk", flat=True))
    notifications = list(Notification.objects.values_list("email_attempts", "pk"))
    response = client.post(url, {"action": action, "_selected_action": pks})
    assert response.status_code in (200, 302, 403)
    assert money_fingerprint() == before
    assert set(Repayment.objects.values_list("status", flat=True)) == {"bounced"}
    assert list(Notification.objects.values_list("email_attempts", "pk")) == (
        notifications
    )
    assert not Payout.objects.filter(number__gt=1).exists()


def test_the_merchant_admin_offers_no_bulk_delete_of_merchants_with_orders(
    admin_client, merchant, order
):
    response = admin_client.post(
        reverse("admin:portal_merchant_changelist"),
        {"action": "delete_selected", "_selected_action": [merchant.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302, 403)
    assert portal_admin.Merchant.objects.filter(pk=merchant.pk).exists()
