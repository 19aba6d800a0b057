"""The refund flow of the merchant portal (HTMX, and plain POST without JS).

``refund_create`` shows the form; "Preview refund" re-renders it with the plan,
"Refund <amount>" (confirm) executes the previewed plan and redirects to the
order, "Refund maximum" fills in the largest refund of the chosen kind and
previews it. A refused confirm re-renders the form with the header swapped out
of band, so both show the order as it is now (a refund from another tab).
``refund_preview`` answers the live preview: the preview panel plus the field
errors, swapped out of band.
"""

import functools
from uuid import UUID

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from portal.decorators import merchant_required
from portal.money import format_money
from portal.views import redirect_or_htmx, scoped_order

from .engine import MAX_TEXT, OrderState
from .forms import RefundForm

TEMPLATE = "refunds/refund_form.html"


def _render(request: HttpRequest, form: RefundForm, partial: str) -> HttpResponse:
    template = f"{TEMPLATE}#{partial}" if request.htmx else TEMPLATE
    return TemplateResponse(
        request, template, {"order": form.order, "form": form, "plan": form.plan}
    )


def _locked_order(request: HttpRequest, order_id: UUID) -> OrderState:
    """The merchant's order and its rows, locked (in the caller's transaction),
    or 404 as ``scoped_order``."""
    state = OrderState.lock_merchants_order(
        request.merchant.pk, order_id, request_key=_posted_key(request)
    )
    if state is None:
        raise Http404("No order matches the given query.")
    return state


def _read_order(request: HttpRequest, order_id: UUID) -> OrderState:
    """The merchant's order and its rows with the customer's plans, read only
    in one round trip (what a preview shows), or 404 as ``scoped_order``."""
    state = OrderState.merchants_order(request.merchant.pk, order_id)
    if state is None:
        raise Http404("No order matches the given query.")
    return state


def _posted_key(request: HttpRequest) -> str | None:
    """The posted idempotency key as the form cleans it (stripped), when the
    form can accept it (1 to 255 characters, no NUL, which PostgreSQL's text
    refuses), so its row is read with the order's; else None, and the form
    says what is wrong with it."""
    key = request.POST.get("idempotency_key", "").strip()
    return key if 0 < len(key) <= MAX_TEXT and "\x00" not in key else None


def _say_refunded(request: HttpRequest, order, refund) -> None:
    """The message the order page shows after a confirmed refund."""
    amount = format_money(refund.refunded_amount, order.purchase_currency, order.locale)
    if refund.replayed:
        messages.info(
            request,
            _("This refund of %(amount)s was already made; nothing was refunded twice.")
            % {"amount": amount},
        )
    elif refund.store_credit:
        # No money moves through us, so nothing comes off the payout (DOMAIN.md).
        messages.success(
            request,
            _(
                "Refunded %(amount)s to %(customer)s as store credit: no money "
                "goes back through us and nothing is deducted from your payout."
            )
            % {"amount": amount, "customer": order.customer.name},
        )
    else:
        messages.success(
            request,
            _(
                "Refunded %(amount)s to %(customer)s. "
                "It will be deducted from your next payout."
            )
            % {"amount": amount, "customer": order.customer.name},
        )


@require_http_methods(["GET", "POST"])
@merchant_required(permission="can_refund")
@vary_on_headers("HX-Request")
def refund_create(request: HttpRequest, order_id: UUID) -> HttpResponse:
    if request.method == "POST" and request.POST.get("action") == "confirm":
        form, refund = RefundForm.confirm(
            functools.partial(_locked_order, request, order_id),
            request.POST,
            by=request.user,
        )
        if refund is not None:
            _say_refunded(request, form.order, refund)
            return redirect_or_htmx(request, form.order.get_absolute_url())
        return _render(request, form, "form-response")
    if request.method == "POST":
        state = _read_order(request, order_id)
        form = RefundForm(state.order, request.POST, state=state)
        if request.POST.get("action") == "maximum":
            form = RefundForm(state.order, form.maximum_data(), state=state)
        form.preview()
    else:
        form = RefundForm(scoped_order(request, order_id))
    # The header (swapped out of band) and the preview show the order as this
    # request read it; a refused confirm has read it again (``RefundForm.save``).
    return _render(request, form, "form-response")


@require_http_methods(["GET", "POST"])
@merchant_required(permission="can_refund")
@vary_on_headers("HX-Request")
def refund_preview(request: HttpRequest, order_id: UUID) -> HttpResponse:
    if request.method == "GET":  # a bookmarked or reloaded preview: show the form
        return redirect(
            "refunds:create", order_id=scoped_order(request, order_id).order_id
        )
    state = _read_order(request, order_id)
    form = RefundForm(state.order, request.POST, state=state)
    form.preview()
    return _render(request, form, "preview-response")
