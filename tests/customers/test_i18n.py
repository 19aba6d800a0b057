"""Issue 15, the customer's half: a customer reads the language of their
order's locale (de_DE -> German, sv_SE -> Swedish, else English) on every page
and in every email, whatever language the request that caused it spoke."""

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone, translation

from customers.models import (
    InstallmentStatus,
    Notification,
    PaymentMethod,
    RepaymentStatus,
    ReturnReport,
)
from customers.notifications import (
    notify_invoice,
    notify_order_updated,
    notify_payments_resumed,
    notify_repayment_completed,
    notify_repayment_traced,
    render,
    send_login_code_email,
)
from customers.tasks import send_login_code
from portal.models import PaymentProduct
from tests.customers.conftest import log_in
from tests.factories import (
    CustomerFactory,
    MerchantFactory,
    OrderFactory,
    PaymentMethodFactory,
    line,
)

pytestmark = pytest.mark.django_db

COUNTRY = {"en": "US", "de": "DE", "sv": "SE"}
STORE = {"en": "Acme Outfitters", "de": "Nordwind Mode", "sv": "Skog och Sten"}


def store(language: str, slug: str = ""):
    return MerchantFactory(
        name=STORE[language],
        slug=slug or f"store-{language}",
        country=COUNTRY[language],
    )


def order_in(language: str, customer, product=PaymentProduct.PAY_IN_4, **fields):
    fields.setdefault("lines", [line("TSHIRT-1", 10000, 2, name="T-shirt")])
    fields.setdefault("merchant", store(language))
    return OrderFactory(
        customer=customer,
        payment_product=product,
        **fields,
    )


# -- Every email kind in English, German and Swedish ---------------------------

#: A sentence of each kind's email that only a translated message has.
SENTENCES = {
    "refund cancels": {
        "en": "Any remaining payments will be canceled.",
        "de": "Alle restlichen Zahlungen werden storniert.",
        "sv": "Alla återstående betalningar avbryts.",
    },
    "refund lowers": {
        "en": "Your remaining payments:",
        "de": "Ihre restlichen Zahlungen:",
        "sv": "Dina återstående betalningar:",
    },
    "money back": {
        "en": "Money going back to you can take up to 14 days to arrive.",
        "de": "Geld, das an Sie zurückgeht, kann bis zu 14 Tage brauchen, bis es "
        "ankommt.",
        "sv": "Pengar som går tillbaka till dig kan ta upp till 14 dagar att komma "
        "fram.",
    },
    "financing": {
        "en": "was credited to your account balance.",
        "de": "wurden Ihrem Kontoguthaben gutgeschrieben.",
        "sv": "har satts in på ditt kontosaldo.",
    },
    "store credit": {
        "en": "as store credit. Your payments to us continue as planned.",
        "de": "als Gutschrift beim Shop erfasst. Ihre Zahlungen an uns laufen wie "
        "geplant weiter.",
        "sv": "som tillgodohavande i butiken. Dina betalningar till oss fortsätter "
        "som planerat.",
    },
    Notification.Kind.REPAYMENT_COMPLETED: {
        "en": "is back with you",
        "de": "sind wieder bei Ihnen",
        "sv": "är tillbaka hos dig",
    },
    Notification.Kind.REPAYMENT_BOUNCED: {
        "en": "Did you recently change banks or close your linked bank account?",
        "de": "Haben Sie kürzlich die Bank gewechselt oder Ihr verknüpftes "
        "Bankkonto geschlossen?",
        "sv": "Har du nyligen bytt bank eller avslutat ditt kopplade bankkonto?",
    },
    Notification.Kind.REPAYMENT_TRACED: {
        "en": "We are tracing the transfer; it is never sent twice.",
        "de": "Wir verfolgen die Überweisung nach; sie wird nie doppelt gesendet.",
        "sv": "Vi efterforskar överföringen; den skickas aldrig två gånger.",
    },
    Notification.Kind.RETURN_REPORTED: {
        "en": "Your payments are paused until",
        "de": "Ihre Zahlungen sind pausiert, bis",
        "sv": "Dina betalningar är pausade tills",
    },
    Notification.Kind.PAYMENTS_RESUMED: {
        "en": "within 21 days, so your payments continue as planned.",
        "de": "nicht innerhalb von 21 Tagen erfasst, daher laufen Ihre Zahlungen wie "
        "geplant weiter.",
        "sv": "inom 21 dagar, så dina betalningar fortsätter som planerat.",
    },
    Notification.Kind.ORDER_UPDATED: {
        "en": "You only pay for what is shipped",
        "de": "Sie zahlen nur für das, was versandt wird",
        "sv": "Du betalar bara för det som skickas",
    },
    Notification.Kind.INVOICE: {
        "en": "Your invoice",
        "de": "Ihre Rechnung",
        "sv": "Din faktura",
    },
    Notification.Kind.DUE_DATE_EXTENDED: {
        "en": "7 more days to pay for order",
        "de": "7 Tage mehr Zeit, die Bestellung",
        "sv": "7 dagar till att betala beställning",
    },
    "login code": {
        "en": "It is valid for 10 minutes.",
        "de": "Er ist 10 Minuten gültig.",
        "sv": "Den gäller i 10 minuter.",
    },
}


def _refund_notifications(language, customer, capture_callbacks) -> dict:
    """Each refund message kind for an order in ``language``: {name: notification}."""
    made = {}
    cancels = order_in(language, customer)
    cancels.capture()
    lowers = order_in(language, customer)
    lowers.capture()
    money_back = order_in(language, customer, PaymentProduct.PAY_NOW)
    money_back.capture()
    financing = order_in(language, customer, PaymentProduct.FINANCING)
    financing.capture()
    financing.captures.get().plan.installments.filter(sequence__lte=11).update(
        status=InstallmentStatus.PAID
    )
    with capture_callbacks(execute=True):
        made["refund cancels"] = cancels.refund_complete()
        made["refund lowers"] = lowers.refund_amount(1000)
        made["money back"] = money_back.refund_amount(5000)
        made["financing"] = financing.refund_complete()
    credit_store = store(language, slug=f"credit-{language}")
    credit_store.store_credit_only = True
    credit_store.save()
    credit = order_in(language, customer, merchant=credit_store)
    credit.capture()
    with capture_callbacks(execute=True):
        made["store credit"] = credit.refund_amount(1000)
    return {
        name: refund.notifications.get(kind=Notification.Kind.REFUND)
        for name, refund in made.items()
    }


def _other_notifications(language, customer, capture_callbacks) -> dict:
    made = {}
    order = order_in(language, customer, PaymentProduct.PAY_NOW)
    order.capture()
    with capture_callbacks(execute=True):
        repayment = order.refund_amount(5000).repayments.get()
    made[Notification.Kind.REPAYMENT_COMPLETED] = notify_repayment_completed(repayment)
    made[Notification.Kind.REPAYMENT_TRACED] = notify_repayment_traced(repayment)
    PaymentMethod.objects.filter(pk=repayment.payment_method_id).update(
        status=PaymentMethod.Status.FROZEN
    )
    repayment.advance(timezone.now() + timedelta(days=3))
    assert repayment.status == RepaymentStatus.BOUNCED
    made[Notification.Kind.REPAYMENT_BOUNCED] = repayment.notifications.get(
        kind=Notification.Kind.REPAYMENT_BOUNCED
    )
    paused = order_in(language, customer)
    paused.capture()
    report = ReturnReport.report(
        paused, tracking_number="1Z999", shipped_on=timezone.localdate()
    )
    made[Notification.Kind.RETURN_REPORTED] = Notification.objects.get(
        order=paused, kind=Notification.Kind.RETURN_REPORTED
    )
    made[Notification.Kind.PAYMENTS_RESUMED] = notify_payments_resumed(report)
    made[Notification.Kind.ORDER_UPDATED] = notify_order_updated(
        paused, 30000, "1 × T-shirt removed"
    )
    made[Notification.Kind.INVOICE] = notify_invoice(paused.captures.get())
    later = order_in(language, customer, PaymentProduct.PAY_LATER)
    later.capture()
    extension = later.captures.get().plan.extend_due_date(7)
    made[Notification.Kind.DUE_DATE_EXTENDED] = Notification.objects.get(
        order=later, kind=Notification.Kind.DUE_DATE_EXTENDED
    )
    assert made[Notification.Kind.DUE_DATE_EXTENDED].data == {
        "version": 1,
        "number_of_days": extension.number_of_days,
        "new_due_date": extension.new_due_date.isoformat(),
    }
    return made


@pytest.mark.parametrize("language", ["en", "de", "sv"])
def test_every_email_kind_is_written_in_the_orders_language(
    language, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(email=f"{language}@example.com")
    PaymentMethodFactory(customer=customer, label="Visa •••• 4242")
    with django_capture_on_commit_callbacks(execute=True):
        notifications = {
            **_refund_notifications(
                language, customer, django_capture_on_commit_callbacks
            ),
            **_other_notifications(
                language, customer, django_capture_on_commit_callbacks
            ),
        }
    kinds = {n.kind for n in notifications.values()}
    assert kinds == set(Notification.Kind.values), "every kind is covered"
    sent = {m.extra_headers["Message-ID"]: m for m in mail.outbox}
    for name, notification in notifications.items():
        email = sent[notification.message_id]
        html = email.alternatives[0].content
        sentence = SENTENCES[name][language]
        assert sentence in email.body, (name, email.body)
        assert sentence in html.replace("&#x27;", "'"), (name, html)
        assert f'<html lang="{language}">' in html
        # The in-app copy for staff is written in the customer's language too.
        assert notification.title == email.subject
        assert render(notification).title == email.subject
    # A login code, for a customer whose latest order is in ``language``.
    send_login_code_email(customer, "123456")
    assert SENTENCES["login code"][language] in mail.outbox[-1].body


def test_plural_forms_follow_the_count():
    from customers.models import RefundEffect

    def lowered(after: tuple[int, ...]) -> RefundEffect:
        return RefundEffect(
            plan_id=1,
            product=PaymentProduct.PAY_IN_4,
            amount=100,
            open_balance=sum(after) + 100,
            installment_ids=tuple(range(len(after))),
            before=tuple(a + 1 for a in after),
            after=after,
            money_back=0,
            service_fee_returned=0,
            destination="",
            destination_label="",
            full=False,
        )

    with translation.override("de"):
        assert lowered((200,)).describe(str) == (
            "die restliche Zahlung beträgt jetzt 200"
        )
        assert lowered((1, 1, 1)).describe(str) == (
            "die restlichen 3 Zahlungen betragen jetzt 1, 1, 1"
        )
    with translation.override("sv"):
        assert lowered((200,)).describe(str) == ("den återstående betalningen blir 200")
        assert lowered((1, 1, 1)).describe(str) == (
            "de återstående 3 betalningarna blir 1, 1, 1"
        )


# -- The email language follows the order, not the request --------------------


def test_the_email_follows_the_orders_locale_whatever_the_request_speaks(
    client, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(email="sv@example.com", locale="en_US")
    order = order_in("sv", customer)
    order.capture()
    log_in(client, customer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("customers:report_return", args=[order.order_id]),
            {"tracking_number": "1Z999", "shipped_on": timezone.localdate()},
            HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.8",
        )
    assert response.status_code == 302
    email = mail.outbox[-1]
    assert email.subject == "Retur anmäld: betalningar för Skog och Sten pausade"
    assert "Dina betalningar är pausade tills Skog och Sten registrerar" in email.body


def test_a_german_merchant_request_sends_a_swedish_customer_swedish_mail(
    client, django_capture_on_commit_callbacks
):
    # A refund made while German is active (a German merchant user's request).
    customer = CustomerFactory(email="kund@example.com")
    order = order_in("sv", customer)
    order.capture()
    with translation.override("de"), django_capture_on_commit_callbacks(execute=True):
        order.refund_complete()
    assert translation.get_language() == "en"
    assert "Alla återstående betalningar avbryts." in mail.outbox[-1].body
    assert "storniert" not in mail.outbox[-1].body


def test_the_login_code_email_is_in_the_customers_language(
    django_capture_on_commit_callbacks,
):
    from customers.models import LoginCode

    customer = CustomerFactory(email="de@example.com")
    order_in("de", customer)
    row = LoginCode.issue(customer.email, "127.0.0.1")
    with translation.override("sv"):
        send_login_code.call(row.pk)
    assert mail.outbox[-1].subject.startswith("Ihr Anmeldecode: ")


# -- Every customer page in German and Swedish, no English left ----------------


class _VisibleText(HTMLParser):
    """The text a person sees, plus attribute text read aloud (aria-label,
    title, placeholder)."""

    SKIP = {"script", "style", "title"}

    def __init__(self):
        super().__init__()
        self.parts, self._skipping = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skipping += 1
        for name, value in attrs:
            if name in ("aria-label", "title", "placeholder") and value:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self._skipping -= 1

    def handle_data(self, data):
        if not self._skipping and data.strip():
            self.parts.append(data.strip())


#: English words that are no word of German or Swedish: one left in a page's
#: visible text means a sentence was not translated.
ENGLISH = set(
    [
        "the",
        "your",
        "you",
        "and",
        "of",
        "to",
        "is",
        "are",
        "will",
        "be",
        "been",
        "has",
        "have",
        "had",
        "for",
        "with",
        "from",
        "this",
        "that",
        "it",
        "its",
        "by",
        "on",
        "at",
        "payment",
        "payments",
        "refund",
        "refunds",
        "order",
        "orders",
        "back",
        "paid",
        "due",
        "money",
        "balance",
        "account",
        "notifications",
        "notification",
        "log",
        "out",
        "more",
        "days",
        "day",
        "new",
        "give",
        "send",
        "sent",
        "details",
        "return",
        "returned",
        "report",
        "what",
        "when",
        "which",
        "how",
        "there",
        "here",
        "our",
        "we",
        "us",
        "please",
        "shipping",
        "shipped",
        "store",
        "applied",
        "issued",
        "scheduled",
        "completed",
        "cancelled",
        "canceled",
        "bounced",
        "being",
        "traced",
        "processing",
        "nothing",
        "yet",
        "page",
        "older",
        "newer",
        "mark",
        "read",
        "unread",
        "available",
        "history",
        "amount",
        "date",
        "total",
        "plan",
        "fee",
        "service",
        "charged",
        "reported",
        "paused",
        "still",
        "only",
        "why",
        "where",
        "who",
    ]
)
#: Not sentences: names, references and brand names a page may show.
ALLOWED = [
    r"Skip to content",  # templates/base.html: translated on the merchant half
    r"Visa •+ \d+",
    r"Mastercard •+ \d+",
    r"[\w.+-]+@[\w.-]+",
    *map(re.escape, STORE.values()),
    r"T-shirt",
    r"Kerstin Kund|Klaus Kunde",
]


def english_left(html: str) -> list[str]:
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    found = []
    for text in parser.parts:
        cleaned = text
        for pattern in ALLOWED:
            cleaned = re.sub(pattern, " ", cleaned)
        words = {w.lower() for w in re.findall(r"[A-Za-z]+", cleaned)}
        if words & ENGLISH:
            found.append(text)
    return found


def _customer_with_every_page(language: str):
    """A customer whose orders (all in ``language``) show every state a page
    can be in; returns (customer, {page name: url})."""
    name = {"de": "Klaus Kunde", "sv": "Kerstin Kund"}[language]
    customer = CustomerFactory(
        name=name,
        email=f"{language}-pages@example.com",
        locale={"de": "de_DE", "sv": "sv_SE"}[language],
    )
    PaymentMethodFactory(customer=customer, label="Visa •••• 4242")
    lines = [
        line("TSHIRT-1", 10000, 2, name="T-shirt"),
        line("JEANS-1", 20000, name="T-shirt"),
    ]
    refunded = order_in(language, customer, lines=lines)
    refunded.capture()
    refunded.refund_lines([("TSHIRT-1", 1)], return_fee=500)
    paused = order_in(language, customer, lines=lines)
    paused.capture()
    ReturnReport.report(
        paused, tracking_number="1Z999", shipped_on=timezone.localdate()
    )
    card = order_in(language, customer, PaymentProduct.ONE_TIME_CARD, lines=lines)
    card.capture()
    card.refund_amount(2000)
    shipments = order_in(language, customer, lines=lines)
    shipments.capture(lines=[("JEANS-1", 1)])
    shipments.capture(lines=[("TSHIRT-1", 2)])
    shipments.refund_lines([("TSHIRT-1", 1)])
    financing = order_in(language, customer, PaymentProduct.FINANCING, lines=lines)
    financing.capture()
    financing.captures.get().plan.installments.filter(sequence__lte=3).update(
        status=InstallmentStatus.PAID
    )
    financing.refund_complete()
    bounced_order = order_in(language, customer, PaymentProduct.PAY_NOW)
    bounced_order.capture()
    bounced = bounced_order.refund_amount(5000).repayments.get()
    PaymentMethod.objects.filter(pk=bounced.payment_method_id).update(status="closed")
    bounced.advance(timezone.now() + timedelta(days=3))
    PaymentMethod.objects.filter(pk=bounced.payment_method_id).update(status="active")
    traced_order = order_in(language, customer, PaymentProduct.PAY_NOW)
    traced_order.capture()
    traced = traced_order.refund_complete().repayments.get()
    traced.advance(timezone.now() + timedelta(days=3))
    type(traced).objects.filter(pk=traced.pk).update(
        expected_by=timezone.localdate() - timedelta(days=1)
    )
    later = order_in(language, customer, PaymentProduct.PAY_LATER)
    later.capture()
    later.captures.get().plan.extend_due_date(14)
    unshipped = order_in(language, customer)
    pages = {
        "order list": reverse("customers:order_list"),
        "balance": reverse("customers:balance"),
        "notifications": reverse("customers:notification_list"),
        "report a return": reverse("customers:report_return", args=[card.order_id]),
        "new details": reverse(
            "customers:repayment_details", args=[bounced.repayment_id]
        ),
        "traced repayment": reverse(
            "customers:repayment_details", args=[traced.repayment_id]
        ),
    }
    for order in (
        refunded,
        paused,
        card,
        shipments,
        financing,
        bounced_order,
        traced_order,
        later,
        unshipped,
    ):
        pages[f"order {order.merchant_reference1}"] = reverse(
            "customers:order_detail", args=[order.order_id]
        )
    return customer, pages


@pytest.mark.parametrize("language", ["de", "sv"])
def test_every_customer_page_has_no_english_sentence_left(
    client, language, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        customer, pages = _customer_with_every_page(language)
    log_in(client, customer)
    left = {}
    for name, url in pages.items():
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
        assert response.status_code == 200, name
        assert response["Content-Language"] == language, name
        if found := english_left(response.content.decode()):
            left[name] = found
    # The form errors and the message after a POST, too.
    response = client.post(
        pages["report a return"], {"tracking_number": " ", "shipped_on": "x"}
    )
    if found := english_left(response.content.decode()):
        left["return form errors"] = found
    assert left == {}
    # The login pages, before anyone is known: Accept-Language.
    client.logout()
    for url in (reverse("customers:login"),):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
        assert english_left(response.content.decode()) == [], url


def test_the_page_walk_finds_english_when_it_is_there():
    assert english_left("<p>Your payments are paused.</p>") == [
        "Your payments are paused."
    ]
    assert english_left("<p>Ihre Zahlungen sind pausiert.</p>") == []
    assert english_left('<a aria-label="Mark as read">x</a>') == ["Mark as read"]
