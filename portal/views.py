"""The merchant portal's pages: orders, order actions, payouts and users.

Views do HTTP only: the first line scopes every queryset to ``request.merchant``
(set by ``merchant_required``), then they bind a form, call one model method and
pick the response. Rules live in the models; a refused action is a
``DomainError`` whose message is shown to the person.
"""

from contextlib import nullcontext
from dataclasses import dataclass
from uuid import UUID

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
)
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from portal import exports
from portal.clients import client_address
from portal.compiled import CompiledObjects
from portal.decorators import activate_merchant_language, merchant_required
from portal.display import order_list_rows
from portal.exceptions import DomainError
from portal.forms import (
    CaptureForm,
    DueDateExtensionForm,
    LanguageForm,
    MerchantUserChangeForm,
    MerchantUserCreateForm,
    OrderSearchForm,
    RefundExportForm,
    RemoveItemForm,
    ThrottledPasswordResetForm,
)
from portal.models import (
    Capture,
    LedgerEntry,
    MerchantUser,
    Order,
    Payout,
)
from portal.money import format_money
from portal.overview import ORDER_PAGE_ORDERS, OrderOverview
from portal.prepared import planned_per_call

ENTRIES_PAGE_SIZE = 200
PAYOUTS_PAGE_SIZE = 50


def redirect_or_htmx(request: HttpRequest, url: str) -> HttpResponse:
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return redirect(url)


#: The order an action page works on, by merchant and order id, compiled once
#: (``portal.compiled``; building the query cost about 1 ms a request, issue 16).
ACTION_ORDERS = CompiledObjects(
    Order.objects.select_related("merchant", "customer", "payment_method").fetch_mode(
        models.FETCH_PEERS
    ),
    "merchant",
    "order_id",
)
#: The order page's order with the flags of what it has, the same way.
PAGE_ORDERS = CompiledObjects(
    ORDER_PAGE_ORDERS.fetch_mode(models.FETCH_PEERS), "merchant", "order_id"
)


def merchants_order(orders: CompiledObjects, request: HttpRequest, order_id: UUID):
    """The request's merchant's order ``order_id`` from ``orders``, or 404:
    another merchant's order does not exist here."""
    order = orders.first(request.merchant.pk, order_id)
    if order is None:
        raise Http404("No order matches the given query.")
    return order


def scoped_order(request: HttpRequest, order_id: UUID) -> Order:
    """The merchant's order, or 404 (another merchant's order does not exist here)."""
    return merchants_order(ACTION_ORDERS, request, order_id)


# Orders ----------------------------------------------------------------------------


@require_GET
@merchant_required
@vary_on_headers("HX-Request")
def order_list(request: HttpRequest) -> HttpResponse:
    form = OrderSearchForm(request.GET)
    page = None
    if form.is_valid():
        # A text search is planned for what it looks for (portal.prepared).
        with planned_per_call() if form.searches_text() else nullcontext():
            page = form.page(request.merchant)
    rows = order_list_rows(page.orders) if page else []
    partial = request.htmx and not request.htmx.history_restore_request
    template = (
        "portal/order_list.html#order-results" if partial else "portal/order_list.html"
    )
    return TemplateResponse(
        request,
        template,
        {
            "form": form,
            "page": page,
            "rows": rows,
            "query": _query_without_cursor(request),
            # A live search also brings the filters' errors (out of band).
            "oob": partial,
        },
    )


def _query_without_cursor(request: HttpRequest) -> str:
    params = [
        (key, value)
        for key, values in request.GET.lists()
        for value in values
        if key not in ("after", "before") and value
    ]
    return urlencode(params)


@require_GET
@merchant_required
def order_detail(request: HttpRequest, order_id: UUID) -> HttpResponse:
    order = merchants_order(PAGE_ORDERS, request, order_id)
    order.merchant = request.merchant  # the same row, loaded with the user
    overview = OrderOverview.load(order, request.merchant_user)
    return TemplateResponse(
        request, "portal/order_detail.html", {"order": order, "overview": overview}
    )


@require_http_methods(["GET", "POST"])
@merchant_required(permission="can_manage_orders")
def order_capture(request: HttpRequest, order_id: UUID) -> HttpResponse:
    order = scoped_order(request, order_id)
    form = CaptureForm(order, order.lines.all(), request.POST or None)
    action = request.POST.get("action")
    if request.method == "POST" and form.is_valid() and action == "confirm":
        capture = form.save(by=request.user)
        if capture is not None:
            amount = format_money(
                capture.captured_amount, order.purchase_currency, order.locale
            )
            if capture.replayed:
                messages.info(
                    request,
                    _(
                        "This capture of %(amount)s was already made; nothing "
                        "was captured twice."
                    )
                    % {"amount": amount},
                )
            else:
                messages.success(
                    request,
                    _("Captured %(amount)s (invoice %(invoice)s).")
                    % {"amount": amount, "invoice": capture.number},
                )
            return redirect(order)
    reviewing = request.method == "POST" and form.is_valid() and not form.errors
    refusal = order.capture_refusal()
    return TemplateResponse(
        request,
        "portal/order_capture.html",
        {"order": order, "form": form, "reviewing": reviewing, "refusal": refusal},
    )


@dataclass(frozen=True)
class OrderAction:
    verb: str
    title: str
    explanation: str
    button: str
    done: str


ORDER_ACTIONS = {
    "cancel": OrderAction(
        "cancel",
        gettext_lazy("Cancel order"),
        gettext_lazy(
            "The whole authorization is given up and the customer owes nothing. "
            "This cannot be undone."
        ),
        gettext_lazy("Cancel order"),
        gettext_lazy("The order was cancelled."),
    ),
    "release": OrderAction(
        "release_remaining_authorization",
        gettext_lazy("Release remaining authorization"),
        gettext_lazy(
            "What is authorized but not captured is given up: nothing more can be "
            "captured on this order. Captured amounts are not affected."
        ),
        gettext_lazy("Release remaining authorization"),
        gettext_lazy("The remaining authorization was released."),
    ),
}


def _order_action(request: HttpRequest, order_id: UUID, name: str) -> HttpResponse:
    order = scoped_order(request, order_id)
    action = ORDER_ACTIONS[name]
    error = None
    if request.method == "POST":
        try:
            getattr(order, action.verb)(by=request.user)
        except DomainError as refused:
            error = refused.message
        else:
            messages.success(request, action.done)
            return redirect(order)
    refusal = getattr(order, f"{name}_refusal")()
    return TemplateResponse(
        request,
        "portal/order_action.html",
        {
            "order": order,
            "action": action,
            "name": name,
            "error": error or (refusal.message if refusal else None),
            "possible": refusal is None,
        },
    )


@require_http_methods(["GET", "POST"])
@merchant_required(permission="can_manage_orders")
def order_cancel(request: HttpRequest, order_id: UUID) -> HttpResponse:
    return _order_action(request, order_id, "cancel")


@require_http_methods(["GET", "POST"])
@merchant_required(permission="can_manage_orders")
def order_release(request: HttpRequest, order_id: UUID) -> HttpResponse:
    return _order_action(request, order_id, "release")


@require_http_methods(["GET", "POST"])
@merchant_required(permission="can_manage_orders")
def order_remove_item(request: HttpRequest, order_id: UUID) -> HttpResponse:
    order = scoped_order(request, order_id)
    form = RemoveItemForm(order, request.POST or None)
    if request.method == "POST" and form.is_valid():
        removed = form.save(by=request.user)
        if removed is not None:
            amount = format_money(removed, order.purchase_currency, order.locale)
            messages.success(
                request,
                _("Removed %(amount)s from the order; the customer was told.")
                % {"amount": amount},
            )
            return redirect(order)
    refusal = order.authorization_update_refusal()
    return TemplateResponse(
        request,
        "portal/order_remove_item.html",
        {"order": order, "form": form, "refusal": refusal},
    )


def scoped_capture(request: HttpRequest, order_id: UUID, capture_id: UUID):
    order = scoped_order(request, order_id)
    capture = get_object_or_404(
        Capture.objects.select_related("order", "plan"),
        order=order,
        capture_id=capture_id,
    )
    return order, capture


@require_POST
@merchant_required(permission="can_manage_orders")
def capture_send_invoice(
    request: HttpRequest, order_id: UUID, capture_id: UUID
) -> HttpResponse:
    order, capture = scoped_capture(request, order_id, capture_id)
    capture.send_invoice(by=request.user)
    messages.success(
        request,
        _("Invoice %(invoice)s was sent to the customer again.")
        % {"invoice": capture.klarna_reference},
    )
    return redirect(order)


@require_http_methods(["GET", "POST"])
@merchant_required(permission="can_manage_orders")
def capture_extend_due_date(
    request: HttpRequest, order_id: UUID, capture_id: UUID
) -> HttpResponse:
    order, capture = scoped_capture(request, order_id, capture_id)
    form = DueDateExtensionForm(capture.plan, request.POST or None)
    if request.method == "POST" and form.is_valid():
        extension = form.save(by=request.user)
        if extension is not None:
            messages.success(
                request,
                _("Invoice %(invoice)s is now due on %(date)s.")
                % {
                    "invoice": capture.klarna_reference,
                    "date": date_format(extension.new_due_date, _("j M Y")),
                },
            )
            return redirect(order)
    return TemplateResponse(
        request,
        "portal/capture_extend_due_date.html",
        {
            "order": order,
            "capture": capture,
            "form": form,
            "options": capture.plan.due_date_extension_options(),
            "refusal": capture.plan.due_date_extension_refusal(),
        },
    )


# Payouts ---------------------------------------------------------------------------


@require_GET
@merchant_required
def payout_list(request: HttpRequest) -> HttpResponse:
    payouts = Payout.objects.for_merchant(request.merchant).order_by("-number")
    before = request.GET.get("before", "")
    if before.isdigit():
        payouts = payouts.filter(number__lt=int(before))
    rows = list(payouts[: PAYOUTS_PAGE_SIZE + 1])
    older = (
        rows[PAYOUTS_PAGE_SIZE - 1].number if len(rows) > PAYOUTS_PAGE_SIZE else None
    )
    return TemplateResponse(
        request,
        "portal/payout_list.html",
        {
            "next_payout": Payout.preview_next(request.merchant),
            "payouts": rows[:PAYOUTS_PAGE_SIZE],
            "older": older,
            "merchant": request.merchant,
        },
    )


def _payout_page(request: HttpRequest, payout: Payout, entries, csv_url: str):
    after = request.GET.get("after", "")
    if after.isdigit():
        entries = entries.filter(id__gt=int(after))
    rows = list(entries.select_related("order").order_by("id")[: ENTRIES_PAGE_SIZE + 1])
    more = rows[ENTRIES_PAGE_SIZE - 1].pk if len(rows) > ENTRIES_PAGE_SIZE else None
    return TemplateResponse(
        request,
        "portal/payout_detail.html",
        {
            "payout": payout,
            "entries": rows[:ENTRIES_PAGE_SIZE],
            "more": more,
            "is_first": not after,
            "csv_url": csv_url,
            "merchant": request.merchant,
        },
    )


@require_GET
@merchant_required
def payout_next(request: HttpRequest) -> HttpResponse:
    entries = LedgerEntry.objects.filter(merchant=request.merchant, payout__isnull=True)
    payout = Payout.preview_next(request.merchant)
    return _payout_page(request, payout, entries, reverse("portal:payout_next_csv"))


@require_GET
@merchant_required
def payout_detail(request: HttpRequest, number: int) -> HttpResponse:
    payout = get_object_or_404(
        Payout.objects.for_merchant(request.merchant), number=number
    )
    entries = LedgerEntry.objects.filter(merchant=request.merchant, payout=payout)
    return _payout_page(
        request, payout, entries, reverse("portal:payout_csv", args=[payout.number])
    )


@require_GET
@merchant_required
def payout_csv(request: HttpRequest, number: int) -> StreamingHttpResponse:
    payout = get_object_or_404(
        Payout.objects.for_merchant(request.merchant), number=number
    )
    entries = LedgerEntry.objects.filter(merchant=request.merchant, payout=payout)
    return exports.csv_response(
        exports.LEDGER_COLUMNS,
        exports.ledger_rows(entries),
        request.merchant,
        f"payout-{payout.number}.csv",
    )


@require_GET
@merchant_required
def payout_next_csv(request: HttpRequest) -> StreamingHttpResponse:
    entries = LedgerEntry.objects.filter(merchant=request.merchant, payout__isnull=True)
    return exports.csv_response(
        exports.LEDGER_COLUMNS,
        exports.ledger_rows(entries),
        request.merchant,
        "next-payout.csv",
    )


@require_GET
@merchant_required
def refund_export(request: HttpRequest) -> HttpResponse:
    """The export page; with a valid range and format, the file itself."""
    form = RefundExportForm(request.GET if "format" in request.GET else None)
    if not form.is_valid():
        dialect = exports.SpreadsheetDialect.for_locale(request.merchant.locale)
        return TemplateResponse(
            request, "portal/refund_export.html", {"form": form, "dialect": dialect}
        )
    data = form.cleaned_data
    refunds = exports.refunds_between(
        request.merchant, data.get("date_from"), data.get("date_to")
    )
    rows = exports.refund_rows(refunds)
    if data["format"] == "xlsx":
        return exports.xlsx_response(exports.REFUND_COLUMNS, rows, form.filename())
    return exports.csv_response(
        exports.REFUND_COLUMNS, rows, request.merchant, form.filename()
    )


# Users -------------------------------------------------------------------------------


@require_GET
@merchant_required(permission="can_manage_users")
def user_list(request: HttpRequest) -> HttpResponse:
    members = MerchantUser.objects.filter(merchant=request.merchant).select_related(
        "user"
    )
    return TemplateResponse(request, "portal/user_list.html", {"members": members})


@require_http_methods(["GET", "POST"])
@merchant_required(permission="can_manage_users")
def user_add(request: HttpRequest) -> HttpResponse:
    form = MerchantUserCreateForm(request.merchant_user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        member = form.save(request)
        messages.success(
            request,
            _(
                "%(username)s was added as %(role)s; an invitation to set a "
                "password was sent to %(email)s."
            )
            % {
                "username": member.user.username,
                "role": member.get_role_display(),
                "email": member.user.email,
            },
        )
        return redirect("portal:user_list")
    return TemplateResponse(request, "portal/user_form.html", {"form": form})


@require_http_methods(["GET", "POST"])
@merchant_required(permission="can_manage_users")
def user_edit(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(
        MerchantUser.objects.filter(merchant=request.merchant).select_related("user"),
        pk=pk,
    )
    form = MerchantUserChangeForm(request.merchant_user, member, request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(
            request, _("%(username)s was updated.") % {"username": member.user.username}
        )
        return redirect("portal:user_list")
    return TemplateResponse(
        request, "portal/user_form.html", {"form": form, "member": member}
    )


@require_http_methods(["GET", "POST"])
@merchant_required
def language_settings(request: HttpRequest) -> HttpResponse:
    """The language the signed-in merchant user reads the portal and their
    emails in; blank follows the store's locale (issue 15)."""
    form = LanguageForm(request.POST or None, instance=request.merchant_user)
    if request.method == "POST" and form.is_valid():
        merchant_user = form.save()
        activate_merchant_language(request, merchant_user)
        messages.success(request, _("Your language is saved."))
        return redirect("portal:language")
    return TemplateResponse(request, "portal/language_form.html", {"form": form})


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset, throttled per requesting address
    (``ThrottledPasswordResetForm``)."""

    form_class = ThrottledPasswordResetForm

    def get_form_kwargs(self) -> dict:
        return {**super().get_form_kwargs(), "address": client_address(self.request)}
