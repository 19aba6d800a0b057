"""The refund flow of the merchant portal (HTMX, and plain POST without JS).

``refund_create`` shows the form; "Preview refund" re-renders it with the plan,
"Confirm refund" executes the previewed plan and redirects to the order.
``refund_preview`` answers the live preview: the preview panel plus the field
errors, swapped out of band.
"""

from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from portal.decorators import merchant_required
from portal.money import format_money
from portal.views import redirect_or_htmx, scoped_order

from .forms import RefundForm, allocation_rows

TEMPLATE = "refunds/refund_form.html"


def _render(request: HttpRequest, form: RefundForm, partial: str) -> HttpResponse:
    template = f"{TEMPLATE}#{partial}" if request.htmx else TEMPLATE
    plan = form.plan
    return TemplateResponse(
        request,
        template,
        {
            "order": form.order,
            "form": form,
            "plan": plan,
            "allocations": allocation_rows(plan) if plan else [],
        },
    )


@require_http_methods(["GET", "POST"])
@merchant_required(permission="can_refund")
@vary_on_headers("HX-Request")
def refund_create(request: HttpRequest, order_id: UUID) -> HttpResponse:
    order = scoped_order(request, order_id)
    form = RefundForm(order, request.POST or None)
    if request.method == "POST" and request.POST.get("action") == "confirm":
        refund = form.save(by=request.user)
        if refund is not None:
            amount = format_money(
                refund.refunded_amount, order.purchase_currency, order.locale
            )
            if refund.replayed:
                messages.info(
                    request,
                    f"This refund of {amount} was already made; "
                    "nothing was refunded twice.",
                )
            else:
                messages.success(
                    request,
                    f"Refunded {amount} to {order.customer.name}. "
                    "It will be deducted from your next payout.",
                )
            return redirect_or_htmx(request, order.get_absolute_url())
    elif request.method == "POST":
        form.preview()
    order.refresh_from_db()  # refused or previewed: show the amounts as they are now
    return _render(request, form, "refund-form")


@require_http_methods(["GET", "POST"])
@merchant_required(permission="can_refund")
@vary_on_headers("HX-Request")
def refund_preview(request: HttpRequest, order_id: UUID) -> HttpResponse:
    order = scoped_order(request, order_id)
    if request.method == "GET":  # a bookmarked or reloaded preview: show the form
        return redirect("refunds:create", order_id=order.order_id)
    form = RefundForm(order, request.POST)
    form.preview()
    return _render(request, form, "preview-response")
