"""Customers, their payment methods, payment plans, repayments and notifications.

A capture opens one payment plan (one customer invoice). What a refund does to a
plan is computed by ``PaymentPlan.refund_effect`` (pure: it changes nothing) and
carried out by ``PaymentPlan.apply_refund_effect``; the merchant's preview and the
executed refund use the same function, so they cannot disagree (DOMAIN.md,
"What a refund does for the customer").

Rules of our own, where DOMAIN.md is silent:
- Schedules: pay in 4 = four payments two weeks apart, the first charged at
  capture; pay in 3 = three payments 30 days apart, the first charged at capture;
  pay later = one invoice due in 30 days; pay now = charged at capture; financing =
  twelve monthly payments, the first due in 30 days; one-time card pay in 4 = pay
  in 4 plus a service fee of 2% of the capture (rounded half up), charged with the
  first payment.
- A refund first lowers what is still owed on the capture it was allocated to;
  only money beyond that goes back (to the plan's payment method, or for financing
  to the account balance).
- Money back is due within 14 days; the simulated payment rail pays it out after
  ``REPAYMENT_PROCESSING_DAYS`` days.
"""

import re
import secrets
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Upper
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.functional import cached_property
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop, ngettext

from portal.bulk import update_rows
from portal.exceptions import DomainError, InvalidRequest, OrderActionNotAllowed
from portal.models import PaymentProduct
from portal.money import basis_points, split_evenly

REFUND_PROCESSING_DAYS = 14
REPAYMENT_PROCESSING_DAYS = 3
RETURN_PAUSE_DAYS = 21
ONE_TIME_CARD_FEE_BP = 200


def fold(text: str) -> str:
    """``text`` as the order search compares it: case and accents dropped
    ("Müller" -> "muller", "Åsa Öberg" -> "asa oberg", "Straße" -> "strasse").
    Our rule: people type names without the accents of another language."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class CustomerQuerySet(models.QuerySet):
    def search(self, text: str) -> "CustomerQuerySet":
        """Customers as staff look for them in the admin (our rule): every
        word of ``text`` (Django admin's ``smart_split``: "quoted words" stay
        together) somewhere in the name, accents and case ignored ("muller"
        finds Müller), or in the email, case ignored ("berg@",
        "@example.com"). Indexes (PostgreSQL): trigram on ``search_name`` and
        ``UPPER(email)``."""
        condition = Q()
        for word in smart_split(text):
            if word.startswith(('"', "'")) and word[0] == word[-1]:
                word = unescape_string_literal(word)
            condition &= Q(search_name__contains=fold(word)) | Q(email__icontains=word)
        return self.filter(condition)

    def with_unread_count(self) -> "CustomerQuerySet":
        """Each customer with ``unread_notifications`` (what every customer
        page's header shows), counted in the same query."""
        unread = (
            Notification.objects.filter(customer=OuterRef("pk"), read_at__isnull=True)
            .order_by()
            .values("customer")
            .annotate(count=models.Count("pk"))
            .values("count")
        )
        return self.annotate(unread_notifications=Coalesce(Subquery(unread), 0))


def matching_terms(text: str) -> tuple[str, dict[str, str]]:
    """How the order search (``portal.models.search_terms``) matches a
    customer to ``text`` (our rule): any part of the name without accents,
    any part of the email, an email's start with an "@"; below three
    characters (what a trigram index serves), a name's start. Its kind and
    the values it compares, as ``terms_q`` takes them: ``("email_start",
    {"email": text})`` with an "@", ``("name_start", {"name": folded})``
    below three characters, else ``("contains", {"name": folded, "email":
    text})`` (``folded`` is ``fold(text)``)."""
    text = text.strip()
    folded = fold(text)
    if "@" in text:
        return "email_start", {"email": text}
    if len(folded) < 3:
        return "name_start", {"name": folded}
    return "contains", {"name": folded, "email": text}


def terms_q(kind: str, values: dict, name: str, email: str) -> Q:
    """The condition of ``matching_terms``' ``kind`` and ``values`` on the
    fields ``name`` (a name folded by ``fold``) and ``email``."""
    if kind == "email_start":
        return Q(**{f"{email}__istartswith": values["email"]})
    if kind == "name_start":
        return Q(**{f"{name}__startswith": values["name"]})
    return Q(**{f"{name}__contains": values["name"]}) | Q(
        **{f"{email}__icontains": values["email"]}
    )


class Customer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True)
    locale = models.CharField(max_length=10, default="en_US")
    created_at = models.DateTimeField(default=timezone.now)
    # fold(name), kept by save(), which also copies it and the email to the
    # customer's orders (Order.customer_search_name, customer_search_email).
    search_name = models.CharField(max_length=400, blank=True, editable=False)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["name"], name="customer_name"),
            # Case-insensitive lookups in the portal's order search: exact email
            # (UPPER(email) = UPPER(%s)) and name prefix (UPPER(name) LIKE 'X%').
            models.Index(Upper("email"), name="customer_email_upper"),
            # On PostgreSQL, migration 0004 adds UPPER(name) text_pattern_ops for
            # the name prefix search (an operator class SQLite does not know).
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    def save(self, *args, **kwargs) -> None:
        """Saves the customer and keeps the search copies on their orders:
        ``search_name`` is ``fold(name)``, and an order's
        ``customer_search_name`` and ``customer_search_email`` are this
        customer's (one UPDATE of the orders whose copies differ, when the
        name or the email may have changed; our rule, issue 16)."""
        self.search_name = fold(self.name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "search_name"}
        adding = self._state.adding
        super().save(*args, **kwargs)
        searched = {"name", "email"}
        if not adding and (update_fields is None or searched & set(update_fields)):
            self.orders.exclude(
                customer_search_name=self.search_name,
                customer_search_email=self.email,
            ).update(
                customer_search_name=self.search_name,
                customer_search_email=self.email,
            )

    def balances(self) -> dict[str, int]:
        """The positive account balance per currency (from financing refunds),
        summed from its append-only entries; a customer may hold several."""
        rows = (
            self.balance_entries.values_list("currency")
            .annotate(total=models.Sum("amount"))
            .order_by("currency")
        )
        return {currency: total for currency, total in rows if total}

    def default_payment_method(self) -> "PaymentMethod | None":
        return self.payment_methods.order_by("-is_default", "pk").first()

    #: Unread notifications when counted with the customer
    #: (``CustomerQuerySet.with_unread_count``); None when not counted.
    unread_notifications: int | None = None

    def unread_notification_count(self) -> int:
        """Unread notifications: as counted with the customer when it was loaded
        with ``with_unread_count`` (``customers.auth.current_customer``), else
        counted now. Set ``unread_notifications`` to None after marking some
        read to count them again."""
        if self.unread_notifications is not None:
            return self.unread_notifications
        return self.notifications.filter(read_at__isnull=True).count()

    def add_payment_method(self, kind: str, label: str) -> "PaymentMethod":
        """Record new details for money back; they become the default method."""
        with transaction.atomic():
            self.payment_methods.filter(is_default=True).update(is_default=False)
            return self.payment_methods.create(kind=kind, label=label, is_default=True)

    add_payment_method.alters_data = True


class PaymentMethod(models.Model):
    class Kind(models.TextChoices):
        CARD = "card", gettext_lazy("Card")
        BANK_ACCOUNT = "bank_account", gettext_lazy("Bank account")

    class Status(models.TextChoices):
        ACTIVE = "active", gettext_lazy("Active")
        CLOSED = "closed", gettext_lazy("Closed")
        FROZEN = "frozen", gettext_lazy("Frozen")
        BLOCKED = "blocked", gettext_lazy("Blocked")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="payment_methods"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    label = models.CharField(
        max_length=100, help_text="e.g. “Visa •••• 4242” or “Bank •••• 1234”."
    )
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.ACTIVE
    )
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["customer_id", "-is_default", "pk"]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_status_display()})"

    @property
    def last_digits(self) -> str:
        """The digits that end the label ("Visa •••• 0119" → "0119"); "" if none."""
        match = re.search(r"(\d+)\s*$", self.label)
        return match.group(1) if match else ""

    def has_same_details(self, other: "PaymentMethod") -> bool:
        """Same kind and same last digits: for people, the same card or account."""
        return (
            self.kind == other.kind
            and bool(self.last_digits)
            and self.last_digits == other.last_digits
        )

    @property
    def can_receive_money(self) -> bool:
        return self.status == self.Status.ACTIVE

    def refusal_reason(self) -> str:
        """Why the (simulated) payment rail refuses money to this method; "" if
        it accepts: closed accounts and frozen or blocked cards bounce."""
        if self.can_receive_money:
            return ""
        return self.REFUSALS[self.status] % {"label": self.label}

    #: Why money to a method in each status bounces, "%(label)s" its label.
    REFUSALS = {
        Status.CLOSED: gettext_lazy("%(label)s is closed."),
        Status.FROZEN: gettext_lazy("%(label)s is frozen."),
        Status.BLOCKED: gettext_lazy("%(label)s is blocked."),
    }


class PlanStatus(models.TextChoices):
    ACTIVE = "active", gettext_lazy("Paying")
    PAID = "paid", gettext_lazy("Paid")
    REFUNDED = "refunded", gettext_lazy("Refunded")
    CANCELLED = "cancelled", gettext_lazy("Cancelled")


class InstallmentStatus(models.TextChoices):
    SCHEDULED = "scheduled", gettext_lazy("Scheduled")
    PAID = "paid", gettext_lazy("Paid")
    CANCELLED = "cancelled", gettext_lazy("Cancelled")
    PAUSED = "paused", gettext_lazy("Paused")


OPEN_INSTALLMENT = (InstallmentStatus.SCHEDULED, InstallmentStatus.PAUSED)


@dataclass(frozen=True)
class Schedule:
    count: int
    first_paid: bool
    first_due_days: int
    interval_days: int


SCHEDULES = {
    PaymentProduct.PAY_IN_4: Schedule(4, True, 0, 14),
    PaymentProduct.ONE_TIME_CARD: Schedule(4, True, 0, 14),
    PaymentProduct.PAY_IN_3: Schedule(3, True, 0, 30),
    PaymentProduct.PAY_LATER: Schedule(1, False, 30, 0),
    PaymentProduct.PAY_NOW: Schedule(1, True, 0, 0),
    PaymentProduct.FINANCING: Schedule(12, False, 30, 30),
}


class EffectKind(models.TextChoices):
    """How a refund was applied, in the customer's words."""

    LOWERED = "lowered", gettext_lazy("Remaining payments lowered")
    CANCELLED = "cancelled", gettext_lazy("Remaining payments cancelled")
    MONEY_BACK = "money_back", gettext_lazy("Money back to your payment method")
    BALANCE = "balance", gettext_lazy("Credited to your account balance")
    FINANCING = "financing", gettext_lazy("Deducted from your financing balance")
    STORE_CREDIT = "store_credit", gettext_lazy("Store credit from the store")


@dataclass(frozen=True)
class RefundEffect:
    """What refunding ``amount`` does to one plan. Pure data; nothing is changed.

    ``before``/``after`` are the open installments' amounts (same order, same
    length); after cancellation every ``after`` amount is 0. ``money_back`` goes to
    ``destination`` (the payment method, or the account balance for financing).
    ``service_fee_kept`` is a one-time card service fee this refund leaves charged
    (a partial refund: seed 000); ``due_dates`` are the open installments' due
    dates, for messages. All amounts are in minor units of the order's currency.

    Recorded with the refund when it happens (``as_record``, stored on
    ``RefundAllocation.effect``): every message about the refund is written from
    that record, never from the plan as it is later (DOMAIN.md, "What a refund
    did").
    """

    plan_id: int
    product: str
    amount: int
    open_balance: int
    installment_ids: tuple[int, ...]
    before: tuple[int, ...]
    after: tuple[int, ...]
    money_back: int
    service_fee_returned: int
    destination: str  # "payment_method" | "account_balance" | ""
    destination_label: str
    full: bool
    kinds: tuple[str, ...] = field(default=())
    service_fee_kept: int = 0
    due_dates: tuple[date, ...] = field(default=())

    #: The shape of ``as_record``; a later shape must still read this one.
    RECORD_VERSION = 1

    @property
    def cancels_remaining(self) -> bool:
        return bool(self.before) and not any(self.after)

    @property
    def remaining_after(self) -> list[int]:
        return [a for a in self.after if a]

    @property
    def total_back(self) -> int:
        """What goes back to the customer: money back plus a returned fee."""
        return self.money_back + self.service_fee_returned

    @property
    def installments(self) -> list[tuple[date | None, int, int]]:
        """``(due date, before, after)`` per open installment, in order; the
        date is None for a record without dates."""
        dates = self.due_dates or (None,) * len(self.before)
        return list(zip(dates, self.before, self.after, strict=True))

    def as_record(self) -> dict:
        """This effect as JSON-ready data (ints, strings, ISO dates), to be
        stored with the refund; ``from_record`` reads it back unchanged."""
        return {
            "version": self.RECORD_VERSION,
            "plan_id": self.plan_id,
            "product": self.product,
            "amount": self.amount,
            "open_balance": self.open_balance,
            "installment_ids": list(self.installment_ids),
            "before": list(self.before),
            "after": list(self.after),
            "due_dates": [d.isoformat() for d in self.due_dates],
            "money_back": self.money_back,
            "service_fee_returned": self.service_fee_returned,
            "service_fee_kept": self.service_fee_kept,
            "destination": self.destination,
            "destination_label": self.destination_label,
            "full": self.full,
            "kinds": list(self.kinds),
        }

    @classmethod
    def from_record(cls, record: dict) -> "RefundEffect":
        """The effect ``as_record`` stored. Raises ``KeyError`` on a record
        missing a field the first version had."""
        return cls(
            plan_id=record["plan_id"],
            product=record["product"],
            amount=record["amount"],
            open_balance=record["open_balance"],
            installment_ids=tuple(record["installment_ids"]),
            before=tuple(record["before"]),
            after=tuple(record["after"]),
            money_back=record["money_back"],
            service_fee_returned=record["service_fee_returned"],
            destination=record["destination"],
            destination_label=record["destination_label"],
            full=record["full"],
            kinds=tuple(record["kinds"]),
            service_fee_kept=record.get("service_fee_kept", 0),
            due_dates=tuple(date.fromisoformat(d) for d in record.get("due_dates", ())),
        )

    @property
    def destination_text(self) -> str:
        """``destination_label`` in the active language: a method's own label
        ("Visa •••• 4242") as it is, the recorded fallback words translated."""
        return _(self.destination_label) if self.destination_label else ""

    def describe(self, fmt) -> str:
        """One line for people in the active language, with ``fmt(amount) ->
        str`` formatting money."""
        parts = []
        amounts = ", ".join(fmt(a) for a in self.after)
        remaining = ngettext(
            "the remaining payment becomes %(amounts)s",
            "remaining %(count)d payments become %(amounts)s",
            len(self.after),
        ) % {"count": len(self.after), "amounts": amounts}
        if EffectKind.FINANCING in self.kinds and not self.cancels_remaining:
            parts.append(
                _("%(amount)s deducted from the financing balance; %(remaining)s")
                % {"amount": fmt(self.amount), "remaining": remaining}
            )
        elif self.before and not self.cancels_remaining:
            parts.append(remaining)
        elif self.cancels_remaining:
            parts.append(_("any remaining payments will be canceled"))
        total_back = self.total_back
        if total_back:
            if self.destination == "account_balance":
                where = _("%(amount)s to the account balance")
            else:
                where = _("%(amount)s back to %(label)s")
            parts.append(
                where % {"amount": fmt(total_back), "label": self.destination_text}
            )
        if self.service_fee_returned:
            parts.append(
                _("service fee of %(fee)s returned")
                % {"fee": fmt(self.service_fee_returned)}
            )
        if self.service_fee_kept:
            parts.append(
                _(
                    "the service fee of %(fee)s is still charged (a partial refund "
                    "does not return it)"
                )
                % {"fee": fmt(self.service_fee_kept)}
            )
        return "; ".join(parts) or _("nothing changes")


def compute_refund_effect(
    *,
    plan_id: int,
    product: str,
    service_fee: int,
    service_fee_refunded: bool,
    payment_method_label: "str | Callable[[], str]",
    open_installments: Sequence[tuple[int, int]],
    amount: int,
    full: bool,
) -> RefundEffect:
    """What refunding ``amount`` does to a plan (DOMAIN.md), on plain values.

    ``open_installments`` are ``(pk, amount)`` of the scheduled and paused
    installments in sequence order. R < B (B = what is still owed): B − R is spread
    evenly over them (largest remainder, earliest first). R ≥ B: they are cancelled
    and R − B goes back. ``full`` means all money of the capture has now
    been refunded as money (store credit does not count): only then is a
    one-time card service fee returned (seed 000: on a partial refund "the
    service fee is still charged"). The only implementation of the
    rule: the engine and the benchmark loader both call it.
    """
    balance = sum(a for _, a in open_installments)
    kinds = []
    if amount < balance:
        after = tuple(split_evenly(balance - amount, len(open_installments)))
        money_back = 0
        kinds.append(
            EffectKind.FINANCING
            if product == PaymentProduct.FINANCING
            else EffectKind.LOWERED
        )
    else:
        after = tuple(0 for _ in open_installments)
        money_back = amount - balance
        if open_installments:
            kinds.append(EffectKind.CANCELLED)
    fee_back = service_fee if full and service_fee and not service_fee_refunded else 0
    destination, label = "", ""
    if money_back or fee_back:
        if product == PaymentProduct.FINANCING:
            # Recorded in English (gettext_noop) and translated when shown
            # (``RefundEffect.destination_text``).
            destination, label = "account_balance", gettext_noop("your account balance")
            kinds.append(EffectKind.BALANCE)
        else:
            destination = "payment_method"
            label = (
                payment_method_label()
                if callable(payment_method_label)
                else payment_method_label
            )
            kinds.append(EffectKind.MONEY_BACK)
    return RefundEffect(
        plan_id=plan_id,
        product=product,
        amount=amount,
        open_balance=balance,
        installment_ids=tuple(pk for pk, _ in open_installments),
        before=tuple(a for _, a in open_installments),
        after=after,
        money_back=money_back,
        service_fee_returned=fee_back,
        destination=destination,
        destination_label=label,
        full=full,
        kinds=tuple(kinds),
    )


class PaymentPlanQuerySet(models.QuerySet):
    def for_customer(self, customer: Customer) -> "PaymentPlanQuerySet":
        return self.filter(customer=customer)


class PaymentPlan(models.Model):
    """The customer's obligation for one capture, paid in installments."""

    capture = models.OneToOneField(
        "portal.Capture", on_delete=models.PROTECT, related_name="plan"
    )
    order = models.ForeignKey(
        "portal.Order", on_delete=models.PROTECT, related_name="plans"
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="plans"
    )
    payment_method = models.ForeignKey(
        PaymentMethod,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="plans",
    )
    product = models.CharField(max_length=20, choices=PaymentProduct.choices)
    amount = models.BigIntegerField(help_text="The captured amount this plan pays.")
    service_fee = models.BigIntegerField(default=0)
    service_fee_refunded = models.BooleanField(default=False)
    status = models.CharField(
        max_length=10, choices=PlanStatus.choices, default=PlanStatus.ACTIVE
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = PaymentPlanQuerySet.as_manager()

    class Meta:
        ordering = ["order_id", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="plan_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(service_fee__gte=0), name="plan_fee_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_product_display()} plan for {self.order}"

    @classmethod
    def open_for_capture(cls, capture) -> "PaymentPlan":
        """Open the plan a capture creates: installments by the order's product."""
        order = capture.order
        schedule = SCHEDULES[order.payment_product]
        fee = (
            basis_points(capture.captured_amount, ONE_TIME_CARD_FEE_BP)
            if order.payment_product == PaymentProduct.ONE_TIME_CARD
            else 0
        )
        plan = cls.objects.create(
            capture=capture,
            order=order,
            customer_id=order.customer_id,
            payment_method_id=order.payment_method_id,
            product=order.payment_product,
            amount=capture.captured_amount,
            service_fee=fee,
        )
        today = timezone.localdate()
        now = timezone.now()
        installments = []
        for i, amount in enumerate(
            split_evenly(capture.captured_amount, schedule.count)
        ):
            paid = schedule.first_paid and i == 0
            installments.append(
                Installment(
                    plan=plan,
                    sequence=i + 1,
                    amount=amount,
                    original_amount=amount,
                    due_date=today
                    + timedelta(
                        days=schedule.first_due_days + i * schedule.interval_days
                    ),
                    status=InstallmentStatus.PAID
                    if paid
                    else InstallmentStatus.SCHEDULED,
                    paid_at=now if paid else None,
                )
            )
        Installment.objects.bulk_create(installments)
        if all(i.status == InstallmentStatus.PAID for i in installments):
            plan.status = PlanStatus.PAID
            plan.save(update_fields=["status"])
        return plan

    def refund_effect(
        self, amount: int, *, full: bool, installments=None
    ) -> RefundEffect:
        """What refunding ``amount`` of this plan's capture does: see
        ``compute_refund_effect``. Pure: nothing is changed."""
        if installments is None:
            installments = list(self.installments.all())
        open_installments = [
            i
            for i in sorted(installments, key=lambda i: i.sequence)
            if i.status in OPEN_INSTALLMENT
        ]
        open_ = [(i.pk, i.amount) for i in open_installments]
        effect = compute_refund_effect(
            plan_id=self.pk,
            product=self.product,
            service_fee=self.service_fee,
            service_fee_refunded=self.service_fee_refunded,
            payment_method_label=lambda: (
                self.payment_method.label
                if self.payment_method_id
                else gettext_noop("your payment method")
            ),
            open_installments=open_,
            amount=amount,
            full=full,
        )
        # A one-time card fee not returned by this refund stays charged (seed
        # 000); when it is returned is compute_refund_effect's rule.
        kept = (
            self.service_fee
            if not self.service_fee_refunded and not effect.service_fee_returned
            else 0
        )
        return replace(
            effect,
            service_fee_kept=kept,
            due_dates=tuple(i.due_date for i in open_installments),
        )

    def apply_refund_effect(
        self, effect: RefundEffect, *, refund, installments
    ) -> list:
        """Carry out ``effect`` (computed under the same lock). Returns new objects
        that need saving by the caller's bulk writes: repayments and balance entries.

        The caller holds the order lock and has locked this plan's row.
        """
        by_id = {i.pk: i for i in installments}
        changed = {}
        for pk, new_amount in zip(effect.installment_ids, effect.after, strict=True):
            installment = by_id[pk]
            installment.amount = new_amount
            if new_amount == 0:
                installment.status = InstallmentStatus.CANCELLED
            changed[pk] = (installment.amount, installment.status)
        update_rows(Installment, ["amount", "status"], changed)
        before = (self.service_fee_refunded, self.status)
        if effect.service_fee_returned:
            self.service_fee_refunded = True
        # Refunded only when nothing is owed and all of the capture's money came
        # back as money (DOMAIN.md); open installments keep the plan active.
        nothing_owed = not any(i.status in OPEN_INSTALLMENT for i in installments)
        if effect.full and nothing_owed:
            self.status = PlanStatus.REFUNDED
        elif nothing_owed:
            self.status = PlanStatus.PAID
        if (self.service_fee_refunded, self.status) != before:
            # ``update_rows``, not ``save``: no row count is read, so this can
            # run in ``portal.pipeline.sent_together`` (the refund's writes).
            update_rows(
                PaymentPlan,
                ["service_fee_refunded", "status"],
                {self.pk: (self.service_fee_refunded, self.status)},
            )
        back = effect.money_back + effect.service_fee_returned
        if not back:
            return []
        if effect.destination == "account_balance":
            return [
                BalanceEntry(
                    customer_id=self.customer_id,
                    amount=back,
                    refund=refund,
                    currency=self.order.purchase_currency,
                    # English for staff; customers read ``description_display``.
                    description=f"Refund from {self.order.merchant.name}",
                )
            ]
        return [Repayment.new_for(self, refund, back)]

    def resume_paused(self) -> int:
        """Paused installments become scheduled again; returns how many."""
        return self.installments.filter(status=InstallmentStatus.PAUSED).update(
            status=InstallmentStatus.SCHEDULED
        )

    resume_paused.alters_data = True

    # Due-date extension (pay-later invoices) ------------------------------------

    def due_date_extension_refusal(self) -> OrderActionNotAllowed | None:
        if self.product != PaymentProduct.PAY_LATER:
            return OrderActionNotAllowed(
                "NOT_EXTENDABLE",
                _("Only a pay-later invoice's due date can be extended."),
            )
        if self.status != PlanStatus.ACTIVE or not any(
            i.is_open for i in self.installments.all()
        ):
            return OrderActionNotAllowed(
                "NOT_EXTENDABLE", _("Nothing is owed on this invoice any more.")
            )
        if self.due_date_extensions.exists():
            return OrderActionNotAllowed(
                "ALREADY_EXTENDED", _("This invoice's due date was already extended.")
            )
        return None

    def due_date_extension_options(self) -> list[tuple[int, int]]:
        """``[(number_of_days, merchant fee in minor units), ...]`` for this
        invoice now: ``DUE_DATE_EXTENSION_FEES_BP`` of what is still owed, rounded
        half up (our rule; Klarna does not publish its fees). Empty when the due
        date cannot be extended."""
        if self.due_date_extension_refusal() is not None:
            return []
        owed = sum(i.amount for i in self.installments.all() if i.is_open)
        return [
            (days, basis_points(owed, rate))
            for days, rate in DUE_DATE_EXTENSION_FEES_BP.items()
        ]

    def extend_due_date(
        self, number_of_days: int, *, by=None, channel: str = "portal"
    ) -> "DueDateExtension":
        """Move the invoice's open due dates ``number_of_days`` later, for the fee
        ``due_date_extension_options`` names (Klarna's extend-due-date).

        The merchant pays the fee: a FEE entry deducted from its next payout. The
        customer owes the same amount later and is told. Once per invoice (our
        rule). Raises ``OrderActionNotAllowed``.
        """
        from portal.models import LedgerEntry, Order, OrderEvent

        from .notifications import notify_due_date_extended

        with transaction.atomic():
            order = (
                Order.objects.select_for_update()
                .select_related("merchant")
                .get(pk=self.order_id)
            )
            plan = PaymentPlan.objects.select_for_update().get(pk=self.pk)
            if refusal := plan.due_date_extension_refusal():
                raise refusal
            fees = dict(plan.due_date_extension_options())
            if number_of_days not in fees:
                raise OrderActionNotAllowed(
                    "NOT_AN_OPTION",
                    _("The due date can be extended by %(options)s days, not %(days)s.")
                    % {
                        "options": ", ".join(str(d) for d in fees),
                        "days": number_of_days,
                    },
                )
            open_ = [
                i
                for i in plan.installments.select_for_update().order_by("sequence")
                if i.is_open
            ]
            for installment in open_:
                installment.due_date += timedelta(days=number_of_days)
            Installment.objects.bulk_update(open_, ["due_date"])
            extension = DueDateExtension.objects.create(
                plan=plan,
                number_of_days=number_of_days,
                fee_amount=fees[number_of_days],
                new_due_date=open_[0].due_date,
                created_by=by,
                channel=channel,
            )
            capture = plan.capture
            if extension.fee_amount:
                LedgerEntry.objects.create(
                    merchant_id=order.merchant_id,
                    order=order,
                    capture=capture,
                    kind=LedgerEntry.Kind.FEE,
                    amount=-extension.fee_amount,
                    currency=order.purchase_currency,
                    reference=f"Due date extension {order.reference}",
                )
            OrderEvent.objects.create(
                order=order,
                kind=OrderEvent.Kind.DUE_DATE_EXTENDED,
                amount=extension.fee_amount or None,
                note=f"{number_of_days} days, now due {extension.new_due_date:%-d %b %Y}",
                created_by=by,
            )
            notify_due_date_extended(extension)
            return extension

    extend_due_date.alters_data = True


#: Extension of a pay-later due date: days → the merchant's fee in basis points of
#: what is still owed (our rule).
DUE_DATE_EXTENSION_FEES_BP = {7: 100, 14: 200, 30: 300}


class DueDateExtension(models.Model):
    """A pay-later invoice's due date moved later, once, for a fee the merchant
    pays (append-only)."""

    plan = models.ForeignKey(
        PaymentPlan, on_delete=models.PROTECT, related_name="due_date_extensions"
    )
    number_of_days = models.PositiveSmallIntegerField()
    fee_amount = models.BigIntegerField(help_text="Paid by the merchant.")
    new_due_date = models.DateField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    channel = models.CharField(max_length=10, default="portal")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["plan_id", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan"], name="due_date_extension_once_per_plan"
            ),
            models.CheckConstraint(
                condition=Q(fee_amount__gte=0), name="due_date_extension_fee_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan} extended {self.number_of_days} days"


class InstallmentQuerySet(models.QuerySet):
    def due(self, today: date | None = None) -> "InstallmentQuerySet":
        """Scheduled (not paused) installments of paying plans, due by ``today``."""
        today = today or timezone.localdate()
        return self.filter(
            status=InstallmentStatus.SCHEDULED,
            due_date__lte=today,
            plan__status=PlanStatus.ACTIVE,
        )

    def collect_due(self, today: date | None = None) -> int:
        """Charge the due installments (the simulated card or bank always pays).

        One order at a time, under the order lock the refund engine takes first,
        so a refund never computes its effect on an installment being charged.
        A plan whose installments are all paid or cancelled becomes PAID.
        """
        from portal.models import Order

        today = today or timezone.localdate()
        order_ids = sorted(
            set(self.due(today).values_list("plan__order_id", flat=True))
        )
        charged = 0
        for order_id in order_ids:
            with transaction.atomic():
                Order.objects.select_for_update().get(pk=order_id)
                charged += (
                    Installment.objects.due(today)
                    .filter(plan__order_id=order_id)
                    .update(status=InstallmentStatus.PAID, paid_at=timezone.now())
                )
                PaymentPlan.objects.filter(
                    order_id=order_id, status=PlanStatus.ACTIVE
                ).exclude(installments__status__in=OPEN_INSTALLMENT).update(
                    status=PlanStatus.PAID
                )
        return charged


class Installment(models.Model):
    # PROTECT: a plan with installments is never deleted (our rule); its refunds
    # and previews read them.
    plan = models.ForeignKey(
        PaymentPlan, on_delete=models.PROTECT, related_name="installments"
    )
    sequence = models.PositiveSmallIntegerField()
    due_date = models.DateField()
    amount = models.BigIntegerField()
    original_amount = models.BigIntegerField()
    status = models.CharField(
        max_length=10,
        choices=InstallmentStatus.choices,
        default=InstallmentStatus.SCHEDULED,
    )
    paid_at = models.DateTimeField(null=True, blank=True)

    objects = InstallmentQuerySet.as_manager()

    class Meta:
        ordering = ["plan_id", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "sequence"], name="installment_sequence_unique"
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="installment_amount_non_negative"
            ),
            models.CheckConstraint(
                condition=~Q(status="cancelled") | Q(amount=0),
                name="installment_cancelled_owes_nothing",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment {self.sequence} of {self.plan}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_INSTALLMENT

    def expected_charge_date(self, pause_until: date | None) -> date:
        """When it will really be charged. A paused installment waits for the
        pause to end: at the latest on ``pause_until`` payments resume and what
        fell due meanwhile is charged (``ReturnReport.expire``, then
        ``InstallmentQuerySet.collect_due``); our rule."""
        if self.status == InstallmentStatus.PAUSED and pause_until is not None:
            return max(self.due_date, pause_until)
        return self.due_date


@dataclass(frozen=True)
class RepaymentProgress:
    """One step of a repayment on the payment rail, for people."""

    label: str
    state: str  # done | current | upcoming | action
    when: "date | None"


#: Why a repayment without a payment method bounces.
NO_METHOD = gettext_noop("No payment method was given.")


class RepaymentStatus(models.TextChoices):
    SCHEDULED = "scheduled", gettext_lazy("Scheduled")
    PROCESSING = "processing", gettext_lazy("Processing")
    COMPLETED = "completed", gettext_lazy("Completed")
    BOUNCED = "bounced", gettext_lazy("Bounced")


class RepaymentQuerySet(models.QuerySet):
    def for_customer(self, customer: Customer) -> "RepaymentQuerySet":
        return self.filter(customer=customer)

    def overdue(self, today: date | None = None) -> "RepaymentQuerySet":
        today = today or timezone.localdate()
        return self.exclude(status=RepaymentStatus.COMPLETED).filter(
            expected_by__lt=today
        )

    def due(self, now=None) -> "RepaymentQuerySet":
        """Repayments the payment rail should move now (send or settle)."""
        now = now or timezone.now()
        return self.filter(
            status__in=(RepaymentStatus.SCHEDULED, RepaymentStatus.PROCESSING),
            process_after__lte=now,
        )

    def notify_traced(self, today: date | None = None) -> int:
        """Tell each customer once that a repayment past its 14 days is being
        traced (never sent twice); returns how many were told."""
        from .notifications import notify_repayment_traced

        today = today or timezone.localdate()
        late = (
            self.filter(
                status__in=(RepaymentStatus.SCHEDULED, RepaymentStatus.PROCESSING),
                expected_by__lt=today,
            )
            .exclude(notifications__kind=Notification.Kind.REPAYMENT_TRACED)
            .order_by("pk")
        )
        told = 0
        for repayment in late:
            with transaction.atomic():
                locked = (
                    Repayment.objects.select_for_update(of=("self",))
                    .select_related("plan__order__merchant")
                    .get(pk=repayment.pk)
                )
                already = locked.notifications.filter(
                    kind=Notification.Kind.REPAYMENT_TRACED
                ).exists()
                if not already and locked.is_being_traced:
                    notify_repayment_traced(locked)
                    told += 1
        return told

    def process_due(self, now=None) -> int:
        """Move every due repayment one step on the rail; returns how many moved."""
        moved = 0
        for repayment in self.due(now).order_by("process_after", "pk"):
            before = repayment.status
            if repayment.advance(now) != before:
                moved += 1
        return moved


class Repayment(models.Model):
    """Money going back to the customer: scheduled → processing → completed, or
    bounced (closed account, cancelled/frozen/blocked card) until new details are
    given and it is sent again."""

    repayment_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="repayments"
    )
    plan = models.ForeignKey(
        PaymentPlan, on_delete=models.PROTECT, related_name="repayments"
    )
    refund = models.ForeignKey(
        "refunds.Refund", on_delete=models.PROTECT, related_name="repayments"
    )
    payment_method = models.ForeignKey(
        PaymentMethod,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="repayments",
    )
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=10,
        choices=RepaymentStatus.choices,
        default=RepaymentStatus.SCHEDULED,
    )
    expected_by = models.DateField(help_text="Up to 14 days after the refund.")
    process_after = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    failure_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = RepaymentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "process_after"], name="repayment_due")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="repayment_amount_positive"
            )
        ]

    def __str__(self) -> str:
        return f"Repayment {self.amount} {self.currency} to {self.customer}"

    @classmethod
    def new_for(cls, plan: PaymentPlan, refund, amount: int) -> "Repayment":
        now = timezone.now()
        return cls(
            customer_id=plan.customer_id,
            plan=plan,
            refund=refund,
            payment_method_id=plan.payment_method_id,
            amount=amount,
            currency=plan.order.purchase_currency,
            expected_by=timezone.localdate() + timedelta(days=REFUND_PROCESSING_DAYS),
            process_after=now + timedelta(days=REPAYMENT_PROCESSING_DAYS),
        )

    @property
    def needs_new_details(self) -> bool:
        """Only a repayment known to have bounced asks the customer for new
        details and is sent again (DOMAIN.md, "Repayments")."""
        return self.status == RepaymentStatus.BOUNCED

    @property
    def can_be_reissued(self) -> bool:
        return self.needs_new_details

    @property
    def is_being_traced(self) -> bool:
        """Sent (or due to be sent) and still not settled after the 14 days the
        customer was promised: traced with the payment rail, never sent twice,
        because the first transfer may still arrive (DOMAIN.md, "Repayments")."""
        return (
            self.status in (RepaymentStatus.SCHEDULED, RepaymentStatus.PROCESSING)
            and self.expected_by < timezone.localdate()
        )

    @property
    def progress(self) -> list["RepaymentProgress"]:
        """The rail's steps for people, the same for the customer and the
        merchant: scheduled → processing → completed, or bounced as the last
        step. ``state`` is done, current, upcoming or action; ``when`` is the
        date a step was reached (or, for completion still to come, the date
        it is expected by)."""
        status = self.status
        sent = self.updated_at if status == RepaymentStatus.PROCESSING else None
        if status == RepaymentStatus.BOUNCED:
            return [
                RepaymentProgress(
                    RepaymentStatus.SCHEDULED.label, "done", self.created_at
                ),
                RepaymentProgress(RepaymentStatus.PROCESSING.label, "done", None),
                RepaymentProgress(
                    RepaymentStatus.BOUNCED.label, "action", self.updated_at
                ),
            ]
        if status == RepaymentStatus.COMPLETED:
            states = ["done", "done", "done"]
        elif status == RepaymentStatus.PROCESSING:
            states = ["done", "current", "upcoming"]
        else:
            states = ["current", "upcoming", "upcoming"]
        return [
            RepaymentProgress(
                RepaymentStatus.SCHEDULED.label, states[0], self.created_at
            ),
            RepaymentProgress(RepaymentStatus.PROCESSING.label, states[1], sent),
            RepaymentProgress(
                RepaymentStatus.COMPLETED.label,
                states[2],
                self.completed_at or self.expected_by,
            ),
        ]

    @property
    def status_note(self) -> str:
        """One line on where the money is, with dates (customer and merchant)."""
        from .language import day

        if self.status == RepaymentStatus.COMPLETED:
            return _("Completed %(date)s") % {"date": day(self.completed_at)}
        if self.status == RepaymentStatus.BOUNCED:
            return _(
                "Bounced %(date)s: %(reason)s Waiting for new details from the "
                "customer."
            ) % {"date": day(self.updated_at), "reason": self.failure_reason_display}
        if self.is_being_traced:
            return _("Not arrived by %(date)s: being traced, never sent twice") % {
                "date": day(self.expected_by)
            }
        if self.status == RepaymentStatus.PROCESSING:
            return _("Sent %(date)s, expected by %(expected_by)s") % {
                "date": day(self.updated_at),
                "expected_by": day(self.expected_by),
            }
        return _("Scheduled %(date)s, expected by %(expected_by)s") % {
            "date": day(self.created_at),
            "expected_by": day(self.expected_by),
        }

    @property
    def failure_reason_display(self) -> str:
        """Why it bounced, in the active language. ``failure_reason`` is kept in
        English for staff; the rail's own reasons (``PaymentMethod.REFUSALS``,
        ``NO_METHOD``) are written again from it, anything else is shown as
        stored."""
        match = re.fullmatch(
            r"(?P<label>.+) is (?P<status>closed|frozen|blocked)\.", self.failure_reason
        )
        if match:
            refusal = PaymentMethod.REFUSALS[match["status"]]
            return refusal % {"label": match["label"]}
        if self.failure_reason == NO_METHOD:
            return _(NO_METHOD)
        return self.failure_reason

    def advance(self, now=None) -> str:
        """One step on the simulated payment rail, when due: scheduled → processing
        (sent), processing → completed (settled). A method that cannot receive
        money (closed, frozen, blocked) bounces it at either step. The row is
        locked, so two workers never move it twice. Returns the new status."""
        now = now or timezone.now()
        with transaction.atomic():
            locked = (
                Repayment.objects.select_for_update(of=("self",))
                .select_related("payment_method")
                .get(pk=self.pk)
            )
            if locked.process_after <= now and locked.status in (
                RepaymentStatus.SCHEDULED,
                RepaymentStatus.PROCESSING,
            ):
                locked._rail_step(now)
        self.refresh_from_db()
        return self.status

    advance.alters_data = True

    def _rail_step(self, now) -> None:
        method = self.payment_method
        # Stored in English for staff; ``failure_reason_display`` translates.
        with translation.override("en"):
            refusal = method.refusal_reason() if method else NO_METHOD
        if refusal:
            self.status = RepaymentStatus.BOUNCED
            self.failure_reason = refusal[:255]
        elif self.status == RepaymentStatus.SCHEDULED:
            self.status = RepaymentStatus.PROCESSING
            self.attempts += 1
            self.process_after = now + timedelta(days=REPAYMENT_SETTLEMENT_DAYS)
        else:
            self.status = RepaymentStatus.COMPLETED
            self.completed_at = now
        self.updated_at = now
        self.save(
            update_fields=[
                "status",
                "failure_reason",
                "attempts",
                "process_after",
                "completed_at",
                "updated_at",
            ]
        )
        if self.status == RepaymentStatus.BOUNCED:
            from .notifications import notify_repayment_bounced

            notify_repayment_bounced(self)
        elif self.status == RepaymentStatus.COMPLETED:
            from .notifications import notify_repayment_completed

            notify_repayment_completed(self)

    def reissue(self, payment_method: "PaymentMethod | None" = None) -> None:
        """Send a bounced repayment again: to ``payment_method`` (the customer's
        new details) or, for a staff retry, to the same method. It is scheduled
        for the next rail run with a fresh 14-day window.

        Raises ``OrderActionNotAllowed`` unless it bounced (one still on its way
        or being traced is never sent twice: DOMAIN.md, "Repayments"), and
        ``InvalidRequest`` for another customer's method or new details equal to
        the ones it bounced from (same kind and last digits; our rule).
        """
        now = timezone.now()
        with transaction.atomic():
            locked = (
                Repayment.objects.select_for_update(of=("self",))
                .select_related("payment_method")
                .get(pk=self.pk)
            )
            if locked.is_being_traced:
                raise OrderActionNotAllowed(
                    "REPAYMENT_BEING_TRACED",
                    _(
                        "This money was sent more than 14 days ago and is being "
                        "traced; it is never sent twice. If it bounces back to us, "
                        "we will ask you for new details."
                    ),
                )
            if not locked.needs_new_details:
                raise OrderActionNotAllowed(
                    "REPAYMENT_ON_ITS_WAY",
                    _("This money is already on its way; it cannot be sent again."),
                )
            if payment_method is not None:
                if payment_method.customer_id != locked.customer_id:
                    raise InvalidRequest(
                        "FOREIGN_PAYMENT_METHOD", _("That payment method is not yours.")
                    )
                bounced_from = locked.payment_method
                if bounced_from is not None and bounced_from.has_same_details(
                    payment_method
                ):
                    raise InvalidRequest(
                        "SAME_DETAILS_AS_BOUNCED",
                        _(
                            "Your refund bounced from %(label)s. Give the details "
                            "of another card or bank account."
                        )
                        % {"label": bounced_from.label},
                        field="last4",
                    )
                locked.payment_method = payment_method
            locked.status = RepaymentStatus.SCHEDULED
            locked.failure_reason = ""
            locked.process_after = now
            locked.expected_by = timezone.localdate() + timedelta(
                days=REFUND_PROCESSING_DAYS
            )
            locked.updated_at = now
            locked.save(
                update_fields=[
                    "payment_method",
                    "status",
                    "failure_reason",
                    "process_after",
                    "expected_by",
                    "updated_at",
                ]
            )
        self.refresh_from_db()

    reissue.alters_data = True


class BalanceEntry(models.Model):
    """Append-only history of the customer's positive account balance."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="balance_entries"
    )
    amount = models.BigIntegerField(help_text="Positive: credited; negative: used.")
    currency = models.CharField(max_length=3)
    refund = models.ForeignKey(
        "refunds.Refund",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    description = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "balance entries"

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}: {self.description}"

    @property
    def description_display(self) -> str:
        """The description in the active language: a refund's entry is written
        again from its refund's store (load ``refund__order__merchant``); any
        other entry shows its stored text."""
        if self.refund_id and self.description.startswith("Refund from "):
            return _("Refund from %(store)s") % {
                "store": self.refund.order.merchant.name
            }
        return self.description


class NotificationQuerySet(models.QuerySet):
    def for_customer(self, customer: Customer) -> "NotificationQuerySet":
        return self.filter(customer=customer)

    def for_display(self) -> "NotificationQuerySet":
        """With what ``Notification.message`` reads, in a fixed number of queries."""
        return self.select_related(
            "order__merchant", "refund__order__merchant", "repayment"
        ).prefetch_related("refund__allocations__capture")

    def unread(self) -> "NotificationQuerySet":
        return self.filter(read_at__isnull=True)

    def mark_read(self) -> int:
        return self.unread().update(read_at=timezone.now())


class Notification(models.Model):
    """An in-app notification, also sent by email: exactly once where the outcome
    can be known, at most once where it cannot (``customers.tasks``).

    Email states: pending (nothing started), in flight (``email_started_at`` set:
    recorded before talking to the mail server), sent (``email_sent_at``),
    uncertain (``email_uncertain_at``: the server may have the message, e.g. it
    timed out after the message was sent, or the worker died mid-send; never
    resent by itself, shown to staff, who may resend).
    """

    class Kind(models.TextChoices):
        REFUND = "refund", gettext_lazy("Refund issued")
        REPAYMENT_COMPLETED = (
            "repayment_completed",
            gettext_lazy("Money back completed"),
        )
        REPAYMENT_BOUNCED = (
            "repayment_bounced",
            gettext_lazy("Refund bounced: action needed"),
        )
        REPAYMENT_TRACED = "repayment_traced", gettext_lazy("Refund late: being traced")
        RETURN_REPORTED = "return_reported", gettext_lazy("Return reported")
        PAYMENTS_RESUMED = "payments_resumed", gettext_lazy("Payments resumed")
        ORDER_UPDATED = "order_updated", gettext_lazy("Order changed by the store")
        INVOICE = "invoice", gettext_lazy("Invoice")
        DUE_DATE_EXTENDED = "due_date_extended", gettext_lazy("Due date extended")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    order = models.ForeignKey(
        "portal.Order",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    refund = models.ForeignKey(
        "refunds.Refund",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
    )
    repayment = models.ForeignKey(
        Repayment,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
    )
    # What the notification is about, as facts (amounts in minor units, ISO
    # dates, labels): its message is written from them when shown, in the
    # order's locale (customers.notifications.render). Empty for notifications
    # from before: their stored title and body are shown.
    data = models.JSONField(default=dict, blank=True)
    # A copy of the message as first written, for staff.
    title = models.CharField(max_length=255)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_last_error = models.CharField(max_length=255, blank=True)
    email_started_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="An attempt is talking to the mail server (recorded before it).",
    )
    email_uncertain_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The mail server may or may not have the message; not resent "
        "unless staff resend it.",
    )

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["customer", "read_at"], name="notification_unread")
        ]
        constraints = [
            # One notification per refund and kind: a retried job cannot create two.
            models.UniqueConstraint(
                fields=["refund", "kind"],
                condition=Q(refund__isnull=False) & Q(repayment__isnull=True),
                name="notification_once_per_refund",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @cached_property
    def message(self):
        """Title and body for the customer, written now from ``data`` in the
        active language (the page's, which is the customer's)."""
        from django.utils.translation import get_language

        from .notifications import render

        return render(self, get_language())

    @classmethod
    def post(
        cls, customer_id: int, kind: str, title: str, body: str, data=None, **links
    ):
        """Create an in-app notification; its email is sent by a job after commit
        (``links``: order, refund, repayment)."""
        notification = cls.objects.create(
            customer_id=customer_id,
            kind=kind,
            title=title[:255],
            body=body,
            data=data or {},
            **links,
        )
        notification.enqueue_email()
        return notification

    def enqueue_email(self) -> None:
        from .tasks import send_notification_email

        pk = self.pk
        transaction.on_commit(lambda: send_notification_email.enqueue(pk))

    @property
    def message_id(self) -> str:
        """The email's Message-ID, the same for every send of this notification,
        so a resend is recognisable as the same message (our rule)."""
        domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("> ")
        return f"<notification-{self.pk}.{self.created_at:%Y%m%d%H%M%S}@{domain}>"

    @property
    def email_status(self) -> str:
        if self.email_sent_at is not None:
            return "sent"
        if self.email_uncertain_at is not None:
            return "uncertain"
        if self.email_started_at is not None:
            return "sending"
        return "pending"

    def resend_email(self) -> None:
        """Staff asked to send this email again (e.g. the customer lost it, or
        its delivery was uncertain); it keeps its Message-ID."""
        Notification.objects.filter(pk=self.pk).update(
            email_sent_at=None,
            email_attempts=0,
            email_last_error="",
            email_started_at=None,
            email_uncertain_at=None,
        )
        self.enqueue_email()

    resend_email.alters_data = True

    def mark_read(self) -> None:
        if self.read_at is None:
            self.read_at = timezone.now()
            Notification.objects.filter(pk=self.pk, read_at__isnull=True).update(
                read_at=self.read_at
            )

    mark_read.alters_data = True

    @property
    def needs_action(self) -> bool:
        return self.kind == self.Kind.REPAYMENT_BOUNCED


class ReturnReportQuerySet(models.QuerySet):
    def open(self) -> "ReturnReportQuerySet":
        return self.filter(resolved_at__isnull=True)

    def expired(self, today: date | None = None) -> "ReturnReportQuerySet":
        """Open reports whose 21-day pause is over."""
        today = today or timezone.localdate()
        return self.open().filter(pause_until__lte=today)

    def expire_due(self, today: date | None = None) -> int:
        """Resume the payments of every pause that reached its end."""
        expired = 0
        for report in self.expired(today).order_by("pk"):
            expired += report.expire(today)
        return expired


class ReturnReport(models.Model):
    """The customer reported a return: the order's payments pause until the store
    registers it (a refund), for at most 21 days."""

    order = models.ForeignKey(
        "portal.Order", on_delete=models.CASCADE, related_name="return_reports"
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="return_reports"
    )
    tracking_number = models.CharField(max_length=100)
    shipped_on = models.DateField()
    pause_until = models.DateField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=20, blank=True)  # "registered" | "expired"
    created_at = models.DateTimeField(default=timezone.now)

    objects = ReturnReportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_return_per_order",
            )
        ]

    def __str__(self) -> str:
        return f"Return of {self.order} ({self.tracking_number})"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    def resolve(self, resolution: str) -> None:
        """End the pause: installments resume. The caller holds the order lock."""
        with transaction.atomic():
            for plan in self.order.plans.all():
                plan.resume_paused()
            self.resolved_at = timezone.now()
            self.resolution = resolution
            self.save(update_fields=["resolved_at", "resolution"])

    resolve.alters_data = True

    @classmethod
    def report(cls, order, *, tracking_number: str, shipped_on: date) -> "ReturnReport":
        """The customer sent items back: pause the order's scheduled installments
        until the store registers the return (a refund resolves the report), for
        at most ``RETURN_PAUSE_DAYS`` days. One open report per order, and no new
        pause once an earlier one ran out (our rule: 21 days per order in all)."""
        from portal.models import Order

        today = timezone.localdate()
        if shipped_on > today:
            raise InvalidRequest(
                "SHIPPED_IN_FUTURE",
                _("The date you sent it cannot be in the future."),
                field="shipped_on",
            )
        if shipped_on < timezone.localdate(order.created_at):
            raise InvalidRequest(
                "SHIPPED_BEFORE_ORDER",
                _("The date you sent it is before you ordered."),
                field="shipped_on",
            )
        with transaction.atomic():
            locked = Order.objects.select_for_update().get(pk=order.pk)
            if cls.objects.open().filter(order=locked).exists():
                raise OrderActionNotAllowed(
                    "RETURN_ALREADY_REPORTED",
                    _(
                        "You already reported a return for this order; its "
                        "payments are paused."
                    ),
                )
            # At most 21 days of pause per order: once a pause ran out without the
            # store registering the return, reporting again does not pause again.
            # (After the store registered a return, a later return may pause.)
            if cls.objects.filter(order=locked, resolution="expired").exists():
                raise OrderActionNotAllowed(
                    "RETURN_PAUSE_USED",
                    _(
                        "Your payments for this order were already paused for 21 "
                        "days while the store checked a return. Please contact the "
                        "store; your payments continue as planned."
                    ),
                )
            paused = Installment.objects.filter(
                plan__order=locked, status=InstallmentStatus.SCHEDULED
            ).update(status=InstallmentStatus.PAUSED)
            if not paused:
                raise OrderActionNotAllowed(
                    "NOTHING_TO_PAUSE",
                    _("This order has no upcoming payments to pause."),
                )
            report = cls.objects.create(
                order=locked,
                customer_id=locked.customer_id,
                tracking_number=tracking_number,
                shipped_on=shipped_on,
                pause_until=today + timedelta(days=RETURN_PAUSE_DAYS),
            )
            from .notifications import notify_return_reported

            notify_return_reported(report)
        return report

    def expire(self, today: date | None = None) -> int:
        """The pause reached its end without the store registering the return:
        payments resume (and the customer is told). Returns 1 if it expired."""
        from portal.models import Order

        today = today or timezone.localdate()
        with transaction.atomic():
            Order.objects.select_for_update().get(pk=self.order_id)
            locked = ReturnReport.objects.select_for_update().get(pk=self.pk)
            if not locked.is_open or locked.pause_until > today:
                return 0
            locked.resolve("expired")
            from .notifications import notify_payments_resumed

            notify_payments_resumed(locked)
        self.refresh_from_db()
        return 1

    expire.alters_data = True


# Repayments: after being sent, the simulated rail settles them a day later, well
# inside the 14 days the customer is promised.
REPAYMENT_SETTLEMENT_DAYS = 1

# Login by one-time code (our rules): a code is valid 10 minutes and allows 5
# tries; an email address gets at most 3 codes per 15 minutes from one requesting
# address, and a requesting address at most 10 codes per hour. The email's limit
# is counted per requesting address so that a stranger asking for codes for
# somebody else's email uses up only the stranger's own allowance. Unknown emails
# get a row too (with a code nobody knows), so they are throttled and answered
# exactly like known ones. A code can only be tried from the browser session that
# asked for it, so nobody else's wrong guesses can use up or cancel it.
LOGIN_CODE_MINUTES = 10
LOGIN_CODE_MAX_TRIES = 5
LOGIN_CODES_PER_EMAIL = 3
LOGIN_CODES_PER_EMAIL_WINDOW = timedelta(minutes=15)
LOGIN_CODES_PER_ADDRESS = 10
LOGIN_CODES_PER_ADDRESS_WINDOW = timedelta(hours=1)


class LoginThrottled(DomainError):
    error_code = "TOO_MANY_REQUESTS"
    http_status = 429


class LoginCodeRejected(DomainError):
    error_code = "NOT_ALLOWED"
    http_status = 403


def normalize_email(email: str) -> str:
    return email.strip().lower()


class LoginCode(models.Model):
    """A one-time 6-digit code sent by email. Only a keyed hash of it is stored
    (HMAC-SHA256 with SECRET_KEY), so the table alone cannot log anyone in."""

    email = models.EmailField()
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    code_hash = models.CharField(max_length=64)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["email", "-created_at"], name="login_code_email"),
            models.Index(fields=["ip_address", "-created_at"], name="login_code_ip"),
        ]

    def __str__(self) -> str:
        return f"Login code for {self.email}"

    @staticmethod
    def hash_code(email: str, code: str) -> str:
        return salted_hmac(
            "customers.LoginCode", f"{email}\n{code}", algorithm="sha256"
        ).hexdigest()

    @classmethod
    def issue(cls, email: str, ip_address: str | None) -> "LoginCode":
        """Record a code request for ``email``, known or not, the same way; the
        code itself is made by ``deliver`` in the background job that emails it.
        Raises ``LoginThrottled`` past the limits, which count per requesting
        address (``ip_address``), so one address cannot throttle another."""
        email = normalize_email(email)
        now = timezone.now()
        recent_for_email = cls.objects.filter(
            email=email,
            ip_address=ip_address,
            created_at__gt=now - LOGIN_CODES_PER_EMAIL_WINDOW,
        ).count()
        recent_for_address = (
            cls.objects.filter(
                ip_address=ip_address,
                created_at__gt=now - LOGIN_CODES_PER_ADDRESS_WINDOW,
            ).count()
            if ip_address
            else 0
        )
        if (
            recent_for_email >= LOGIN_CODES_PER_EMAIL
            or recent_for_address >= LOGIN_CODES_PER_ADDRESS
        ):
            raise LoginThrottled(
                "TOO_MANY_CODES",
                _("Too many codes were requested. Wait 15 minutes and try again."),
            )
        return cls.objects.create(
            email=email,
            customer=Customer.objects.filter(email__iexact=email).first(),
            code_hash="",  # no code yet: nothing can match until ``deliver``
            ip_address=ip_address,
            created_at=now,
            expires_at=now + timedelta(minutes=LOGIN_CODE_MINUTES),
        )

    def deliver(self) -> str | None:
        """Make this request's code and return it for the email (only its hash is
        kept). None when there is nobody to send it to (an unknown address) or
        the request was already delivered, used or expired. Tries made before
        the code exists (only possible from the same browser) do not cancel it."""
        with transaction.atomic():
            row = LoginCode.objects.select_for_update().get(pk=self.pk)
            if (
                row.customer_id is None
                or row.code_hash
                or row.used_at
                or row.expires_at <= timezone.now()
            ):
                return None
            code = f"{secrets.randbelow(10**6):06d}"
            row.code_hash = self.hash_code(row.email, code)
            row.save(update_fields=["code_hash"])
            return code

    deliver.alters_data = True

    @classmethod
    def verify(cls, login_code_id: int | None, email: str, code: str) -> Customer:
        """The customer ``code`` logs in, or ``LoginCodeRejected``.

        Only the code the browser asked for last counts (``login_code_id``, kept
        in its session): another browser's tries never touch it. Every try is
        counted, right or wrong, known email or not; a try before the job made
        the code is wrong like any other and does not stop the code from being
        sent."""
        email = normalize_email(email)
        now = timezone.now()
        with transaction.atomic():
            row = (
                cls.objects.select_for_update()
                .filter(pk=login_code_id, email=email, used_at__isnull=True)
                .first()
            )
            if row is None or row.expires_at <= now:
                error = LoginCodeRejected(
                    "CODE_EXPIRED",
                    _("This code has expired. Ask for a new one."),
                    field="code",
                )
            elif row.attempts >= LOGIN_CODE_MAX_TRIES:
                error = LoginCodeRejected(
                    "TOO_MANY_TRIES",
                    _("Too many wrong codes. Ask for a new one."),
                    field="code",
                )
            else:
                row.attempts += 1
                right = (
                    row.customer_id is not None
                    and bool(row.code_hash)
                    and constant_time_compare(
                        row.code_hash, cls.hash_code(email, code.strip())
                    )
                )
                if right:
                    row.used_at = now
                row.save(update_fields=["attempts", "used_at"])
                if right:
                    return row.customer
                left = LOGIN_CODE_MAX_TRIES - row.attempts
                error = LoginCodeRejected(
                    "WRONG_CODE",
                    ngettext(
                        "That code is not right. %(count)d try left.",
                        "That code is not right. %(count)d tries left.",
                        left,
                    )
                    % {"count": left}
                    if left
                    else _("That code is not right. Ask for a new one."),
                    field="code",
                )
        # Raised after the commit: the counted try must stick.
        raise error
