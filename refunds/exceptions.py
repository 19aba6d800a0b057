"""Why a refund was refused. A refused refund changes nothing.

Messages are in the active language when raised (the merchant's on the refund
form); the API answers in English (``portal.api.endpoint``), as Klarna does.

``code`` is the specific, stable reason; ``error_code`` the Klarna-style API code.
"""

from django.utils.translation import gettext as _

from portal.exceptions import DomainError, InvalidRequest

__all__ = ["IdempotencyConflict", "InvalidRequest", "RefundChanged", "RefundNotAllowed"]


class RefundNotAllowed(DomainError):
    """A rule forbids this refund (over-refund, nothing captured, fee rules...)."""

    error_code = "REFUND_NOT_ALLOWED"


class IdempotencyConflict(DomainError):
    """The idempotency key was used for a different request within 24 hours."""

    error_code = "CONFLICT"
    http_status = 409


class RefundChanged(DomainError):
    """The order changed between preview and confirmation; ``plan`` is the fresh one."""

    error_code = "CONFLICT"
    http_status = 409

    def __init__(self, plan):
        super().__init__(
            "ORDER_CHANGED",
            _(
                "The order changed since your preview (someone else refunded or "
                "captured). Check the updated preview and confirm again."
            ),
        )
        self.plan = plan
