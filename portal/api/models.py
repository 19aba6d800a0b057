"""API credentials, the request log and stored idempotent responses.

Rules of our own, where DOMAIN.md is silent:
- A credential is a public username (``om_…``) and a long random secret. Only the
  secret's SHA-256 is stored: the secret has 256 bits of entropy, so a fast hash is
  as safe as a slow one and a request does not spend 100 ms on password hashing.
  The secret is shown once, when the credential is created.
- A revoked credential stays (the request log points at it) but never
  authenticates again.
- An idempotency record is written *before* the request is handled, inside the
  request's transaction, so a second request with the same key waits on the first
  one's row lock and then replays its response. Records older than 24 hours are
  forgotten; the key may then be used afresh.
- A refund whose ``order_lines`` include a line without a ``reference`` (a free-text
  "Price adjustment") is a refund by amount; all its lines are kept as given, as
  ``DescriptiveRefundLine`` rows, and returned with the refund. They describe the
  refund to the customer and move nothing (Klarna: refund lines are optional and
  shown to the customer).
"""

import hashlib
import hmac
import secrets
from dataclasses import asdict
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from portal.models import Merchant

IDEMPOTENCY_WINDOW = timedelta(hours=24)
#: ``last_used_at`` is written at most this often per credential.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiCredentialQuerySet(models.QuerySet):
    def for_merchant(self, merchant: Merchant) -> "ApiCredentialQuerySet":
        return self.filter(merchant=merchant)

    def active(self) -> "ApiCredentialQuerySet":
        return self.filter(revoked_at__isnull=True)


class ApiCredential(models.Model):
    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="api_credentials"
    )
    name = models.CharField(
        max_length=100, help_text="What uses it, e.g. “Shop backend”."
    )
    username = models.CharField(max_length=40, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiCredentialQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.username})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def issue(
        cls, merchant: Merchant, name: str, *, by=None
    ) -> tuple["ApiCredential", str]:
        """Create a credential; returns it and its secret, which is never stored."""
        secret = secrets.token_urlsafe(32)
        credential = cls.objects.create(
            merchant=merchant,
            name=name,
            username=f"om_{secrets.token_hex(12)}",
            secret_hash=hash_secret(secret),
            created_by=by,
        )
        return credential, secret

    @classmethod
    def authenticate(cls, username: str, secret: str) -> "ApiCredential | None":
        """The active credential with this username and secret, or None."""
        if "\x00" in username:
            return None
        credential = (
            cls.objects.active()
            .select_related("merchant")
            .filter(username=username)
            .first()
        )
        given = hash_secret(secret)
        stored = (
            credential.secret_hash if credential else hash_secret(secrets.token_hex())
        )
        if credential is None or not hmac.compare_digest(given, stored):
            return None
        return credential

    def revoke(self) -> None:
        """Stop this credential from authenticating; idempotent."""
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])

    revoke.alters_data = True

    def touch(self) -> None:
        """Record use, writing at most once a minute."""
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at > LAST_USED_RESOLUTION:
            ApiCredential.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now

    touch.alters_data = True


class ApiRequestLogQuerySet(models.QuerySet):
    def for_merchant(self, merchant: Merchant) -> "ApiRequestLogQuerySet":
        return self.filter(merchant=merchant)

    def older_than(self, days: int, now=None) -> "ApiRequestLogQuerySet":
        return self.filter(
            created_at__lt=(now or timezone.now()) - timedelta(days=days)
        )


class ApiRequestLog(models.Model):
    """One API request and its outcome. Requests that failed authentication have
    no merchant; staff see them in the admin."""

    merchant = models.ForeignKey(
        Merchant,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_requests",
    )
    credential = models.ForeignKey(
        ApiCredential,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="requests",
    )
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=255)
    status = models.PositiveSmallIntegerField()
    error_code = models.CharField(max_length=40, blank=True)
    correlation_id = models.UUIDField(unique=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    replayed = models.BooleanField(
        default=False, help_text="Answered from an earlier request with the same key."
    )
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ApiRequestLogQuerySet.as_manager()

    class Meta:
        ordering = ["-pk"]
        indexes = [
            models.Index(fields=["merchant", "-id"], name="api_log_merchant_recent")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status}"

    @property
    def is_error(self) -> bool:
        return self.status >= 400


class ApiIdempotencyRecordQuerySet(models.QuerySet):
    def expired(self, now=None) -> "ApiIdempotencyRecordQuerySet":
        return self.filter(created_at__lt=(now or timezone.now()) - IDEMPOTENCY_WINDOW)


class ApiIdempotencyRecord(models.Model):
    """The first response to a ``Klarna-Idempotency-Key``; replayed for repeats.

    ``response_status`` is null while the first request is still being handled
    (only visible to that request's own transaction).
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=255)
    body_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ApiIdempotencyRecordQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "key"],
                name="api_idempotency_key_unique_per_merchant",
            )
        ]
        indexes = [models.Index(fields=["created_at"], name="api_idempotency_created")]

    def __str__(self) -> str:
        return self.key

    @property
    def expired(self) -> bool:
        return self.created_at < timezone.now() - IDEMPOTENCY_WINDOW

    def matches(self, method: str, path: str, body_hash: str) -> bool:
        return (self.method, self.path, self.body_hash) == (method, path, body_hash)

    def same_operation(self, method: str, path: str) -> bool:
        """Whether a repeat is for the operation this key was first used for; its
        body does not matter (Klarna)."""
        return (self.method, self.path) == (method, path)


class ApiAuthFailureQuerySet(models.QuerySet):
    def older_than(self, days: int, now=None) -> "ApiAuthFailureQuerySet":
        return self.filter(hour__lt=(now or timezone.now()) - timedelta(days=days))


class ApiAuthFailure(models.Model):
    """Requests that failed API authentication, counted per client address and
    hour instead of one log row each (our rule): a flood of bad credentials
    writes one row per address and hour, however many requests it sends.

    ``refused`` counts the requests the throttle answered with 429 without
    looking at the credentials; ``last_username`` is the latest username tried.
    """

    hour = models.DateTimeField()
    ip_address = models.CharField(max_length=45, blank=True)
    failures = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    last_username = models.CharField(max_length=40, blank=True)
    last_at = models.DateTimeField(default=timezone.now)

    objects = ApiAuthFailureQuerySet.as_manager()

    class Meta:
        ordering = ["-hour", "-failures"]
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "ip_address"],
                name="api_auth_failure_once_per_address_and_hour",
            )
        ]

    def __str__(self) -> str:
        return f"{self.ip_address or 'unknown'} at {self.hour:%Y-%m-%d %H:00}"

    @classmethod
    def record(cls, ip_address: str | None, username: str, *, refused: bool) -> None:
        """Count one failed (or, with ``refused``, throttled) request in its
        address's row for this hour; concurrent requests count exactly."""
        now = timezone.now()
        hour = now.replace(minute=0, second=0, microsecond=0)
        ip_address = ip_address or ""
        counter = "refused" if refused else "failures"
        changes = {
            counter: models.F(counter) + 1,
            "last_at": now,
            "last_username": username[:40].replace("\x00", ""),
        }
        row = cls.objects.filter(hour=hour, ip_address=ip_address)
        if row.update(**changes):
            return
        try:
            with transaction.atomic():
                cls.objects.create(
                    hour=hour,
                    ip_address=ip_address,
                    last_at=now,
                    last_username=changes["last_username"],
                    **{counter: 1},
                )
        except IntegrityError:  # Another process created the row first.
            row.update(**changes)


class DescriptiveRefundLine(models.Model):
    """A line a merchant's system sent with a refund by amount: shown and returned
    as given (Klarna's order_line fields, amounts in minor units); it ties the
    refund to no order line and changes no quantity."""

    refund = models.ForeignKey(
        "refunds.Refund", on_delete=models.CASCADE, related_name="descriptive_lines"
    )
    position = models.PositiveIntegerField()
    type = models.CharField(max_length=14, default="physical")
    reference = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=255)
    quantity = models.PositiveIntegerField()
    quantity_unit = models.CharField(max_length=10, blank=True)
    unit_price = models.BigIntegerField()
    tax_rate = models.PositiveIntegerField(default=0)
    total_discount_amount = models.BigIntegerField(default=0)
    total_amount = models.BigIntegerField()
    total_tax_amount = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["refund", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["refund", "position"], name="descriptive_refund_line_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.name}"

    @classmethod
    def record(cls, refund, lines) -> None:
        """Keep ``lines`` (``CheckoutLine``-shaped values) with ``refund``."""
        cls.objects.bulk_create(
            cls(
                refund=refund,
                position=position,
                **asdict(line),
            )
            for position, line in enumerate(lines)
        )
