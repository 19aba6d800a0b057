"""Who is calling, and how often: HTTP Basic with API credentials, and a rate limit.

The rate limit is a fixed window per merchant, counted in the Django cache:
``settings.API_RATE_LIMIT = (requests, seconds)``; the default allows 300
requests a minute. With a per-process cache (locmem) the limit applies per process.
"""

import base64
import binascii
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from portal.models import Merchant

from .errors import ApiError
from .models import ApiCredential

DEFAULT_RATE_LIMIT = (300, 60)
REALM = 'Basic realm="Order Management API", charset="UTF-8"'


def authenticate(request: HttpRequest) -> ApiCredential:
    """The credential in the ``Authorization: Basic`` header; 401 if none is valid."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise unauthorized(
            "Authenticate with HTTP Basic: your API username and secret."
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized(
            "The Authorization header is not valid Basic credentials."
        ) from None
    username, colon, secret = decoded.partition(":")
    credential = ApiCredential.authenticate(username, secret) if colon else None
    if credential is None:
        raise unauthorized("The API username or secret is wrong, or it was revoked.")
    return credential


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "UNAUTHORIZED", message, headers={"WWW-Authenticate": REALM})


def rate_limit() -> tuple[int, int]:
    limit, window = getattr(settings, "API_RATE_LIMIT", DEFAULT_RATE_LIMIT)
    return int(limit), int(window)


def check_rate_limit(merchant: Merchant) -> None:
    """Count one request for ``merchant``; 429 with Retry-After past the limit."""
    limit, window = rate_limit()
    now = int(time.time())
    window_start = now - now % window
    key = f"api-rate:{merchant.pk}:{window_start}"
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # Evicted between add and incr: this is the first request.
        cache.set(key, 1, timeout=window + 1)
        count = 1
    if count > limit:
        retry_after = window_start + window - now
        raise ApiError(
            429,
            "TOO_MANY_REQUESTS",
            f"Too many requests: at most {limit} every {window} seconds. "
            f"Try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )
