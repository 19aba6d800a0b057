"""The customer's pages at /my/: login by code, orders and their refund status,
report a return, new details for a bounced refund, balance, notifications.

Every page is scoped to ``request.customer`` at its first line; another
customer's ids give 404.

Language (our rule, issue 15): a page about one order (the order, reporting its
return, new details for its refund) is in that order's language (its locale:
"de_DE" -> German, "sv_SE" -> Swedish, else English); the order list, balance
and notifications are in the language of the customer's most recent order
(``_in_customer_language``); the login pages, before anyone is known, follow the
language switcher and then Accept-Language (``LocaleMiddleware``).
"""

from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import FETCH_PEERS
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from portal.compiled import CompiledObjects
from portal.models import Order

from .auth import (
    current_customer,
    customer_required,
    login_customer,
    logout_customer,
    pending_code_id,
    pending_email,
    request_code,
    safe_next,
)
from .forms import CodeForm, EmailForm, RepaymentDetailsForm, ReturnReportForm
from .language import activate_for, customer_language, order_language
from .models import LoginThrottled, Notification, Repayment
from .status import (
    BOUNCE_GUIDANCE,
    TRACING,
    MoneyContext,
    OrderPage,
    balance_page,
    balance_totals,
    order_list_page,
    order_list_rows,
)

PAGE_SIZE = 20


def redirect_or_htmx(request: HttpRequest, url: str) -> HttpResponse:
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _in_customer_language(request: HttpRequest) -> None:
    """A page about no single order: the customer's language (one query)."""
    activate_for(request, customer_language(request.customer))


def _partial(request: HttpRequest, template: str, partial: str) -> str:
    return f"{template}#{partial}" if request.htmx else template


@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    if current_customer(request) is not None:
        return redirect(safe_next(request, reverse("customers:order_list")))
    form = EmailForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            request_code(request, form.cleaned_data["email"])
        except LoginThrottled as error:
            form.add_error(None, error.message)
        else:
            url = reverse("customers:login_code")
            if next_url := safe_next(request, ""):
                url += "?" + urlencode({"next": next_url})
            return redirect(url)
    context = {"form": form, "next": safe_next(request, "")}
    return TemplateResponse(request, "customers/login.html", context)


@require_http_methods(["GET", "POST"])
def login_code(request: HttpRequest) -> HttpResponse:
    email = pending_email(request)
    if not email:
        return redirect("customers:login")
    form = CodeForm(email, pending_code_id(request), request.POST or None)
    if request.method == "POST" and form.is_valid():
        customer = form.login()
        if customer is not None:
            login_customer(request, customer)
            return redirect(safe_next(request, reverse("customers:order_list")))
    context = {"form": form, "email": email, "next": safe_next(request, "")}
    return TemplateResponse(request, "customers/login_code.html", context)


@require_POST
def resend_code(request: HttpRequest) -> HttpResponse:
    email = pending_email(request)
    if not email:
        return redirect("customers:login")
    try:
        request_code(request, email)
    except LoginThrottled as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("If %(email)s has an account, a new code is on its way.")
            % {"email": email},
        )
    return redirect("customers:login_code")


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    logout_customer(request)
    messages.success(request, _("You are logged out."))
    return redirect("customers:login")


@require_http_methods(["GET"])
@customer_required
def order_list(request: HttpRequest) -> HttpResponse:
    page = order_list_page(request.customer, request.GET.get("page"), PAGE_SIZE)
    orders = list(page.object_list)
    if page.number == 1 and orders:
        # Newest first: the first row is the customer's most recent order, whose
        # locale is the customer's language (``customer_language``) at no query.
        activate_for(request, order_language(orders[0]))
    else:
        _in_customer_language(request)
    context = {
        "customer": request.customer,
        "page": page,
        "rows": order_list_rows(orders),
        "nav": "orders",
    }
    return TemplateResponse(request, "customers/order_list.html", context)


#: A customer's order by customer and order id, with its merchant: compiled once
#: (``portal.compiled``; issue 16).
CUSTOMER_ORDERS = CompiledObjects(
    Order.objects.select_related("merchant").fetch_mode(FETCH_PEERS),
    "customer",
    "order_id",
)


def customers_order(request: HttpRequest, order_id: UUID) -> Order:
    """The logged-in customer's order ``order_id``, or 404: another customer's
    order does not exist here."""
    order = CUSTOMER_ORDERS.first(request.customer.pk, order_id)
    if order is None:
        raise Http404("No order matches the given query.")
    return order


@require_http_methods(["GET"])
@customer_required
def order_detail(request: HttpRequest, order_id: UUID) -> HttpResponse:
    order = customers_order(request, order_id)
    activate_for(request, order_language(order))
    context = {
        "customer": request.customer,
        "view": OrderPage.load(order),
        "nav": "orders",
    }
    return TemplateResponse(request, "customers/order_detail.html", context)


@require_http_methods(["GET", "POST"])
@customer_required
def report_return(request: HttpRequest, order_id: UUID) -> HttpResponse:
    order = customers_order(request, order_id)
    activate_for(request, order_language(order))
    form = ReturnReportForm(order, request.POST or None)
    if request.method == "POST" and form.is_valid() and form.save():
        messages.success(
            request, _("Return reported: your payments for this order are paused.")
        )
        return redirect_or_htmx(
            request, reverse("customers:order_detail", args=[order_id])
        )
    template = _partial(request, "customers/return_form.html", "return-form")
    context = {
        "customer": request.customer,
        "order": order,
        "form": form,
        "nav": "orders",
    }
    return TemplateResponse(request, template, context)


@require_http_methods(["GET", "POST"])
@customer_required
def repayment_details(request: HttpRequest, repayment_id: UUID) -> HttpResponse:
    repayment = get_object_or_404(
        Repayment.objects.for_customer(request.customer).select_related(
            "plan__order__merchant", "payment_method", "customer"
        ),
        repayment_id=repayment_id,
    )
    activate_for(request, order_language(repayment.plan.order))
    form = RepaymentDetailsForm(repayment, request.POST or None)
    if request.method == "POST" and form.is_valid() and form.save():
        messages.success(
            request, _("Thank you. We will send your refund to the new details.")
        )
        url = reverse("customers:order_detail", args=[repayment.plan.order.order_id])
        return redirect_or_htmx(request, url)
    template = _partial(request, "customers/repayment_details.html", "details-form")
    context = {
        "customer": request.customer,
        "repayment": repayment,
        "order": repayment.plan.order,
        "money": MoneyContext.for_order(repayment.plan.order),
        "tracing": TRACING,
        "bounce_guidance": BOUNCE_GUIDANCE,
        "form": form,
        "nav": "orders",
    }
    return TemplateResponse(request, template, context)


@require_http_methods(["GET"])
@customer_required
def balance(request: HttpRequest) -> HttpResponse:
    _in_customer_language(request)
    context = {
        "customer": request.customer,
        "totals": balance_totals(request.customer),
        "page": balance_page(request.customer, request.GET.get("page"), PAGE_SIZE),
        "nav": "balance",
    }
    return TemplateResponse(request, "customers/balance.html", context)


@require_http_methods(["GET"])
@customer_required
def notification_list(request: HttpRequest) -> HttpResponse:
    _in_customer_language(request)
    notifications = (
        Notification.objects.for_customer(request.customer)
        .for_display()
        .order_by("-created_at", "-pk")
    )
    context = {
        "customer": request.customer,
        "page": Paginator(notifications, PAGE_SIZE).get_page(request.GET.get("page")),
        "nav": "notifications",
    }
    return TemplateResponse(request, "customers/notification_list.html", context)


@require_POST
@customer_required
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    _in_customer_language(request)
    notification = get_object_or_404(
        Notification.objects.for_customer(request.customer).for_display(),
        pk=pk,
    )
    notification.mark_read()
    request.customer.unread_notifications = None  # count them again
    if request.htmx:
        context = {"customer": request.customer, "notification": notification}
        return TemplateResponse(
            request, "customers/notification_list.html#notification-read", context
        )
    return redirect(safe_next(request, reverse("customers:notification_list")))


@require_POST
@customer_required
def notification_read_all(request: HttpRequest) -> HttpResponse:
    _in_customer_language(request)
    Notification.objects.for_customer(request.customer).mark_read()
    return redirect_or_htmx(request, reverse("customers:notification_list"))
