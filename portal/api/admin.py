"""Staff views of API credentials, the request log and idempotency records.

Credentials are issued by merchant admins in the portal (the secret is shown to
them once); staff can see and revoke them here, not create them.
"""

from django.contrib import admin
from django.http import HttpRequest

from .models import (
    ApiAuthFailure,
    ApiCredential,
    ApiIdempotencyRecord,
    ApiRequestLog,
    DescriptiveRefundLine,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ApiCredential)
class ApiCredentialAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "merchant",
        "username",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["merchant", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "username", "merchant__name"]
    readonly_fields = [
        "merchant",
        "name",
        "username",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    exclude = ["secret_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected credentials", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset) -> None:
        for credential in queryset:
            credential.revoke()
        self.message_user(request, f"Revoked {queryset.count()} credential(s).")


@admin.register(ApiRequestLog)
class ApiRequestLogAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "merchant",
        "method",
        "path",
        "status",
        "error_code",
        "correlation_id",
        "duration_ms",
    ]
    list_filter = ["status", "method", "replayed"]
    search_fields = ["=correlation_id", "path", "error_code", "merchant__name"]
    list_select_related = ["merchant"]
    show_full_result_count = False


@admin.register(ApiIdempotencyRecord)
class ApiIdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "key",
        "merchant",
        "method",
        "path",
        "response_status",
        "created_at",
    ]
    search_fields = ["=key"]
    list_select_related = ["merchant"]


@admin.register(ApiAuthFailure)
class ApiAuthFailureAdmin(ReadOnlyAdmin):
    list_display = [
        "hour",
        "ip_address",
        "failures",
        "refused",
        "last_username",
        "last_at",
    ]
    search_fields = ["=ip_address", "=last_username"]
    date_hierarchy = "hour"


@admin.register(DescriptiveRefundLine)
class DescriptiveRefundLineAdmin(ReadOnlyAdmin):
    """Lines a merchant's system sent with a refund by amount (descriptive)."""

    list_display = ["refund", "name", "quantity", "total_amount"]
    list_select_related = ["refund__order"]
