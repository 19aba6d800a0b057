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

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

from portal.models import PaymentProduct
from portal.money import basis_points, split_evenly

REFUND_PROCESSING_DAYS = 14
REPAYMENT_PROCESSING_DAYS = 3
RETURN_PAUSE_DAYS = 21
ONE_TIME_CARD_FEE_BP = 200


class Customer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True)
    locale = models.CharField(max_length=10, default="en_US")
    # Cache of BalanceEntry rows (positive balance from refunds, usable for purchases).
    account_balance = models.BigIntegerField(default=0)
    balance_currency = models.CharField(max_length=3, default="USD")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(account_balance__gte=0), name="customer_balance_non_negative")
        ]
        indexes = [models.Index(fields=["name"], name="customer_name")]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    @property
    def currency(self) -> str:
        return self.balance_currency

    def default_payment_method(self) -> "PaymentMethod | None":
        return self.payment_methods.order_by("-is_default", "pk").first()


class PaymentMethod(models.Model):
    class Kind(models.TextChoices):
        CARD = "card", "Card"
        BANK_ACCOUNT = "bank_account", "Bank account"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"
        FROZEN = "frozen", "Frozen"
        BLOCKED = "blocked", "Blocked"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="payment_methods")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    label = models.CharField(max_length=100, help_text="e.g. “Visa •••• 4242” or “Bank •••• 1234”.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["customer", "-is_default", "pk"]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_status_display()})"

    @property
    def can_receive_money(self) -> bool:
        return self.status == self.Status.ACTIVE


class PlanStatus(models.TextChoices):
    ACTIVE = "active", "Paying"
    PAID = "paid", "Paid"
    REFUNDED = "refunded", "Refunded"
    CANCELLED = "cancelled", "Cancelled"


class InstallmentStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    PAID = "paid", "Paid"
    CANCELLED = "cancelled", "Cancelled"
    PAUSED = "paused", "Paused"


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

    LOWERED = "lowered", "Remaining payments lowered"
    CANCELLED = "cancelled", "Remaining payments cancelled"
    MONEY_BACK = "money_back", "Money back to your payment method"
    BALANCE = "balance", "Credited to your account balance"
    FINANCING = "financing", "Deducted from your financing balance"
    STORE_CREDIT = "store_credit", "Store credit from the store"


@dataclass(frozen=True)
class RefundEffect:
    """What refunding ``amount`` does to one plan. Pure data; nothing is changed.

    ``before``/``after`` are the open installments' amounts (same order, same
    length); after cancellation every ``after`` amount is 0. ``money_back`` goes to
    ``destination`` (the payment method, or the account balance for financing).
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

    @property
    def cancels_remaining(self) -> bool:
        return bool(self.before) and not any(self.after)

    @property
    def remaining_after(self) -> list[int]:
        return [a for a in self.after if a]

    def describe(self, fmt) -> str:
        """One line for people, with ``fmt(amount) -> str`` formatting money."""
        parts = []
        if EffectKind.FINANCING in self.kinds and not self.cancels_remaining:
            parts.append(
                f"{fmt(self.amount)} deducted from the financing balance; remaining "
                f"{len(self.after)} payments become {', '.join(fmt(a) for a in self.after)}"
            )
        elif self.before and not self.cancels_remaining:
            parts.append(
                f"remaining {len(self.after)} payment{'s' if len(self.after) != 1 else ''} "
                f"become {', '.join(fmt(a) for a in self.after)}"
            )
        elif self.cancels_remaining:
            parts.append("any remaining payments will be canceled")
        total_back = self.money_back + self.service_fee_returned
        if total_back:
            where = (
                "to the account balance" if self.destination == "account_balance"
                else f"back to {self.destination_label}"
            )
            parts.append(f"{fmt(total_back)} {where}")
        if self.service_fee_returned:
            parts.append(f"service fee of {fmt(self.service_fee_returned)} returned")
        return "; ".join(parts) or "nothing changes"


class PaymentPlanQuerySet(models.QuerySet):
    def for_customer(self, customer: Customer) -> "PaymentPlanQuerySet":
        return self.filter(customer=customer)


class PaymentPlan(models.Model):
    """The customer's obligation for one capture, paid in installments."""

    capture = models.OneToOneField("portal.Capture", on_delete=models.PROTECT, related_name="plan")
    order = models.ForeignKey("portal.Order", on_delete=models.PROTECT, related_name="plans")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="plans")
    payment_method = models.ForeignKey(
        PaymentMethod, on_delete=models.PROTECT, null=True, blank=True, related_name="plans"
    )
    product = models.CharField(max_length=20, choices=PaymentProduct.choices)
    amount = models.BigIntegerField(help_text="The captured amount this plan pays.")
    service_fee = models.BigIntegerField(default=0)
    service_fee_refunded = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=PlanStatus.choices, default=PlanStatus.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)

    objects = PaymentPlanQuerySet.as_manager()

    class Meta:
        ordering = ["order", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="plan_amount_positive"),
            models.CheckConstraint(condition=Q(service_fee__gte=0), name="plan_fee_non_negative"),
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
            capture=capture, order=order, customer_id=order.customer_id,
            payment_method_id=order.payment_method_id, product=order.payment_product,
            amount=capture.captured_amount, service_fee=fee,
        )
        today = timezone.localdate()
        now = timezone.now()
        installments = []
        for i, amount in enumerate(split_evenly(capture.captured_amount, schedule.count)):
            paid = schedule.first_paid and i == 0
            installments.append(
                Installment(
                    plan=plan, sequence=i + 1, amount=amount, original_amount=amount,
                    due_date=today + timedelta(days=schedule.first_due_days + i * schedule.interval_days),
                    status=InstallmentStatus.PAID if paid else InstallmentStatus.SCHEDULED,
                    paid_at=now if paid else None,
                )
            )
        Installment.objects.bulk_create(installments)
        if all(i.status == InstallmentStatus.PAID for i in installments):
            plan.status = PlanStatus.PAID
            plan.save(update_fields=["status"])
        return plan

    def refund_effect(self, amount: int, *, full: bool, installments=None) -> RefundEffect:
        """What refunding ``amount`` of this plan's capture does (DOMAIN.md).

        R < B (B = what is still owed): B − R is spread evenly over the open
        installments (largest remainder, earliest first). R ≥ B: the open
        installments are cancelled and R − B goes back. ``full`` means the capture
        is refunded completely: a one-time card service fee is then returned too.
        """
        if installments is None:
            installments = list(self.installments.all())
        open_ = [i for i in sorted(installments, key=lambda i: i.sequence) if i.status in OPEN_INSTALLMENT]
        balance = sum(i.amount for i in open_)
        before = tuple(i.amount for i in open_)
        kinds = []
        if amount < balance:
            after = tuple(split_evenly(balance - amount, len(open_)))
            money_back = 0
            kinds.append(EffectKind.FINANCING if self.product == PaymentProduct.FINANCING else EffectKind.LOWERED)
        else:
            after = tuple(0 for _ in open_)
            money_back = amount - balance
            if open_:
                kinds.append(EffectKind.CANCELLED)
        fee_back = self.service_fee if full and self.service_fee and not self.service_fee_refunded else 0
        destination, label = "", ""
        if money_back or fee_back:
            if self.product == PaymentProduct.FINANCING:
                destination, label = "account_balance", "your account balance"
                kinds.append(EffectKind.BALANCE)
            else:
                destination = "payment_method"
                label = self.payment_method.label if self.payment_method_id else "your payment method"
                kinds.append(EffectKind.MONEY_BACK)
        return RefundEffect(
            plan_id=self.pk, product=self.product, amount=amount, open_balance=balance,
            installment_ids=tuple(i.pk for i in open_), before=before, after=after,
            money_back=money_back, service_fee_returned=fee_back, destination=destination,
            destination_label=label, full=full, kinds=tuple(kinds),
        )

    def apply_refund_effect(self, effect: RefundEffect, *, refund, installments) -> list:
        """Carry out ``effect`` (computed under the same lock). Returns new objects
        that need saving by the caller's bulk writes: repayments and balance entries.

        The caller holds the order lock and has locked this plan's row.
        """
        by_id = {i.pk: i for i in installments}
        changed = []
        for pk, new_amount in zip(effect.installment_ids, effect.after, strict=True):
            installment = by_id[pk]
            installment.amount = new_amount
            if new_amount == 0:
                installment.status = InstallmentStatus.CANCELLED
            changed.append(installment)
        Installment.objects.bulk_update(changed, ["amount", "status"])
        if effect.service_fee_returned:
            self.service_fee_refunded = True
        if effect.full:
            self.status = PlanStatus.REFUNDED
        elif not any(effect.after) and all(
            i.status in (InstallmentStatus.PAID, InstallmentStatus.CANCELLED) for i in installments
        ):
            self.status = PlanStatus.PAID
        self.save(update_fields=["service_fee_refunded", "status"])
        back = effect.money_back + effect.service_fee_returned
        if not back:
            return []
        if effect.destination == "account_balance":
            return [BalanceEntry(customer_id=self.customer_id, amount=back, refund=refund,
                                 currency=self.order.purchase_currency,
                                 description=f"Refund from {self.order.merchant.name}")]
        return [Repayment.new_for(self, refund, back)]

    def resume_paused(self) -> int:
        """Paused installments become scheduled again; returns how many."""
        return self.installments.filter(status=InstallmentStatus.PAUSED).update(
            status=InstallmentStatus.SCHEDULED
        )

    resume_paused.alters_data = True


class Installment(models.Model):
    plan = models.ForeignKey(PaymentPlan, on_delete=models.CASCADE, related_name="installments")
    sequence = models.PositiveSmallIntegerField()
    due_date = models.DateField()
    amount = models.BigIntegerField()
    original_amount = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=InstallmentStatus.choices, default=InstallmentStatus.SCHEDULED)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["plan", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "sequence"], name="installment_sequence_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="installment_amount_non_negative"),
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


class RepaymentStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    BOUNCED = "bounced", "Bounced"


class RepaymentQuerySet(models.QuerySet):
    def for_customer(self, customer: Customer) -> "RepaymentQuerySet":
        return self.filter(customer=customer)

    def overdue(self, today: date | None = None) -> "RepaymentQuerySet":
        today = today or timezone.localdate()
        return self.exclude(status=RepaymentStatus.COMPLETED).filter(expected_by__lt=today)


class Repayment(models.Model):
    """Money going back to the customer: scheduled → processing → completed, or
    bounced (closed account, cancelled/frozen/blocked card) until new details are
    given and it is sent again."""

    repayment_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="repayments")
    plan = models.ForeignKey(PaymentPlan, on_delete=models.PROTECT, related_name="repayments")
    refund = models.ForeignKey("refunds.Refund", on_delete=models.PROTECT, related_name="repayments")
    payment_method = models.ForeignKey(
        PaymentMethod, on_delete=models.PROTECT, null=True, blank=True, related_name="repayments"
    )
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=RepaymentStatus.choices, default=RepaymentStatus.SCHEDULED)
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
        indexes = [models.Index(fields=["status", "process_after"], name="repayment_due")]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="repayment_amount_positive")]

    def __str__(self) -> str:
        return f"Repayment {self.amount} {self.currency} to {self.customer}"

    @classmethod
    def new_for(cls, plan: PaymentPlan, refund, amount: int) -> "Repayment":
        now = timezone.now()
        return cls(
            customer_id=plan.customer_id, plan=plan, refund=refund,
            payment_method_id=plan.payment_method_id, amount=amount,
            currency=plan.order.purchase_currency,
            expected_by=timezone.localdate() + timedelta(days=REFUND_PROCESSING_DAYS),
            process_after=now + timedelta(days=REPAYMENT_PROCESSING_DAYS),
        )

    @property
    def needs_new_details(self) -> bool:
        return self.status == RepaymentStatus.BOUNCED or (
            self.status != RepaymentStatus.COMPLETED and self.expected_by < timezone.localdate()
        )


class BalanceEntry(models.Model):
    """Append-only history of the customer's positive account balance."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="balance_entries")
    amount = models.BigIntegerField(help_text="Positive: credited; negative: used.")
    currency = models.CharField(max_length=3)
    refund = models.ForeignKey("refunds.Refund", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    description = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "balance entries"

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}: {self.description}"


class Notification(models.Model):
    """An in-app notification, also sent by email exactly once (``email_sent_at``)."""

    class Kind(models.TextChoices):
        REFUND = "refund", "Refund issued"
        REPAYMENT_COMPLETED = "repayment_completed", "Money back completed"
        REPAYMENT_BOUNCED = "repayment_bounced", "Refund bounced: action needed"
        RETURN_REPORTED = "return_reported", "Return reported"
        PAYMENTS_RESUMED = "payments_resumed", "Payments resumed"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    order = models.ForeignKey("portal.Order", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    refund = models.ForeignKey("refunds.Refund", on_delete=models.CASCADE, null=True, blank=True, related_name="notifications")
    repayment = models.ForeignKey(Repayment, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications")
    title = models.CharField(max_length=255)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_last_error = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["customer", "read_at"], name="notification_unread")]
        constraints = [
            # One notification per refund and kind: a retried job cannot create two.
            models.UniqueConstraint(
                fields=["refund", "kind"], condition=Q(refund__isnull=False) & Q(repayment__isnull=True),
                name="notification_once_per_refund",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class ReturnReport(models.Model):
    """The customer reported a return: the order's payments pause until the store
    registers it (a refund), for at most 21 days."""

    order = models.ForeignKey("portal.Order", on_delete=models.CASCADE, related_name="return_reports")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="return_reports")
    tracking_number = models.CharField(max_length=100)
    shipped_on = models.DateField()
    pause_until = models.DateField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=20, blank=True)  # "registered" | "expired"
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order"], condition=Q(resolved_at__isnull=True), name="one_open_return_per_order"
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


def recompute_account_balance(customer_id: int) -> None:
    """Rebuild the balance cache from its entries (they are the truth)."""
    total = BalanceEntry.objects.filter(customer_id=customer_id).aggregate(s=models.Sum("amount"))["s"] or 0
    Customer.objects.filter(pk=customer_id).update(account_balance=total)


def add_to_balance(customer_id: int, amount: int) -> None:
    Customer.objects.filter(pk=customer_id).update(account_balance=F("account_balance") + amount)

