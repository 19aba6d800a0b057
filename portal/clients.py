"""Who is asking, and how often: the client's address and fixed-window throttles.

Throttles count in the Django cache (Redis in production, the database cache
without CACHE_URL), so every process and host counts the same requests. The rules
for choosing keys are ours: a limit that a stranger could fill for somebody else
is keyed by the stranger's address first, so it slows the stranger and not the
person they aim at.
"""

import hashlib
import ipaddress
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    """The address of the client: ``REMOTE_ADDR``, or, when that is one of
    ``settings.TRUSTED_PROXIES`` (the load balancers), the last address in
    ``X-Forwarded-For`` that is not a trusted proxy. Anything before it could be
    written by the client itself, so it is never read."""
    remote = request.META.get("REMOTE_ADDR") or None
    trusted = set(getattr(settings, "TRUSTED_PROXIES", ()))
    if remote is None or remote not in trusted:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for candidate in reversed([part.strip() for part in forwarded.split(",")]):
        if candidate and candidate not in trusted:
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                return remote
    return remote


def digest(value: str) -> str:
    """A short, stable cache-key part for text a client chose (emails, usernames)."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Throttle:
    """At most ``limit`` hits per ``window`` seconds for one key, counted in the
    shared cache in fixed windows."""

    name: str
    limit: int
    window: int

    def _key(self, key: str, now: int) -> str:
        return f"throttle:{self.name}:{key}:{now - now % self.window}"

    def retry_after(self, now: int | None = None) -> int:
        """Seconds until the current window ends."""
        now = int(time.time()) if now is None else now
        return self.window - now % self.window

    def count(self, key: str) -> int:
        return cache.get(self._key(key, int(time.time())), 0)

    def exceeded(self, key: str) -> bool:
        """Whether ``key`` has used up its hits in this window (counts nothing)."""
        return self.count(key) >= self.limit

    def hit(self, key: str) -> int:
        """Count one hit for ``key``; returns the count in this window.

        The window's counter is incremented where it exists (every hit but the
        window's first: one cache operation); only a missing one is added first.
        """
        cache_key = self._key(key, int(time.time()))
        try:
            return cache.incr(cache_key)
        except ValueError:  # The window's first hit (or its counter was evicted).
            pass
        cache.add(cache_key, 0, timeout=self.window + 1)
        try:
            return cache.incr(cache_key)
        except ValueError:  # Evicted between add and incr: this is the first hit.
            cache.set(cache_key, 1, timeout=self.window + 1)
            return 1

    def allow(self, key: str) -> bool:
        """Count one hit for ``key``; False when it is over the limit."""
        return self.hit(key) <= self.limit
