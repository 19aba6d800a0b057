"""Staff admin for the customer side. Money is read-only and shown formatted;
actions call the same model methods as the customer pages and the worker."""

from datetime import timedelta

from django.contrib import admin, messages
from django.utils import timezone

from portal.admin import (
    PlannedSearchMixin,
    ReadOnlyAdminMixin,
    WrittenByVerbsAdminMixin,
    money_display,
)
from portal.exceptions import DomainError
from portal.money import format_money

from .models import (
    BalanceEntry,
    Customer,
    DueDateExtension,
    Installment,
    LoginCode,
    Notification,
    PaymentMethod,
    PaymentPlan,
    Repayment,
    RepaymentStatus,
    ReturnReport,
)


def _order_currency(order) -> tuple[str, str]:
    return order.purchase_currency, order.locale


class PaymentMethodInline(admin.TabularInline):
    model = PaymentMethod
    extra = 0
    fields = ["kind", "label", "status", "is_default", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Customer)
class CustomerAdmin(PlannedSearchMixin, admin.ModelAdmin):
    list_display = ["name", "email", "locale", "created_at"]
    # CustomerQuerySet.search (PlannedSearchMixin): Django's word-by-word
    # search, accents optional.
    search_fields = ["email", "name"]
    search_help_text = (
        "Every word somewhere in the name, accents optional (muller finds "
        "Müller), or in the email (berg@, @example.com)."
    )
    readonly_fields = ["balance", "created_at"]
    inlines = [PaymentMethodInline]

    @admin.display(description="Account balance")
    def balance(self, customer: Customer) -> str:
        balances = customer.balances()
        return (
            ", ".join(
                format_money(amount, currency, customer.locale)
                for currency, amount in balances.items()
            )
            or "—"
        )


@admin.register(PaymentMethod)
class PaymentMethodAdmin(admin.ModelAdmin):
    list_display = ["label", "customer", "kind", "status", "is_default"]
    list_filter = ["status", "kind"]
    list_select_related = ["customer"]
    search_fields = ["customer__email", "label"]
    raw_id_fields = ["customer"]


class InstallmentInline(admin.TabularInline):
    model = Installment
    extra = 0
    can_delete = False
    fields = [
        "sequence",
        "due_date",
        "amount_shown",
        "original_shown",
        "status",
        "paid_at",
    ]
    readonly_fields = fields

    amount_shown = money_display(
        "amount", lambda i: _order_currency(i.plan.order), "Amount"
    )
    original_shown = money_display(
        "original_amount", lambda i: _order_currency(i.plan.order), "Original amount"
    )

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PaymentPlan)
class PaymentPlanAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A plan is opened by its capture and changed only by payments and refunds;
    deleting it would take its installments along and break every refund of the
    order, so staff only look."""

    list_display = [
        "order",
        "customer",
        "product",
        "amount_shown",
        "fee_shown",
        "status",
    ]
    list_filter = ["product", "status"]
    list_select_related = ["order", "customer"]
    search_fields = [
        "customer__email",
        "order__reference",
        "order__merchant_reference1",
    ]
    readonly_fields = [
        "capture",
        "order",
        "customer",
        "payment_method",
        "product",
        "amount_shown",
        "fee_shown",
        "service_fee_refunded",
        "status",
        "created_at",
    ]
    exclude = ["amount", "service_fee"]
    inlines = [InstallmentInline]
    amount_shown = money_display("amount", lambda p: _order_currency(p.order), "Amount")
    fee_shown = money_display(
        "service_fee", lambda p: _order_currency(p.order), "Service fee"
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order", "customer")


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Overdue past 14 days"), ("no", "Within 14 days")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.overdue()
        if self.value() == "no":
            return queryset.exclude(pk__in=queryset.overdue().values("pk"))
        return queryset


@admin.register(Repayment)
class RepaymentAdmin(WrittenByVerbsAdminMixin, admin.ModelAdmin):
    list_display = [
        "repayment_id",
        "customer",
        "amount_shown",
        "status",
        "payment_method",
        "expected_by",
        "attempts",
        "failure_reason",
    ]
    list_filter = ["status", OverdueFilter]
    list_select_related = ["customer", "payment_method"]
    search_fields = ["customer__email", "refund__refund_id", "repayment_id"]
    readonly_fields = [
        "repayment_id",
        "customer",
        "plan",
        "refund",
        "payment_method",
        "amount_shown",
        "currency",
        "status",
        "expected_by",
        "process_after",
        "attempts",
        "failure_reason",
        "created_at",
        "updated_at",
        "completed_at",
    ]
    exclude = ["amount"]
    actions = ["retry_bounced", "resend_notification"]
    amount_shown = money_display(
        "amount", lambda r: (r.currency, r.customer.locale), "Amount"
    )

    @admin.action(
        description="Retry bounced repayment (send again)", permissions=["change"]
    )
    def retry_bounced(self, request, queryset):
        retried = 0
        for repayment in queryset.filter(status=RepaymentStatus.BOUNCED):
            try:
                repayment.reissue()
            except DomainError as error:
                self.message_user(
                    request, f"{repayment}: {error.message}", messages.ERROR
                )
            else:
                retried += 1
        self.message_user(
            request, f"{retried} repayment(s) scheduled to be sent again."
        )

    @admin.action(description="Resend the latest notification", permissions=["change"])
    def resend_notification(self, request, queryset):
        sent = 0
        for repayment in queryset:
            notification = repayment.notifications.order_by(
                "-created_at", "-pk"
            ).first()
            if notification is not None:
                notification.resend_email()
                sent += 1
        self.message_user(request, f"{sent} notification email(s) queued again.")


@admin.register(DueDateExtension)
class DueDateExtensionAdmin(WrittenByVerbsAdminMixin, admin.ModelAdmin):
    """Pay-later due dates moved later at a merchant's request (append-only)."""

    list_display = ["created_at", "plan", "number_of_days", "new_due_date", "fee"]
    list_select_related = ["plan__order"]
    readonly_fields = [
        "plan",
        "number_of_days",
        "fee",
        "new_due_date",
        "created_by",
        "channel",
        "created_at",
    ]
    exclude = ["fee_amount"]
    fee = money_display(
        "fee_amount", lambda e: _order_currency(e.plan.order), "Merchant's fee"
    )

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(BalanceEntry)
class BalanceEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "customer", "amount_shown", "description"]
    list_select_related = ["customer"]
    search_fields = ["customer__email", "description"]
    readonly_fields = [
        "customer",
        "amount_shown",
        "currency",
        "refund",
        "description",
        "created_at",
    ]
    exclude = ["amount"]
    amount_shown = money_display(
        "amount", lambda e: (e.currency, e.customer.locale), "Amount"
    )


class EmailStatusFilter(admin.SimpleListFilter):
    title = "email"
    parameter_name = "email"

    def lookups(self, request, model_admin):
        return [
            ("sent", "Sent"),
            ("pending", "Not sent yet"),
            ("uncertain", "Uncertain (may have been delivered)"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "sent":
            return queryset.filter(email_sent_at__isnull=False)
        if self.value() == "pending":
            return queryset.filter(
                email_sent_at__isnull=True, email_uncertain_at__isnull=True
            )
        if self.value() == "uncertain":
            return queryset.filter(
                email_sent_at__isnull=True, email_uncertain_at__isnull=False
            )
        return queryset


@admin.register(Notification)
class NotificationAdmin(WrittenByVerbsAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "customer",
        "kind",
        "title",
        "read_at",
        "email_status",
        "email_sent_at",
        "email_attempts",
    ]
    list_filter = ["kind", EmailStatusFilter]
    list_select_related = ["customer"]
    search_fields = ["customer__email", "title"]
    readonly_fields = [
        "customer",
        "kind",
        "order",
        "refund",
        "repayment",
        "title",
        "body",
        "created_at",
        "read_at",
        "email_sent_at",
        "email_attempts",
        "email_last_error",
        "email_started_at",
        "email_uncertain_at",
        "email_status",
        "message_id",
    ]
    actions = ["resend_notification"]

    @admin.action(description="Resend notification email", permissions=["change"])
    def resend_notification(self, request, queryset):
        for notification in queryset:
            notification.resend_email()
        self.message_user(
            request, f"{queryset.count()} notification email(s) queued again."
        )


@admin.register(ReturnReport)
class ReturnReportAdmin(WrittenByVerbsAdminMixin, admin.ModelAdmin):
    list_display = [
        "order",
        "customer",
        "tracking_number",
        "shipped_on",
        "pause_until",
        "resolution",
    ]
    list_filter = ["resolution"]
    list_select_related = ["order", "customer"]
    search_fields = ["customer__email", "tracking_number", "order__reference"]
    readonly_fields = [
        "order",
        "customer",
        "tracking_number",
        "shipped_on",
        "pause_until",
        "resolved_at",
        "resolution",
        "created_at",
    ]


class RecentFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"

    def lookups(self, request, model_admin):
        return [("hour", "Last hour")]

    def queryset(self, request, queryset):
        if self.value() == "hour":
            return queryset.filter(created_at__gte=timezone.now() - timedelta(hours=1))
        return queryset


@admin.register(LoginCode)
class LoginCodeAdmin(admin.ModelAdmin):
    """Who asked for codes, from where (the codes themselves are never stored)."""

    list_display = [
        "created_at",
        "email",
        "customer",
        "ip_address",
        "attempts",
        "used_at",
    ]
    list_filter = [RecentFilter]
    list_select_related = ["customer"]
    search_fields = ["email", "ip_address"]
    exclude = ["code_hash"]
    readonly_fields = [
        "email",
        "customer",
        "ip_address",
        "attempts",
        "created_at",
        "expires_at",
        "used_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False
