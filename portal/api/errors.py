"""API errors: ``{"error_code", "error_messages": [...], "correlation_id"}``.

``ApiError`` is raised for what the API itself refuses (authentication, limits,
malformed bodies); ``portal.exceptions.DomainError`` for what a model refused.
Both become the same JSON body; nothing was changed in either case.
"""

from django.http import JsonResponse

from portal.exceptions import DomainError


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error_code: str,
        *messages: str,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(*messages)
        self.status = status
        self.error_code = error_code
        self.messages = list(messages)
        self.headers = headers or {}


def bad_value(field: str, message: str) -> ApiError:
    """400: the body does not have the shape the API documents."""
    return ApiError(400, "BAD_VALUE", f"{field}: {message}")


def unprocessable(field: str, message: str) -> ApiError:
    """422: well-formed, but it does not fit the order."""
    return ApiError(422, "UNPROCESSABLE_ENTITY", f"{field}: {message}")


def no_such_order(order_id: str) -> ApiError:
    return ApiError(
        404, "NO_SUCH_ORDER", f"There is no order with id “{order_id[:64]}”."
    )


#: The model's field names for what the API body calls differently.
_API_FIELDS = {
    "lines": "order_lines",
    "return_fee": "order_lines",
    "amount": "refunded_amount",
}


def api_field(field: str) -> str:
    if field.startswith("line-"):
        return "order_lines"
    return _API_FIELDS.get(field, field)


def from_domain_error(error: DomainError) -> ApiError:
    """The model's refusal as the API answers it. A 422 names the body's field
    (unless the message already does); refusals (403, 409) keep the model's words,
    which begin with the reason (“Over refund is not allowed…”)."""
    message = error.message
    if error.http_status == 422 and error.field:
        field = api_field(error.field)
        if field not in message:
            message = f"{field}: {message}"
    return ApiError(error.http_status, error.error_code, message)


def error_response(error: ApiError, correlation_id: str) -> JsonResponse:
    response = JsonResponse(
        {
            "error_code": error.error_code,
            "error_messages": error.messages,
            "correlation_id": correlation_id,
        },
        status=error.status,
    )
    for name, value in error.headers.items():
        response[name] = value
    return response
