"""The OpenAPI 3 document of the API, and the reference page built from it.

One document serves three readers: integrators (``/ordermanagement/v1/openapi.json``
and the HTML reference at ``/ordermanagement/v1/docs/``), and the test suite,
which runs schemathesis against it. Limits here are the ones ``validation.py``
enforces, so a body the document calls invalid is refused.
"""

import json
from functools import cache

from portal.models import FraudStatus, OrderLine, OrderStatus, PaymentProduct
from portal.money import MAX_AMOUNT

from .endpoint import CORRELATION_HEADER, IDEMPOTENCY_HEADER, MAX_BODY_BYTES
from .validation import (
    ADDRESS_FIELDS,
    MAX_LINES,
    MAX_QUANTITY,
    MAX_TAX_RATE,
    MAX_TEXT,
    SHIPPING_INFO_FIELDS,
    SHIPPING_METHODS,
)

#: Ids used in the document's examples (the test suite creates these rows).
EXAMPLE_ORDER_ID = "0b1e5a4c-6f0d-4b8e-9a5e-2d7c3f1a9b10"
EXAMPLE_CAPTURE_ID = "4c3b2a19-8d7e-4f60-a5b4-c3d2e1f0a9b8"
EXAMPLE_REFUND_ID = "9e8d7c6b-5a49-4382-b1a0-f9e8d7c6b5a4"

_REF = "#/components/schemas/"


def _ref(name: str) -> dict:
    return {"$ref": _REF + name}


def _amount(description: str, *, minimum: int = 0, maximum: int = MAX_AMOUNT) -> dict:
    return {
        "type": "integer",
        "minimum": minimum,
        "maximum": maximum,
        "description": description,
    }


def _text(description: str, *, max_length: int = MAX_TEXT, min_length: int = 0) -> dict:
    schema = {"type": "string", "maxLength": max_length, "description": description}
    if min_length:
        schema["minLength"] = min_length
    return schema


def _uuid(description: str) -> dict:
    return {"type": "string", "format": "uuid", "description": description}


_TIMESTAMP = {"type": "string", "format": "date-time"}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error_code", "error_messages", "correlation_id"],
        "additionalProperties": False,
        "properties": {
            "error_code": {
                "type": "string",
                "description": "Stable code, e.g. REFUND_NOT_ALLOWED, NO_SUCH_ORDER, "
                "BAD_VALUE, CONFLICT.",
            },
            "error_messages": {
                "type": "array",
                "items": {"type": "string"},
                "description": "What went wrong, for people; names the field when "
                "the body is at fault.",
            },
            "correlation_id": _uuid(
                "Quote it to support; also in the "
                f"{CORRELATION_HEADER} header and the portal's API log."
            ),
        },
    },
    "OrderLine": {
        "type": "object",
        "required": [
            "type",
            "reference",
            "name",
            "quantity",
            "quantity_unit",
            "unit_price",
            "tax_rate",
            "total_discount_amount",
            "total_amount",
            "total_tax_amount",
            "captured_quantity",
            "refunded_quantity",
        ],
        "properties": {
            "type": {"type": "string", "enum": OrderLine.Type.values},
            "reference": {"type": "string", "description": "SKU; unique in the order."},
            "name": {"type": "string"},
            "quantity": {"type": "integer", "minimum": 1},
            "quantity_unit": {"type": "string"},
            "unit_price": {
                "type": "integer",
                "description": "Incl. tax, excl. discount.",
            },
            "tax_rate": {"type": "integer", "description": "Basis points: 2500 = 25%."},
            "total_discount_amount": {"type": "integer"},
            "total_amount": {"type": "integer"},
            "total_tax_amount": {"type": "integer"},
            "captured_quantity": {"type": "integer", "minimum": 0},
            "refunded_quantity": {"type": "integer", "minimum": 0},
        },
    },
    "LineSummary": {
        "type": "object",
        "description": "A capture or refund line: its units of an order line, their "
        "money and their exact part of the line's tax (minor units). In a refund, "
        "a discount or gift card's share is a line of quantity 1.",
        "required": [
            "type",
            "reference",
            "name",
            "quantity",
            "quantity_unit",
            "unit_price",
            "tax_rate",
            "total_amount",
            "total_discount_amount",
            "total_tax_amount",
        ],
        "properties": {
            "type": {"type": "string"},
            "reference": {"type": "string"},
            "name": {"type": "string"},
            "quantity": {"type": "integer", "minimum": 1},
            "quantity_unit": {"type": "string"},
            "unit_price": {"type": "integer"},
            "tax_rate": {"type": "integer", "description": "Basis points."},
            "total_amount": {
                "type": "integer",
                "description": "quantity * unit_price - total_discount_amount; "
                "negative for a return fee or a discount's share.",
            },
            "total_discount_amount": {"type": "integer"},
            "total_tax_amount": {"type": "integer"},
        },
    },
    "DescriptiveLine": {
        "type": "object",
        "description": "A line sent with a refund by amount (e.g. a free-text "
        "“Price adjustment”), returned as it was given; it moves nothing.",
        "required": [
            "type",
            "reference",
            "name",
            "quantity",
            "unit_price",
            "total_amount",
        ],
        "properties": {
            "type": {"type": "string", "enum": OrderLine.Type.values},
            "reference": {"type": "string"},
            "name": {"type": "string"},
            "quantity": {"type": "integer", "minimum": 0},
            "quantity_unit": {"type": "string"},
            "unit_price": {"type": "integer"},
            "tax_rate": {"type": "integer"},
            "total_discount_amount": {"type": "integer"},
            "total_amount": {"type": "integer"},
            "total_tax_amount": {"type": "integer"},
        },
    },
    "Address": {
        "type": "object",
        "description": "Klarna's address object; only the fields given are present.",
        "properties": {
            **{
                name: _text(
                    name.replace("_", " ").capitalize() + ".", max_length=length
                )
                for name, length in ADDRESS_FIELDS.items()
            },
            "country": {
                "type": "string",
                "description": "ISO 3166 alpha-2, e.g. DE.",
                "example": "DE",
            },
        },
    },
    "ShippingInfo": {
        "type": "object",
        "description": "One shipment's tracking (Klarna's shipping_info).",
        "properties": {
            **{
                name: _text(
                    name.replace("_", " ").capitalize() + ".", max_length=length
                )
                for name, length in SHIPPING_INFO_FIELDS.items()
            },
            "shipping_method": {
                "type": "string",
                "enum": sorted(SHIPPING_METHODS),
            },
        },
    },
    "Capture": {
        "type": "object",
        "required": [
            "capture_id",
            "klarna_reference",
            "reference",
            "description",
            "captured_amount",
            "refunded_amount",
            "captured_at",
            "order_lines",
            "shipping_info",
            "billing_address",
            "shipping_address",
        ],
        "properties": {
            "capture_id": {"type": "string", "format": "uuid"},
            "klarna_reference": {
                "type": "string",
                "description": "The invoice's customer-facing reference: the "
                "order's reference and the invoice number, e.g. K4MADNY-1.",
            },
            "shipping_info": {"type": "array", "items": _ref("ShippingInfo")},
            "billing_address": _ref("Address"),
            "shipping_address": _ref("Address"),
            "reference": {"type": "string"},
            "description": {"type": "string"},
            "captured_amount": {"type": "integer", "minimum": 1},
            "refunded_amount": {
                "type": "integer",
                "minimum": 0,
                "description": "Refunded from this capture (customer invoice).",
            },
            "captured_at": _TIMESTAMP,
            "order_lines": {"type": "array", "items": _ref("LineSummary")},
        },
    },
    "Refund": {
        "type": "object",
        "required": [
            "refund_id",
            "reference",
            "description",
            "refunded_amount",
            "refunded_at",
            "order_lines",
        ],
        "properties": {
            "refund_id": {"type": "string", "format": "uuid"},
            "reference": {"type": "string"},
            "description": {"type": "string"},
            "refunded_amount": {"type": "integer", "minimum": 1},
            "refunded_at": _TIMESTAMP,
            "order_lines": {
                "type": "array",
                "items": {"anyOf": [_ref("LineSummary"), _ref("DescriptiveLine")]},
            },
            "credit_invoice": {
                "type": "boolean",
                "description": "Klarna's flag for B2B invoices; always false here.",
            },
        },
    },
    "CaptureList": {"type": "array", "items": _ref("Capture")},
    "RefundList": {"type": "array", "items": _ref("Refund")},
    "ExtendDueDateOptions": {
        "type": "object",
        "required": ["currency", "options"],
        "properties": {
            "currency": {"type": "string", "example": "EUR"},
            "options": {
                "type": "array",
                "description": "Empty when the due date cannot be extended.",
                "items": {
                    "type": "object",
                    "required": ["number_of_days", "amount"],
                    "properties": {
                        "number_of_days": {"type": "integer", "minimum": 1},
                        "amount": {
                            "type": "integer",
                            "minimum": 0,
                            "description": "Your fee, deducted from your next payout.",
                        },
                    },
                },
            },
        },
    },
    "Order": {
        "type": "object",
        "required": [
            "order_id",
            "klarna_reference",
            "status",
            "payment_product",
            "purchase_country",
            "purchase_currency",
            "locale",
            "order_amount",
            "original_order_amount",
            "captured_amount",
            "refunded_amount",
            "remaining_authorized_amount",
            "merchant_reference1",
            "merchant_reference2",
            "created_at",
            "expires_at",
            "order_lines",
            "captures",
            "refunds",
            "fraud_status",
            "initial_payment_method",
            "customer",
            "billing_address",
            "shipping_address",
            "merchant_data",
            "shipping_info",
            "selected_shipping_option",
        ],
        "properties": {
            "order_id": {"type": "string", "format": "uuid"},
            "fraud_status": {"type": "string", "enum": FraudStatus.values},
            "initial_payment_method": {
                "type": "object",
                "required": ["type", "description"],
                "properties": {
                    "type": {"type": "string", "example": "INVOICE"},
                    "description": {"type": "string"},
                    "number_of_installments": {"type": "integer", "minimum": 1},
                },
            },
            "customer": {
                "type": "object",
                "properties": {
                    "date_of_birth": {"type": "string", "format": "date"},
                    "national_identification_number": {"type": "string"},
                },
            },
            "billing_address": _ref("Address"),
            "shipping_address": _ref("Address"),
            "merchant_data": {"type": "string"},
            "shipping_info": {"type": "array", "items": _ref("ShippingInfo")},
            "selected_shipping_option": {
                "type": "object",
                "description": "As the checkout sent it (id, name, carrier, "
                "method, price…).",
            },
            "klarna_reference": {
                "type": "string",
                "description": "Customer-facing, e.g. K4MADNY.",
            },
            "status": {"type": "string", "enum": OrderStatus.values},
            "payment_product": {"type": "string", "enum": PaymentProduct.values},
            "purchase_country": {"type": "string"},
            "purchase_currency": {"type": "string"},
            "locale": {"type": "string"},
            "order_amount": {"type": "integer"},
            "original_order_amount": {"type": "integer"},
            "captured_amount": {"type": "integer", "minimum": 0},
            "refunded_amount": {"type": "integer", "minimum": 0},
            "remaining_authorized_amount": {"type": "integer", "minimum": 0},
            "merchant_reference1": {"type": "string"},
            "merchant_reference2": {"type": "string"},
            "created_at": _TIMESTAMP,
            "expires_at": _TIMESTAMP,
            "order_lines": {"type": "array", "items": _ref("OrderLine")},
            "captures": {"type": "array", "items": _ref("Capture")},
            "refunds": {"type": "array", "items": _ref("Refund")},
        },
    },
    "SelectedLine": {
        "type": "object",
        "description": "An order line and how many of it. In a refund, one line of "
        "type return_fee with a negative total_amount is the fee the customer pays.",
        "properties": {
            "type": {"type": "string", "enum": OrderLine.Type.values},
            "reference": _text(
                "The order line's reference (not needed for return_fee).", min_length=1
            ),
            "name": _text("Ignored; for your own records."),
            "quantity": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_QUANTITY,
                "description": "0 selects nothing (Klarna allows it).",
            },
            "unit_price": _amount(
                "Needed on a line without reference.", minimum=-MAX_AMOUNT
            ),
            "total_amount": _amount(
                "Optional check: what this quantity costs. Negative for return_fee.",
                minimum=-MAX_AMOUNT,
            ),
        },
    },
    "CaptureRequest": {
        "type": "object",
        "required": ["captured_amount"],
        "properties": {
            "captured_amount": _amount(
                "Minor units; with order_lines it must equal their total.", minimum=1
            ),
            "description": _text("Shown to the customer."),
            "reference": _text("Yours; appears in settlement reports."),
            "order_lines": {
                "type": "array",
                "maxItems": MAX_LINES,
                "items": _ref("SelectedLine"),
                "description": "Capture these lines. Without lines, a captured_amount "
                "equal to the remaining authorization captures every line.",
            },
            "shipping_info": {
                "type": "array",
                "maxItems": 500,
                "items": _ref("ShippingInfo"),
                "description": "Tracking for this shipment; shown to you and the "
                "customer.",
            },
            "shipping_delay": {
                "type": "integer",
                "minimum": 0,
                "maximum": 365,
                "description": "Days before the goods ship.",
            },
        },
    },
    "RefundRequest": {
        "type": "object",
        "required": ["refunded_amount"],
        "properties": {
            "refunded_amount": _amount(
                "Minor units; with order_lines it must equal their sum (items minus "
                "the return fee).",
                minimum=1,
            ),
            "description": _text("Shown to the customer."),
            "reference": _text("Yours; appears in settlement reports."),
            "order_lines": {
                "type": "array",
                "maxItems": MAX_LINES,
                "items": _ref("SelectedLine"),
                "description": "Refund these captured lines. Without lines, "
                "refunded_amount is refunded from the oldest captures first. A line "
                "without reference (a free-text “Price adjustment”: name, quantity, "
                "unit_price, total_amount) makes the refund one by amount, and all "
                "its lines only describe it.",
            },
            "credit_invoice": {
                "type": "boolean",
                "enum": [False],
                "description": "Only for B2B invoice orders, which this API has none "
                "of.",
            },
        },
    },
    "MerchantReferences": {
        "type": "object",
        "description": "Both optional: a field left out keeps its value.",
        "properties": {
            "merchant_reference1": _text("Your order number, shown to the customer."),
            "merchant_reference2": _text("Internal reference."),
        },
    },
    "CheckoutLine": {
        "type": "object",
        "required": ["reference", "name", "quantity", "unit_price", "total_amount"],
        "properties": {
            "type": {
                "type": "string",
                "enum": [t for t in OrderLine.Type.values if t != "return_fee"],
                "default": "physical",
            },
            "reference": _text("SKU; unique in the order.", min_length=1),
            "name": _text("Shown to the customer.", min_length=1),
            "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
            "quantity_unit": _text("e.g. pcs", max_length=10),
            "unit_price": _amount("Incl. tax, excl. discount.", minimum=-MAX_AMOUNT),
            "tax_rate": _amount("Basis points: 2500 = 25%.", maximum=MAX_TAX_RATE),
            "total_discount_amount": _amount("Discount on the whole line."),
            "total_amount": _amount(
                "quantity * unit_price - total_discount_amount.", minimum=-MAX_AMOUNT
            ),
            "total_tax_amount": _amount(
                "Computed from tax_rate when left out.", minimum=-MAX_AMOUNT
            ),
        },
    },
    "CheckoutRequest": {
        "type": "object",
        "required": [
            "customer",
            "payment_product",
            "purchase_country",
            "purchase_currency",
            "locale",
            "order_amount",
            "order_lines",
        ],
        "properties": {
            "customer": {
                "type": "object",
                "required": ["email"],
                "properties": {
                    "email": {"type": "string", "format": "email", "maxLength": 254},
                    "name": _text("The customer's name.", max_length=200),
                    "date_of_birth": {
                        "type": "string",
                        "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                        "example": "1981-09-06",
                    },
                    "national_identification_number": _text("If the market uses one."),
                },
            },
            "billing_address": _ref("Address"),
            "shipping_address": _ref("Address"),
            "merchant_data": _text("Your data about the order.", max_length=6000),
            "selected_shipping_option": {
                "type": "object",
                "properties": {
                    "id": _text("Your id of the option."),
                    "name": _text("Shown to the customer."),
                    "carrier": _text("e.g. DHL."),
                    "class": _text("e.g. standard."),
                    "method": _text("e.g. Home."),
                    "type": _text("e.g. postal."),
                    "price": _amount("Incl. tax."),
                    "tax_amount": _amount("Tax in the price."),
                    "tax_rate": _amount("Basis points.", maximum=MAX_TAX_RATE),
                },
            },
            "payment_product": {"type": "string", "enum": PaymentProduct.values},
            "purchase_country": {
                "type": "string",
                "pattern": "^[A-Z]{2}$",
                "example": "DE",
            },
            "purchase_currency": {
                "type": "string",
                "pattern": "^[A-Z]{3}$",
                "example": "EUR",
                "description": "Must be the merchant's currency.",
            },
            "locale": {
                "type": "string",
                "pattern": "^[a-z]{2}[-_][A-Z]{2}$",
                "example": "de-DE",
            },
            "order_amount": _amount("The sum of the lines' total_amount.", minimum=1),
            "order_lines": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_LINES,
                "items": _ref("CheckoutLine"),
            },
            "merchant_reference1": _text("Your order number, shown to the customer."),
            "merchant_reference2": _text("Internal reference."),
        },
    },
    "AuthorizationRequest": {
        "type": "object",
        "required": ["order_amount", "order_lines"],
        "properties": {
            "order_amount": _amount(
                "The new order amount: at least what is captured, at most what was "
                "authorized at checkout; the sum of the lines."
            ),
            "description": _text("What changed, for the customer."),
            "order_lines": {
                "type": "array",
                "maxItems": MAX_LINES,
                "items": _ref("AuthorizationLine"),
                "description": "The order's whole new set of lines. A line with "
                "captured units keeps its type, unit price, tax rate and at least its "
                "captured quantity; a line left out is removed.",
            },
        },
    },
    "CustomerDetailsRequest": {
        "type": "object",
        "properties": {"shipping_address": _ref("Address")},
    },
    "ShippingInfoRequest": {
        "type": "object",
        "required": ["shipping_info"],
        "properties": {
            "shipping_info": {
                "type": "array",
                "minItems": 1,
                "maxItems": 500,
                "items": _ref("ShippingInfo"),
            }
        },
    },
    "ExtendDueDateRequest": {
        "type": "object",
        "required": ["number_of_days"],
        "properties": {
            "number_of_days": {
                "type": "integer",
                "minimum": 1,
                "maximum": 365,
                "description": "One of the options' number_of_days.",
            }
        },
    },
    "CheckoutResponse": {
        "type": "object",
        "required": ["order_id", "klarna_reference", "status"],
        "properties": {
            "order_id": {"type": "string", "format": "uuid"},
            "klarna_reference": {"type": "string"},
            "status": {"type": "string", "enum": OrderStatus.values},
        },
    },
}

SCHEMAS["AuthorizationLine"] = {
    **SCHEMAS["CheckoutLine"],
    "properties": {
        **SCHEMAS["CheckoutLine"]["properties"],
        "quantity": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_QUANTITY,
            "description": "A line with quantity 0 is left out.",
        },
    },
}

ERROR_DESCRIPTIONS = {
    "400": "Malformed: broken JSON, wrong types, missing fields, values out of range "
    "(BAD_VALUE). The message names the field.",
    "401": "Missing, wrong or revoked credentials (UNAUTHORIZED).",
    "403": "The order does not allow it: REFUND_NOT_ALLOWED, CAPTURE_NOT_ALLOWED, "
    "CANCEL_NOT_ALLOWED, NOT_ALLOWED.",
    "404": "No such order for this merchant (NO_SUCH_ORDER), capture or refund.",
    "409": f"The {IDEMPOTENCY_HEADER} was used for another operation (CONFLICT).",
    "413": f"The body is larger than {MAX_BODY_BYTES} bytes (PAYLOAD_TOO_LARGE).",
    "415": "The body is not application/json (UNSUPPORTED_MEDIA_TYPE).",
    "422": "Well-formed but does not fit the order: unknown line references, amounts "
    "that do not add up (UNPROCESSABLE_ENTITY).",
    "429": "Too many requests for this merchant (TOO_MANY_REQUESTS); see Retry-After.",
}

_CORRELATION = {
    CORRELATION_HEADER: {
        "description": "This request's id, also in the portal's API log.",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
}


def _error(status: str) -> dict:
    headers = dict(_CORRELATION)
    if status == "401":
        headers["WWW-Authenticate"] = {"required": True, "schema": {"type": "string"}}
    if status == "429":
        headers["Retry-After"] = {
            "description": "Seconds until the next window.",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        }
    return {
        "description": ERROR_DESCRIPTIONS[status],
        "headers": headers,
        "content": {"application/json": {"schema": _ref("Error")}},
    }


def _json(description: str, schema: str, example=None) -> dict:
    content = {"schema": _ref(schema)}
    if example is not None:
        content["example"] = example
    return {
        "description": description,
        "headers": dict(_CORRELATION),
        "content": {"application/json": content},
    }


def _created(description: str, id_header: str, location: str, new_id: str) -> dict:
    return {
        "description": description,
        "headers": {
            **_CORRELATION,
            "Location": {
                "required": True,
                "schema": {"type": "string", "format": "uri"},
                "example": f"https://portal.example.com{location}",
            },
            id_header: {
                "required": True,
                "schema": {"type": "string", "format": "uuid"},
                "example": new_id,
            },
        },
    }


# Example responses (the test suite checks them against the schemas above).
_ORDER_PATH = f"/ordermanagement/v1/orders/{EXAMPLE_ORDER_ID}"
_ADDRESS = {
    "given_name": "Maja",
    "family_name": "Berg",
    "street_address": "Lindenstraße 5",
    "postal_code": "10115",
    "city": "Berlin",
    "country": "DE",
    "email": "maja@example.com",
}
_TRACKING = {
    "shipping_company": "DHL Paket",
    "shipping_method": "Home",
    "tracking_number": "00340434161094042557",
    "tracking_uri": "https://www.dhl.de/track?00340434161094042557",
}
EXAMPLE_CAPTURE = {
    "capture_id": EXAMPLE_CAPTURE_ID,
    "klarna_reference": "K4MADNY-1",
    "reference": "SHIP-100231-1",
    "description": "Shipped with DHL",
    "captured_amount": 20000,
    "refunded_amount": 10000,
    "captured_at": "2026-11-30T09:12:44Z",
    "order_lines": [
        {
            "type": "physical",
            "reference": "TSHIRT-1",
            "name": "T-shirt",
            "quantity": 2,
            "quantity_unit": "pcs",
            "unit_price": 10000,
            "tax_rate": 1900,
            "total_amount": 20000,
            "total_discount_amount": 0,
            "total_tax_amount": 3193,
        }
    ],
    "shipping_info": [_TRACKING],
    "billing_address": _ADDRESS,
    "shipping_address": _ADDRESS,
}
EXAMPLE_REFUND = {
    "refund_id": EXAMPLE_REFUND_ID,
    "reference": "RMA-5521",
    "description": "Returned T-shirt",
    "refunded_amount": 10000,
    "refunded_at": "2026-12-03T14:02:10Z",
    "order_lines": [
        {
            "type": "physical",
            "reference": "TSHIRT-1",
            "name": "T-shirt",
            "quantity": 1,
            "quantity_unit": "pcs",
            "unit_price": 10000,
            "tax_rate": 1900,
            "total_amount": 10000,
            "total_discount_amount": 0,
            "total_tax_amount": 1597,
        }
    ],
    "credit_invoice": False,
}
EXAMPLE_ORDER = {
    "order_id": EXAMPLE_ORDER_ID,
    "klarna_reference": "K4MADNY",
    "status": "PART_CAPTURED",
    "payment_product": "pay_later",
    "purchase_country": "DE",
    "purchase_currency": "EUR",
    "locale": "de-DE",
    "order_amount": 30000,
    "original_order_amount": 30000,
    "captured_amount": 20000,
    "refunded_amount": 10000,
    "remaining_authorized_amount": 10000,
    "merchant_reference1": "100231",
    "merchant_reference2": "",
    "created_at": "2026-11-29T18:40:02Z",
    "expires_at": "2026-12-27T18:40:02Z",
    "fraud_status": "ACCEPTED",
    "initial_payment_method": {
        "type": "INVOICE",
        "description": "Pay later in 30 days",
    },
    "customer": {"date_of_birth": "1990-04-12"},
    "billing_address": _ADDRESS,
    "shipping_address": _ADDRESS,
    "merchant_data": "",
    "shipping_info": [],
    "selected_shipping_option": {"id": "dhl-home", "name": "DHL", "price": 0},
    "order_lines": [
        {
            "type": "physical",
            "reference": "TSHIRT-1",
            "name": "T-shirt",
            "quantity": 3,
            "quantity_unit": "pcs",
            "unit_price": 10000,
            "tax_rate": 1900,
            "total_discount_amount": 0,
            "total_amount": 30000,
            "total_tax_amount": 4790,
            "captured_quantity": 2,
            "refunded_quantity": 1,
        }
    ],
    "captures": [EXAMPLE_CAPTURE],
    "refunds": [EXAMPLE_REFUND],
}
EXAMPLE_EXTENSION_OPTIONS = {
    "currency": "EUR",
    "options": [
        {"number_of_days": 7, "amount": 200},
        {"number_of_days": 14, "amount": 400},
        {"number_of_days": 30, "amount": 600},
    ],
}


_NO_CONTENT = {"description": "Done.", "headers": dict(_CORRELATION)}

_BODY_ERRORS = ("400", "401", "409", "413", "415", "429")


def _responses(success: dict, *errors: str) -> dict:
    return {**success, **{status: _error(status) for status in sorted(errors)}}


def _path_param(name: str, description: str, example: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "format": "uuid"},
        "example": example,
    }


ORDER_ID = _path_param("order_id", "The order's id.", EXAMPLE_ORDER_ID)
IDEMPOTENCY = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": "Repeat a request safely: within 24 hours the same key returns the "
    "first response and changes nothing, whatever the body (only the key matters, as "
    "at Klarna); on another operation it is a 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def _body(schema: str, example: dict) -> dict:
    return {
        "required": True,
        "content": {"application/json": {"schema": _ref(schema), "example": example}},
    }


def _action(
    summary: str,
    description: str,
    operation_id: str,
    *errors: str,
    tag: str = "Orders",
    parameters: tuple = (),
) -> dict:
    return {
        "post": {
            "tags": [tag],
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "parameters": [ORDER_ID, *parameters, IDEMPOTENCY],
            "responses": _responses(
                {"204": _NO_CONTENT}, "404", *_BODY_ERRORS, *errors
            ),
        }
    }


def _change(
    summary: str,
    description: str,
    operation_id: str,
    body: tuple[str, dict],
    *errors: str,
    tag: str = "Orders",
    parameters: tuple = (),
    body_required: bool = True,
) -> dict:
    """An operation with a JSON body that answers 204."""
    return {
        "tags": [tag],
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "parameters": [ORDER_ID, *parameters, IDEMPOTENCY],
        "requestBody": {**_body(*body), "required": body_required},
        "responses": _responses({"204": _NO_CONTENT}, "404", *_BODY_ERRORS, *errors),
    }


CAPTURE_ID = _path_param("capture_id", "The capture's id.", EXAMPLE_CAPTURE_ID)


@cache
def openapi_document() -> dict:
    om = "/ordermanagement/v1/orders/{order_id}"
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Order Management API",
            "version": "1.0.0",
            "description": (
                "Capture, refund, cancel and inspect orders from your own systems, "
                "the way the merchant portal does by hand. Shaped like Klarna's Order "
                "Management API: an integration written for it needs only this base "
                "URL and your credentials.\n\n"
                "Authenticate with HTTP Basic: the username and secret of an API "
                "credential (Settings → API credentials in the portal). Amounts are "
                "integers in minor units of the order's currency (10000 = 100.00 EUR). "
                f"Bodies are JSON, at most {MAX_BODY_BYTES} bytes, at most {MAX_LINES} "
                f"order lines, strings at most {MAX_TEXT} characters, amounts at most "
                f"{MAX_AMOUNT}. Send a {IDEMPOTENCY_HEADER} with every POST and PATCH "
                "to retry safely. Every response carries a "
                f"{CORRELATION_HEADER}; the portal's API log lists them."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"basicAuth": []}],
        "tags": [
            {
                "name": "Orders",
                "description": "Read an order; cancel, release, extend.",
            },
            {"name": "Captures", "description": "Capture what was shipped."},
            {"name": "Refunds", "description": "Refund captured items or amounts."},
            {
                "name": "Checkout",
                "description": "Place an authorized order (test hook).",
            },
        ],
        "paths": {
            om: {
                "get": {
                    "tags": ["Orders"],
                    "operationId": "getOrder",
                    "summary": "Get an order",
                    "description": "The order with its lines, captures (each with its "
                    "own refunded_amount) and refunds.",
                    "parameters": [ORDER_ID],
                    "responses": _responses(
                        {"200": _json("The order.", "Order", EXAMPLE_ORDER)},
                        "401",
                        "404",
                        "429",
                    ),
                }
            },
            f"{om}/captures": {
                "get": {
                    "tags": ["Captures"],
                    "operationId": "listCaptures",
                    "summary": "List captures",
                    "description": "The order's captures (invoices), oldest first.",
                    "parameters": [ORDER_ID],
                    "responses": _responses(
                        {
                            "200": _json(
                                "The captures.", "CaptureList", [EXAMPLE_CAPTURE]
                            )
                        },
                        "401",
                        "404",
                        "429",
                    ),
                },
                "post": {
                    "tags": ["Captures"],
                    "operationId": "createCapture",
                    "summary": "Capture",
                    "description": "Capture by order lines or by amount; never more "
                    "than the remaining authorization. Tracking sent as shipping_info "
                    "is kept with the capture and shown to the customer.",
                    "parameters": [ORDER_ID, IDEMPOTENCY],
                    "requestBody": _body(
                        "CaptureRequest",
                        {
                            "captured_amount": 20000,
                            "description": "Shipped with DHL",
                            "order_lines": [{"reference": "TSHIRT-1", "quantity": 2}],
                            "shipping_info": [_TRACKING],
                        },
                    ),
                    "responses": _responses(
                        {
                            "201": _created(
                                "Captured.",
                                "Capture-Id",
                                f"{_ORDER_PATH}/captures/{EXAMPLE_CAPTURE_ID}",
                                EXAMPLE_CAPTURE_ID,
                            )
                        },
                        "403",
                        "404",
                        "422",
                        *_BODY_ERRORS,
                    ),
                },
            },
            f"{om}/captures/{{capture_id}}": {
                "get": {
                    "tags": ["Captures"],
                    "operationId": "getCapture",
                    "summary": "Get a capture",
                    "parameters": [ORDER_ID, CAPTURE_ID],
                    "responses": _responses(
                        {"200": _json("The capture.", "Capture", EXAMPLE_CAPTURE)},
                        "401",
                        "404",
                        "429",
                    ),
                }
            },
            f"{om}/captures/{{capture_id}}/shipping-info": {
                "post": _change(
                    "Add shipping information to a capture",
                    "Append tracking entries to the capture (at most 500 in all); "
                    "the carrier and tracking number show on the order page and the "
                    "customer's page.",
                    "appendShippingInfo",
                    ("ShippingInfoRequest", {"shipping_info": [_TRACKING]}),
                    "422",
                    tag="Captures",
                    parameters=(CAPTURE_ID,),
                )
            },
            f"{om}/captures/{{capture_id}}/trigger-send-out": _action(
                "Send the invoice to the customer again",
                "The customer gets the invoice (amount, remaining payments and due "
                "dates) again by email and in the app.",
                "triggerSendOut",
                tag="Captures",
                parameters=(CAPTURE_ID,),
            ),
            f"{om}/captures/{{capture_id}}/extend-due-date-options": {
                "get": {
                    "tags": ["Captures"],
                    "operationId": "getOptionsForExtendDueDate",
                    "summary": "Options to extend a pay-later due date",
                    "description": "How many days a pay-later invoice's due date can "
                    "move and your fee for each: 1%, 2% or 3% of what is still owed "
                    "for 7, 14 or 30 days. Empty for other products, a paid invoice, "
                    "or one already extended.",
                    "parameters": [ORDER_ID, CAPTURE_ID],
                    "responses": _responses(
                        {
                            "200": _json(
                                "The options.",
                                "ExtendDueDateOptions",
                                EXAMPLE_EXTENSION_OPTIONS,
                            )
                        },
                        "401",
                        "404",
                        "429",
                    ),
                }
            },
            f"{om}/captures/{{capture_id}}/extend-due-date": {
                method: _change(
                    "Extend a pay-later due date",
                    "Move the invoice's due date later, once, for the option's fee "
                    "(deducted from your next payout). The customer owes the same, "
                    "later, and is told. PATCH as Klarna; POST is accepted too.",
                    f"extendDueDate{suffix}",
                    ("ExtendDueDateRequest", {"number_of_days": 14}),
                    "403",
                    tag="Captures",
                    parameters=(CAPTURE_ID,),
                )
                for method, suffix in (("patch", ""), ("post", "ByPost"))
            },
            f"{om}/refunds": {
                "get": {
                    "tags": ["Refunds"],
                    "operationId": "listRefunds",
                    "summary": "List refunds",
                    "description": "The order's refunds, oldest first.",
                    "parameters": [ORDER_ID],
                    "responses": _responses(
                        {"200": _json("The refunds.", "RefundList", [EXAMPLE_REFUND])},
                        "401",
                        "404",
                        "429",
                    ),
                },
                "post": {
                    "tags": ["Refunds"],
                    "operationId": "createRefund",
                    "summary": "Refund",
                    "description": "Refund captured order lines (optionally minus a "
                    "return fee line) or an amount. Over-refunds are refused with "
                    "REFUND_NOT_ALLOWED. The refund is deducted from your next payout.",
                    "parameters": [ORDER_ID, IDEMPOTENCY],
                    "requestBody": _body(
                        "RefundRequest",
                        {
                            "refunded_amount": 9500,
                            "description": "Returned T-shirt",
                            "order_lines": [
                                {
                                    "reference": "TSHIRT-1",
                                    "quantity": 1,
                                    "total_amount": 10000,
                                },
                                {
                                    "type": "return_fee",
                                    "name": "Return fee",
                                    "quantity": 1,
                                    "total_amount": -500,
                                },
                            ],
                        },
                    ),
                    "responses": _responses(
                        {
                            "201": _created(
                                "Refunded.",
                                "Refund-Id",
                                f"{_ORDER_PATH}/refunds/{EXAMPLE_REFUND_ID}",
                                EXAMPLE_REFUND_ID,
                            )
                        },
                        "403",
                        "404",
                        "422",
                        *_BODY_ERRORS,
                    ),
                },
            },
            f"{om}/refunds/{{refund_id}}": {
                "get": {
                    "tags": ["Refunds"],
                    "operationId": "getRefund",
                    "summary": "Get a refund",
                    "parameters": [
                        ORDER_ID,
                        _path_param("refund_id", "The refund's id.", EXAMPLE_REFUND_ID),
                    ],
                    "responses": _responses(
                        {"200": _json("The refund.", "Refund", EXAMPLE_REFUND)},
                        "401",
                        "404",
                        "429",
                    ),
                }
            },
            f"{om}/cancel": _action(
                "Cancel an order",
                "Only an order without captures: otherwise CANCEL_NOT_ALLOWED "
                "(“Order has previous captures. Cancel not possible.”).",
                "cancelOrder",
                "403",
            ),
            f"{om}/release-remaining-authorization": _action(
                "Release the remaining authorization",
                "Give up what is authorized and not captured; only for an order "
                "with captures that is not fully captured.",
                "releaseRemainingAuthorization",
                "403",
            ),
            f"{om}/extend-authorization-time": _action(
                "Extend the authorization time",
                "Push the expiry out by 7 days, never past 180 days after the order.",
                "extendAuthorizationTime",
                "403",
            ),
            f"{om}/merchant-references": {
                "patch": _change(
                    "Update merchant references",
                    "Overwrite the references given; both are optional. Refused "
                    "(403) on a cancelled order.",
                    "updateMerchantReferences",
                    ("MerchantReferences", {"merchant_reference1": "100231"}),
                    "403",
                    body_required=False,
                )
            },
            f"{om}/authorization": {
                "patch": _change(
                    "Update the order amount and lines",
                    "Before capture (an item is out of stock, the customer changed "
                    "their mind): the new amount and the whole new set of lines. "
                    "Never below what is captured, never above what was authorized "
                    "at checkout. The customer is told.",
                    "updateAuthorization",
                    (
                        "AuthorizationRequest",
                        {
                            "order_amount": 20000,
                            "description": "One T-shirt out of stock",
                            "order_lines": [
                                {
                                    "type": "physical",
                                    "reference": "TSHIRT-1",
                                    "name": "T-shirt",
                                    "quantity": 2,
                                    "unit_price": 10000,
                                    "tax_rate": 1900,
                                    "total_amount": 20000,
                                }
                            ],
                        },
                    ),
                    "403",
                    "422",
                )
            },
            f"{om}/customer-details": {
                "patch": _change(
                    "Update the shipping address",
                    "While something is left to ship. The billing address never "
                    "changes.",
                    "updateCustomerDetails",
                    ("CustomerDetailsRequest", {"shipping_address": _ADDRESS}),
                    "403",
                )
            },
            f"{om}/acknowledge": _action(
                "Acknowledge an order",
                "Record that your system received the order; repeats change nothing.",
                "acknowledgeOrder",
            ),
            f"{om}/shipping-info": {
                "post": _change(
                    "Add shipping information to the order",
                    "Append tracking entries to the order (at most 500 in all).",
                    "appendOrderShippingInfo",
                    ("ShippingInfoRequest", {"shipping_info": [_TRACKING]}),
                    "422",
                )
            },
            "/payments/v1/orders": {
                "post": {
                    "tags": ["Checkout"],
                    "operationId": "placeOrder",
                    "summary": "Place an authorized order",
                    "description": "The checkout hook: creates the customer if new and "
                    "an order authorized for order_amount.",
                    "parameters": [IDEMPOTENCY],
                    "requestBody": _body(
                        "CheckoutRequest",
                        {
                            "customer": {
                                "email": "maja@example.com",
                                "name": "Maja Berg",
                            },
                            "payment_product": "pay_in_4",
                            "purchase_country": "DE",
                            "purchase_currency": "EUR",
                            "locale": "de-DE",
                            "order_amount": 10000,
                            "order_lines": [
                                {
                                    "reference": "TSHIRT-1",
                                    "name": "T-shirt",
                                    "quantity": 1,
                                    "unit_price": 10000,
                                    "tax_rate": 1900,
                                    "total_amount": 10000,
                                },
                            ],
                            "merchant_reference1": "100231",
                        },
                    ),
                    "responses": _responses(
                        {
                            "201": {
                                **_json(
                                    "The order was placed.",
                                    "CheckoutResponse",
                                    {
                                        "order_id": EXAMPLE_ORDER_ID,
                                        "klarna_reference": "K4MADNY",
                                        "status": "AUTHORIZED",
                                    },
                                ),
                                "headers": {
                                    **_CORRELATION,
                                    "Location": {
                                        "required": True,
                                        "schema": {"type": "string", "format": "uri"},
                                        "example": "https://portal.example.com"
                                        + _ORDER_PATH,
                                    },
                                },
                            }
                        },
                        "422",
                        *_BODY_ERRORS,
                    ),
                }
            },
        },
        "components": {
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
            "schemas": SCHEMAS,
        },
    }


# The HTML reference page -------------------------------------------------------------


def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].removeprefix(_REF)]
    return schema


def _constraints(schema: dict) -> str:
    parts = []
    if "enum" in schema:
        parts.append("one of " + ", ".join(str(v) for v in schema["enum"]))
    if "minimum" in schema or "maximum" in schema:
        parts.append(f"{schema.get('minimum', '…')} to {schema.get('maximum', '…')}")
    if "maxLength" in schema:
        parts.append(f"at most {schema['maxLength']} characters")
    if "maxItems" in schema:
        parts.append(f"at most {schema['maxItems']} items")
    if "pattern" in schema:
        parts.append(f"like {schema.get('example', schema['pattern'])}")
    if "format" in schema:
        parts.append(schema["format"])
    return "; ".join(parts)


def schema_fields(document: dict, schema: dict, prefix: str = "") -> list[dict]:
    """Flatten a schema into rows: ``order_lines[].reference``, type, required…"""
    schema = _resolve(document, schema)
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        prop = _resolve(document, prop)
        kind = prop.get("type", "object")
        items = _resolve(document, prop.get("items", {})) if kind == "array" else None
        rows.append(
            {
                "name": f"{prefix}{name}",
                "type": f"array of {items.get('type', 'object')}" if items else kind,
                "required": name in required,
                "description": prop.get("description", ""),
                "constraints": _constraints(prop),
            }
        )
        if kind == "object" and "properties" in prop:
            rows += schema_fields(document, prop, f"{prefix}{name}.")
        elif items and "properties" in items:
            rows += schema_fields(document, items, f"{prefix}{name}[].")
    return rows


_REASONS = {"200": "OK", "201": "Created", "204": "No Content"}


def example_request(method: str, path: str, operation: dict) -> str:
    """The operation as an HTTP request with the document's example ids and body."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            path = path.replace(f"{{{parameter['name']}}}", parameter["example"])
    lines = [f"{method.upper()} {path}"]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body:
        lines += [
            "Content-Type: application/json",
            "",
            json.dumps(body["example"], indent=2),
        ]
    return "\n".join(lines)


def example_response(operation: dict) -> str:
    """The success response as HTTP: status line, example headers, example body."""
    status, response = next(
        (code, r) for code, r in operation["responses"].items() if code.startswith("2")
    )
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}"]
    for name, header in response.get("headers", {}).items():
        if "example" in header:
            lines.append(f"{name}: {header['example']}")
    body = response.get("content", {}).get("application/json")
    if body and "example" in body:
        lines += [
            "Content-Type: application/json",
            "",
            json.dumps(body["example"], indent=2),
        ]
    return "\n".join(lines)


def reference_sections(document: dict) -> list[dict]:
    """The document as tag sections of operations, ready for a template."""
    sections = {tag["name"]: {**tag, "operations": []} for tag in document["tags"]}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/json")
            )
            sections[operation["tags"][0]]["operations"].append(
                {
                    "id": operation["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": operation["summary"],
                    "description": operation.get("description", ""),
                    "parameters": operation.get("parameters", []),
                    "fields": schema_fields(document, body["schema"]) if body else [],
                    "example": json.dumps(body["example"], indent=2) if body else "",
                    "example_request": example_request(method, path, operation),
                    "example_response": example_response(operation),
                    "responses": [
                        {"status": status, "description": response["description"]}
                        for status, response in operation["responses"].items()
                    ],
                }
            )
    return list(sections.values())
