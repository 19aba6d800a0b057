"""``manage.py seed_demo``: three demo stores, their users and customers, and 800
orders of the past 90 days in every product and state (``--orders`` for more).

The history is played forward in time order: each order is created, captured,
partly released or cancelled, refunded, and each store is paid out weekly, through
the same factories the tests use and the model verbs (``order.capture``,
``order.refund_lines``, ``Payout.close_next``...), so every counter, payment plan,
repayment and ledger entry is what the product itself writes. The verbs stamp
"now"; afterwards the rows an event wrote are dated to the moment it happened.
Two things have no flow of their own, so they are written on the rows: customers
paying their installments when due, and the simulated payment rail delivering
money back (except to the closed card, whose repayment is left for the rail to
bounce).

Deterministic: ``random.Random(42)`` and factory-boy's random are reseeded.
Running it again when the demo stores exist changes nothing.
"""

import random
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

import factory
import factory.random
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Count, F
from django.test.utils import override_settings
from django.utils import timezone

from customers.models import (
    OPEN_INSTALLMENT,
    REFUND_PROCESSING_DAYS,
    REPAYMENT_PROCESSING_DAYS,
    RETURN_PAUSE_DAYS,
    BalanceEntry,
    Customer,
    Installment,
    InstallmentStatus,
    Notification,
    PaymentMethod,
    PaymentPlan,
    PlanStatus,
    Repayment,
    RepaymentStatus,
    ReturnReport,
)
from customers.tasks import notify_refund
from portal.exceptions import DomainError
from portal.models import (
    AUTHORIZATION_DAYS,
    Capture,
    Channel,
    LedgerEntry,
    Merchant,
    MerchantUser,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    PaymentProduct,
    Payout,
)
from portal.money import basis_points
from refunds.models import Refund
from tests.factories import (
    CustomerFactory,
    MerchantFactory,
    MerchantUserFactory,
    OrderFactory,
    PaymentMethodFactory,
    UserFactory,
    line,
)

from ..demo_catalog import (
    CARD_BRANDS,
    DE_ROLE_USERS,
    EMAIL_DOMAINS,
    GERMAN_USER,
    STORES,
    DemoStore,
)

DAYS = 90
#: Enough for every story, product and state and for several pages of the order
#: list; loads in about 9 s on SQLite and 14 s on PostgreSQL (2,000 took about
#: 25-35 s on an idle machine and minutes on a busy one).
DEFAULT_ORDERS = 800
DEMO_CUSTOMER_EMAIL = "maja@example.com"
CLOSED_CARD_EMAIL = "jordan.reyes@example.com"
PAUSED_RETURN_EMAIL = "lena.vogel@example.com"
STORE_CREDIT_EMAIL = "noah.lindqvist@example.com"
#: A Swedish customer (orders of the Swedish store, locale sv_SE): her pages and
#: emails are in Swedish (issue 15).
SWEDISH_CUSTOMER_EMAIL = "astrid.sjoberg@example.com"
# Tasks are not queued while the past is written: each refund's notification is
# created on the spot (notify_refund, called directly) and counts as emailed then.
NO_TASK_QUEUE = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}

SCENARIOS = {
    "open": 13,  # authorized, or expired once 28 days passed
    "cancelled": 5,
    "full": 50,  # one capture of everything
    "split": 14,  # two or three shipments, all captured
    "partial": 9,  # some shipments captured, the rest still authorized or lapsed
    "released": 5,  # partly captured, the remaining authorization released
    "amount": 4,  # captured by amount (no lines), sometimes the rest later
}
REFUND_KINDS = {
    "complete": 25,
    "items": 33,
    "fee": 17,
    "amount": 15,
    "items+amount": 10,
}


@dataclass
class Store:
    spec: DemoStore
    merchant: Merchant
    owner: object
    staff: list  # users who capture and refund in the portal
    customers: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    order_number: int = 10000
    rma_number: int = 5000


@dataclass
class OrderPlan:
    store: Store
    customer: Customer
    payment_method: PaymentMethod
    product: str
    created_at: datetime
    lines: list[dict]
    order: Order | None = None


def ascii_slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum() or c in ".-")


class DemoBuilder:
    def __init__(self, now: datetime, rng: random.Random) -> None:
        self.now = now
        self.today = now.date()
        self.rng = rng
        self.events: list[tuple[datetime, int, Callable[[], None]]] = []
        self.plans: list[OrderPlan] = []
        self.stores: dict[str, Store] = {}
        self.emails: set[str] = set()
        self.refused: Counter[str] = Counter()
        self.payment_methods: dict[int, PaymentMethod] = {}
        self.extended: set[int] = set()

    # People ----------------------------------------------------------------------

    def user(self, username: str, **fields):
        return UserFactory(
            username=username,
            email=f"{username}@example.com",
            password=username,  # hashed by the factory (factory.django.Password)
            **fields,
        )

    def make_people(self) -> None:
        self.user("admin", is_staff=True, is_superuser=True, first_name="Sam")
        for spec in STORES:
            merchant = MerchantFactory(
                name=spec.name,
                slug=spec.slug,
                country=spec.country,
                shipping_fees_refundable=spec.shipping_fees_refundable,
                created_at=self.now - timedelta(days=400),
            )
            owner = self.user(spec.owner)
            MerchantUserFactory(
                user=owner,
                merchant=merchant,
                role=MerchantUser.Role.OWNER,
                # The Swedish store's owner reads the store's language, Swedish.
                language="" if spec.country == "SE" else "en",
            )
            staff = [owner]
            if spec.country == "DE":
                for username, role in DE_ROLE_USERS.items():
                    user = self.user(username)
                    MerchantUserFactory(user=user, merchant=merchant, role=role)
                    if role in (MerchantUser.Role.ADMIN, MerchantUser.Role.REFUNDS):
                        staff.append(user)
                MerchantUserFactory(
                    user=self.user(GERMAN_USER, first_name="Jonas", last_name="Berger"),
                    merchant=merchant,
                    role=MerchantUser.Role.ADMIN,
                    language="",  # the store's: German
                )
            self.stores[spec.country] = Store(spec, merchant, owner, staff)

    def customer(self, store: Store, name=None, email=None, card=None) -> Customer:
        locale = store.merchant.locale
        if name is None:
            # First and last name only: Faker's full names carry titles ("Dr.").
            first, last = (
                CustomerFactory.build(name=factory.Faker(part, locale=locale)).name
                for part in ("first_name", "last_name")
            )
            name = f"{first} {last}"
        if email is None:
            base = ".".join(ascii_slug(part) for part in name.split()[-2:])
            email = f"{base}@{self.rng.choice(EMAIL_DOMAINS)}"
            n = 2
            while email in self.emails:
                email = f"{base}{n}@{email.split('@')[1]}"
                n += 1
        self.emails.add(email)
        customer = CustomerFactory(
            name=name,
            email=email,
            locale=locale,
            created_at=self.now - timedelta(days=self.rng.randint(DAYS + 5, 900)),
        )
        digits = f"{self.rng.randint(0, 9999):04d}"
        if card is None and self.rng.random() < 0.25:
            kind, label = PaymentMethod.Kind.BANK_ACCOUNT, f"Bank account •••• {digits}"
        else:
            kind = PaymentMethod.Kind.CARD
            label = card or f"{self.rng.choice(CARD_BRANDS)} •••• {digits}"
        self.payment_methods[customer.pk] = PaymentMethodFactory(
            customer=customer, kind=kind, label=label, is_default=True
        )
        return customer

    def make_customers(self, orders: int) -> None:
        for store in self.stores.values():
            count = max(3, orders // 3 // 3)
            store.customers = [self.customer(store) for _ in range(count)]
            # A few loyal customers with many orders, most with one to three.
            store.weights = [1 / (i + 1) ** 0.35 for i in range(count)]

    # Orders ----------------------------------------------------------------------

    def random_lines(self, store: Store) -> list[dict]:
        spec, rng = store.spec, self.rng
        count = rng.choices([1, 2, 3, 4], weights=[40, 32, 18, 10])[0]
        lines = []
        for product in rng.sample(spec.products, count):
            quantity = rng.choices([1, 2, 3], weights=[82, 14, 4])[0]
            lines.append(
                line(
                    product.sku,
                    product.price,
                    quantity,
                    name=product.name,
                    tax_rate=spec.tax_rate,
                )
            )
        items = sum(
            spec_line["unit_price"] * spec_line["quantity"] for spec_line in lines
        )
        return lines + self.extra_lines(store, items)

    def extra_lines(self, store: Store, items: int, discount=None, express=None):
        spec, rng = store.spec, self.rng
        extras = []
        subtotal = items
        if discount if discount is not None else rng.random() < 0.15:
            off = items * spec.discount.price // 100 // 100 * 100
            if off:
                extras.append(
                    line(
                        spec.discount.sku,
                        -off,
                        name=spec.discount.name,
                        type=OrderLine.Type.DISCOUNT,
                        tax_rate=spec.tax_rate,
                    )
                )
                subtotal -= off
        express = rng.random() < 0.12 if express is None else express
        if express or items < spec.free_shipping_from:
            shipping = spec.shipping[1 if express else 0]
            extras.append(
                line(
                    shipping.sku,
                    shipping.price,
                    name=shipping.name,
                    type=OrderLine.Type.SHIPPING_FEE,
                    tax_rate=spec.tax_rate,
                )
            )
            subtotal += shipping.price
        if spec.sales_tax_bp:
            extras.append(
                line(
                    "SALES-TAX",
                    basis_points(subtotal, spec.sales_tax_bp),
                    name="Sales tax",
                    type=OrderLine.Type.SALES_TAX,
                    tax_rate=0,
                )
            )
        return extras

    def plan_order(
        self,
        store: Store,
        customer: Customer,
        product: str,
        created_at: datetime,
        lines: list[dict],
    ) -> OrderPlan:
        plan = OrderPlan(
            store,
            customer,
            self.payment_methods[customer.pk],
            product,
            created_at,
            lines,
        )
        self.plans.append(plan)
        self.at(created_at, lambda: self.create_order(plan))
        return plan

    def create_order(self, plan: OrderPlan) -> None:
        store = plan.store
        store.order_number += 1
        plan.order = OrderFactory(
            merchant=store.merchant,
            customer=plan.customer,
            payment_method=plan.payment_method,
            payment_product=plan.product,
            created_at=plan.created_at,
            # Open while the history is played; set to created + 28 days at the end.
            expires_at=self.now + timedelta(days=AUTHORIZATION_DAYS),
            merchant_reference1=f"{store.spec.order_prefix}{store.order_number}",
            merchant_reference2=f"WH-{self.rng.randint(1, 4)}"
            if self.rng.random() < 0.3
            else "",
            lines=plan.lines,
        )

    def plan_random_orders(self, count: int) -> None:
        rng = self.rng
        stores = list(self.stores.values())
        for _ in range(count):
            store = rng.choices(stores, weights=[45, 30, 25])[0]
            customer = rng.choices(store.customers, weights=store.weights)[0]
            weights = store.spec.products_weights
            product = rng.choices(list(weights), weights=list(weights.values()))[0]
            age = timedelta(minutes=rng.randint(5, DAYS * 24 * 60))
            plan = self.plan_order(
                store, customer, product, self.now - age, self.random_lines(store)
            )
            scenario = rng.choices(list(SCENARIOS), weights=list(SCENARIOS.values()))[0]
            last_capture = self.plan_scenario(plan, scenario)
            if last_capture and rng.random() < 0.34:
                kind = rng.choices(
                    list(REFUND_KINDS), weights=list(REFUND_KINDS.values())
                )
                when = last_capture + timedelta(hours=rng.randint(36, 30 * 24))
                self.plan_refund(plan, kind[0], when)

    def shipments(self, plan: OrderPlan) -> list[list[tuple[str, int]]]:
        """The order's items in two or three shipments (one if it cannot be split);
        shipping, discount and tax go with the most valuable shipment."""
        items = [s for s in plan.lines if s.get("type", "physical") == "physical"]
        extras = [(s["reference"], 1) for s in plan.lines if s not in items]
        if len(items) >= 2:
            self.rng.shuffle(items)
            k = min(self.rng.choice([2, 3]), len(items))
            groups = [items[i::k] for i in range(k)]
            shipments = [[(s["reference"], s["quantity"]) for s in g] for g in groups]
            values = [sum(s["unit_price"] * s["quantity"] for s in g) for g in groups]
        elif items and items[0]["quantity"] >= 2:
            first = items[0]
            split = self.rng.randint(1, first["quantity"] - 1)
            shipments = [
                [(first["reference"], split)],
                [(first["reference"], first["quantity"] - split)],
            ]
            values = [split, first["quantity"] - split]
        else:
            return [[(s["reference"], s["quantity"]) for s in plan.lines]]
        shipments[values.index(max(values))].extend(extras)
        return shipments

    def plan_scenario(self, plan: OrderPlan, scenario: str) -> datetime | None:
        """Plan what happens to an order; returns the time of its last capture."""
        rng = self.rng
        first = plan.created_at + timedelta(minutes=rng.randint(120, 4 * 24 * 60))
        if scenario == "open":
            if rng.random() < 0.25:
                self.at(first, lambda: self.order_event(plan, "extend", first))
            return None
        if scenario == "cancelled":
            self.at(first, lambda: self.order_event(plan, "cancel", first))
            return None
        if scenario == "full":
            return self.plan_capture(plan, first)
        if scenario == "amount":
            share = rng.choice([30, 40, 50, 60])
            last = self.plan_capture(plan, first, amount_share=share)
            if last and rng.random() < 0.6:
                last = self.plan_capture(plan, last + timedelta(days=rng.randint(1, 8)))
            return last
        shipments = self.shipments(plan)
        if len(shipments) == 1:
            return self.plan_capture(plan, first)
        if scenario in ("partial", "released"):
            shipments = shipments[: rng.randint(1, len(shipments) - 1)]
        when, last = first, None
        for number, shipment in enumerate(shipments):
            complete = scenario == "split" and number == len(shipments) - 1
            captured = self.plan_capture(
                plan, when, lines=None if complete else shipment
            )
            if captured is None:
                break
            last = captured
            when = captured + timedelta(minutes=rng.randint(12 * 60, 6 * 24 * 60))
        if scenario == "released" and last:
            release = last + timedelta(hours=rng.randint(6, 72))
            self.at(release, lambda: self.order_event(plan, "release", release))
        return last

    def at(self, when: datetime, action: Callable[[], None]) -> bool:
        if when >= self.now - timedelta(minutes=2):
            return False  # Still in the future: it has not happened yet.
        self.events.append((when, len(self.events), action))
        return True

    # Captures and order events ---------------------------------------------------

    def plan_capture(self, plan, when, lines=None, amount_share=None, by_api=None):
        by_api = self.rng.random() < 0.7 if by_api is None else by_api
        by = None if by_api else self.rng.choice(plan.store.staff[:2])
        channel = Channel.API if by_api else Channel.PORTAL

        def capture() -> None:
            order = plan.order
            amount = None
            if amount_share:
                amount = order.order_amount * amount_share // 100 // 100 * 100
            captured = order.capture(lines=lines, amount=amount, by=by, channel=channel)
            self.backdate_capture(captured, when)

        return when if self.at(when, capture) else None

    def backdate_capture(self, capture: Capture, when: datetime) -> None:
        Capture.objects.filter(pk=capture.pk).update(created_at=when)
        LedgerEntry.objects.filter(capture=capture).update(created_at=when)
        PaymentPlan.objects.filter(capture=capture).update(created_at=when)
        installments = Installment.objects.filter(plan__capture=capture)
        installments.update(due_date=F("due_date") - (self.today - when.date()))
        installments.filter(paid_at__isnull=False).update(paid_at=when)

    def order_event(self, plan: OrderPlan, action: str, when: datetime) -> None:
        order, by = plan.order, plan.store.owner
        if action == "cancel":
            order.cancel(by=by)
            kind = OrderEvent.Kind.CANCELLED
        elif action == "release":
            order.release_remaining_authorization(by=by)
            Order.objects.filter(pk=order.pk).update(released_at=when)
            kind = OrderEvent.Kind.RELEASED
        else:
            order.extend_authorization(7, by=by)
            self.extended.add(order.pk)
            kind = OrderEvent.Kind.EXTENDED
        OrderEvent.objects.filter(order=order, kind=kind).update(created_at=when)

    # Refunds ---------------------------------------------------------------------

    def plan_refund(self, plan: OrderPlan, kind: str, when: datetime, **choice) -> None:
        if kind == "items+amount":
            self.plan_refund(plan, "items", when)
            later = when + timedelta(hours=self.rng.randint(24, 10 * 24))
            self.plan_refund(plan, "amount", later)
            return
        self.at(when, lambda: self.refund(plan, kind, when, **choice))

    def refund(
        self,
        plan: OrderPlan,
        kind: str,
        when: datetime,
        *,
        lines=None,
        amount=None,
        by_api=None,
    ) -> None:
        order, store, rng = plan.order, plan.store, self.rng
        texts = store.spec.refund_texts
        self.collect_installments(when.date(), order=order)
        by_api = rng.random() < 0.2 if by_api is None else by_api
        store.rma_number += 1
        options = {
            "by": None if by_api else rng.choice(store.staff),
            "channel": Channel.API if by_api else Channel.PORTAL,
            "reference": f"RMA-{store.rma_number}" if rng.random() < 0.7 else "",
        }
        if kind in ("items", "fee") and lines is None:
            lines = self.pick_lines(order)
            if not lines:
                kind = "complete"
        try:
            if kind == "complete":
                refund = order.refund_complete(description=texts[4], **options)
            elif kind in ("items", "fee"):
                fee = 0
                if (
                    kind == "fee"
                    and store.spec.return_fee
                    and order.return_fee_market
                    and order.captures.count() == 1
                ):
                    fee = store.spec.return_fee
                text = rng.choice(texts[:2] + texts[3:4])
                try:
                    refund = order.refund_lines(
                        lines, return_fee=fee, description=text, **options
                    )
                except DomainError:
                    if not fee:
                        raise
                    refund = order.refund_lines(lines, description=text, **options)
            else:
                if amount is None:
                    share = rng.choice([10, 15, 20, 25, 30])
                    amount = max(
                        100, order.refundable_amount * share // 100 // 100 * 100
                    )
                refund = order.refund_amount(
                    amount, description=rng.choice(texts[1:3]), **options
                )
        except DomainError as error:
            # e.g. a discounted order whose items are worth more than was paid.
            self.refused[error.code] += 1
            return
        self.backdate_refund(refund, when)

    def pick_lines(self, order: Order) -> list[tuple[str, int]]:
        candidates = [
            ln
            for ln in order.lines.all()
            if ln.type == OrderLine.Type.PHYSICAL and ln.refundable_quantity > 0
        ]
        if not candidates:
            return []
        chosen = self.rng.sample(
            candidates, min(len(candidates), self.rng.choice([1, 1, 2]))
        )
        return [
            (ln.reference, self.rng.randint(1, ln.refundable_quantity)) for ln in chosen
        ]

    def backdate_refund(self, refund: Refund, when: datetime) -> None:
        Refund.objects.filter(pk=refund.pk).update(created_at=when)
        LedgerEntry.objects.filter(refund=refund).update(created_at=when)
        BalanceEntry.objects.filter(refund=refund).update(created_at=when)
        repayments = list(
            Repayment.objects.filter(refund=refund).select_related("payment_method")
        )
        for repayment in repayments:
            self.deliver(repayment, when)
        Repayment.objects.bulk_update(
            repayments,
            [
                "created_at",
                "updated_at",
                "expected_by",
                "process_after",
                "status",
                "attempts",
                "completed_at",
            ],
        )
        notify_refund.call(refund.pk)
        read = when + timedelta(hours=self.rng.randint(1, 48))
        Notification.objects.filter(refund=refund).update(
            created_at=when,
            email_sent_at=when,
            read_at=read if read < self.now - timedelta(days=2) else None,
        )

    def deliver(self, repayment: Repayment, when: datetime) -> None:
        """The simulated rail's work on money back, as it would have happened.
        A method that cannot receive money is left for the rail to bounce."""
        repayment.created_at = repayment.updated_at = when
        repayment.expected_by = (when + timedelta(days=REFUND_PROCESSING_DAYS)).date()
        repayment.process_after = when + timedelta(days=REPAYMENT_PROCESSING_DAYS)
        method = repayment.payment_method
        if method is not None and not method.can_receive_money:
            return
        sent, settled = (
            repayment.process_after,
            repayment.process_after + timedelta(days=1),
        )
        if settled < self.now:
            repayment.status = RepaymentStatus.COMPLETED
            repayment.completed_at = repayment.updated_at = settled
            repayment.attempts = 1
        elif sent < self.now:
            repayment.status = RepaymentStatus.PROCESSING
            repayment.updated_at = sent
            repayment.attempts = 1

    def collect_installments(self, until: date, order: Order | None = None) -> None:
        """Customers pay what falls due before ``until`` (no payment flow exists)."""
        due = Installment.objects.filter(
            status=InstallmentStatus.SCHEDULED,
            due_date__lt=until,
            plan__status=PlanStatus.ACTIVE,
        )
        if order is not None:
            due = due.filter(plan__order=order)
        else:
            due = due.filter(plan__order__merchant__in=self.merchants)
        paid = list(due)
        for installment in paid:
            installment.status = InstallmentStatus.PAID
            installment.paid_at = datetime.combine(
                installment.due_date, clock(7, 30), tzinfo=UTC
            )
        Installment.objects.bulk_update(paid, ["status", "paid_at"], batch_size=500)
        PaymentPlan.objects.filter(
            pk__in={i.plan_id for i in paid}, status=PlanStatus.ACTIVE
        ).exclude(installments__status__in=OPEN_INSTALLMENT).update(
            status=PlanStatus.PAID
        )

    # Payouts ---------------------------------------------------------------------

    def plan_payouts(self) -> None:
        start = datetime.combine(
            self.today - timedelta(days=DAYS), clock(6), tzinfo=UTC
        )
        monday = start + timedelta(days=(7 - start.weekday()) % 7)
        while monday < self.now:
            for store in self.stores.values():
                self.at(monday, lambda m=store.merchant, w=monday: self.payout(m, w))
            monday += timedelta(days=7)

    def payout(self, merchant: Merchant, when: datetime) -> None:
        if LedgerEntry.objects.filter(merchant=merchant, payout__isnull=True).exists():
            payout = Payout.close_next(merchant)
            Payout.objects.filter(pk=payout.pk).update(created_at=when)

    # The stories the demo walks through -----------------------------------------

    def plan_stories(self) -> None:
        de, us, se = self.stores["DE"], self.stores["US"], self.stores["SE"]
        maja = self.customer(
            de, name="Maja Berg", email=DEMO_CUSTOMER_EMAIL, card="Visa •••• 4242"
        )
        p = {s.sku: s for s in de.spec.products}
        days = self.days_ago

        def items(store, *skus_quantities):
            catalog = {s.sku: s for s in store.spec.products}
            return [
                line(
                    sku,
                    catalog[sku].price,
                    qty,
                    name=catalog[sku].name,
                    tax_rate=store.spec.tax_rate,
                )
                for sku, qty in skus_quantities
            ]

        # Pay in 4: one item returned after three payments; the refund exceeds
        # what is still owed, so the last payment is cancelled and money goes back.
        plan = self.plan_order(
            de,
            maja,
            PaymentProduct.PAY_IN_4,
            days(46, 10),
            items(de, ("NW-PULLI-MER", 1), ("NW-CHINO-SL", 1)),
        )
        self.plan_capture(plan, days(45, 9), by_api=True)
        self.plan_refund(
            plan, "items", days(12, 14), lines=[("NW-CHINO-SL", 1)], by_api=False
        )
        # Pay later: one of two shirts returned with a return fee; the invoice drops.
        lines = items(de, ("NW-HEMD-LEI", 2)) + self.extra_lines(
            de, 2 * 5995, False, False
        )
        plan = self.plan_order(de, maja, PaymentProduct.PAY_LATER, days(20, 19), lines)
        self.plan_capture(plan, days(19, 8), by_api=True)
        self.plan_refund(
            plan, "fee", days(6, 11), lines=[("NW-HEMD-LEI", 1)], by_api=False
        )
        # Pay in 3: the coat returned in full; remaining payments cancelled.
        plan = self.plan_order(
            de,
            maja,
            PaymentProduct.PAY_IN_3,
            days(15, 20),
            items(de, ("NW-MANTEL-W", 1)),
        )
        self.plan_capture(plan, days(14, 9), by_api=True)
        self.plan_refund(plan, "complete", days(3, 10), by_api=False)
        # Financing: a goodwill amount is deducted from the financing balance.
        plan = self.plan_order(
            de,
            maja,
            PaymentProduct.FINANCING,
            days(70, 12),
            items(de, ("NW-MANTEL-W", 1), ("NW-SCHAL-KAS", 1)),
        )
        self.plan_capture(plan, days(69, 9), by_api=True)
        self.plan_refund(plan, "amount", days(40, 16), amount=5000, by_api=False)
        # Pay in 4 in two shipments; a T-shirt from the second one is returned.
        plan = self.plan_order(
            de,
            maja,
            PaymentProduct.PAY_IN_4,
            days(9, 21),
            items(de, ("NW-SNKR-LDR", 1), ("NW-JEANS-STR", 1), ("NW-TSHIRT-BIO", 2)),
        )
        self.plan_capture(plan, days(8, 9), lines=[("NW-SNKR-LDR", 1)], by_api=True)
        self.plan_capture(plan, days(5, 9), by_api=True)
        self.plan_refund(
            plan, "items", days(1, 15), lines=[("NW-TSHIRT-BIO", 1)], by_api=False
        )
        # Pay now, delivered, nothing returned; and a new order not yet shipped.
        plan = self.plan_order(
            de,
            maja,
            PaymentProduct.PAY_NOW,
            days(30, 18),
            items(de, ("NW-TSHIRT-BIO", 3))
            + self.extra_lines(de, 3 * p["NW-TSHIRT-BIO"].price, False, False),
        )
        self.plan_capture(plan, days(29, 9), by_api=True)
        self.plan_order(
            de,
            maja,
            PaymentProduct.ONE_TIME_CARD,
            days(2, 20),
            items(de, ("NW-MUETZE", 1), ("NW-SCHAL-KAS", 1)),
        )
        # And one order from the Swedish store, partly refunded by amount.
        plan = self.plan_order(
            se,
            maja,
            PaymentProduct.PAY_IN_4,
            days(25, 13),
            items(se, ("SS-VAS-KER", 1), ("SS-DOFTLJUS", 2)),
        )
        self.plan_capture(plan, days(24, 9), by_api=True)
        self.plan_refund(plan, "amount", days(10, 9), amount=10000, by_api=False)

        # A customer whose card was closed after paying: the money back for the
        # returned sleeping bag is due now and will bounce.
        jordan = self.customer(
            us, name="Jordan Reyes", email=CLOSED_CARD_EMAIL, card="Visa •••• 0119"
        )
        plan = self.plan_order(
            us,
            jordan,
            PaymentProduct.PAY_NOW,
            days(12, 17),
            items(us, ("TH-BAG-DOWN", 1)) + self.extra_lines(us, 21900, False, False),
        )
        self.plan_capture(plan, days(11, 10), by_api=True)
        self.at(
            days(6, 8),
            lambda: PaymentMethod.objects.filter(customer=jordan).update(
                status=PaymentMethod.Status.CLOSED
            ),
        )
        self.plan_refund(plan, "complete", days(4, 12), by_api=False)

        # A surname with an umlaut: the order list finds it typed without ("muller").
        mueller = self.customer(
            de, name="Lena Müller", email="lena.mueller@example.org"
        )
        plan = self.plan_order(
            de,
            mueller,
            PaymentProduct.PAY_LATER,
            days(6, 11),
            items(de, ("NW-SCHAL-KAS", 1)),
        )
        self.plan_capture(plan, days(5, 9), by_api=True)

        # A customer who reported a return three days ago: that order's payments
        # are paused (and charged after the pause at the latest). Her financing
        # plan, returned in full after two payments, left a positive balance.
        lena = self.customer(
            de,
            name="Lena Vogel",
            email=PAUSED_RETURN_EMAIL,
            card="Mastercard •••• 7310",
        )
        plan = self.plan_order(
            de,
            lena,
            PaymentProduct.PAY_IN_4,
            days(10, 19),
            items(de, ("NW-SNKR-LDR", 1), ("NW-GUERTEL", 1)),
        )
        self.plan_capture(plan, days(9, 9), by_api=True)
        reported = days(3, 18)
        self.at(reported, lambda p=plan, w=reported: self.report_return(p, w))
        plan = self.plan_order(
            de,
            lena,
            PaymentProduct.FINANCING,
            days(80, 12),
            items(de, ("NW-MANTEL-W", 1), ("NW-PULLI-MER", 1)),
        )
        self.plan_capture(plan, days(79, 9), by_api=True)
        self.plan_refund(plan, "complete", days(2, 11), by_api=False)

        # Store credit: Skog & Sten settled the return of a cup as store credit
        # (the store's policy for it); the customer's payments continue.
        noah = self.customer(
            se, name="Noah Lindqvist", email=STORE_CREDIT_EMAIL, card="Visa •••• 2081"
        )
        plan = self.plan_order(
            se,
            noah,
            PaymentProduct.PAY_IN_4,
            days(18, 15),
            items(se, ("SS-KOPP-STG", 2), ("SS-DOFTLJUS", 1)),
        )
        self.plan_capture(plan, days(17, 9), by_api=True)
        settled = days(5, 10)
        self.at(
            settled,
            lambda p=plan, w=settled: self.store_credit_refund(
                p, w, [("SS-KOPP-STG", 1)]
            ),
        )

        # A Swedish customer who reads Swedish: two vases of three returned from a
        # pay in 4 (lower payments), and a pay-now order refunded in full (money
        # back on its way).
        astrid = self.customer(
            se,
            name="Astrid Sjöberg",
            email=SWEDISH_CUSTOMER_EMAIL,
            card="Visa •••• 3307",
        )
        plan = self.plan_order(
            se,
            astrid,
            PaymentProduct.PAY_IN_4,
            days(16, 12),
            items(se, ("SS-VAS-KER", 3), ("SS-DOFTLJUS", 1)),
        )
        self.plan_capture(plan, days(15, 9), by_api=True)
        self.plan_refund(
            plan, "items", days(4, 14), lines=[("SS-VAS-KER", 2)], by_api=False
        )
        plan = self.plan_order(
            se,
            astrid,
            PaymentProduct.PAY_NOW,
            days(8, 19),
            items(se, ("SS-KOPP-STG", 2)),
        )
        self.plan_capture(plan, days(7, 9), by_api=True)
        self.plan_refund(plan, "complete", days(1, 10), by_api=False)

    def report_return(self, plan: OrderPlan, when: datetime) -> None:
        """The customer reports a return (tracking number, date sent) at ``when``."""
        report = ReturnReport.report(
            plan.order, tracking_number="00340434161094042557", shipped_on=when.date()
        )
        ReturnReport.objects.filter(pk=report.pk).update(
            created_at=when,
            pause_until=when.date() + timedelta(days=RETURN_PAUSE_DAYS),
        )
        Notification.objects.filter(order=plan.order).update(
            created_at=when, email_sent_at=when
        )

    def store_credit_refund(self, plan: OrderPlan, when: datetime, lines) -> None:
        """A return the store settles as store credit: its store-credit policy is
        on for this refund only (the demo stores refund in money otherwise)."""
        merchants = Merchant.objects.filter(pk=plan.store.merchant.pk)
        merchants.update(store_credit_only=True)
        try:
            self.refund(plan, "items", when, lines=lines, by_api=False)
        finally:
            merchants.update(store_credit_only=False)

    def days_ago(self, days: int, hour: int) -> datetime:
        return datetime.combine(
            self.today - timedelta(days=days), clock(hour), tzinfo=UTC
        )

    # Running it ------------------------------------------------------------------

    @property
    def merchants(self) -> list[Merchant]:
        return [store.merchant for store in self.stores.values()]

    def build(self, orders: int) -> None:
        self.make_people()
        self.plan_stories()
        self.make_customers(orders)
        self.plan_random_orders(max(0, orders - len(self.plans)))
        self.plan_payouts()
        for _, _, action in sorted(self.events, key=lambda e: (e[0], e[1])):
            action()
        self.finish()

    def finish(self) -> None:
        """The authorizations' real expiry dates, expired orders, payments due."""
        orders = []
        for plan in self.plans:
            extended = plan.order.pk in self.extended
            plan.order.expires_at = plan.created_at + timedelta(
                days=AUTHORIZATION_DAYS + (7 if extended else 0)
            )
            orders.append(plan.order)
        Order.objects.bulk_update(orders, ["expires_at"], batch_size=500)
        Order.objects.filter(merchant__in=self.merchants).expire_due(self.now)
        self.collect_installments(self.today)


class Command(BaseCommand):
    help = "Load demo stores, users, customers and orders (skipped if already loaded)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--orders",
            type=int,
            default=DEFAULT_ORDERS,
            help=f"How many orders (default {DEFAULT_ORDERS}).",
        )
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Run even with DEBUG off (it creates weak demo logins).",
        )

    def handle(self, *args, orders: int, verbosity: int = 1, **options) -> None:
        if not settings.DEBUG and not options.get("allow_production"):
            raise CommandError(
                "DEBUG is off: this looks like production, and the demo creates "
                "admin/admin. Run it with DEBUG=1, or add --allow-production."
            )
        slugs = [spec.slug for spec in STORES]
        if Merchant.objects.filter(slug__in=slugs).exists():
            self.stdout.write("The demo data is already loaded; nothing was changed.")
            self.print_logins()
            return
        started = time.monotonic()
        factory.random.reseed_random(42)
        builder = DemoBuilder(timezone.now(), random.Random(42))
        with override_settings(TASKS=NO_TASK_QUEUE), transaction.atomic():
            builder.build(orders)
        merchants = builder.merchants
        order_count = Order.objects.filter(merchant__in=merchants).count()
        refunds = Refund.objects.filter(merchant__in=merchants).count()
        payouts = Payout.objects.filter(merchant__in=merchants).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data loaded in {time.monotonic() - started:.1f} s: "
                f"{len(merchants)} stores, {order_count:,} orders, "
                f"{refunds:,} refunds, {payouts} payouts."
            )
        )
        by_status = dict(
            Order.objects.filter(merchant__in=merchants)
            .values_list("status")
            .annotate(n=Count("pk"))
            .order_by()
        )
        self.stdout.write(
            "Orders by status: "
            + ", ".join(
                f"{OrderStatus(s).label} {n}" for s, n in sorted(by_status.items())
            )
        )
        if verbosity > 1:
            refused = ", ".join(f"{code} {n}" for code, n in builder.refused.items())
            self.stdout.write(f"Planned refunds the rules refused: {refused or 'none'}")
        self.print_logins()

    def print_logins(self) -> None:
        rows = [
            ("Staff admin", "admin / admin", "/admin/", "Django admin, superuser"),
            ("Merchant", "merchant / merchant", "/", "Nordwind Mode (DE, EUR), owner"),
        ]
        rows += [
            ("", f"{username} / {username}", "/", f"Nordwind Mode, {role}")
            for username, role in DE_ROLE_USERS.items()
        ]
        rows.append(
            (
                "",
                f"{GERMAN_USER} / {GERMAN_USER}",
                "/",
                "Nordwind Mode, admin, reads the portal in German",
            )
        )
        rows += [
            (
                "",
                "merchant-us / merchant-us",
                "/",
                "Trailhead Outfitters (US, USD), owner",
            ),
            (
                "",
                "merchant-se / merchant-se",
                "/",
                "Skog & Sten Inredning (SE, SEK), owner, reads Swedish",
            ),
            (
                "Customer",
                DEMO_CUSTOMER_EMAIL,
                "/my/",
                "every product refunded; the login code is in the console email",
            ),
            ("", CLOSED_CARD_EMAIL, "/my/", "money back to a closed card bounces"),
            ("", PAUSED_RETURN_EMAIL, "/my/", "payments paused; account balance"),
            ("", STORE_CREDIT_EMAIL, "/my/", "a return settled as store credit"),
            (
                "",
                SWEDISH_CUSTOMER_EMAIL,
                "/my/",
                "reads Swedish (sv_SE orders); refunds",
            ),
        ]
        self.stdout.write("")
        self.stdout.write(self.style.MIGRATE_HEADING("Demo logins"))
        for who, login, path, note in rows:
            self.stdout.write(f"  {who:<12} {login:<38} {path:<8} {note}")
        self.stdout.write(
            "  (Weak passwords for the local demo only; run it with DEBUG=1, never in "
            "production.)"
        )
