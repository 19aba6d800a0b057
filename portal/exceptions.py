"""Domain errors: a rule said no. Views turn them into form errors, the API into
``{error_code, error_messages, correlation_id}`` bodies; either way nothing changed.

``code`` is the specific, stable reason (``OVER_REFUND``); ``error_code`` and
``http_status`` are the Klarna Order Management equivalents the API answers with.
"""


class DomainError(Exception):
    error_code = "NOT_ALLOWED"
    http_status = 403

    def __init__(self, code: str, message: str, *, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class CaptureNotAllowed(DomainError):
    error_code = "CAPTURE_NOT_ALLOWED"


class CancelNotAllowed(DomainError):
    error_code = "CANCEL_NOT_ALLOWED"


class OrderActionNotAllowed(DomainError):
    error_code = "NOT_ALLOWED"


class InvalidRequest(DomainError):
    """Malformed input: wrong quantities, unknown lines, amounts out of range."""

    error_code = "UNPROCESSABLE_ENTITY"
    http_status = 422
