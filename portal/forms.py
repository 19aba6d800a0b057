"""Forms of the merchant portal: order search, capture, and the merchant's users.

Forms bind and validate what people type; the rules themselves live in the model
verbs (``order.capture``...), whose ``DomainError`` is turned into a form error
next to the field it concerns.
"""

import base64
import binascii
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.db import models, transaction
from django.db.models import Q
from django.utils import formats, timezone, translation
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from portal import widgets
from portal.clients import Throttle, digest
from portal.compiled import CompiledShapes
from portal.exceptions import DomainError
from portal.models import (
    MerchantUser,
    Order,
    OrderStatus,
    PaymentProduct,
    RefundState,
    day_bounds,
    is_text_search,
    search_q,
    search_terms,
)
from portal.money import parse_amount

PAGE_SIZE = 25

REFUND_STATUS_FILTERS = {
    "partially_refunded": RefundState.PARTIAL,
    "fully_refunded": RefundState.FULL,
}
STATUS_CHOICES = [
    ("", gettext_lazy("Any status")),
    *OrderStatus.choices,
    ("partially_refunded", RefundState.PARTIAL.label),
    ("fully_refunded", RefundState.FULL.label),
]


def add_domain_error(form: forms.Form, error: DomainError, fields: dict) -> None:
    """Put ``error`` next to the form field it concerns (``fields`` maps the
    error's ``field`` to a form field name), or at the top of the form."""
    name = fields.get(error.field)
    form.add_error(name if name in form.fields else None, error.message)


# Order list ---------------------------------------------------------------------


#: The largest order id (a 64-bit primary key); a cursor beyond it is refused.
MAX_ORDER_PK = 2**63 - 1


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first order list: ``(created_at, id)``. An
    edited one that no order could have (a naive time, one beyond what UTC
    holds, an id outside the key's range) decodes to None, as a garbled one."""

    created_at: datetime
    pk: int

    def encode(self) -> str:
        raw = f"{self.created_at.isoformat()}|{self.pk}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor | None":
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            stamp, pk = raw.split("|")
            created_at = datetime.fromisoformat(stamp)
            if timezone.is_naive(created_at) or not 0 < int(pk) <= MAX_ORDER_PK:
                return None
            created_at.astimezone(UTC)  # as the database stores it
            return cls(created_at, int(pk))
        except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
            return None

    @classmethod
    def of(cls, order: Order) -> "Cursor":
        return cls(order.created_at, order.pk)


class RefundExportForm(forms.Form):
    """The refunds export: a date range (either end may be open) and a format."""

    FORMATS = [("csv", "CSV"), ("xlsx", gettext_lazy("Excel (XLSX)"))]

    date_from = forms.DateField(
        label=gettext_lazy("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        label=gettext_lazy("To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    format = forms.ChoiceField(
        label=gettext_lazy("Format"),
        choices=FORMATS,
        initial="csv",
        widget=forms.RadioSelect,
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def filename(self) -> str:
        """``refunds-2026-11-01-to-2026-11-30.csv``; open ends say "start"/"today"."""
        data = self.cleaned_data
        start = data.get("date_from") or "start"
        end = data.get("date_to") or "today"
        return f"refunds-{start}-to-{end}.{data['format']}"


@dataclass
class OrderPage:
    orders: list[Order]
    next_cursor: str | None
    previous_cursor: str | None
    is_first: bool

    def count_text(self) -> str:
        """ "3 orders on this page", in the active language (the template's
        ``blocktranslate count`` took 0.1 ms of an order list; issue 16)."""
        count = len(self.orders)
        return ngettext(
            "%(count)s order on this page", "%(count)s orders on this page", count
        ) % {"count": count}


class SharedFields(dict):
    """A form's ``base_fields`` that its instances share instead of copying.

    Django deep-copies ``base_fields`` for every form instance, so that an
    instance may change its own fields (choices, attributes) without touching
    the class's. A form that never changes a field after its class is defined
    can share them: ``BaseForm.__init__``'s deep copy of this mapping is a
    shallow one (its own dict, the same field objects). For the order list's
    search form the copy of seven fields and their choices was about a
    twentieth of the page's CPU when served (issue 16). Our rule: only a form
    whose ``__init__`` and methods never assign to a field, a widget or their
    attributes uses it."""

    def __deepcopy__(self, memo) -> dict:
        return dict(self)


class TemplateLookups:
    """For a form whose attributes its templates read (``{{ form.refundable }}``):
    a lookup of a name that is not a field raises ``KeyError`` without
    Django's list of every field name, sorted.

    The template engine tries ``form[name]`` before the attribute, and
    ``BaseForm.__getitem__`` builds that list for the error it raises. A
    refund form has two fields an order line (1,000 for 500 lines) and its
    page reads some twenty attributes (issue 16). Our rule: the error names
    the key and the form, as Django's does."""

    def __getitem__(self, name):
        if name not in self.fields:
            raise KeyError(f"Key {name!r} not found in {type(self).__name__!r}.")
        return super().__getitem__(name)


class OrderSearchForm(TemplateLookups, forms.Form):
    """Search and filters of the order list; ``page()`` runs the keyset query.
    Its widgets render in Python (``portal.widgets``): same markup, less time."""

    q = forms.CharField(
        label=gettext_lazy("Search"),
        required=False,
        max_length=255,
        widget=widgets.TextInput(
            attrs={
                "type": "search",
                "placeholder": gettext_lazy("Order ID, reference, email or name"),
                "autocomplete": "off",
            }
        ),
    )
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        choices=STATUS_CHOICES,
        required=False,
        widget=widgets.Select,
    )
    product = forms.ChoiceField(
        label=gettext_lazy("Payment product"),
        choices=[("", gettext_lazy("Any product")), *PaymentProduct.choices],
        required=False,
        widget=widgets.Select,
    )
    date_from = forms.DateField(
        label=gettext_lazy("From"),
        required=False,
        widget=widgets.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        label=gettext_lazy("To"),
        required=False,
        widget=widgets.DateInput(attrs={"type": "date"}),
    )
    after = forms.CharField(required=False, widget=forms.HiddenInput)
    before = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def field_groups(self) -> SafeString:
        """The visible fields with their labels and errors, as
        ``includes/field.html`` renders them (``widgets.field_group``; a blank
        filter's markup is written once per language: its fields are the
        class's own, ``widgets.blank_field_group``)."""
        return mark_safe(
            "".join(widgets.blank_field_group(f) for f in self.visible_fields())
        )

    def error_slots(self) -> SafeString:
        """Each visible field's error container with its errors, swapped out
        of band by a live search (which replaces the results, not the form):
        ``widgets.error_slots``."""
        return widgets.error_slots(self, [f.name for f in self.visible_fields()])

    def searches_text(self) -> bool:
        """Whether the list is searched for a text other than an order id: the
        search whose best plan depends on the text (``portal.prepared``). The
        filters by status, product and date each have an index that serves any
        value, and an order id is unique."""
        return is_text_search(self.cleaned_data.get("q", ""))

    def criteria(self, merchant, size: int = PAGE_SIZE) -> tuple["ListShape", dict]:
        """The shape of the query of this search's page of ``merchant``'s
        orders (which filters apply, which kind of search, which cursor) and
        the values it compares: what ``order_list_query`` takes."""
        data = self.cleaned_data
        search, values = search_terms(data.get("q", ""))
        values["merchant"] = merchant.pk
        status = data.get("status") or None
        if status in REFUND_STATUS_FILTERS:
            status = REFUND_STATUS_FILTERS[status]
        elif status:
            values["status"], status = status, "status"
        if data.get("product"):
            values["product"] = data["product"]
        lower, upper = day_bounds(data.get("date_from"), data.get("date_to"))
        if lower:
            values["start"] = lower
        if upper:
            values["end"] = upper
        cursor = None
        for name in ("before", "after"):
            found = Cursor.decode(data.get(name) or "")
            if found:
                cursor = name
                values["cursor_at"], values["cursor_pk"] = found.created_at, found.pk
                break
        shape = ListShape(
            search,
            status,
            "product" in values,
            "start" in values,
            "end" in values,
            cursor,
            size,
        )
        return shape, values

    def nothing_found(self) -> dict:
        """What an empty result searched (the text, the filters) and what to try
        instead, in the active language (dates as it writes them); the order
        list shows it in place of the rows."""
        data = self.cleaned_data
        text = data.get("q", "").strip()
        filters = [
            f"{self.fields[name].label}: {label}"
            for name in ("status", "product")
            if data.get(name)
            for value, label in self.fields[name].choices
            if value == data[name]
        ]
        if data.get("date_from") or data.get("date_to"):
            start, end = data.get("date_from"), data.get("date_to")
            filters.append(
                _("Dates: %(start)s to %(end)s")
                % {
                    "start": formats.date_format(start) if start else "…",
                    "end": formats.date_format(end) if end else "…",
                }
            )
        tips = []
        if text and "@" in text:
            tips.append(
                _(
                    "An email is matched from its start (maja@) or by any part "
                    "without the @ (example.org)."
                )
            )
        elif text:
            tips.append(
                _(
                    "Type less: the start of a reference (HH9WZ), part of your order "
                    "number (10886), part of an email (example.org) or a surname "
                    "(accents optional: muller finds Müller)."
                )
            )
        if filters:
            tips.append(_("Clear the filters or widen the dates."))
        return {"text": text, "filters": filters, "tips": tips}

    def page(self, merchant, size: int = PAGE_SIZE) -> OrderPage:
        """One page of ``merchant``'s orders found by this search, newest
        first, after or before a cursor (``order_list_query``; its SQL is
        compiled once per shape, ``portal.compiled.CompiledShapes``). Run it
        in ``planned_per_call`` when ``searches_text``."""
        shape, values = self.criteria(merchant, size)
        rows = ORDER_LIST.rows(shape, **values)
        if shape.cursor and not rows:
            # A cursor past either end (the links never lead there; an edited
            # URL does): the newest orders, not an empty page (our rule).
            del values["cursor_at"], values["cursor_pk"]
            shape = shape._replace(cursor=None)
            rows = ORDER_LIST.rows(shape, **values)
        if shape.cursor == "before":
            has_newer = len(rows) > size
            rows = rows[:size][::-1]
            return OrderPage(
                orders=rows,
                next_cursor=Cursor.of(rows[-1]).encode() if rows else None,
                previous_cursor=Cursor.of(rows[0]).encode() if has_newer else None,
                is_first=not has_newer,
            )
        has_older = len(rows) > size
        rows = rows[:size]
        after = shape.cursor == "after"
        return OrderPage(
            orders=rows,
            next_cursor=Cursor.of(rows[-1]).encode() if has_older else None,
            previous_cursor=Cursor.of(rows[0]).encode() if after and rows else None,
            is_first=not after,
        )


# The search form never changes its fields: its instances share them.
OrderSearchForm.base_fields = SharedFields(OrderSearchForm.base_fields)


#: What a row of the order list shows (portal.display.order_list_rows) and its
#: cursor needs, as values: building 26 orders and their customers as model
#: instances cost more than the query (issue 16).
ORDER_LIST_FIELDS = (
    "pk",
    "order_id",
    "reference",
    "merchant_reference1",
    "created_at",
    "status",
    "payment_product",
    "order_amount",
    "captured_amount",
    "refunded_amount",
    "purchase_currency",
    "locale",
    "customer__name",
    "customer__email",
)


class ListShape(NamedTuple):
    """What changes the SQL of the order list's query (``order_list_query``),
    beside its values: the kind of search (``search_terms``), the status
    filter ("status", a ``RefundState`` or None), whether a product, a start
    and an end are filtered on, the cursor ("after", "before" or None) and
    the page size."""

    search: tuple
    status: str | None
    product: bool
    start: bool
    end: bool
    cursor: str | None
    size: int


def order_list_query(shape: ListShape, **values) -> models.QuerySet:
    """The query of one page of the order list (``size`` + 1 rows): one
    merchant's orders matching the search (``search_q``) and the filters,
    newest first from the cursor, or oldest first from a ``before`` cursor.

    Keyset pagination on ``(created_at, id)``: the database seeks straight to
    the cursor through the (merchant, -created_at, -id) index; no OFFSET, no
    COUNT. ``shape`` and ``values`` are ``OrderSearchForm.criteria``'s; each
    value goes to the ORM unchanged (``CompiledShapes``).
    """
    search, status, cursor, size = shape.search, shape.status, shape.cursor, shape.size
    orders = Order.objects.filter(merchant=values["merchant"]).values_list(
        *ORDER_LIST_FIELDS, named=True
    )
    if search:
        orders = orders.filter(search_q(search, values))
    if status == "status":
        orders = orders.filter(status=values["status"])
    elif status:
        orders = orders.with_refund_state(status)
    if "product" in values:
        orders = orders.filter(payment_product=values["product"])
    if "start" in values:
        orders = orders.filter(created_at__gte=values["start"])
    if "end" in values:
        orders = orders.filter(created_at__lt=values["end"])
    at, pk = values.get("cursor_at"), values.get("cursor_pk")
    # The redundant range condition before each OR lets the index seek to the
    # cursor instead of walking every newer row.
    if cursor == "before":
        newer = Q(created_at__gte=at) & (
            Q(created_at__gt=at) | Q(created_at=at, id__gt=pk)
        )
        return orders.filter(newer).order_by("created_at", "id")[: size + 1]
    if cursor == "after":
        orders = orders.filter(
            Q(created_at__lte=at) & (Q(created_at__lt=at) | Q(created_at=at, id__lt=pk))
        )
    return orders.order_by("-created_at", "-id")[: size + 1]


def _order_field(name: str):
    return Order._meta.get_field(name)


#: The order list's query, compiled once per shape (issue 16): each value of
#: ``OrderSearchForm.criteria`` with the field it is compared with.
ORDER_LIST = CompiledShapes(
    order_list_query,
    {
        "merchant": _order_field("merchant"),
        "order_id": _order_field("order_id"),
        "reference": _order_field("reference"),
        "number": _order_field("merchant_reference1"),
        "customer_name": _order_field("customer_search_name"),
        "customer_email": _order_field("customer_search_email"),
        "status": _order_field("status"),
        "product": _order_field("payment_product"),
        "start": _order_field("created_at"),
        "end": _order_field("created_at"),
        "cursor_at": _order_field("created_at"),
        "cursor_pk": _order_field("id"),
    },
)


# Password reset ---------------------------------------------------------------------

# Our rule: one requesting address may ask for 3 reset emails per hour for one
# email address and 10 in all. Both limits are keyed by the requesting address, so
# a stranger who asks for someone's reset uses up only the stranger's allowance;
# the merchant's own requests from their own address keep working.
RESETS_PER_EMAIL_AND_ADDRESS = Throttle("password-reset-email", 3, 3600)
RESETS_PER_ADDRESS = Throttle("password-reset-address", 10, 3600)


class ThrottledPasswordResetForm(PasswordResetForm):
    """Django's reset form, refusing past the limits above (the same answer
    whether or not the email has an account, so nothing is revealed)."""

    def __init__(self, *args, address: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.address = address or "unknown"

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        per_email = f"{self.address}:{digest(email)}"
        if RESETS_PER_ADDRESS.exceeded(self.address) or (
            RESETS_PER_EMAIL_AND_ADDRESS.exceeded(per_email)
        ):
            minutes = -(-RESETS_PER_ADDRESS.retry_after() // 60)
            raise forms.ValidationError(
                ngettext(
                    "Too many password reset emails were requested from here. "
                    "Try again in %(minutes)d minute.",
                    "Too many password reset emails were requested from here. "
                    "Try again in %(minutes)d minutes.",
                    minutes,
                )
                % {"minutes": minutes},
                code="throttled",
            )
        RESETS_PER_ADDRESS.hit(self.address)
        RESETS_PER_EMAIL_AND_ADDRESS.hit(per_email)
        return email

    def send_mail(self, subject_template_name, email_template_name, context, *a, **kw):
        """Send in the recipient's portal language (their choice, else their
        store's), not the language of the page that asked for it (issue 15)."""
        merchant_user = (
            MerchantUser.objects.select_related("merchant")
            .filter(user=context["user"])
            .first()
        )
        language = merchant_user.portal_language if merchant_user else None
        with translation.override(language or translation.get_language()):
            super().send_mail(
                subject_template_name, email_template_name, context, *a, **kw
            )


# Capture --------------------------------------------------------------------------


class QuantityField(forms.IntegerField):
    """A count of units: ASCII digits only. Django's IntegerField also takes
    "+1", " 1 " or "1.0"; every other number people type here refuses signs,
    so a quantity does too."""

    def to_python(self, value):
        text = "" if value is None else str(value).strip()
        if text and not (text.isascii() and text.isdigit()):
            raise forms.ValidationError(_("Enter a whole number."), code="invalid")
        return super().to_python(text)


class CaptureForm(TemplateLookups, forms.Form):
    """Capture all that remains, selected lines, or an amount (two steps: review,
    then confirm)."""

    ALL, LINES, AMOUNT = "all", "lines", "amount"
    kind = forms.ChoiceField(
        label=gettext_lazy("What to capture"),
        choices=[
            (ALL, gettext_lazy("Everything remaining")),
            (LINES, gettext_lazy("Selected lines")),
            (AMOUNT, gettext_lazy("An amount")),
        ],
        initial=ALL,
        widget=forms.RadioSelect,
    )
    amount = forms.CharField(
        label=gettext_lazy("Amount to capture"), required=False, max_length=20
    )
    description = forms.CharField(
        label=gettext_lazy("Description"), required=False, max_length=255
    )
    reference = forms.CharField(
        label=gettext_lazy("Reference (e.g. shipment number)"),
        required=False,
        max_length=255,
    )

    # Made when the form is first shown and carried through review and confirm:
    # a double click or a resubmitted page captures once.
    idempotency_key = forms.CharField(
        max_length=64, required=False, widget=forms.HiddenInput
    )

    ERROR_FIELDS = {"captured_amount": "amount", "description": "description"}

    def __init__(self, order: Order, lines, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["idempotency_key"] = secrets.token_hex(16)
        self.order = order
        self.lines = [line for line in lines if line.capturable_quantity > 0]
        for line in self.lines:
            self.fields[f"line-{line.pk}"] = QuantityField(
                label=gettext_lazy("Quantity to capture"),
                required=False,
                min_value=0,
                max_value=line.capturable_quantity,
                widget=forms.NumberInput(attrs={"class": "input-qty"}),
            )

    @property
    def line_rows(self) -> list[tuple]:
        return [(line, self[f"line-{line.pk}"]) for line in self.lines]

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        # Only the chosen kind's fields count (issue 14): quantities typed for
        # "Selected lines" do not block "Everything remaining" or an amount.
        if kind != self.LINES:
            for line in self.lines:
                self._errors.pop(f"line-{line.pk}", None)
        if kind != self.AMOUNT:
            self._errors.pop("amount", None)
        if kind == self.LINES:
            cleaned["lines"] = [
                (line.reference, cleaned[f"line-{line.pk}"])
                for line in self.lines
                if cleaned.get(f"line-{line.pk}")
            ]
            if not cleaned["lines"] and not self.errors:
                raise forms.ValidationError(
                    _("Enter a quantity for at least one line.")
                )
        if kind == self.AMOUNT:
            try:
                cleaned["amount_minor"] = parse_amount(
                    cleaned.get("amount", ""),
                    self.order.purchase_currency,
                    self.order.locale,
                )
            except ValueError as error:
                self.add_error("amount", str(error))
            else:
                # Said at review, not only after Confirm (the order method
                # re-checks it under a lock).
                if cleaned["amount_minor"] > self.order.remaining_authorized_amount:
                    self.add_error(
                        "amount",
                        _(
                            "Capture amount is higher than the remaining "
                            "authorized amount."
                        ),
                    )
        return cleaned

    @property
    def line_summary(self) -> str:
        """The reviewed lines as "2 × HOSE-1, 1 × SHIRT-2" (references are data)."""
        return ", ".join(
            f"{quantity} × {reference}"
            for reference, quantity in self.cleaned_data.get("lines", [])
        )

    @property
    def capture_amount(self) -> int:
        """What the reviewed capture will take (the order method re-checks it)."""
        kind = self.cleaned_data["kind"]
        if kind == self.AMOUNT:
            return self.cleaned_data["amount_minor"]
        if kind == self.LINES:
            by_ref = {line.reference: line for line in self.lines}
            return sum(
                by_ref[ref].amount_for_units(by_ref[ref].captured_quantity, quantity)
                for ref, quantity in self.cleaned_data["lines"]
            )
        return self.order.remaining_authorized_amount

    def save(self, *, by):
        data = self.cleaned_data
        options = {
            "by": by,
            "description": data["description"],
            "reference": data["reference"],
            "idempotency_key": data["idempotency_key"],
        }
        if data["kind"] == self.LINES:
            options["lines"] = data["lines"]
        elif data["kind"] == self.AMOUNT:
            options["amount"] = data["amount_minor"]
        try:
            # The shipment keeps the order's addresses as they are now.
            return self.order.capture_shipment(**options)
        except DomainError as error:
            add_domain_error(self, error, self.ERROR_FIELDS)
            return None


# Merchant users ---------------------------------------------------------------------


class RemoveItemForm(forms.Form):
    """“Remove an item from the order”: units not captured yet (out of stock, the
    customer changed their mind). ``order.remove_item`` applies the rules."""

    line = forms.ChoiceField(label=gettext_lazy("Item"))
    quantity = forms.IntegerField(
        label=gettext_lazy("How many"), min_value=1, initial=1
    )

    def __init__(self, order: Order, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order = order
        self.fields["line"].choices = [
            (
                line.reference,
                _("%(name)s (%(count)d not captured)")
                % {"name": line.name, "count": line.capturable_quantity},
            )
            for line in order.lines.order_by("position", "pk")
            if line.capturable_quantity > 0
        ]

    def save(self, *, by) -> int | None:
        """The amount removed (minor units), or None with the refusal on the form."""
        try:
            return self.order.remove_item(
                self.cleaned_data["line"], self.cleaned_data["quantity"], by=by
            )
        except DomainError as error:
            add_domain_error(self, error, {"line": "line", "quantity": "quantity"})
            return None


class DueDateExtensionForm(forms.Form):
    """Extend a pay-later invoice's due date by one of its options."""

    number_of_days = forms.TypedChoiceField(label=gettext_lazy("Extend by"), coerce=int)

    def __init__(self, plan, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = plan
        self.fields["number_of_days"].choices = [
            (days, ngettext("%(days)d day", "%(days)d days", days) % {"days": days})
            for days, _fee in plan.due_date_extension_options()
        ]

    def save(self, *, by):
        try:
            return self.plan.extend_due_date(self.cleaned_data["number_of_days"], by=by)
        except DomainError as error:
            add_domain_error(self, error, {})
            return None


def language_choices(merchant) -> list[tuple[str, str]]:
    """The portal's languages, each in its own name, after "the store's language"
    (blank: ``MerchantUser.portal_language`` follows the store)."""
    store = dict(settings.LANGUAGES)[merchant.language]
    return [
        ("", _("Store language (%(language)s)") % {"language": store}),
        *settings.LANGUAGES,
    ]


class LanguageForm(forms.ModelForm):
    """The language one merchant user reads the portal (and their emails) in."""

    class Meta:
        model = MerchantUser
        fields = ["language"]
        labels = {"language": gettext_lazy("Language")}
        # The first choice already says it follows the store ("Store language
        # (Deutsch)"); the model's help text would repeat it.
        help_texts = {"language": ""}
        widgets = {"language": forms.RadioSelect}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = language_choices(self.instance.merchant)


def assignable_roles(actor: MerchantUser) -> list[tuple[str, str]]:
    """Only an owner may make someone an owner."""
    roles = MerchantUser.Role.choices
    if actor.role != MerchantUser.Role.OWNER:
        roles = [r for r in roles if r[0] != MerchantUser.Role.OWNER]
    return roles


class MerchantUserCreateForm(forms.Form):
    """A new person in the merchant's portal; they set their own password from
    an email link."""

    first_name = forms.CharField(label=gettext_lazy("First name"), max_length=150)
    last_name = forms.CharField(
        label=gettext_lazy("Last name"), max_length=150, required=False
    )
    email = forms.EmailField(label=gettext_lazy("Email"))
    username = forms.CharField(
        label=gettext_lazy("Username"),
        max_length=150,
        help_text=gettext_lazy("What they log in with."),
    )
    role = forms.ChoiceField(
        label=gettext_lazy("Role"), choices=MerchantUser.Role.choices
    )
    language = forms.ChoiceField(
        label=gettext_lazy("Language"),
        required=False,
        help_text=gettext_lazy("Empty: the language of your store."),
    )

    def __init__(self, actor: MerchantUser, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.fields["role"].choices = assignable_roles(actor)
        self.fields["role"].initial = MerchantUser.Role.VIEWER
        self.fields["language"].choices = language_choices(actor.merchant)

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("This username is taken."))
        return username

    def save(self, request) -> MerchantUser:
        data = self.cleaned_data
        with transaction.atomic():
            user = get_user_model().objects.create_user(
                username=data["username"],
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                # A random password nobody knows; the invitation link replaces it.
                password=secrets.token_urlsafe(32),
            )
            merchant_user = MerchantUser.objects.create(
                user=user,
                merchant=self.actor.merchant,
                role=data["role"],
                language=data["language"],
            )
        invitation = PasswordResetForm({"email": user.email})
        # The invitation reads in the new user's language, not the sender's.
        with translation.override(merchant_user.portal_language):
            if invitation.is_valid():
                invitation.save(
                    request=request,
                    use_https=request.is_secure(),
                    subject_template_name="registration/invitation_subject.txt",
                    email_template_name="registration/invitation_email.txt",
                    extra_email_context={"merchant": self.actor.merchant},
                )
        return merchant_user


class MerchantUserChangeForm(forms.Form):
    """Change someone's role or language, or deactivate / reactivate their login."""

    role = forms.ChoiceField(
        label=gettext_lazy("Role"), choices=MerchantUser.Role.choices
    )
    language = forms.ChoiceField(
        label=gettext_lazy("Language"),
        required=False,
        help_text=gettext_lazy("Empty: the language of your store."),
    )
    is_active = forms.BooleanField(
        label=gettext_lazy("Can log in"),
        required=False,
        help_text=gettext_lazy("Untick to deactivate this user."),
    )

    def __init__(self, actor: MerchantUser, member: MerchantUser, *args, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "role": member.role,
                "language": member.language,
                "is_active": member.user.is_active,
            },
        )
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.member = member
        self.fields["role"].choices = assignable_roles(actor)
        if member.role == MerchantUser.Role.OWNER:
            self.fields["role"].choices = MerchantUser.Role.choices
        self.fields["language"].choices = language_choices(member.merchant)

    def clean(self):
        cleaned = super().clean()
        role, active = cleaned.get("role"), cleaned.get("is_active")
        member, actor = self.member, self.actor
        Role = MerchantUser.Role
        if member.pk == actor.pk and (role != member.role or not active):
            raise forms.ValidationError(
                _(
                    "You cannot change your own role or deactivate yourself; ask "
                    "another admin or owner."
                )
            )
        touches_owner = member.role == Role.OWNER or role == Role.OWNER
        if touches_owner and role != member.role and actor.role != Role.OWNER:
            raise forms.ValidationError(
                _("Only an owner can grant or remove the owner role.")
            )
        if member.role == Role.OWNER and actor.role != Role.OWNER and not active:
            raise forms.ValidationError(_("Only an owner can deactivate an owner."))
        if member.role == Role.OWNER and (role != Role.OWNER or not active):
            other_owners = MerchantUser.objects.filter(
                merchant=member.merchant, role=Role.OWNER, user__is_active=True
            ).exclude(pk=member.pk)
            if not other_owners.exists():
                raise forms.ValidationError(
                    _("This is the last active owner: make someone else owner first.")
                )
        return cleaned

    def save(self) -> MerchantUser:
        member = self.member
        with transaction.atomic():
            member.role = self.cleaned_data["role"]
            member.language = self.cleaned_data["language"]
            member.save(update_fields=["role", "language"])
            member.user.is_active = self.cleaned_data["is_active"]
            member.user.save(update_fields=["is_active"])
        return member
