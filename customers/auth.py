"""Customer login by one-time code, kept apart from the merchant staff's auth.

A logged-in customer is ``request.session["customer_id"]``; Django's own
``request.user`` stays the merchant staff's. ``customer_required`` loads the
customer into ``request.customer`` or sends the visitor to the login page.
"""

import functools
from functools import wraps
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db import router, transaction
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect

from portal.clients import client_address
from portal.compiled import CompiledGet

from .models import Customer, LoginCode
from .tasks import send_login_code

SESSION_KEY = "customer_id"
PENDING_EMAIL_KEY = "customer_login_email"
#: The LoginCode row this browser asked for last: the only one it may try.
PENDING_CODE_KEY = "customer_login_code"


def request_code(request: HttpRequest, email: str) -> None:
    """Ask for a code for ``email``; only a known customer will receive one.

    Known and unknown addresses take the same path in the request (a throttled
    row and one background job each), so neither the page, its timing nor a mail
    server outage tells whether an account exists. The job makes the code and
    sends it; the plain code is never stored, not even in the job's arguments.
    Raises ``LoginThrottled`` past the limits.
    """
    row = LoginCode.issue(email, client_address(request))
    request.session[PENDING_EMAIL_KEY] = row.email
    request.session[PENDING_CODE_KEY] = row.pk
    transaction.on_commit(lambda: send_login_code.enqueue(row.pk))


def pending_email(request: HttpRequest) -> str:
    return request.session.get(PENDING_EMAIL_KEY, "")


def pending_code_id(request: HttpRequest) -> int | None:
    return request.session.get(PENDING_CODE_KEY)


def login_customer(request: HttpRequest, customer: Customer) -> None:
    """Start the customer's session under a new session key (no fixation)."""
    request.session.cycle_key()
    request.session[SESSION_KEY] = customer.pk
    request.session.pop(PENDING_EMAIL_KEY, None)
    request.session.pop(PENDING_CODE_KEY, None)


def logout_customer(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)
    request.session.cycle_key()


@functools.cache
def _customer_query(using: str) -> CompiledGet:
    return CompiledGet(Customer.objects.db_manager(using).with_unread_count())


def current_customer(request: HttpRequest) -> Customer | None:
    """The logged-in customer, with ``unread_notifications`` (for the page
    header), in one query compiled once per process; None if nobody is."""
    customer_id = request.session.get(SESSION_KEY)
    if customer_id is None:
        return None
    try:
        pk = Customer._meta.pk.to_python(customer_id)
    except ValidationError:
        return None
    return _customer_query(router.db_for_read(Customer)).get(pk)


def safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def customer_required(view):
    """Only for a logged-in customer: sets ``request.customer``. The view then
    picks the page's language (``customers.views``)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        customer = current_customer(request)
        if customer is None:
            login_url = reverse("customers:login")
            if getattr(request, "htmx", False):
                return HttpResponseClientRedirect(login_url)
            return redirect(
                f"{login_url}?{urlencode({'next': request.get_full_path()})}"
            )
        request.customer = customer
        return view(request, *args, **kwargs)

    return wrapper
