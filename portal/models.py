"""Merchants, their users, orders, order lines, captures, and the payout ledger.

Money rules (DOMAIN.md): amounts are integers in minor units of the order's
currency. ``Order.captured_amount`` / ``refunded_amount`` and the per-line and
per-capture counters are caches of append-only rows (captures, refunds); they are
only ever changed inside ``transaction.atomic()`` with the order row locked, and
``Order.verify_totals()`` rebuilds them from those rows.

Rules of our own, where DOMAIN.md is silent:
- An order line's ``reference`` is unique within its order: it is the key that ties
  captures and refunds to lines.
- A line's total is spread over its units with the largest-remainder method
  (``portal.money.unit_range_amount``); captures and refunds take units in order,
  so the units of a line always add up to the line total.
- A capture by amount that equals the whole remaining authorization captures all
  remaining line quantities; a smaller capture by amount captures no lines (its
  money can be refunded by amount or by "complete order", not by items).
- An order with no captures whose authorization expired becomes EXPIRED; an order
  with captures keeps its status, and its remaining authorization lapses.
- An order is CLOSED when everything captured was refunded and nothing remains
  authorized.
- Our fee on a sale is ``Merchant.fee_rate_bp`` of the captured amount, rounded half
  up; it is not returned when the sale is refunded.
"""

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .bulk import insert_rows
from .exceptions import (
    CancelNotAllowed,
    CaptureNotAllowed,
    InvalidRequest,
    OrderActionNotAllowed,
)
from .money import MAX_AMOUNT, basis_points, proportion, unit_range_amount

AUTHORIZATION_DAYS = 28
MAX_AUTHORIZATION_DAYS = 180
#: Markets where a refund may carry a return fee (DOMAIN.md).
RETURN_FEE_MARKETS = frozenset(
    [
        "AT",
        "DE",
        "DK",
        "FI",
        "FR",
        "NL",
        "NO",
        "SE",
        "IT",
        "ES",
        "IE",
        "PT",
        "CZ",
        "AU",
        "GR",
    ]
)


class Channel(models.TextChoices):
    PORTAL = "portal", _("Merchant portal")
    API = "api", _("API")
    ADMIN = "admin", _("Staff admin")
    SYSTEM = "system", _("System")


#: The languages the portal, the customer pages and the emails are written in.
PORTAL_LANGUAGES = ("en", "de", "sv")


def portal_language(locale: str) -> str:
    """The portal language for a locale ("de_DE", "sv-SE", "en_US" -> "de", "sv",
    "en"); a language the portal is not translated into reads English (our rule)."""
    language = (locale or "").replace("-", "_").split("_")[0].lower()
    return language if language in PORTAL_LANGUAGES else "en"


class Merchant(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    country = models.CharField(max_length=2)
    currency = models.CharField(max_length=3)
    locale = models.CharField(max_length=10, default="en_US")
    shipping_fees_refundable = models.BooleanField(
        default=True,
        help_text="Off: shipping fee lines (e.g. express shipping) are never refunded.",
    )
    store_credit_only = models.BooleanField(
        default=False,
        help_text="On: returns are store credit; no money goes back through us and "
        "the customer's payments continue.",
    )
    fee_rate_bp = models.PositiveIntegerField(
        default=299, help_text="Our fee on each sale, in basis points (299 = 2.99%)."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(fee_rate_bp__lte=10000), name="merchant_fee_rate_le_100pct"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def language(self) -> str:
        """The portal language of the store's locale: its language part ("de_DE"
        -> "de") when the portal is translated into it, else English (our rule)."""
        return portal_language(self.locale)

    @property
    def supports_return_fees(self) -> bool:
        return self.country in RETURN_FEE_MARKETS


class MerchantUser(models.Model):
    """A person who works in the merchant portal for one merchant."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        ADMIN = "admin", _("Admin")
        REFUNDS = "refunds", _("Refunds")
        VIEWER = "viewer", _("Viewer")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="merchant_user"
    )
    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="users"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    # Blank: the store's language (``Merchant.language``), so a new user of a
    # German store reads German until they choose otherwise.
    language = models.CharField(
        _("language"),
        max_length=5,
        blank=True,
        default="",
        db_default="",
        choices=settings.LANGUAGES,
        help_text=_("Empty: the language of your store."),
    )

    class Meta:
        ordering = ["merchant", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}, {self.merchant})"

    @property
    def portal_language(self) -> str:
        """The language this person reads the portal in: their choice, else the
        store's (issue 15)."""
        return self.language or self.merchant.language

    @property
    def can_refund(self) -> bool:
        return self.role != self.Role.VIEWER

    @property
    def can_manage_orders(self) -> bool:
        """Capture, cancel, release: admins and owners."""
        return self.role in (self.Role.OWNER, self.Role.ADMIN)

    can_manage_users = can_manage_orders
    can_manage_api_credentials = can_manage_orders


class PaymentProduct(models.TextChoices):
    PAY_IN_4 = "pay_in_4", _("Pay in 4")
    PAY_IN_3 = "pay_in_3", _("Pay in 3")
    PAY_LATER = "pay_later", _("Pay later in 30 days")
    PAY_NOW = "pay_now", _("Pay now")
    FINANCING = "financing", _("Financing")
    ONE_TIME_CARD = "one_time_card", _("One-time card Pay in 4")


class OrderStatus(models.TextChoices):
    AUTHORIZED = "AUTHORIZED", _("Authorized")
    PART_CAPTURED = "PART_CAPTURED", _("Partially captured")
    CAPTURED = "CAPTURED", _("Captured")
    CANCELLED = "CANCELLED", _("Cancelled")
    EXPIRED = "EXPIRED", _("Expired")
    CLOSED = "CLOSED", _("Closed")


class RefundState(models.TextChoices):
    """What the portal shows beside the status (derived from the amounts)."""

    NONE = "none", _("Not refunded")
    PARTIAL = "partial", _("Partially refunded")
    FULL = "full", _("Fully refunded")

    @classmethod
    def of(cls, refunded_amount: int, captured_amount: int) -> "RefundState":
        """The state of an order that refunded ``refunded_amount`` of the
        ``captured_amount`` it captured (minor units)."""
        if refunded_amount == 0:
            return cls.NONE
        if refunded_amount < captured_amount:
            return cls.PARTIAL
        return cls.FULL


class FraudStatus(models.TextChoices):
    """Klarna's ``fraud_status``. Orders are authorized at checkout without a
    separate risk review (our rule), so they are ACCEPTED unless the checkout says
    otherwise."""

    ACCEPTED = "ACCEPTED", _("Accepted")
    PENDING = "PENDING", _("Pending")
    REJECTED = "REJECTED", _("Rejected")


#: Klarna's ``initial_payment_method`` for each of our payment products:
#: (type, description, number of installments or None).
INITIAL_PAYMENT_METHODS = {
    "pay_in_4": ("PAY_IN_X", "Pay in 4", 4),
    "pay_in_3": ("PAY_IN_X", "Pay in 3", 3),
    "pay_later": ("INVOICE", "Pay later in 30 days", None),
    "pay_now": ("PAY_BY_CARD", "Pay now", None),
    "financing": ("FIXED_AMOUNT", "Financing", 12),
    "one_time_card": ("PAY_IN_X", "One-time card Pay in 4", 4),
}

#: Most shipping_info entries an order or a capture holds (Klarna's limit).
MAX_SHIPPING_INFO = 500


_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_order_reference() -> str:
    """A short customer-facing reference like ``K4MADNY`` (no 0/O, 1/I look-alikes)."""
    return "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(7))


#: Below this many characters a search text matches only from the start (a
#: trigram index needs three).
MIN_CONTAINS = 3


def day_bounds(
    start: date | None, end: date | None
) -> tuple[datetime | None, datetime | None]:
    """The half-open range of instants from the start of day ``start`` to the
    start of the day after ``end``, in the current time zone (our rule: the
    order list and the refunds export filter whole days). An open end is None,
    and so is the first or last day a date can hold (0001-01-01, 9999-12-31):
    no bound, where the day before or after would not exist."""
    tz = timezone.get_current_timezone()
    lower = upper = None
    if start and start > date.min:
        lower = datetime.combine(start, time.min, tzinfo=tz)
    if end and end < date.max:
        upper = datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz)
    return lower, upper


def default_expiry():
    return timezone.now() + timedelta(days=AUTHORIZATION_DAYS)


def is_text_search(text: str) -> bool:
    """Whether ``OrderQuerySet.search`` looks for ``text`` by its parts (a
    reference, a store's order number, a customer), not as an order id: a
    search to run in ``planned_per_call``."""
    text = text.strip()
    if not text:
        return False
    try:
        uuid.UUID(text)
    except ValueError:
        return True
    return False


def search_terms(text: str) -> tuple[tuple, dict]:
    """What the order search looks for in what a person typed (our rule): the
    kind of search (the shape of its query; empty for no text) and the values
    it compares, as ``search_q`` takes them.

    The order id (whole); or the start of the short reference ("hh9wz" finds
    HH9WZ2K), any part of the store's order number ("10886" finds NW-10886; a
    leading "#" is ignored), or the customer as ``matching_terms`` matches
    them (any part of the name without accents, "muller" finds Müller; any
    part of the email; an email's start, "maja@"). Shorter than three
    characters: starts only.
    """
    from customers.models import matching_terms

    text = text.strip()
    if not text:
        return (), {}
    if not is_text_search(text):
        return ("order_id",), {"order_id": uuid.UUID(text)}
    number = text.lstrip("#").strip() or text
    customer_kind, customer = matching_terms(text)
    kind = ("text", len(number) >= MIN_CONTAINS, customer_kind)
    values = {"reference": number.upper(), "number": number}
    values.update({f"customer_{key}": value for key, value in customer.items()})
    return kind, values


def search_q(kind: tuple, values: dict) -> Q:
    """The orders' condition for ``search_terms``' ``kind`` and ``values``.

    One condition on the orders: the customer is matched on the order's
    copies of their folded name and email (``customer_search_name``,
    ``customer_search_email``), each branch with an index on PostgreSQL
    (migrations portal 0007 and 0011). Planned for the text, PostgreSQL then
    chooses from the orders' own statistics between a BitmapOr of the
    branches' indexes (a rare text) and a walk of the merchant's newest
    orders testing each row (a common surname: the first page comes after a
    few hundred rows). Matching the customers first, by id, took up to three
    queries and 1.7 ms of PostgreSQL's time for "muller" at 1,000,000 orders;
    this takes one and 0.5 ms (issue 16).
    """
    from customers.models import terms_q

    if kind[0] == "order_id":
        return Q(order_id=values["order_id"])
    _text, contains_number, customer_kind = kind
    if contains_number:
        by_number = Q(merchant_reference1__icontains=values["number"])
    else:
        by_number = Q(merchant_reference1__istartswith=values["number"])
    customer = {
        key: values[f"customer_{key}"]
        for key in ("name", "email")
        if f"customer_{key}" in values
    }
    by_customer = terms_q(
        customer_kind,
        customer,
        name="customer_search_name",
        email="customer_search_email",
    )
    return Q(reference__startswith=values["reference"]) | by_number | by_customer


class OrderQuerySet(models.QuerySet):
    """Orders as a merchant or a customer may see them.

    The scoping methods also set Django's ``FETCH_PEERS`` fetch mode: a relation
    a page touches without ``select_related`` is then fetched for every order of
    the page in one query, never once per row.
    """

    def for_merchant(self, merchant: Merchant) -> "OrderQuerySet":
        return self.filter(merchant=merchant).fetch_mode(models.FETCH_PEERS)

    def for_customer(self, customer) -> "OrderQuerySet":
        return self.filter(customer=customer).fetch_mode(models.FETCH_PEERS)

    def search(self, text: str) -> "OrderQuerySet":
        """Orders matching what a person typed (``search_terms``, our rule).
        Run a text search (``is_text_search``) in ``planned_per_call``: its
        best plan depends on the text."""
        kind, values = search_terms(text)
        return self.filter(search_q(kind, values)) if kind else self

    def with_refund_state(self, state: str) -> "OrderQuerySet":
        if state == RefundState.NONE:
            return self.filter(refunded_amount=0)
        if state == RefundState.PARTIAL:
            return self.filter(
                refunded_amount__gt=0, refunded_amount__lt=F("captured_amount")
            )
        if state == RefundState.FULL:
            return self.filter(
                refunded_amount__gt=0, refunded_amount=F("captured_amount")
            )
        return self

    def fill_search_copies(self, *, stale: bool = False) -> int:
        """Give orders whose search copies are empty their customer's
        ``search_name`` and email (``Order.customer_search_name``); how many.
        Every email is non-empty, so an empty copy was never set: an order
        saved by a release before migration 0011 while it was deployed (our
        rule; one UPDATE through a partial index that is otherwise empty).

        With ``stale``, every order whose copies differ from its customer's
        (a customer renamed by that release): one UPDATE that compares every
        order with its customer (``manage.py refresh_order_search``, once
        after such a deploy)."""
        from customers.models import Customer

        if stale:
            orders = self.exclude(
                customer_search_name=F("customer__search_name"),
                customer_search_email=F("customer__email"),
            )
        else:
            orders = self.filter(customer_search_email="")
        customer = Customer.objects.filter(pk=OuterRef("customer_id"))
        return orders.update(
            customer_search_name=Subquery(customer.values("search_name")[:1]),
            customer_search_email=Subquery(customer.values("email")[:1]),
        )

    def expire_due(self, now=None) -> int:
        """Mark authorized orders without captures whose authorization lapsed."""
        now = now or timezone.now()
        return self.filter(status=OrderStatus.AUTHORIZED, expires_at__lte=now).update(
            status=OrderStatus.EXPIRED
        )


class Order(models.Model):
    order_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    reference = models.CharField(
        max_length=12, unique=True, default=new_order_reference, editable=False
    )
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="orders"
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="orders"
    )
    payment_method = models.ForeignKey(
        "customers.PaymentMethod",
        on_delete=models.PROTECT,
        related_name="orders",
        null=True,
        blank=True,
        help_text="The method the customer pays with; money back goes here.",
    )
    merchant_reference1 = models.CharField(
        max_length=255,
        blank=True,
        help_text="The store's order number, shown to the customer.",
    )
    merchant_reference2 = models.CharField(max_length=255, blank=True)
    # Copies of the customer's search_name and email, set when the order is
    # made and kept by Customer.save: what the order search matches, so that
    # a search reads one table and PostgreSQL can plan it from that table's
    # statistics (migration 0011; issue 16). An order saved by a release
    # before 0011 while it is deployed gets "" from the database, and its
    # copies from OrderQuerySet.fill_search_copies (a periodic job).
    customer_search_name = models.CharField(
        max_length=400, blank=True, default="", db_default="", editable=False
    )
    customer_search_email = models.CharField(
        max_length=254, blank=True, default="", db_default="", editable=False
    )
    purchase_country = models.CharField(max_length=2)
    purchase_currency = models.CharField(max_length=3)
    locale = models.CharField(max_length=10, default="en_US")
    payment_product = models.CharField(max_length=20, choices=PaymentProduct.choices)
    order_amount = models.BigIntegerField()
    original_order_amount = models.BigIntegerField()
    status = models.CharField(
        max_length=14, choices=OrderStatus.choices, default=OrderStatus.AUTHORIZED
    )
    # Caches of the captures and refunds below; see the module docstring.
    captured_amount = models.BigIntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0)
    released_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(default=default_expiry)
    # What the shop's checkout sent (Klarna's order fields); shown on the order
    # page and returned by the API as given. Addresses use Klarna's keys
    # (given_name, street_address, postal_code, city, country, email, phone...).
    fraud_status = models.CharField(
        max_length=8,
        choices=FraudStatus.choices,
        default=FraudStatus.ACCEPTED,
        db_default=FraudStatus.ACCEPTED,
    )
    billing_address = models.JSONField(default=dict, db_default={}, blank=True)
    shipping_address = models.JSONField(default=dict, db_default={}, blank=True)
    customer_details = models.JSONField(
        default=dict,
        db_default={},
        blank=True,
        help_text="Klarna's “customer”: date_of_birth, national_identification_number.",
    )
    merchant_data = models.TextField(blank=True, default="", db_default="")
    shipping_info = models.JSONField(default=list, db_default=[], blank=True)
    selected_shipping_option = models.JSONField(default=dict, db_default={}, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Staff's unfiltered admin list across merchants: newest first.
            models.Index(fields=["-created_at", "-id"], name="order_recent"),
            # The order list: newest first per merchant, keyset-paginated.
            models.Index(
                fields=["merchant", "-created_at", "-id"], name="order_merchant_recent"
            ),
            models.Index(
                fields=["merchant", "status", "-created_at", "-id"],
                name="order_merchant_status",
            ),
            models.Index(
                fields=["merchant", "payment_product", "-created_at", "-id"],
                name="order_merchant_product",
            ),
            models.Index(
                fields=["merchant", "merchant_reference1"], name="order_merchant_ref1"
            ),
            models.Index(
                fields=["customer", "-created_at"], name="order_customer_recent"
            ),
            # Orders without their search copies (fill_search_copies): none,
            # but for a deploy of migration 0011 with old servers still running.
            models.Index(
                fields=["id"],
                condition=Q(customer_search_email=""),
                name="order_search_copies_missing",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(order_amount__gte=0) & Q(order_amount__lte=MAX_AMOUNT),
                name="order_amount_in_range",
            ),
            models.CheckConstraint(
                condition=Q(captured_amount__gte=0)
                & Q(captured_amount__lte=F("order_amount")),
                name="order_captured_le_order_amount",
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0)
                & Q(refunded_amount__lte=F("captured_amount")),
                name="order_refunded_le_captured",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    def save(self, *args, **kwargs) -> None:
        """Saves the order; a new one copies its customer's ``search_name`` and
        email into ``customer_search_name`` and ``customer_search_email``
        (afterwards ``Customer.save`` keeps them; an order's customer does not
        change)."""
        if self._state.adding:
            self.customer_search_name = self.customer.search_name
            self.customer_search_email = self.customer.email
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("portal:order_detail", args=[self.order_id])

    # Derived amounts ---------------------------------------------------------

    @property
    def authorization_open(self) -> bool:
        return (
            self.status in (OrderStatus.AUTHORIZED, OrderStatus.PART_CAPTURED)
            and self.released_at is None
            and self.expires_at > timezone.now()
        )

    @property
    def remaining_authorized_amount(self) -> int:
        if not self.authorization_open:
            return 0
        return self.order_amount - self.captured_amount

    @property
    def refundable_amount(self) -> int:
        """Captured and not yet refunded (before any merchant policy)."""
        return self.captured_amount - self.refunded_amount

    @property
    def refund_state(self) -> str:
        return RefundState.of(self.refunded_amount, self.captured_amount)

    def get_refund_state_display(self) -> str:
        return RefundState(self.refund_state).label

    @property
    def display_status(self) -> str:
        return self.status_text(self.status, self.refund_state)

    @staticmethod
    def status_text(status: str, refund_state: str) -> str:
        """The status a merchant reads: refunds take precedence once there are any."""
        if refund_state != RefundState.NONE:
            return RefundState(refund_state).label
        return str(OrderStatus(status).label)

    @property
    def return_fee_market(self) -> bool:
        return self.purchase_country in RETURN_FEE_MARKETS

    def _status_after_change(self) -> str:
        if self.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
            return self.status
        if self.captured_amount == 0:
            return OrderStatus.AUTHORIZED
        if self.refunded_amount == self.captured_amount and (
            self.released_at or self.captured_amount == self.order_amount
        ):
            return OrderStatus.CLOSED
        if self.captured_amount == self.order_amount or self.released_at:
            return OrderStatus.CAPTURED
        return OrderStatus.PART_CAPTURED

    def verify_totals(self) -> list[str]:
        """Rebuild every cached counter from captures and refunds; list disagreements."""
        problems = []
        captured = self.captures.aggregate(s=Sum("captured_amount"))["s"] or 0
        refunded = self.refunds.aggregate(s=Sum("refunded_amount"))["s"] or 0
        if captured != self.captured_amount:
            problems.append(
                f"captured_amount {self.captured_amount} != captures {captured}"
            )
        if refunded != self.refunded_amount:
            problems.append(
                f"refunded_amount {self.refunded_amount} != refunds {refunded}"
            )
        for capture in self.captures.annotate(
            allocated=Sum("refund_allocations__amount")
        ):
            if (capture.allocated or 0) != capture.refunded_amount:
                problems.append(f"capture {capture.pk} refunded_amount disagrees")
        for line in self.lines.annotate(
            cq=Sum("capture_lines__quantity"),
            rq=Sum("capture_lines__refunded_quantity"),
        ):
            if (line.cq or 0) != line.captured_quantity:
                problems.append(f"line {line.reference} captured_quantity disagrees")
            if (line.rq or 0) != line.refunded_quantity:
                problems.append(f"line {line.reference} refunded_quantity disagrees")
        # The line ledger: each capture line's refunded money is its refund lines'
        # (refund lines from before the ledger point at order lines only).
        legacy = self.refunds.filter(
            lines__capture_line__isnull=True, lines__order_line__isnull=False
        ).exists()
        for cl in CaptureLine.objects.filter(capture__order=self).annotate(
            rl=Sum("refund_lines__total_amount")
        ):
            if not legacy and (cl.rl or 0) != cl.refunded_amount:
                problems.append(f"capture line {cl.pk} refunded_amount disagrees")
        return problems

    # Mutations ---------------------------------------------------------------

    def _locked(self) -> "Order":
        """This order re-read with its row locked; call inside transaction.atomic()."""
        return Order.objects.select_for_update().get(pk=self.pk)

    def _refresh_from(self, other: "Order") -> None:
        for field in (
            "status",
            "order_amount",
            "captured_amount",
            "refunded_amount",
            "released_at",
            "expires_at",
        ):
            setattr(self, field, getattr(other, field))

    # Why an action is not possible now (None when it is). The verbs raise these
    # under the order lock; pages show them instead of a form that would fail.

    def capture_refusal(self) -> CaptureNotAllowed | None:
        if self.status in (
            OrderStatus.CANCELLED,
            OrderStatus.EXPIRED,
            OrderStatus.CLOSED,
        ):
            return CaptureNotAllowed(
                "ORDER_NOT_CAPTURABLE",
                gettext("The order is %(status)s; nothing can be captured.")
                % {"status": self.get_status_display().lower()},
            )
        if not self.authorization_open:
            return CaptureNotAllowed(
                "AUTHORIZATION_CLOSED",
                gettext(
                    "The authorization has expired or was released; nothing can "
                    "be captured."
                ),
            )
        if self.remaining_authorized_amount == 0:
            return CaptureNotAllowed(
                "NOTHING_TO_CAPTURE",
                gettext("Everything authorized has been captured."),
            )
        return None

    def cancel_refusal(self) -> CancelNotAllowed | None:
        if self.captured_amount > 0:
            return CancelNotAllowed(
                "HAS_CAPTURES",
                gettext("Order has previous captures. Cancel not possible."),
            )
        if self.status != OrderStatus.AUTHORIZED:
            return CancelNotAllowed(
                "NOT_CANCELLABLE",
                gettext("The order is already %(status)s.")
                % {"status": self.get_status_display().lower()},
            )
        return None

    def release_refusal(self) -> OrderActionNotAllowed | None:
        if self.captured_amount == 0:
            return OrderActionNotAllowed(
                "NO_CAPTURES",
                gettext("The order has no captures; cancel it instead."),
            )
        if not self.authorization_open or self.captured_amount >= self.order_amount:
            return OrderActionNotAllowed(
                "NOTHING_TO_RELEASE",
                gettext("Nothing remains authorized on this order."),
            )
        return None

    def capture(
        self,
        *,
        lines: Sequence[tuple[str, int]] | None = None,
        amount: int | None = None,
        by=None,
        channel: str = Channel.PORTAL,
        description: str = "",
        reference: str = "",
        idempotency_key: str = "",
    ) -> "Capture":
        """Capture by order lines ``[(line reference, quantity), ...]``, by an amount,
        or (neither given) everything that remains.

        Invariant: never more than the remaining authorization; not on cancelled,
        expired or released orders. Opens the customer's payment plan for the
        captured amount and books the SALE and FEE ledger entries. With an
        ``idempotency_key`` already used on this order, the earlier capture is
        returned (``capture.replayed``) and nothing moves again.
        """
        with transaction.atomic():
            order = self._locked()
            earlier = (
                order.captures.filter(idempotency_key=idempotency_key).first()
                if idempotency_key
                else None
            )
            if earlier is not None:
                earlier.replayed = True
                return earlier
            capture = order._capture_locked(
                lines=lines,
                amount=amount,
                by=by,
                channel=channel,
                description=description,
                reference=reference,
            )
            if idempotency_key:
                capture.idempotency_key = idempotency_key
                capture.save(update_fields=["idempotency_key"])
            capture.replayed = False
            self._refresh_from(order)
            return capture

    capture.alters_data = True

    def _capture_locked(self, *, lines, amount, by, channel, description, reference):
        from customers.models import PaymentPlan

        if refusal := self.capture_refusal():
            raise refusal
        remaining = self.remaining_authorized_amount
        order_lines = list(self.lines.select_for_update().order_by("pk"))
        by_reference = {line.reference: line for line in order_lines}
        selected: list[tuple[OrderLine, int]] = []
        if lines:
            seen = set()
            for ref, quantity in lines:
                line = by_reference.get(ref)
                if line is None:
                    raise InvalidRequest(
                        "UNKNOWN_LINE",
                        f"This order has no line with reference “{ref}”.",
                        field="lines",
                    )
                if ref in seen:
                    raise InvalidRequest(
                        "DUPLICATE_LINE",
                        f"Line “{ref}” is listed twice.",
                        field="lines",
                    )
                seen.add(ref)
                if (
                    not isinstance(quantity, int)
                    or isinstance(quantity, bool)
                    or quantity <= 0
                ):
                    raise InvalidRequest(
                        "INVALID_QUANTITY",
                        "Quantities must be whole numbers of at least 1.",
                        field="lines",
                    )
                if quantity > line.quantity - line.captured_quantity:
                    raise CaptureNotAllowed(
                        "OVER_CAPTURE",
                        gettext("Only %(count)d of “%(name)s” remain to be captured.")
                        % {
                            "count": line.quantity - line.captured_quantity,
                            "name": line.name,
                        },
                    )
                selected.append((line, quantity))
            lines_amount = sum(
                line.amount_for_units(line.captured_quantity, q) for line, q in selected
            )
            if amount is not None and amount != lines_amount:
                raise InvalidRequest(
                    "AMOUNT_MISMATCH",
                    f"captured_amount {amount} does not equal the order lines' total "
                    f"{lines_amount}.",
                    field="captured_amount",
                )
            amount = lines_amount
        by_amount = False
        if not lines:
            if amount is None:
                amount = remaining
            by_amount = True
            if amount == remaining:
                # The capture that completes the order captures every line still
                # uncaptured (DOMAIN.md). When its amount itemizes exactly and no
                # earlier capture was by amount, those lines are its own.
                selected = [
                    (line, line.capturable_quantity)
                    for line in order_lines
                    if line.capturable_quantity
                ]
                lines_amount = sum(
                    line.amount_for_units(line.captured_quantity, q)
                    for line, q in selected
                )
                by_amount = lines_amount != amount or any(
                    c.by_amount for c in self.captures.all()
                )
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise InvalidRequest(
                "INVALID_AMOUNT",
                "The capture amount must be a positive whole number of minor units.",
                field="captured_amount",
            )
        if amount > remaining:
            raise CaptureNotAllowed(
                "OVER_CAPTURE",
                gettext(
                    "Capture amount is higher than the remaining authorized amount."
                ),
                field="captured_amount",
            )
        capture = Capture.objects.create(
            order=self,
            captured_amount=amount,
            by_amount=by_amount,
            description=description,
            reference=reference,
            created_by=by,
            channel=channel,
        )
        holders = [(capture, selected)]
        if lines and amount == remaining:
            # Completed by lines after captures by amount: the lines still
            # uncaptured are held by the pool, on its newest capture.
            chosen = dict((line.pk, q) for line, q in selected)
            leftover = [
                (line, line.capturable_quantity - chosen.get(line.pk, 0))
                for line in order_lines
                if line.capturable_quantity > chosen.get(line.pk, 0)
            ]
            pool = self.captures.filter(by_amount=True).order_by("-pk").first()
            if leftover and pool is not None:
                holders.append((pool, leftover))
        capture_lines, changed = [], []
        for holder, chosen_lines in holders:
            for line, quantity in chosen_lines:
                capture_lines.append(
                    CaptureLine(
                        capture=holder,
                        order_line=line,
                        unit_start=line.captured_quantity,
                        quantity=quantity,
                        **line.ledger_fields(line.captured_quantity, quantity),
                    )
                )
                line.captured_quantity += quantity
                changed.append(line)
        CaptureLine.objects.bulk_create(capture_lines)
        OrderLine.objects.bulk_update(changed, ["captured_quantity"])
        self.captured_amount += amount
        self.status = self._status_after_change()
        self.save(update_fields=["captured_amount", "status"])
        LedgerEntry.record_sale(capture)
        PaymentPlan.open_for_capture(capture)
        return capture

    def cancel(self, *, by=None) -> None:
        """Cancel an order that has no captures; the whole authorization lapses."""
        with transaction.atomic():
            order = self._locked()
            if refusal := order.cancel_refusal():
                raise refusal
            order.status = OrderStatus.CANCELLED
            order.save(update_fields=["status"])
            OrderEvent.objects.create(
                order=order, kind=OrderEvent.Kind.CANCELLED, created_by=by
            )
            self._refresh_from(order)

    cancel.alters_data = True

    def release_remaining_authorization(self, *, by=None) -> int:
        """Give up what is authorized and not captured; returns the released amount.

        Only for an order with captures that is not fully captured.
        """
        with transaction.atomic():
            order = self._locked()
            if refusal := order.release_refusal():
                raise refusal
            released = order.remaining_authorized_amount
            order.released_at = timezone.now()
            order.status = order._status_after_change()
            order.save(update_fields=["released_at", "status"])
            OrderEvent.objects.create(
                order=order,
                kind=OrderEvent.Kind.RELEASED,
                amount=released,
                created_by=by,
            )
            self._refresh_from(order)
            return released

    release_remaining_authorization.alters_data = True

    def extend_authorization(self, days: int = 7, *, by=None) -> None:
        """Push ``expires_at`` out by ``days``, never past 180 days after creation."""
        with transaction.atomic():
            order = self._locked()
            if not order.authorization_open:
                raise OrderActionNotAllowed(
                    "NOT_EXTENDABLE", "Only an open authorization can be extended."
                )
            limit = order.created_at + timedelta(days=MAX_AUTHORIZATION_DAYS)
            if order.expires_at >= limit:
                raise OrderActionNotAllowed(
                    "MAX_EXTENSION",
                    "The authorization cannot be extended past 180 days.",
                )
            order.expires_at = min(order.expires_at + timedelta(days=days), limit)
            order.save(update_fields=["expires_at"])
            OrderEvent.objects.create(
                order=order, kind=OrderEvent.Kind.EXTENDED, created_by=by
            )
            self._refresh_from(order)

    extend_authorization.alters_data = True

    def update_merchant_references(
        self, reference1=None, reference2=None, *, by=None
    ) -> None:
        """Overwrite the references given (None keeps one; neither changes nothing).

        Raises ``OrderActionNotAllowed`` on a cancelled order (Klarna: 403).
        """
        with transaction.atomic():
            order = self._locked()
            if order.status == OrderStatus.CANCELLED:
                raise OrderActionNotAllowed(
                    "ORDER_CANCELLED", "Can not update a cancelled order."
                )
            if reference1 is None and reference2 is None:
                return
            if reference1 is not None:
                order.merchant_reference1 = reference1
            if reference2 is not None:
                order.merchant_reference2 = reference2
            order.save(update_fields=["merchant_reference1", "merchant_reference2"])
            OrderEvent.objects.create(
                order=order, kind=OrderEvent.Kind.REFERENCES_UPDATED, created_by=by
            )
            self.merchant_reference1 = order.merchant_reference1
            self.merchant_reference2 = order.merchant_reference2

    update_merchant_references.alters_data = True

    # Refunds (the engine lives in refunds/; these are the order's verbs) -----

    def refund_complete(self, *, by=None, **options):
        """Refund everything captured and not yet refunded."""
        from refunds.engine import RefundKind, RefundRequest, execute_refund

        return execute_refund(
            self,
            RefundRequest(kind=RefundKind.COMPLETE, **_request_fields(options)),
            by=by,
            **_exec_fields(options),
        )

    refund_complete.alters_data = True

    def refund_lines(
        self,
        lines: Sequence[tuple[str, int]],
        *,
        return_fee: int = 0,
        by=None,
        **options,
    ):
        """Refund selected captured lines ``[(reference, quantity), ...]``, optionally
        minus a return fee the customer pays."""
        from refunds.engine import RefundKind, RefundRequest, execute_refund

        request = RefundRequest(
            kind=RefundKind.ITEMS,
            lines=tuple(lines),
            return_fee=return_fee,
            **_request_fields(options),
        )
        return execute_refund(self, request, by=by, **_exec_fields(options))

    refund_lines.alters_data = True

    def refund_amount(self, amount: int, *, by=None, **options):
        """Refund a free amount, allocated to captures oldest first."""
        from refunds.engine import RefundKind, RefundRequest, execute_refund

        request = RefundRequest(
            kind=RefundKind.AMOUNT, amount=amount, **_request_fields(options)
        )
        return execute_refund(self, request, by=by, **_exec_fields(options))

    refund_amount.alters_data = True

    # Changes before and after shipping (Klarna's order edits) -----------------

    @property
    def initial_payment_method(self) -> dict:
        """Klarna's ``initial_payment_method``, from the payment product."""
        kind, description, installments = INITIAL_PAYMENT_METHODS[self.payment_product]
        method = {"type": kind, "description": description}
        if installments:
            method["number_of_installments"] = installments
        return method

    @property
    def shipping_option_label(self) -> str:
        """The selected shipping option as the order page names it."""
        option = self.selected_shipping_option
        parts = [option.get("name") or option.get("id") or "", option.get("carrier")]
        return " · ".join(part for part in parts if part)

    def authorization_update_refusal(self) -> OrderActionNotAllowed | None:
        if not self.authorization_open:
            return OrderActionNotAllowed(
                "NOT_UPDATABLE",
                gettext(
                    "The order is %(status)s and its authorization is closed; its "
                    "amount can no longer change."
                )
                % {"status": self.display_status.lower()},
            )
        return None

    def update_authorization(
        self, order_amount: int, lines: Sequence, *, description: str = "", by=None
    ) -> None:
        """Set a new order amount (minor units) and the whole new set of order lines
        before they are captured: an item is out of stock, the customer changed
        their mind (Klarna's “update authorization”).

        ``lines`` have ``OrderLineValues``' attributes. Klarna's rules: only while
        the authorization is open; never below the captured amount; never above
        the amount authorized at checkout (``original_order_amount``). Ours: the
        lines add up to ``order_amount`` and their references are unique; a line
        with captured units stays, with its type, unit price and tax rate, at least
        its captured quantity, and the amount its remaining units had (units go
        from the end), so captures and refunds are untouched; a line without
        captured units may change or go; the edit may not leave the order fully
        captured while a line still has uncaptured units. The customer is told.

        Raises ``OrderActionNotAllowed`` (403) or ``InvalidRequest`` (422).
        """
        with transaction.atomic():
            order = self._locked()
            order._update_authorization_locked(
                order_amount, lines, description=description, by=by
            )
            self._refresh_from(order)

    update_authorization.alters_data = True

    def remove_item(self, reference: str, quantity: int, *, by=None) -> int:
        """Take ``quantity`` uncaptured units of the line ``reference`` off the order
        (the portal's “Remove an item”); returns the amount removed (minor units).

        The line's last units go at what they were worth, so the order amount drops
        by exactly that; a line left with no units goes. Same rules and errors as
        ``update_authorization``.
        """
        with transaction.atomic():
            order = self._locked()
            lines = list(order.lines.order_by("position", "pk"))
            line = next((x for x in lines if x.reference == reference), None)
            if line is None:
                raise InvalidRequest(
                    "UNKNOWN_LINE",
                    gettext("The order has no line “%(reference)s”.")
                    % {"reference": reference},
                    field="line",
                )
            if not 1 <= quantity <= line.capturable_quantity:
                raise InvalidRequest(
                    "NOT_REMOVABLE",
                    gettext(
                        "%(count)d of “%(item)s” can be removed (the units not "
                        "captured)."
                    )
                    % {"count": line.capturable_quantity, "item": line.name},
                    field="quantity",
                )
            kept = line.quantity - quantity
            removed = line.amount_for_units(kept, quantity)
            values = [OrderLineValues.of(x) for x in lines]
            index = lines.index(line)
            if kept:
                values[index] = values[index].with_quantity(
                    kept, line.amount_for_units(0, kept)
                )
            else:
                del values[index]
            order._update_authorization_locked(
                order.order_amount - removed,
                values,
                description=f"{quantity} × {line.name} removed",
                by=by,
            )
            self._refresh_from(order)
            return removed

    remove_item.alters_data = True

    def _update_authorization_locked(self, order_amount, lines, *, description, by):
        from customers.notifications import notify_order_updated

        if refusal := self.authorization_update_refusal():
            raise refusal
        if order_amount < self.captured_amount:
            raise OrderActionNotAllowed(
                "BELOW_CAPTURED",
                f"The order amount cannot be lower than what is captured "
                f"({self.captured_amount}).",
            )
        if order_amount > self.original_order_amount:
            raise OrderActionNotAllowed(
                "ABOVE_AUTHORIZED",
                f"The order amount cannot be higher than the amount authorized at "
                f"checkout ({self.original_order_amount}).",
            )
        total = sum(line.total_amount for line in lines)
        if total != order_amount:
            raise InvalidRequest(
                "LINES_TOTAL",
                f"{order_amount} is not the order lines' total ({total}).",
                field="order_amount",
            )
        existing = {
            x.reference: x for x in self.lines.select_for_update().order_by("pk")
        }
        kept, created, seen = [], [], set()
        for position, new in enumerate(lines):
            if new.reference in seen:
                raise InvalidRequest(
                    "DUPLICATE_REFERENCE",
                    f"“{new.reference}” is used by an earlier line.",
                    field="order_lines",
                )
            seen.add(new.reference)
            old = existing.get(new.reference)
            if old is None:
                created.append(OrderLine(order=self, **new.fields(position)))
                continue
            if old.captured_quantity:
                _check_captured_line_kept(old, new)
            for name, value in new.fields(position).items():
                setattr(old, name, value)
            kept.append(old)
        for reference, old in existing.items():
            if reference not in seen and old.captured_quantity:
                raise OrderActionNotAllowed(
                    "LINE_CAPTURED",
                    f"“{old.name}” has captured units; it cannot be removed.",
                )
        uncaptured = [x for x in [*kept, *created] if x.quantity > x.captured_quantity]
        if order_amount == self.captured_amount and uncaptured:
            raise OrderActionNotAllowed(
                "UNCAPTURED_LINES",
                f"The order would be fully captured while “{uncaptured[0].name}” "
                "has units not captured; remove them too.",
            )
        gone = [x.pk for ref, x in existing.items() if ref not in seen]
        OrderLine.objects.filter(pk__in=gone).delete()
        OrderLine.objects.bulk_update(kept, [*OrderLineValues.FIELDS, "position"])
        OrderLine.objects.bulk_create(created)
        previous = self.order_amount
        self.order_amount = order_amount
        self.status = self._status_after_change()
        self.save(update_fields=["order_amount", "status"])
        OrderEvent.objects.create(
            order=self,
            kind=OrderEvent.Kind.AMENDED,
            amount=order_amount,
            note=description[:255],
            created_by=by,
        )
        if previous != order_amount:
            notify_order_updated(self, previous, description)

    def customer_details_refusal(self) -> OrderActionNotAllowed | None:
        if not self.authorization_open or self.remaining_authorized_amount == 0:
            return OrderActionNotAllowed(
                "NOT_UPDATABLE",
                "Nothing is left to ship on this order; the shipping address can "
                "no longer change.",
            )
        return None

    def update_customer_details(self, shipping_address: dict | None, *, by=None):
        """Replace the shipping address (Klarna's keys) before shipping; None
        changes nothing (the body may leave it out).

        Our rule for Klarna's “based on order state”: only while something remains
        to be captured. The billing address never changes (Klarna). Raises
        ``OrderActionNotAllowed``.
        """
        with transaction.atomic():
            order = self._locked()
            if refusal := order.customer_details_refusal():
                raise refusal
            if shipping_address is None:
                return
            order.shipping_address = dict(shipping_address)
            order.save(update_fields=["shipping_address"])
            OrderEvent.objects.create(
                order=order, kind=OrderEvent.Kind.CUSTOMER_UPDATED, created_by=by
            )
            self.shipping_address = order.shipping_address

    update_customer_details.alters_data = True

    def acknowledge(self, *, by=None) -> None:
        """Record that the shop received the order (Klarna's acknowledge); the
        first time counts, repeats change nothing."""
        with transaction.atomic():
            order = self._locked()
            if order.acknowledged_at is None:
                order.acknowledged_at = timezone.now()
                order.save(update_fields=["acknowledged_at"])
                OrderEvent.objects.create(
                    order=order, kind=OrderEvent.Kind.ACKNOWLEDGED, created_by=by
                )
            self.acknowledged_at = order.acknowledged_at

    acknowledge.alters_data = True

    def add_shipping_info(self, entries: Sequence[dict], *, by=None) -> None:
        """Append shipping entries (Klarna's shipping_info) to the order; at most
        500 in all (Klarna). Raises ``InvalidRequest``."""
        with transaction.atomic():
            order = self._locked()
            order.shipping_info = _appended_shipping_info(order.shipping_info, entries)
            order.save(update_fields=["shipping_info"])
            OrderEvent.objects.create(
                order=order, kind=OrderEvent.Kind.SHIPPING_INFO, created_by=by
            )
            self.shipping_info = order.shipping_info

    add_shipping_info.alters_data = True

    def capture_shipment(
        self,
        *,
        shipping_info: Sequence[dict] = (),
        shipping_delay: int = 0,
        **capture_options,
    ) -> "Capture":
        """``capture`` (same options and errors) plus what the shipment carries:
        tracking entries, the ``shipping_delay`` in days, and the order's addresses
        as they are now (where this shipment goes). One transaction."""
        with transaction.atomic():
            capture = self.capture(**capture_options)
            if capture.replayed:
                return capture
            order = capture.order
            capture.shipping_info = _appended_shipping_info([], shipping_info)
            capture.shipping_delay = shipping_delay
            capture.billing_address = order.billing_address
            capture.shipping_address = order.shipping_address
            capture.save(
                update_fields=[
                    "shipping_info",
                    "shipping_delay",
                    "billing_address",
                    "shipping_address",
                ]
            )
            return capture

    capture_shipment.alters_data = True


def _appended_shipping_info(current: list, entries: Sequence[dict]) -> list:
    combined = [*current, *(dict(e) for e in entries)]
    if len(combined) > MAX_SHIPPING_INFO:
        raise InvalidRequest(
            "TOO_MUCH_SHIPPING_INFO",
            f"At most {MAX_SHIPPING_INFO} shipping_info entries are kept "
            f"({len(current)} already).",
            field="shipping_info",
        )
    return combined


def _check_captured_line_kept(old: "OrderLine", new: "OrderLineValues") -> None:
    if (new.type, new.unit_price, new.tax_rate) != (
        old.type,
        old.unit_price,
        old.tax_rate,
    ):
        raise InvalidRequest(
            "CAPTURED_LINE_CHANGED",
            f"“{old.reference}” has captured units: its type, unit price and tax "
            "rate cannot change.",
            field="order_lines",
        )
    if new.quantity < old.captured_quantity:
        raise OrderActionNotAllowed(
            "BELOW_CAPTURED_QUANTITY",
            f"“{old.name}” has {old.captured_quantity} captured; its quantity "
            "cannot be lower.",
        )
    if new.quantity > old.quantity:
        raise InvalidRequest(
            "CAPTURED_LINE_GROWS",
            f"“{old.reference}” has captured units; its quantity cannot grow "
            "(add a new line instead).",
            field="order_lines",
        )
    expected = old.amount_for_units(0, new.quantity)
    if new.total_amount != expected:
        raise InvalidRequest(
            "CAPTURED_LINE_AMOUNT",
            f"“{old.reference}”: {new.quantity} units keep the amount they had "
            f"({expected}), not {new.total_amount}.",
            field="order_lines",
        )


@dataclass(frozen=True)
class OrderLineValues:
    """An order line's values as a checkout or an order edit gives them (amounts
    in minor units including tax, ``tax_rate`` in basis points)."""

    type: str
    reference: str
    name: str
    quantity: int
    quantity_unit: str
    unit_price: int
    tax_rate: int
    total_discount_amount: int
    total_amount: int
    total_tax_amount: int

    FIELDS = (
        "type",
        "name",
        "quantity",
        "quantity_unit",
        "unit_price",
        "tax_rate",
        "total_discount_amount",
        "total_amount",
        "total_tax_amount",
    )

    @classmethod
    def of(cls, line: "OrderLine") -> "OrderLineValues":
        return cls(
            reference=line.reference, **{f: getattr(line, f) for f in cls.FIELDS}
        )

    def with_quantity(self, quantity: int, total_amount: int) -> "OrderLineValues":
        """The same line with fewer units worth ``total_amount``; the discount and
        tax follow (tax half up, ``OrderLine.tax_for``)."""
        return replace(
            self,
            quantity=quantity,
            total_amount=total_amount,
            total_discount_amount=quantity * self.unit_price - total_amount,
            total_tax_amount=OrderLine.tax_for(total_amount, self.tax_rate),
        )

    def fields(self, position: int) -> dict:
        values = {f: getattr(self, f) for f in self.FIELDS}
        return {**values, "reference": self.reference, "position": position}


_REQUEST_FIELDS = (
    "description",
    "reference",
    "reason",
    "internal_note",
    "currency",
    "expected_amount",
    "return_fee",
)
_EXEC_FIELDS = ("channel", "idempotency_key", "expected_fingerprint")


def _request_fields(options: dict) -> dict:
    return {k: v for k, v in options.items() if k in _REQUEST_FIELDS}


def _exec_fields(options: dict) -> dict:
    unknown = set(options) - set(_REQUEST_FIELDS) - set(_EXEC_FIELDS)
    if unknown:
        raise TypeError(f"Unknown refund options: {sorted(unknown)}")
    return {k: v for k, v in options.items() if k in _EXEC_FIELDS}


class OrderLine(models.Model):
    class Type(models.TextChoices):
        PHYSICAL = "physical", _("Physical")
        DIGITAL = "digital", _("Digital")
        DISCOUNT = "discount", _("Discount")
        SHIPPING_FEE = "shipping_fee", _("Shipping fee")
        SALES_TAX = "sales_tax", _("Sales tax")
        SURCHARGE = "surcharge", _("Surcharge")
        GIFT_CARD = "gift_card", _("Gift card")
        STORE_CREDIT = "store_credit", _("Store credit")
        RETURN_FEE = "return_fee", _("Return fee")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    type = models.CharField(max_length=14, choices=Type.choices, default=Type.PHYSICAL)
    reference = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    quantity = models.PositiveIntegerField()
    quantity_unit = models.CharField(max_length=10, default="pcs")
    unit_price = models.BigIntegerField(help_text="Including tax, excluding discount.")
    tax_rate = models.PositiveIntegerField(
        default=0, help_text="Basis points: 2500 = 25%."
    )
    total_discount_amount = models.BigIntegerField(default=0)
    total_amount = models.BigIntegerField()
    total_tax_amount = models.BigIntegerField(default=0)
    captured_quantity = models.PositiveIntegerField(default=0)
    refunded_quantity = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order_id", "position", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "reference"], name="order_line_reference_unique"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="order_line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(
                    total_amount=F("quantity") * F("unit_price")
                    - F("total_discount_amount")
                ),
                name="order_line_total_consistent",
            ),
            models.CheckConstraint(
                condition=Q(captured_quantity__lte=F("quantity")),
                name="order_line_captured_le_quantity",
            ),
            models.CheckConstraint(
                condition=Q(refunded_quantity__lte=F("captured_quantity")),
                name="order_line_refunded_le_captured",
            ),
            models.CheckConstraint(
                condition=Q(tax_rate__lte=10000), name="order_line_tax_rate_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.name}"

    @property
    def refundable_quantity(self) -> int:
        return self.captured_quantity - self.refunded_quantity

    @property
    def capturable_quantity(self) -> int:
        return self.quantity - self.captured_quantity

    @property
    def is_shipping(self) -> bool:
        return self.type == self.Type.SHIPPING_FEE

    @property
    def is_negative(self) -> bool:
        """Discount, gift card, store credit: lines that reduce what is owed."""
        return self.total_amount < 0

    def amount_for_units(self, start: int, count: int) -> int:
        """Money of units ``start .. start+count-1`` (minor units, incl. tax)."""
        return unit_range_amount(self.total_amount, self.quantity, start, count)

    def tax_for_units(self, start: int, count: int) -> int:
        """Tax of units ``start .. start+count-1``: ``total_tax_amount`` split by
        units with the largest-remainder method, so every part sums to the line."""
        return unit_range_amount(self.total_tax_amount, self.quantity, start, count)

    def ledger_fields(self, start: int, count: int) -> dict:
        """The Klarna line fields of units ``start .. start+count-1``.

        ``total_discount_amount`` is ``count × unit_price − amount``, so each part
        keeps Klarna's ``total_amount = quantity × unit_price − discount`` and
        the parts sum to the line's discount.
        """
        amount = self.amount_for_units(start, count)
        return {
            "quantity_unit": self.quantity_unit,
            "unit_price": self.unit_price,
            "tax_rate": self.tax_rate,
            "total_discount_amount": count * self.unit_price - amount,
            "amount": amount,
            "total_tax_amount": self.tax_for_units(start, count),
        }

    @property
    def refundable_line_amount(self) -> int:
        return self.amount_for_units(self.refunded_quantity, self.refundable_quantity)

    @staticmethod
    def tax_for(total_amount: int, tax_rate: int) -> int:
        """Tax included in ``total_amount`` at ``tax_rate`` basis points, rounded half up."""
        if tax_rate == 0:
            return 0
        sign = -1 if total_amount < 0 else 1
        numerator = abs(total_amount) * tax_rate
        denominator = 10000 + tax_rate
        return sign * ((2 * numerator + denominator) // (2 * denominator))


class Capture(models.Model):
    """One shipment's capture: one customer invoice / payment obligation.

    ``by_amount``: captured as an amount that does not itemize its own money.
    Such a capture holds no lines by itself; the capture that brings the order to
    fully captured takes every line still uncaptured (DOMAIN.md), and the money
    of those lines is held together by all the order's captures by amount (the
    *pool*): an item refund of them is allocated to those captures oldest first
    (our rule, ``refunds.engine``).
    """

    capture_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="captures")
    captured_amount = models.BigIntegerField()
    refunded_amount = models.BigIntegerField(default=0)
    by_amount = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Captured by amount: its lines (if any) are held by the pool of "
        "the order's captures by amount.",
    )
    description = models.CharField(max_length=255, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    channel = models.CharField(
        max_length=10, choices=Channel.choices, default=Channel.PORTAL
    )
    # The portal form's key: a resubmitted form returns this capture, not a second.
    idempotency_key = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    # The shipment: Klarna's shipping_info entries (carrier, tracking number...),
    # the announced delay in days, and the order's addresses when it shipped.
    shipping_info = models.JSONField(default=list, db_default=[], blank=True)
    shipping_delay = models.PositiveIntegerField(default=0, db_default=0)
    billing_address = models.JSONField(default=dict, db_default={}, blank=True)
    shipping_address = models.JSONField(default=dict, db_default={}, blank=True)

    class Meta:
        ordering = ["order_id", "created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(captured_amount__gt=0) & Q(captured_amount__lte=MAX_AMOUNT),
                name="capture_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0)
                & Q(refunded_amount__lte=F("captured_amount")),
                name="capture_refunded_le_captured",
            ),
            models.UniqueConstraint(
                fields=["order", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="capture_idempotency_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"Capture {str(self.capture_id)[:8]} of {self.order}"

    @property
    def remaining_amount(self) -> int:
        return self.captured_amount - self.refunded_amount

    @cached_property
    def number(self) -> int:
        """1 for the order's first capture (invoice), 2 for the second..."""
        return self.order.captures.filter(pk__lte=self.pk).count()

    @property
    def klarna_reference(self) -> str:
        """The customer-facing invoice reference: ``K4MADNY-1`` (Klarna's form)."""
        return f"{self.order.reference}-{self.number}"

    @property
    def tracking(self) -> list[dict]:
        """The shipping entries that name a carrier or a tracking number."""
        return [
            entry
            for entry in self.shipping_info
            if entry.get("tracking_number") or entry.get("shipping_company")
        ]

    def add_shipping_info(self, entries: Sequence[dict], *, by=None) -> None:
        """Append shipping entries (Klarna's shipping_info) to this capture; at
        most 500 in all (Klarna). Raises ``InvalidRequest``."""
        with transaction.atomic():
            Order.objects.select_for_update().filter(pk=self.order_id).first()
            capture = Capture.objects.select_for_update().get(pk=self.pk)
            capture.shipping_info = _appended_shipping_info(
                capture.shipping_info, entries
            )
            capture.save(update_fields=["shipping_info"])
            OrderEvent.objects.create(
                order_id=self.order_id,
                kind=OrderEvent.Kind.SHIPPING_INFO,
                note=f"Invoice {self.number}",
                created_by=by,
            )
            self.shipping_info = capture.shipping_info

    add_shipping_info.alters_data = True

    def send_invoice(self, *, by=None) -> None:
        """Send the customer this invoice (the capture's plan and due dates) again,
        in the app and by email (Klarna's trigger-send-out)."""
        from customers.notifications import notify_invoice

        with transaction.atomic():
            notify_invoice(self)
            OrderEvent.objects.create(
                order_id=self.order_id,
                kind=OrderEvent.Kind.INVOICE_SENT,
                note=f"Invoice {self.number}",
                created_by=by,
            )

    send_invoice.alters_data = True


class CaptureLine(models.Model):
    """Units ``unit_start .. unit_start+quantity-1`` of an order line, captured.

    The line ledger (DOMAIN.md "Rules added after the first review"): the money of
    those units (``amount``, = ``quantity × unit_price − total_discount_amount``)
    and their share of the line's tax (``total_tax_amount``), split from the order
    line by unit ranges so that every capture's parts of a line sum exactly to the
    line. ``refunded_quantity`` and ``refunded_amount`` count what refunds took;
    for a line with a negative amount (discount, gift card, store credit) refunds
    take proportional shares of money, and ``refunded_quantity`` becomes
    ``quantity`` once all of it was refunded. The refund lines pointing here are
    the append-only record; these counters are their cache.
    """

    capture = models.ForeignKey(Capture, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(
        OrderLine, on_delete=models.PROTECT, related_name="capture_lines"
    )
    unit_start = models.PositiveIntegerField()
    quantity = models.PositiveIntegerField()
    quantity_unit = models.CharField(max_length=10, default="pcs", db_default="pcs")
    unit_price = models.BigIntegerField(
        default=0, db_default=0, help_text="Minor units, including tax."
    )
    tax_rate = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Basis points: 2500 = 25%."
    )
    total_discount_amount = models.BigIntegerField(default=0, db_default=0)
    amount = models.BigIntegerField(help_text="Minor units, including tax.")
    total_tax_amount = models.BigIntegerField(default=0, db_default=0)
    refunded_quantity = models.PositiveIntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        ordering = ["capture_id", "order_line_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["capture", "order_line"], name="capture_line_unique"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="capture_line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(refunded_quantity__lte=F("quantity")),
                name="capture_line_refunded_le_quantity",
            ),
            # Refunded money has the sign of the line and never exceeds it.
            models.CheckConstraint(
                condition=(
                    Q(amount__gte=0)
                    & Q(refunded_amount__gte=0)
                    & Q(refunded_amount__lte=F("amount"))
                )
                | (
                    Q(amount__lt=0)
                    & Q(refunded_amount__lte=0)
                    & Q(refunded_amount__gte=F("amount"))
                ),
                name="capture_line_refunded_amount_within_line",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.order_line.name}"

    @property
    def is_negative(self) -> bool:
        return self.amount < 0

    @property
    def refundable_quantity(self) -> int:
        return self.quantity - self.refunded_quantity

    @property
    def remaining_amount(self) -> int:
        """Money of this capture line not yet refunded (negative for discounts)."""
        return self.amount - self.refunded_amount

    def amount_for_units(self, count: int) -> int:
        """Money of the next ``count`` unrefunded units (minor units)."""
        return self.order_line.amount_for_units(
            self.unit_start + self.refunded_quantity, count
        )

    def tax_for_units(self, count: int) -> int:
        """Tax of the next ``count`` unrefunded units: the line's tax split by units."""
        return self.order_line.tax_for_units(
            self.unit_start + self.refunded_quantity, count
        )

    def tax_for_refunded_amount(self, refunded_amount: int) -> int:
        """Tax included in the first ``refunded_amount`` of a negative line's share.

        Cumulative and rounded half up, so the tax of successive shares sums
        exactly to ``total_tax_amount`` when the whole amount is refunded (our rule).
        """
        if self.amount == 0:
            return 0
        return proportion(self.total_tax_amount, refunded_amount, self.amount)


class OrderEvent(models.Model):
    """Things that happened to an order that are not captures or refunds (timeline)."""

    class Kind(models.TextChoices):
        CANCELLED = "cancelled", _("Order cancelled")
        RELEASED = "released", _("Remaining authorization released")
        EXTENDED = "extended", _("Authorization extended")
        REFERENCES_UPDATED = "references", _("Merchant references updated")
        AMENDED = "amended", _("Order amount changed")
        CUSTOMER_UPDATED = "customer", _("Shipping address updated")
        ACKNOWLEDGED = "acknowledged", _("Order acknowledged")
        SHIPPING_INFO = "shipping", _("Shipping information added")
        INVOICE_SENT = "invoice_sent", _("Invoice sent to the customer again")
        DUE_DATE_EXTENDED = "due_date", _("Payment due date extended")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount = models.BigIntegerField(null=True, blank=True)
    note = models.CharField(max_length=255, blank=True, default="", db_default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.order})"


class LedgerEntry(models.Model):
    """An append-only settlement transaction: SALE +, RETURN −, FEE −.

    The sum of a merchant's entries always equals captures − money refunds − fees.
    Entries without a payout are in the next one.
    """

    class Kind(models.TextChoices):
        SALE = "SALE", _("Sale")
        RETURN = "RETURN", _("Return")
        FEE = "FEE", _("Fee")

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    capture = models.ForeignKey(
        Capture, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    refund = models.ForeignKey(
        "refunds.Refund",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_entries",
    )
    kind = models.CharField(max_length=6, choices=Kind.choices)
    amount = models.BigIntegerField(
        help_text="Signed: sales positive, returns and fees negative."
    )
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=255, blank=True)
    payout = models.ForeignKey(
        "Payout",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(
                fields=["merchant", "payout", "id"], name="ledger_merchant_payout"
            ),
            models.Index(fields=["order"], name="ledger_order"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="SALE") & Q(amount__gt=0))
                | (~Q(kind="SALE") & Q(amount__lte=0)),
                name="ledger_sign_by_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.order})"

    @classmethod
    def record_sale(cls, capture: Capture) -> None:
        order = capture.order
        merchant = order.merchant
        common = {
            "merchant_id": order.merchant_id,
            "order": order,
            "capture": capture,
            "currency": order.purchase_currency,
        }
        entries = [
            cls(
                kind=cls.Kind.SALE,
                amount=capture.captured_amount,
                reference=capture.reference or order.merchant_reference1,
                **common,
            )
        ]
        fee = basis_points(capture.captured_amount, merchant.fee_rate_bp)
        if fee:
            entries.append(
                cls(kind=cls.Kind.FEE, amount=-fee, reference=order.reference, **common)
            )
        cls.objects.bulk_create(entries)

    @classmethod
    def record_return(cls, refund) -> None:
        order = refund.order
        insert_rows(
            [
                cls(
                    merchant_id=order.merchant_id,
                    order=order,
                    refund=refund,
                    kind=cls.Kind.RETURN,
                    amount=-refund.refunded_amount,
                    currency=order.purchase_currency,
                    reference=refund.reference,
                )
            ],
            returning=False,  # not read back: may be sent in a pipeline
        )


class PayoutQuerySet(models.QuerySet):
    def for_merchant(self, merchant: Merchant) -> "PayoutQuerySet":
        return self.filter(merchant=merchant)


class Payout(models.Model):
    """A settlement: every ledger entry since the previous payout, plus carried debt.

    ``total = sales + returns + fees + debt_in``. A positive total is paid out; a
    negative one pays nothing and carries into the next payout as ``debt_out``.
    """

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="payouts"
    )
    number = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    sales_amount = models.BigIntegerField(default=0)
    returns_amount = models.BigIntegerField(default=0)
    fees_amount = models.BigIntegerField(default=0)
    debt_in = models.BigIntegerField(
        default=0, help_text="Debt carried from the previous payout (≤ 0)."
    )
    total = models.BigIntegerField(default=0)
    paid_amount = models.BigIntegerField(default=0)
    debt_out = models.BigIntegerField(
        default=0, help_text="Carried into the next payout (≤ 0)."
    )
    entry_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    objects = PayoutQuerySet.as_manager()

    class Meta:
        ordering = ["merchant_id", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "number"], name="payout_number_unique"
            ),
            models.CheckConstraint(
                condition=Q(debt_in__lte=0) & Q(debt_out__lte=0),
                name="payout_debt_non_positive",
            ),
            models.CheckConstraint(
                condition=Q(paid_amount__gte=0), name="payout_paid_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(
                    total=F("sales_amount")
                    + F("returns_amount")
                    + F("fees_amount")
                    + F("debt_in")
                ),
                name="payout_total_consistent",
            ),
            models.CheckConstraint(
                condition=Q(total=F("paid_amount") + F("debt_out")),
                name="payout_paid_plus_debt",
            ),
        ]

    def __str__(self) -> str:
        return f"Payout #{self.number} ({self.merchant})"

    def get_absolute_url(self) -> str:
        return reverse("portal:payout_detail", args=[self.number])

    @staticmethod
    def totals_of(entries: models.QuerySet) -> dict[str, int]:
        by_kind = dict(entries.values_list("kind").annotate(s=Sum("amount")).order_by())
        return {
            "sales_amount": by_kind.get(LedgerEntry.Kind.SALE, 0),
            "returns_amount": by_kind.get(LedgerEntry.Kind.RETURN, 0),
            "fees_amount": by_kind.get(LedgerEntry.Kind.FEE, 0),
        }

    @classmethod
    def preview_next(cls, merchant: Merchant) -> "Payout":
        """The next payout as it stands now (unsaved)."""
        last = cls.objects.filter(merchant=merchant).order_by("-number").first()
        entries = LedgerEntry.objects.filter(merchant=merchant, payout__isnull=True)
        payout = cls(
            merchant=merchant,
            number=(last.number + 1) if last else 1,
            currency=merchant.currency,
            debt_in=last.debt_out if last else 0,
            **cls.totals_of(entries),
        )
        payout.entry_count = entries.count()
        payout.total = (
            payout.sales_amount
            + payout.returns_amount
            + payout.fees_amount
            + payout.debt_in
        )
        payout.paid_amount = max(payout.total, 0)
        payout.debt_out = min(payout.total, 0)
        return payout

    @classmethod
    def close_next(cls, merchant: Merchant) -> "Payout":
        """Settle every unpaid entry into a new payout. Safe to call concurrently.

        The entries are claimed first in one UPDATE and the totals are summed from
        exactly those, so an entry committed meanwhile is never half-counted.
        """
        with transaction.atomic():
            Merchant.objects.select_for_update().get(pk=merchant.pk)
            last = cls.objects.filter(merchant=merchant).order_by("-number").first()
            payout = cls.objects.create(
                merchant=merchant,
                number=(last.number + 1) if last else 1,
                currency=merchant.currency,
                debt_in=last.debt_out if last else 0,
                total=last.debt_out if last else 0,
                debt_out=last.debt_out if last else 0,
            )
            payout.entry_count = LedgerEntry.objects.filter(
                merchant=merchant, payout__isnull=True
            ).update(payout=payout)
            for field, value in cls.totals_of(payout.entries.all()).items():
                setattr(payout, field, value)
            payout.total = (
                payout.sales_amount
                + payout.returns_amount
                + payout.fees_amount
                + payout.debt_in
            )
            payout.paid_amount = max(payout.total, 0)
            payout.debt_out = min(payout.total, 0)
            payout.save()
            return payout

    close_next.alters_data = True
