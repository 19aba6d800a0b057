"""The staff admin for merchants, their users, orders and settlement.

Money rows (captures, capture lines, ledger entries, payouts) are append-only and
written by the model verbs (``order.capture``, ``Payout.close_next``...), so the
admin shows them read-only; an order's amounts and status are read-only for the same
reason. Rows only verbs create have no "add" page, money rows have no "delete", and
a merchant's country and currency lock once it has orders (our rules, issue 14).
Amounts are formatted like the portal: in the order's currency and locale. The order
search is the portal's (``Order.objects.search``).

The order changelist is built to stay fast at 100,000+ orders: one query for the
page (``list_select_related``), no full ``COUNT(*)`` (``show_full_result_count``
off, and the unfiltered count is PostgreSQL's planner estimate).
"""

import uuid

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connection
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join

from customers.models import PaymentPlan
from refunds.models import Refund

from .models import (
    Capture,
    CaptureLine,
    LedgerEntry,
    Merchant,
    MerchantUser,
    Order,
    OrderEvent,
    OrderLine,
    Payout,
    RefundState,
    is_text_search,
)
from .money import format_money
from .prepared import planned_per_call

admin.site.site_header = "Refund portal staff admin"
admin.site.site_title = "Refund portal staff admin"
admin.site.index_title = "Merchants, orders, refunds and customers"

#: Below this many rows a real COUNT(*) is cheap and exact.
ESTIMATE_COUNT_ABOVE = 10_000


class EstimatedCountPaginator(Paginator):
    """A paginator that does not COUNT(*) a whole large table.

    Unfiltered, on PostgreSQL, the count is the planner's estimate of the table's
    rows (``pg_class.reltuples``, kept current by autovacuum/ANALYZE); a filtered
    list, a small table, a never-analyzed table or SQLite get the real count.
    """

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if connection.vendor == "postgresql" and not queryset.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [queryset.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] >= ESTIMATE_COUNT_ABOVE:
                return row[0]
        return queryset.count()


def money_display(field: str, currency_of, description: str):
    """A read-only column showing ``field`` formatted in its currency;
    ``currency_of(obj)`` gives ``(currency, locale)``."""

    def show(self, obj) -> str:
        currency, locale = currency_of(obj)
        return format_money(getattr(obj, field), currency, locale)

    show.short_description = description
    show.admin_order_field = field
    return show


def _payout_currency(payout) -> tuple[str, str]:
    return payout.currency, payout.merchant.locale


def money(amount: int | None, order: Order) -> str:
    """An amount of ``order`` as the portal shows it (``1.234,50 €``)."""
    return format_money(amount, order.purchase_currency, order.locale)


def basis_points_as_percent(rate_bp: int) -> str:
    """2500 -> "25%", 888 -> "8.88%" (integer arithmetic, no floats)."""
    whole, hundredths = divmod(rate_bp, 100)
    return f"{whole}.{hundredths:02d}".rstrip("0").rstrip(".") + "%"


def admin_link(obj, text=None) -> str:
    if obj is None:
        return "-"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else obj)


class PlannedSearchMixin:
    """An admin whose search box runs the model's own ``queryset.search(text)``
    planned for what it looks for: the page, whose rows are read while it
    renders, renders in ``planned_per_call`` (portal.prepared) when
    ``searches_text``."""

    def searches_text(self, text: str) -> bool:
        return bool(text.strip())

    def get_search_results(self, request, queryset, search_term):
        return queryset.search(search_term), False

    def changelist_view(self, request, extra_context=None):
        if not self.searches_text(request.GET.get("q", "")):
            return super().changelist_view(request, extra_context)
        with planned_per_call():
            response = super().changelist_view(request, extra_context)
            if hasattr(response, "render"):
                response.render()
        return response


class AppendOnlyAdminMixin:
    """Money and history rows are never deleted: later rows follow them, and the
    model verbs (which staff actions call) are the only way to change them."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class WrittenByVerbsAdminMixin(AppendOnlyAdminMixin):
    """Rows only model verbs create (a refund's repayment, a customer's return
    report...): an admin "add" form could only show read-only fields and fail on
    save, so there is none. Change stays, for the admin actions that call verbs."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdminMixin(WrittenByVerbsAdminMixin):
    """Rows written only by model verbs: staff may look, never add, edit or delete."""

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True


# Merchants and their users -----------------------------------------------------


class MerchantUserInline(admin.TabularInline):
    model = MerchantUser
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "country",
        "currency",
        "locale",
        "shipping_fees_refundable",
        "store_credit_only",
        "fee_rate_bp",
        "created_at",
    ]
    list_filter = [
        "country",
        "currency",
        "shipping_fees_refundable",
        "store_credit_only",
    ]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at"]
    inlines = [MerchantUserInline]
    actions = ["close_next_payout"]
    #: What a merchant's orders, ledger and payouts were made in: fixed once it
    #: has orders (a USD store's orders and payouts cannot become EUR).
    LOCKED_WITH_ORDERS = ("country", "currency")

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.orders.exists():
            readonly += self.LOCKED_WITH_ORDERS
        return readonly

    def has_delete_permission(self, request, obj=None) -> bool:
        # A merchant with orders has money rows; one without may go.
        if obj is not None and obj.orders.exists():
            return False
        return super().has_delete_permission(request, obj)

    @admin.action(description="Close the next payout", permissions=["change"])
    def close_next_payout(self, request, queryset) -> None:
        for merchant in queryset:
            payout = Payout.close_next(merchant)
            self.message_user(
                request,
                f"{merchant}: payout #{payout.number} closed with "
                f"{payout.entry_count} transactions, total "
                f"{format_money(payout.total, payout.currency, merchant.locale)}.",
                messages.SUCCESS,
            )


@admin.register(MerchantUser)
class MerchantUserAdmin(admin.ModelAdmin):
    list_display = ["user", "email", "merchant", "role"]
    list_filter = ["role", "merchant"]
    search_fields = ["user__username", "user__email", "merchant__name"]
    list_select_related = ["user", "merchant"]
    autocomplete_fields = ["user", "merchant"]

    @admin.display(description="Email", ordering="user__email")
    def email(self, obj: MerchantUser) -> str:
        return obj.user.email


# Orders ------------------------------------------------------------------------


class RefundStateFilter(admin.SimpleListFilter):
    title = "refund state"
    parameter_name = "refund_state"

    def lookups(self, request, model_admin):
        return RefundState.choices

    def queryset(self, request, queryset):
        if self.value() in RefundState.values:
            return queryset.with_refund_state(self.value())
        return queryset


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    show_change_link = False
    fields = [
        "reference",
        "name",
        "type",
        "quantity",
        "unit_price_display",
        "tax_rate_display",
        "discount_display",
        "total_display",
        "captured_quantity",
        "refunded_quantity",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order")

    @admin.display(description="Unit price")
    def unit_price_display(self, obj: OrderLine) -> str:
        return money(obj.unit_price, obj.order)

    @admin.display(description="Tax rate")
    def tax_rate_display(self, obj: OrderLine) -> str:
        return basis_points_as_percent(obj.tax_rate)

    @admin.display(description="Discount")
    def discount_display(self, obj: OrderLine) -> str:
        return money(obj.total_discount_amount, obj.order)

    @admin.display(description="Total")
    def total_display(self, obj: OrderLine) -> str:
        return money(obj.total_amount, obj.order)


class CaptureInline(ReadOnlyInline):
    model = Capture
    fields = [
        "capture_id",
        "captured_display",
        "refunded_display",
        "reference",
        "channel",
        "created_by",
        "created_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order", "created_by")

    @admin.display(description="Captured")
    def captured_display(self, obj: Capture) -> str:
        return money(obj.captured_amount, obj.order)

    @admin.display(description="Refunded")
    def refunded_display(self, obj: Capture) -> str:
        return money(obj.refunded_amount, obj.order)


class OrderRefundInline(ReadOnlyInline):
    """The order's refunds, read-only (they are append-only)."""

    fields = [
        "refund_id",
        "kind",
        "items_display",
        "fee_display",
        "refunded_display",
        "store_credit",
        "reference",
        "created_by",
        "created_at",
    ]
    readonly_fields = fields
    model = Refund

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order", "created_by")

    @admin.display(description="Items")
    def items_display(self, obj) -> str:
        return money(obj.items_amount, obj.order)

    @admin.display(description="Return fee")
    def fee_display(self, obj) -> str:
        return money(obj.fee_amount, obj.order)

    @admin.display(description="Refunded")
    def refunded_display(self, obj) -> str:
        return money(obj.refunded_amount, obj.order)


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    show_change_link = False
    fields = ["kind", "amount_display", "created_by", "created_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order", "created_by")

    @admin.display(description="Amount")
    def amount_display(self, obj: OrderEvent) -> str:
        return money(obj.amount, obj.order)


@admin.register(Order)
class OrderAdmin(PlannedSearchMixin, AppendOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "reference",
        "created_at",
        "merchant",
        "customer_email",
        "store_reference",
        "payment_product",
        "status_display",
        "order_amount_display",
        "captured_display",
        "refunded_display",
    ]
    list_filter = [
        "status",
        RefundStateFilter,
        "payment_product",
        "purchase_country",
        "created_at",
        "merchant",
    ]
    # The portal's order search (Order.objects.search); see get_search_results.
    search_fields = ["reference"]
    search_help_text = (
        "Order id, start of the reference (hh9wz), part of the store's order "
        "number (10886), start of an email (maja@), part of an email "
        "(example.org) or of a name, accents optional (muller)."
    )
    list_select_related = ["merchant", "customer"]
    list_per_page = 50
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("reference", "order_id"),
                    ("merchant", "customer", "payment_method"),
                    ("merchant_reference1", "merchant_reference2"),
                ]
            },
        ),
        (
            "Purchase",
            {
                "fields": [
                    (
                        "payment_product",
                        "purchase_country",
                        "purchase_currency",
                        "locale",
                    ),
                    ("created_at", "expires_at", "released_at"),
                ]
            },
        ),
        (
            "Amounts (changed only by captures and refunds)",
            {
                "fields": [
                    ("status", "refund_state_display"),
                    ("order_amount_display", "original_order_amount_display"),
                    ("captured_display", "refunded_display"),
                    ("remaining_authorized_display", "refundable_display"),
                ]
            },
        ),
    ]
    readonly_fields = [
        "order_id",
        "reference",
        "merchant",
        "customer",
        "payment_method",
        "purchase_country",
        "purchase_currency",
        "locale",
        "payment_product",
        "created_at",
        "expires_at",
        "released_at",
        "status",
        "refund_state_display",
        "order_amount_display",
        "original_order_amount_display",
        "captured_display",
        "refunded_display",
        "remaining_authorized_display",
        "refundable_display",
    ]
    inlines = [OrderLineInline, CaptureInline, OrderRefundInline, OrderEventInline]
    actions = ["verify_totals"]

    def has_add_permission(self, request) -> bool:
        # Orders come from checkout (the API); an order's lines and amounts are
        # fixed at authorization.
        return False

    def searches_text(self, text: str) -> bool:
        # An order id has one best plan; a text's depends on the text.
        return is_text_search(text)

    def save_model(self, request, obj: Order, form, change) -> None:
        # Only the merchant references are editable; the verb records the change
        # on the order's timeline.
        if change and {"merchant_reference1", "merchant_reference2"} & set(
            form.changed_data
        ):
            obj.update_merchant_references(
                obj.merchant_reference1, obj.merchant_reference2, by=request.user
            )

    @admin.action(description="Verify totals")
    def verify_totals(self, request, queryset) -> None:
        checked, problems = 0, []
        for order in queryset:
            checked += 1
            problems += [f"{order.reference}: {p}" for p in order.verify_totals()]
        if problems:
            self.message_user(
                request,
                f"{len(problems)} disagreement(s) in {checked} order(s): "
                + "; ".join(problems),
                messages.ERROR,
            )
        else:
            self.message_user(
                request,
                f"{checked} order(s) verified: cached totals agree with their "
                "captures and refunds.",
                messages.SUCCESS,
            )

    @admin.display(description="Customer", ordering="customer__email")
    def customer_email(self, obj: Order) -> str:
        return obj.customer.email

    @admin.display(description="Store order", ordering="merchant_reference1")
    def store_reference(self, obj: Order) -> str:
        return obj.merchant_reference1

    @admin.display(description="Status", ordering="status")
    def status_display(self, obj: Order) -> str:
        if obj.refund_state == RefundState.NONE:
            return obj.get_status_display()
        return f"{obj.get_status_display()}, {obj.get_refund_state_display().lower()}"

    @admin.display(description="Refund state")
    def refund_state_display(self, obj: Order) -> str:
        return obj.get_refund_state_display()

    @admin.display(description="Amount", ordering="order_amount")
    def order_amount_display(self, obj: Order) -> str:
        return money(obj.order_amount, obj)

    @admin.display(description="Original amount")
    def original_order_amount_display(self, obj: Order) -> str:
        return money(obj.original_order_amount, obj)

    @admin.display(description="Captured", ordering="captured_amount")
    def captured_display(self, obj: Order) -> str:
        return money(obj.captured_amount, obj)

    @admin.display(description="Refunded", ordering="refunded_amount")
    def refunded_display(self, obj: Order) -> str:
        return money(obj.refunded_amount, obj)

    @admin.display(description="Remaining authorized")
    def remaining_authorized_display(self, obj: Order) -> str:
        return money(obj.remaining_authorized_amount, obj)

    @admin.display(description="Refundable")
    def refundable_display(self, obj: Order) -> str:
        return money(obj.refundable_amount, obj)


@admin.register(OrderLine)
class OrderLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "reference",
        "name",
        "order",
        "type",
        "quantity",
        "total_display",
        "captured_quantity",
        "refunded_quantity",
    ]
    list_filter = ["type"]
    search_fields = ["=order__reference", "reference", "name"]
    list_select_related = ["order"]
    show_full_result_count = False

    @admin.display(description="Total", ordering="total_amount")
    def total_display(self, obj: OrderLine) -> str:
        return money(obj.total_amount, obj.order)


class CaptureLineInline(ReadOnlyInline):
    model = CaptureLine
    show_change_link = False
    fields = [
        "order_line",
        "unit_start",
        "quantity",
        "amount_display",
        "refunded_quantity",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order_line__order")

    @admin.display(description="Amount")
    def amount_display(self, obj: CaptureLine) -> str:
        return money(obj.amount, obj.order_line.order)


@admin.register(Capture)
class CaptureAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "capture_id",
        "order_link",
        "captured_display",
        "refunded_display",
        "reference",
        "channel",
        "created_by",
        "created_at",
    ]
    list_filter = ["channel", "created_at"]
    search_fields = ["=order__reference", "=reference", "=order__customer__email"]
    list_select_related = ["order", "created_by"]
    show_full_result_count = False
    date_hierarchy = "created_at"
    readonly_fields = [
        "capture_id",
        "order_link",
        "captured_display",
        "refunded_display",
        "description",
        "reference",
        "channel",
        "created_by",
        "created_at",
        "payment_plan",
    ]
    fields = [
        ("capture_id", "order_link"),
        ("captured_display", "refunded_display"),
        ("description", "reference"),
        ("channel", "created_by", "created_at"),
        "payment_plan",
    ]
    inlines = [CaptureLineInline]

    def get_search_results(self, request, queryset, search_term):
        try:
            capture_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(capture_id=capture_id), False

    @admin.display(description="Order", ordering="order__reference")
    def order_link(self, obj: Capture) -> str:
        return admin_link(obj.order)

    @admin.display(description="Customer's payment plan")
    def payment_plan(self, obj: Capture) -> str:
        """The plan this capture opened and its installments, as they stand."""
        plan = PaymentPlan.objects.filter(capture=obj).first()
        if plan is None:
            return "-"
        rows = format_html_join(
            "",
            "<li>{}. {} due {}: {}</li>",
            (
                (
                    i.sequence,
                    money(i.amount, obj.order),
                    i.due_date,
                    i.get_status_display(),
                )
                for i in plan.installments.all()
            ),
        )
        return format_html(
            "{} ({})<ul>{}</ul>", admin_link(plan), plan.get_status_display(), rows
        )

    @admin.display(description="Captured", ordering="captured_amount")
    def captured_display(self, obj: Capture) -> str:
        return money(obj.captured_amount, obj.order)

    @admin.display(description="Refunded", ordering="refunded_amount")
    def refunded_display(self, obj: Capture) -> str:
        return money(obj.refunded_amount, obj.order)


@admin.register(CaptureLine)
class CaptureLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "capture",
        "order_line",
        "quantity",
        "amount_display",
        "refunded_quantity",
    ]
    search_fields = ["=capture__order__reference", "order_line__reference"]
    list_select_related = ["capture__order", "order_line__order"]
    show_full_result_count = False

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: CaptureLine) -> str:
        return money(obj.amount, obj.order_line.order)


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["order", "kind", "amount_display", "created_by", "created_at"]
    list_filter = ["kind", "created_at"]
    search_fields = ["=order__reference"]
    list_select_related = ["order", "created_by"]
    show_full_result_count = False

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: OrderEvent) -> str:
        return money(obj.amount, obj.order)


# Settlement --------------------------------------------------------------------


class InNextPayoutFilter(admin.SimpleListFilter):
    title = "payout"
    parameter_name = "settled"

    def lookups(self, request, model_admin):
        return [("no", "In the next payout"), ("yes", "Paid out")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(payout__isnull=True)
        if self.value() == "yes":
            return queryset.filter(payout__isnull=False)
        return queryset


def ledger_money(amount: int, entry) -> str:
    return format_money(amount, entry.currency, entry.merchant.locale)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "merchant",
        "kind",
        "amount_display",
        "order",
        "reference",
        "payout",
    ]
    list_filter = ["kind", InNextPayoutFilter, "merchant", "created_at"]
    search_fields = ["=order__reference", "=reference"]
    list_select_related = ["merchant", "order", "payout__merchant"]
    show_full_result_count = False
    date_hierarchy = "created_at"

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: LedgerEntry) -> str:
        return ledger_money(obj.amount, obj)


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "number",
        "merchant",
        "sales_display",
        "returns_display",
        "fees_display",
        "debt_in_display",
        "total_display",
        "paid_display",
        "debt_out_display",
        "entry_count",
        "created_at",
    ]
    list_filter = ["merchant", "created_at"]
    search_fields = ["merchant__name"]
    list_select_related = ["merchant"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "merchant",
        "number",
        "currency",
        "sales_display",
        "returns_display",
        "fees_display",
        "debt_in_display",
        "total_display",
        "paid_display",
        "debt_out_display",
        "entry_count",
        "entries_link",
        "created_at",
    ]
    fields = [
        ("merchant", "number", "currency", "created_at"),
        ("sales_display", "returns_display", "fees_display"),
        ("debt_in_display", "total_display"),
        ("paid_display", "debt_out_display"),
        ("entry_count", "entries_link"),
    ]

    sales_display = money_display("sales_amount", _payout_currency, "Sales")
    returns_display = money_display("returns_amount", _payout_currency, "Returns")
    fees_display = money_display("fees_amount", _payout_currency, "Fees")
    debt_in_display = money_display("debt_in", _payout_currency, "Debt carried in")
    total_display = money_display("total", _payout_currency, "Total")
    paid_display = money_display("paid_amount", _payout_currency, "Paid")
    debt_out_display = money_display("debt_out", _payout_currency, "Debt carried out")

    @admin.display(description="Transactions")
    def entries_link(self, obj: Payout) -> str:
        url = (
            reverse("admin:portal_ledgerentry_changelist")
            + f"?payout__id__exact={obj.pk}"
        )
        return format_html('<a href="{}">{} transactions</a>', url, obj.entry_count)
