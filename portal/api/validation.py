"""Request bodies: explicit checks that name the offending field, then plain,
typed values for the model methods.

What a body must look like is checked here (400 BAD_VALUE, the field named as a
JSON path such as ``order_lines[2].quantity``); whether it fits the order is
checked against the order (422) or by the model methods themselves (their
``DomainError``). Unknown fields are ignored, as Klarna integrations send more
than this API reads.
"""

import re
from dataclasses import dataclass

from babel import Locale
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from portal.models import Order, OrderLine, OrderLineValues, PaymentProduct
from portal.money import MAX_AMOUNT
from refunds.engine import RefundKind, RefundRequest

from .errors import bad_value, unprocessable

MAX_TEXT = 255
MAX_LINES = 1000
MAX_QUANTITY = 1_000_000
MAX_TAX_RATE = 10_000
COUNTRIES = frozenset(
    code for code in Locale("en").territories if re.fullmatch(r"[A-Z]{2}", code)
)
LOCALE_PATTERN = re.compile(r"[a-z]{2}[-_][A-Z]{2}")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")

_MISSING = object()


# Field readers -------------------------------------------------------------


def require_object(value, field: str = "body") -> dict:
    if not isinstance(value, dict):
        if field == "body":
            raise bad_value("body", "a JSON object is required.")
        raise bad_value(field, "must be a JSON object.")
    return value


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def integer(
    data: dict,
    name: str,
    *,
    prefix: str = "",
    required: bool = False,
    minimum: int = 0,
    maximum: int = MAX_AMOUNT,
) -> int | None:
    """An integer field (never a bool, a float or a string of digits)."""
    value = data.get(name, _MISSING)
    field = _path(prefix, name)
    if value is _MISSING:
        if required:
            raise bad_value(field, "is required.")
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_value(field, "must be a whole number (amounts in minor units).")
    if not minimum <= value <= maximum:
        raise bad_value(field, f"must be between {minimum} and {maximum}.")
    return value


def text(
    data: dict,
    name: str,
    *,
    prefix: str = "",
    required: bool = False,
    min_length: int = 0,
    max_length: int = MAX_TEXT,
) -> str | None:
    value = data.get(name, _MISSING)
    field = _path(prefix, name)
    if value is _MISSING:
        if required:
            raise bad_value(field, "is required.")
        return None
    if not isinstance(value, str):
        raise bad_value(field, "must be a string.")
    if "\x00" in value:
        raise bad_value(field, "must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_value(field, "must be valid Unicode text.") from None
    if len(value) < min_length:
        raise bad_value(field, "must not be empty.")
    if len(value) > max_length:
        raise bad_value(field, f"must be at most {max_length} characters.")
    return value


def choice(data: dict, name: str, choices, *, prefix: str = "", required: bool = False):
    value = text(data, name, prefix=prefix, required=required)
    if value is not None and value not in choices:
        raise bad_value(
            _path(prefix, name), f"must be one of {', '.join(sorted(choices))}."
        )
    return value


def object_list(
    data: dict, name: str, *, required: bool = False, min_items: int = 0
) -> list[dict]:
    value = data.get(name, _MISSING)
    if value is _MISSING:
        if required:
            raise bad_value(name, "is required.")
        return []
    if not isinstance(value, list):
        raise bad_value(name, "must be a list.")
    if len(value) < min_items:
        raise bad_value(name, f"must have at least {min_items} item(s).")
    if len(value) > MAX_LINES:
        raise bad_value(name, f"must have at most {MAX_LINES} items.")
    return [require_object(item, f"{name}[{i}]") for i, item in enumerate(value)]


# Order lines in captures and refunds ----------------------------------------


#: An order line as a checkout or an order edit sends it.
CheckoutLine = OrderLineValues


@dataclass(frozen=True)
class LineSelection:
    """An order line and a quantity, as a capture or refund names it."""

    index: int
    reference: str
    quantity: int
    total_amount: int | None

    @property
    def field(self) -> str:
        return f"order_lines[{self.index}]"


@dataclass(frozen=True)
class LineSet:
    """A body's ``order_lines``: the order lines selected (quantity > 0), the
    return fee (a positive amount, 0 if none) and, when some line names no order
    line, every line as given (``described``) for a refund by amount."""

    selections: tuple[LineSelection, ...]
    fee: int
    described: tuple[CheckoutLine, ...]


def line_selections(data: dict, *, allow_return_fee: bool) -> LineSet:
    """Read ``order_lines``. Klarna allows ``quantity: 0`` (the line selects
    nothing). In a refund, a line without ``reference`` (a “Price adjustment”)
    needs Klarna's required fields (name, quantity, unit_price, total_amount) and
    makes the refund one by amount whose lines only describe it (our rule)."""
    items = object_list(data, "order_lines")
    free_text = allow_return_fee and any(
        item.get("type") != OrderLine.Type.RETURN_FEE and not item.get("reference")
        for item in items
    )
    selections, fee, described = [], 0, []
    for i, item in enumerate(items):
        prefix = f"order_lines[{i}]"
        line_type = choice(item, "type", OrderLine.Type.values, prefix=prefix)
        text(item, "name", prefix=prefix)
        integer(
            item, "unit_price", prefix=prefix, minimum=-MAX_AMOUNT, maximum=MAX_AMOUNT
        )
        if free_text:
            described.append(_descriptive_line(item, prefix, line_type))
            continue
        if line_type == OrderLine.Type.RETURN_FEE:
            if not allow_return_fee:
                raise bad_value(
                    prefix, "a return_fee line is only possible in a refund."
                )
            if fee:
                raise bad_value(prefix, "only one return_fee line is allowed.")
            text(item, "reference", prefix=prefix)
            integer(item, "quantity", prefix=prefix, maximum=MAX_QUANTITY)
            fee = -integer(
                item,
                "total_amount",
                prefix=prefix,
                required=True,
                minimum=-MAX_AMOUNT,
                maximum=-1,
            )
            continue
        selection = LineSelection(
            index=i,
            reference=text(
                item, "reference", prefix=prefix, required=True, min_length=1
            ),
            quantity=integer(
                item, "quantity", prefix=prefix, required=True, maximum=MAX_QUANTITY
            ),
            total_amount=integer(
                item,
                "total_amount",
                prefix=prefix,
                minimum=-MAX_AMOUNT,
                maximum=MAX_AMOUNT,
            ),
        )
        if selection.quantity:
            selections.append(selection)
    return LineSet(tuple(selections), fee, tuple(described))


def _descriptive_line(item: dict, prefix: str, line_type: str | None) -> CheckoutLine:
    quantity = integer(
        item, "quantity", prefix=prefix, required=True, maximum=MAX_QUANTITY
    )
    total = integer(
        item,
        "total_amount",
        prefix=prefix,
        required=True,
        minimum=-MAX_AMOUNT,
        maximum=MAX_AMOUNT,
    )
    tax_rate = integer(item, "tax_rate", prefix=prefix, maximum=MAX_TAX_RATE) or 0
    tax = integer(
        item, "total_tax_amount", prefix=prefix, minimum=-MAX_AMOUNT, maximum=MAX_AMOUNT
    )
    return CheckoutLine(
        type=line_type or OrderLine.Type.PHYSICAL,
        reference=text(item, "reference", prefix=prefix) or "",
        name=text(item, "name", prefix=prefix, required=True) or "",
        quantity=quantity,
        quantity_unit=text(item, "quantity_unit", prefix=prefix, max_length=10) or "",
        unit_price=integer(
            item,
            "unit_price",
            prefix=prefix,
            required=True,
            minimum=-MAX_AMOUNT,
            maximum=MAX_AMOUNT,
        ),
        tax_rate=tax_rate,
        total_discount_amount=integer(item, "total_discount_amount", prefix=prefix)
        or 0,
        total_amount=total,
        total_tax_amount=OrderLine.tax_for(total, tax_rate) if tax is None else tax,
    )


def check_line_totals(order: Order, selections, *, already: str) -> None:
    """Each selection that states a ``total_amount`` must state what its quantity
    costs: the next units after the ``already`` captured or refunded ones.

    Unknown references and impossible quantities are left to the model method,
    which refuses them with its own reason.
    """
    stated = [s for s in selections if s.total_amount is not None]
    if not stated:
        return
    lines = {line.reference: line for line in order.lines.all()}
    for selection in stated:
        line = lines.get(selection.reference)
        if line is None or selection.quantity > line.quantity:
            continue
        cost = line.amount_for_units(getattr(line, already), selection.quantity)
        if cost != selection.total_amount:
            raise unprocessable(
                f"{selection.field}.total_amount",
                f"{selection.total_amount} is not what {selection.quantity} of "
                f"“{line.reference}” cost ({cost}).",
            )


# Bodies ---------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureBody:
    captured_amount: int
    description: str
    reference: str
    lines: tuple[LineSelection, ...]
    shipping_info: tuple[dict, ...] = ()
    shipping_delay: int = 0

    @property
    def line_quantities(self) -> list[tuple[str, int]] | None:
        return [(s.reference, s.quantity) for s in self.lines] or None


def parse_capture(body) -> CaptureBody:
    data = require_object(body)
    captured_amount = integer(data, "captured_amount", required=True, minimum=1)
    lines = line_selections(data, allow_return_fee=False)
    return CaptureBody(
        captured_amount=captured_amount,
        description=text(data, "description") or "",
        reference=text(data, "reference") or "",
        lines=lines.selections,
        shipping_info=shipping_info_list(data, required=False),
        shipping_delay=integer(data, "shipping_delay", maximum=365) or 0,
    )


@dataclass(frozen=True)
class RefundBody:
    refunded_amount: int
    description: str
    reference: str
    lines: tuple[LineSelection, ...]
    return_fee: int
    described: tuple[CheckoutLine, ...] = ()

    def engine_request(self) -> RefundRequest:
        """Lines (with an optional fee) refund items; no lines, or lines that only
        describe the refund, refund an amount. ``refunded_amount`` is checked by
        the engine, not trusted."""
        common = {
            "description": self.description,
            "reference": self.reference,
            "expected_amount": self.refunded_amount,
        }
        if self.lines:
            return RefundRequest(
                kind=RefundKind.ITEMS,
                lines=tuple((s.reference, s.quantity) for s in self.lines),
                return_fee=self.return_fee,
                **common,
            )
        return RefundRequest(
            kind=RefundKind.AMOUNT, amount=self.refunded_amount, **common
        )


def parse_refund(body) -> RefundBody:
    data = require_object(body)
    refunded_amount = integer(data, "refunded_amount", required=True, minimum=1)
    lines = line_selections(data, allow_return_fee=True)
    if lines.fee and not lines.selections:
        raise unprocessable(
            "order_lines", "a return_fee line needs at least one refunded order line."
        )
    credit_invoice = data.get("credit_invoice", False)
    if not isinstance(credit_invoice, bool):
        raise bad_value("credit_invoice", "must be true or false.")
    if credit_invoice:
        raise unprocessable(
            "credit_invoice",
            "credit invoices are for B2B invoice orders, and this order is not one.",
        )
    return RefundBody(
        refunded_amount=refunded_amount,
        description=text(data, "description") or "",
        reference=text(data, "reference") or "",
        lines=lines.selections,
        return_fee=lines.fee,
        described=lines.described,
    )


@dataclass(frozen=True)
class ReferencesBody:
    merchant_reference1: str | None
    merchant_reference2: str | None


def parse_references(body) -> ReferencesBody:
    """Both fields are optional (Klarna); ``{}`` changes nothing."""
    data = require_object(body)
    return ReferencesBody(
        merchant_reference1=text(data, "merchant_reference1"),
        merchant_reference2=text(data, "merchant_reference2"),
    )


# Shipping and addresses (Klarna's shipping_info and address objects) ----------

SHIPPING_METHODS = frozenset(
    [
        "PickUpStore",
        "Home",
        "BoxReg",
        "BoxUnreg",
        "PickUpPoint",
        "Own",
        "Postal",
        "DHLPackstation",
        "Digital",
        "Undefined",
        "PickUpWarehouse",
        "ClickCollect",
        "PalletDelivery",
    ]
)
#: Klarna's shipping_info fields and their maximum lengths.
SHIPPING_INFO_FIELDS = {
    "shipping_company": 100,
    "tracking_number": 100,
    "tracking_uri": 1024,
    "return_shipping_company": 100,
    "return_tracking_number": 100,
    "return_tracking_uri": 1024,
}
MAX_SHIPPING_INFO = 500
#: Klarna's address fields and their maximum lengths.
ADDRESS_FIELDS = {
    "title": 20,
    "given_name": 100,
    "family_name": 100,
    "organization_name": 255,
    "attention": 255,
    "street_address": 100,
    "street_address2": 100,
    "postal_code": 10,
    "city": 200,
    "region": 200,
    "email": 100,
    "phone": 100,
}


def shipping_info_list(data: dict, *, required: bool) -> tuple[dict, ...]:
    """Klarna's ``shipping_info`` entries, only the fields Klarna defines."""
    items = object_list(data, "shipping_info", required=required, min_items=required)
    if len(items) > MAX_SHIPPING_INFO:
        raise bad_value(
            "shipping_info", f"must have at most {MAX_SHIPPING_INFO} items."
        )
    entries = []
    for i, item in enumerate(items):
        prefix = f"shipping_info[{i}]"
        entry = {}
        for name, length in SHIPPING_INFO_FIELDS.items():
            value = text(item, name, prefix=prefix, max_length=length)
            if value:
                entry[name] = value
        method = choice(item, "shipping_method", SHIPPING_METHODS, prefix=prefix)
        if method:
            entry["shipping_method"] = method
        entries.append(entry)
    return tuple(entries)


def address(data: dict, name: str) -> dict | None:
    """A Klarna address object (None when absent); only Klarna's fields are kept."""
    if name not in data:
        return None
    value = require_object(data[name], name)
    result = {}
    for key, length in ADDRESS_FIELDS.items():
        field_value = text(value, key, prefix=name, max_length=length)
        if field_value:
            result[key] = field_value
    country = text(value, "country", prefix=name)
    if country:
        if country.upper() not in COUNTRIES:
            raise bad_value(
                f"{name}.country", "must be an ISO 3166 country code like DE."
            )
        result["country"] = country.upper()
    return result


def parse_customer_details(body) -> dict | None:
    """The new shipping address, or None when the body gives none."""
    data = require_object(body)
    return address(data, "shipping_address")


def parse_shipping_info(body) -> tuple[dict, ...]:
    return shipping_info_list(require_object(body), required=True)


def parse_extension(body) -> int:
    data = require_object(body)
    return integer(data, "number_of_days", required=True, minimum=1, maximum=365)


@dataclass(frozen=True)
class AuthorizationBody:
    order_amount: int
    description: str
    lines: tuple[CheckoutLine, ...]


def parse_authorization(body) -> AuthorizationBody:
    """A new order amount and the order's whole new set of lines. Klarna makes
    ``order_lines`` optional; here they are required, since the lines must add up
    to the order amount (our rule). A line with quantity 0 is left out."""
    data = require_object(body)
    order_amount = integer(data, "order_amount", required=True)
    items = object_list(data, "order_lines", required=True)
    lines = tuple(
        _checkout_line(item, f"order_lines[{i}]", minimum_quantity=0)
        for i, item in enumerate(items)
    )
    return AuthorizationBody(
        order_amount=order_amount,
        description=text(data, "description") or "",
        lines=tuple(line for line in lines if line.quantity),
    )


@dataclass(frozen=True)
class CheckoutBody:
    email: str
    customer_name: str
    payment_product: str
    purchase_country: str
    purchase_currency: str
    locale: str
    order_amount: int
    lines: tuple[CheckoutLine, ...]
    merchant_reference1: str
    merchant_reference2: str
    billing_address: dict
    shipping_address: dict
    customer_details: dict
    merchant_data: str
    selected_shipping_option: dict


def parse_checkout(body, *, currency: str) -> CheckoutBody:
    """A new order from the shop's checkout; ``currency`` is the merchant's."""
    data = require_object(body)
    if "customer" not in data:
        raise bad_value("customer", "is required.")
    customer = require_object(data["customer"], "customer")
    email = text(
        customer,
        "email",
        prefix="customer",
        required=True,
        min_length=1,
        max_length=254,
    )
    try:
        validate_email(email)
    except ValidationError:
        raise bad_value("customer.email", "must be an email address.") from None
    name = text(customer, "name", prefix="customer", max_length=200) or ""
    product = choice(data, "payment_product", PaymentProduct.values, required=True)
    country = text(data, "purchase_country", required=True)
    if country not in COUNTRIES:
        raise bad_value("purchase_country", "must be an ISO 3166 country code like DE.")
    order_currency = text(data, "purchase_currency", required=True)
    if not CURRENCY_PATTERN.fullmatch(order_currency):
        raise bad_value("purchase_currency", "must be an ISO 4217 code like EUR.")
    locale = text(data, "locale", required=True)
    if not LOCALE_PATTERN.fullmatch(locale):
        raise bad_value("locale", "must be a locale like de-DE.")
    order_amount = integer(data, "order_amount", required=True, minimum=1)
    lines = tuple(
        _checkout_line(item, f"order_lines[{i}]")
        for i, item in enumerate(
            object_list(data, "order_lines", required=True, min_items=1)
        )
    )
    parsed = CheckoutBody(
        email=email.strip().lower(),
        customer_name=name,
        payment_product=product,
        purchase_country=country,
        purchase_currency=order_currency,
        locale=locale.replace("-", "_"),
        order_amount=order_amount,
        lines=lines,
        merchant_reference1=text(data, "merchant_reference1") or "",
        merchant_reference2=text(data, "merchant_reference2") or "",
        billing_address=address(data, "billing_address") or {},
        shipping_address=address(data, "shipping_address") or {},
        customer_details=_customer_details(customer),
        merchant_data=text(data, "merchant_data", max_length=6000) or "",
        selected_shipping_option=_shipping_option(data),
    )
    _check_checkout(parsed, currency)
    return parsed


DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")


def _customer_details(customer: dict) -> dict:
    """Klarna's order ``customer`` object: date of birth and national id."""
    details = {}
    born = text(customer, "date_of_birth", prefix="customer", max_length=10)
    if born is not None:
        if not DATE_PATTERN.fullmatch(born):
            raise bad_value("customer.date_of_birth", "must be a date like 1981-09-06.")
        details["date_of_birth"] = born
    national_id = text(customer, "national_identification_number", prefix="customer")
    if national_id:
        details["national_identification_number"] = national_id
    return details


#: The selected shipping option's text fields kept from the checkout (Klarna's).
SHIPPING_OPTION_FIELDS = ("id", "name", "carrier", "class", "method", "type")


def _shipping_option(data: dict) -> dict:
    if "selected_shipping_option" not in data:
        return {}
    option = require_object(
        data["selected_shipping_option"], "selected_shipping_option"
    )
    kept = {}
    for name in SHIPPING_OPTION_FIELDS:
        value = text(option, name, prefix="selected_shipping_option")
        if value:
            kept[name] = value
    for name, maximum in (
        ("price", MAX_AMOUNT),
        ("tax_amount", MAX_AMOUNT),
        ("tax_rate", MAX_TAX_RATE),
    ):
        value = integer(
            option, name, prefix="selected_shipping_option", maximum=maximum
        )
        if value is not None:
            kept[name] = value
    return kept


_CHECKOUT_LINE_TYPES = frozenset(OrderLine.Type.values) - {OrderLine.Type.RETURN_FEE}


def _checkout_line(
    item: dict, prefix: str, *, minimum_quantity: int = 1
) -> CheckoutLine:
    line_type = choice(item, "type", _CHECKOUT_LINE_TYPES, prefix=prefix) or "physical"
    reference = text(item, "reference", prefix=prefix, required=True, min_length=1)
    name = text(item, "name", prefix=prefix, required=True, min_length=1)
    quantity = integer(
        item,
        "quantity",
        prefix=prefix,
        required=True,
        minimum=minimum_quantity,
        maximum=MAX_QUANTITY,
    )
    quantity_unit = text(item, "quantity_unit", prefix=prefix, max_length=10) or "pcs"
    unit_price = integer(
        item,
        "unit_price",
        prefix=prefix,
        required=True,
        minimum=-MAX_AMOUNT,
        maximum=MAX_AMOUNT,
    )
    tax_rate = integer(item, "tax_rate", prefix=prefix, maximum=MAX_TAX_RATE) or 0
    discount = integer(item, "total_discount_amount", prefix=prefix) or 0
    total = integer(
        item,
        "total_amount",
        prefix=prefix,
        required=True,
        minimum=-MAX_AMOUNT,
        maximum=MAX_AMOUNT,
    )
    tax = integer(item, "total_tax_amount", prefix=prefix, minimum=-MAX_AMOUNT)
    if total != quantity * unit_price - discount:
        raise unprocessable(
            f"{prefix}.total_amount",
            f"{total} is not quantity * unit_price - total_discount_amount "
            f"({quantity * unit_price - discount}).",
        )
    return CheckoutLine(
        type=line_type,
        reference=reference,
        name=name,
        quantity=quantity,
        quantity_unit=quantity_unit,
        unit_price=unit_price,
        tax_rate=tax_rate,
        total_discount_amount=discount,
        total_amount=total,
        total_tax_amount=OrderLine.tax_for(total, tax_rate) if tax is None else tax,
    )


def _check_checkout(body: CheckoutBody, currency: str) -> None:
    if body.purchase_currency != currency:
        raise unprocessable(
            "purchase_currency",
            f"this merchant sells in {currency}, not {body.purchase_currency}.",
        )
    seen: set[str] = set()
    for i, line in enumerate(body.lines):
        if line.reference in seen:
            raise unprocessable(
                f"order_lines[{i}].reference",
                f"“{line.reference}” is used by an earlier line.",
            )
        seen.add(line.reference)
    lines_total = sum(line.total_amount for line in body.lines)
    if lines_total != body.order_amount:
        raise unprocessable(
            "order_amount",
            f"{body.order_amount} is not the order lines' total ({lines_total}).",
        )
