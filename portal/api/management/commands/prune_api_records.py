"""Delete idempotency records past their 24 hours and request-log rows past the
retention period (``settings.API_LOG_RETENTION_DAYS``, 90 by default), and
the hourly counts of failed authentication past the same period. Safe to run
at any time, e.g. daily from cron next to ``run_periodic_jobs``."""

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.api.models import ApiAuthFailure, ApiIdempotencyRecord, ApiRequestLog

DEFAULT_LOG_RETENTION_DAYS = 90


class Command(BaseCommand):
    help = "Delete expired API idempotency records and old API request-log rows."

    def handle(self, *args, **options) -> None:
        days = getattr(settings, "API_LOG_RETENTION_DAYS", DEFAULT_LOG_RETENTION_DAYS)
        records, _ = ApiIdempotencyRecord.objects.expired().delete()
        logs, _ = ApiRequestLog.objects.older_than(days).delete()
        ApiAuthFailure.objects.older_than(days).delete()
        self.stdout.write(
            f"Deleted {records} expired idempotency records and {logs} request-log "
            f"rows older than {days} days."
        )
