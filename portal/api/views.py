"""The Order Management API's endpoints and the portal pages that manage it.

API views do HTTP only: ``api_endpoint`` has authenticated the merchant and
parsed the body; a view loads the merchant's order (another merchant's order is
``NO_SUCH_ORDER``), validates the body, calls the same model method the portal
calls and answers. A refusal is the model's ``DomainError``, turned into the API
error body by ``api_endpoint``.
"""

import uuid
from contextlib import nullcontext

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from customers.models import PaymentPlan
from portal.decorators import (
    activate_merchant_language,
    merchant_required,
    merchant_user_of,
)
from portal.models import Capture, Channel, Order
from refunds.engine import execute_refund
from refunds.models import Refund

from . import representations
from .checkout import place_order
from .endpoint import api_endpoint
from .errors import ApiError, no_such_order
from .forms import CredentialForm, RequestLogFilterForm
from .models import ApiCredential, ApiRequestLog, DescriptiveRefundLine
from .openapi import openapi_document, reference_sections
from .validation import (
    check_line_totals,
    parse_authorization,
    parse_capture,
    parse_checkout,
    parse_customer_details,
    parse_extension,
    parse_references,
    parse_refund,
    parse_shipping_info,
)

#: The authorization is extended by this many days per call (Klarna's rule).
EXTENSION_DAYS = 7
ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def merchant_order(request: HttpRequest, order_id: str, orders=None) -> Order:
    """The merchant's order with ``order_id``; 404 NO_SUCH_ORDER for any other."""
    orders = orders if orders is not None else Order.objects.all()
    order_uuid = _uuid(order_id)
    order = (
        orders.for_merchant(request.merchant)
        .select_related("merchant")
        .filter(order_id=order_uuid)
        .first()
        if order_uuid
        else None
    )
    if order is None:
        raise no_such_order(order_id)
    return order


def created(request: HttpRequest, location: str, headers: dict) -> HttpResponse:
    response = HttpResponse(status=201, headers=headers)
    response["Location"] = request.build_absolute_uri(location)
    del response["Content-Type"]
    return response


def no_content() -> HttpResponse:
    response = HttpResponse(status=204)
    del response["Content-Type"]
    return response


# Orders ------------------------------------------------------------------------


@api_endpoint("GET")
def order_detail(request: HttpRequest, order_id: str) -> HttpResponse:
    order = merchant_order(
        request, order_id, representations.orders_for_api(Order.objects)
    )
    return JsonResponse(representations.order_json(order))


@api_endpoint("POST")
def order_cancel(request: HttpRequest, order_id: str) -> HttpResponse:
    merchant_order(request, order_id).cancel()
    return no_content()


@api_endpoint("POST")
def order_release(request: HttpRequest, order_id: str) -> HttpResponse:
    merchant_order(request, order_id).release_remaining_authorization()
    return no_content()


@api_endpoint("POST")
def order_extend(request: HttpRequest, order_id: str) -> HttpResponse:
    merchant_order(request, order_id).extend_authorization(EXTENSION_DAYS)
    return no_content()


@api_endpoint("PATCH", body=True)
def order_references(request: HttpRequest, order_id: str) -> HttpResponse:
    order = merchant_order(request, order_id)
    # No body at all is an empty one: both fields are optional (Klarna).
    body = parse_references(request.api_body if request.body.strip() else {})
    order.update_merchant_references(body.merchant_reference1, body.merchant_reference2)
    return no_content()


@api_endpoint("PATCH", body=True)
def order_authorization(request: HttpRequest, order_id: str) -> HttpResponse:
    order = merchant_order(request, order_id)
    body = parse_authorization(request.api_body)
    order.update_authorization(
        body.order_amount, body.lines, description=body.description
    )
    return no_content()


@api_endpoint("PATCH", body=True)
def order_customer_details(request: HttpRequest, order_id: str) -> HttpResponse:
    order = merchant_order(request, order_id)
    order.update_customer_details(parse_customer_details(request.api_body))
    return no_content()


@api_endpoint("POST")
def order_acknowledge(request: HttpRequest, order_id: str) -> HttpResponse:
    merchant_order(request, order_id).acknowledge()
    return no_content()


@api_endpoint("POST", body=True)
def order_shipping_info(request: HttpRequest, order_id: str) -> HttpResponse:
    order = merchant_order(request, order_id)
    order.add_shipping_info(parse_shipping_info(request.api_body))
    return no_content()


# Captures ----------------------------------------------------------------------


def merchant_capture(order: Order, capture_id: str) -> Capture:
    """The order's capture with ``capture_id``; 404 NO_SUCH_CAPTURE otherwise."""
    capture_uuid = _uuid(capture_id)
    capture = capture_uuid and (
        representations.captures_for_api(order.captures.all())
        .filter(capture_id=capture_uuid)
        .first()
    )
    if not capture:
        raise ApiError(
            404, "NO_SUCH_CAPTURE", f"This order has no capture “{capture_id[:64]}”."
        )
    return capture


@api_endpoint("GET", "POST", body=True)
def order_captures(request: HttpRequest, order_id: str) -> HttpResponse:
    """GET lists the order's captures, oldest first; POST creates one."""
    order = merchant_order(request, order_id)
    if request.method == "GET":
        captures = representations.number_captures(
            representations.captures_for_api(order.captures.all())
        )
        return JsonResponse(
            [representations.capture_json(c) for c in captures], safe=False
        )
    body = parse_capture(request.api_body)
    check_line_totals(order, body.lines, already="captured_quantity")
    capture = order.capture_shipment(
        lines=body.line_quantities,
        amount=body.captured_amount,
        channel=Channel.API,
        description=body.description,
        reference=body.reference,
        shipping_info=body.shipping_info,
        shipping_delay=body.shipping_delay,
    )
    location = reverse("api:capture_detail", args=[order.order_id, capture.capture_id])
    return created(request, location, {"Capture-Id": str(capture.capture_id)})


@api_endpoint("GET")
def capture_detail(
    request: HttpRequest, order_id: str, capture_id: str
) -> HttpResponse:
    capture = merchant_capture(merchant_order(request, order_id), capture_id)
    return JsonResponse(representations.capture_json(capture))


@api_endpoint("POST", body=True)
def capture_shipping_info(
    request: HttpRequest, order_id: str, capture_id: str
) -> HttpResponse:
    capture = merchant_capture(merchant_order(request, order_id), capture_id)
    capture.add_shipping_info(parse_shipping_info(request.api_body))
    return no_content()


@api_endpoint("POST")
def capture_send_out(
    request: HttpRequest, order_id: str, capture_id: str
) -> HttpResponse:
    merchant_capture(merchant_order(request, order_id), capture_id).send_invoice()
    return no_content()


@api_endpoint("GET")
def capture_extension_options(
    request: HttpRequest, order_id: str, capture_id: str
) -> HttpResponse:
    order = merchant_order(request, order_id)
    plan = plan_of(merchant_capture(order, capture_id))
    return JsonResponse(
        {
            "currency": order.purchase_currency,
            "options": [
                {"number_of_days": days, "amount": fee}
                for days, fee in plan.due_date_extension_options()
            ],
        }
    )


@api_endpoint("PATCH", "POST", body=True)
def capture_extend_due_date(
    request: HttpRequest, order_id: str, capture_id: str
) -> HttpResponse:
    order = merchant_order(request, order_id)
    plan = plan_of(merchant_capture(order, capture_id))
    plan.extend_due_date(parse_extension(request.api_body), channel=Channel.API)
    return no_content()


def plan_of(capture: Capture) -> PaymentPlan:
    return PaymentPlan.objects.prefetch_related("installments").get(capture=capture)


# Refunds -----------------------------------------------------------------------


@api_endpoint("GET", "POST", body=True)
def order_refunds(request: HttpRequest, order_id: str) -> HttpResponse:
    """GET lists the order's refunds, oldest first; POST creates one."""
    order = merchant_order(request, order_id)
    if request.method == "GET":
        refunds = representations.refunds_for_api(order.refunds.all())
        return JsonResponse(
            [representations.refund_json(r) for r in refunds], safe=False
        )
    body = parse_refund(request.api_body)
    check_line_totals(order, body.lines, already="refunded_quantity")
    # Lines that only describe the refund are kept with it, in its transaction;
    # without any, the engine's own transaction is all there is (no savepoint).
    with transaction.atomic() if body.described else nullcontext():
        refund = execute_refund(
            order,
            body.engine_request(),
            channel=Channel.API,
            idempotency_key=request.idempotency_key or None,
        )
        if body.described and not refund.replayed:
            DescriptiveRefundLine.record(refund, body.described)
    location = reverse("api:refund_detail", args=[order.order_id, refund.refund_id])
    return created(request, location, {"Refund-Id": str(refund.refund_id)})


@api_endpoint("GET")
def refund_detail(request: HttpRequest, order_id: str, refund_id: str) -> HttpResponse:
    order = merchant_order(request, order_id)
    refund_uuid = _uuid(refund_id)
    refund = refund_uuid and (
        representations.refunds_for_api(Refund.objects.for_merchant(request.merchant))
        .filter(order=order, refund_id=refund_uuid)
        .first()
    )
    if not refund:
        raise ApiError(
            404, "NO_SUCH_REFUND", f"This order has no refund “{refund_id[:64]}”."
        )
    return JsonResponse(representations.refund_json(refund))


# Checkout hook -----------------------------------------------------------------


@api_endpoint("POST", body=True)
def checkout_order_create(request: HttpRequest) -> HttpResponse:
    body = parse_checkout(request.api_body, currency=request.merchant.currency)
    order = place_order(request.merchant, body)
    response = JsonResponse(
        {
            "order_id": str(order.order_id),
            "klarna_reference": order.reference,
            "status": order.status,
        },
        status=201,
    )
    location = reverse("api:order_detail", args=[order.order_id])
    response["Location"] = request.build_absolute_uri(location)
    return response


@api_endpoint(*ANY_METHOD)
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    raise ApiError(
        404, "NOT_FOUND", f"There is no API endpoint at {request.path[:200]}."
    )


# Documentation (public) ----------------------------------------------------------


@require_GET
def openapi_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document(), json_dumps_params={"indent": 2})


@require_GET
def api_docs(request: HttpRequest) -> TemplateResponse:
    """The API reference (public). A logged-in merchant user reads its page text
    in their portal language, like every portal page; anyone else by the
    switcher or Accept-Language. The operations' own descriptions stay the
    OpenAPI document's English, like the API (issue 15)."""
    if request.user.is_authenticated:
        merchant_user = merchant_user_of(request.user)
        if merchant_user is not None:
            activate_merchant_language(request, merchant_user)
    return TemplateResponse(
        request, "api/docs.html", {"sections": reference_sections(openapi_document())}
    )


# Portal pages --------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@merchant_required(permission="can_manage_api_credentials")
@vary_on_headers("HX-Request")
def credential_list(request: HttpRequest) -> HttpResponse:
    credentials = ApiCredential.objects.for_merchant(request.merchant).select_related(
        "created_by"
    )
    form = CredentialForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        # Rendered, not redirected: the secret is shown in this response only and
        # never stored anywhere it could be read back.
        issued = form.save(request.merchant, by=request.user)
        form = CredentialForm()
    template = (
        "api/credential_list.html#credentials"
        if request.htmx
        else "api/credential_list.html"
    )
    return TemplateResponse(
        request,
        template,
        {"credentials": credentials, "form": form, "issued": issued},
    )


@require_POST
@merchant_required(permission="can_manage_api_credentials")
def credential_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    credential = get_object_or_404(
        ApiCredential.objects.for_merchant(request.merchant), pk=pk
    )
    credential.revoke()
    if request.htmx:
        credentials = ApiCredential.objects.for_merchant(
            request.merchant
        ).select_related("created_by")
        return TemplateResponse(
            request,
            "api/credential_list.html#credentials",
            {
                "credentials": credentials,
                "form": CredentialForm(),
                "revoked": credential,
            },
        )
    messages.success(
        request,
        _("“%(name)s” was revoked; it no longer works.") % {"name": credential.name},
    )
    return redirect("api:credential_list")


@require_GET
@merchant_required
@vary_on_headers("HX-Request")
def request_log(request: HttpRequest) -> HttpResponse:
    entries = ApiRequestLog.objects.for_merchant(request.merchant).select_related(
        "credential"
    )
    form = RequestLogFilterForm(request.GET)
    page = form.page(entries) if form.is_valid() else None
    partial = request.htmx and not request.htmx.history_restore_request
    template = "api/request_log.html#log-results" if partial else "api/request_log.html"
    return TemplateResponse(request, template, {"form": form, "page": page})
