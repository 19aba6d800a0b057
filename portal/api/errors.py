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


def from_domain_error(error: DomainError) -> ApiError:
    return ApiError(error.http_status, error.error_code, error.message)


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
