"""Who is calling, and how often: HTTP Basic with API credentials, the rate limit,
and the throttle on failed authentication.

Everything counts in the shared cache (``portal.clients.Throttle``), so the limits
hold across every process and host:

- The rate limit is a fixed window per merchant: ``settings.API_RATE_LIMIT =
  (requests, seconds)``; the default allows 300 requests a minute.
- Failed authentication is throttled per client address and per username (our
  rule): ``API_AUTH_FAILURES_PER_ADDRESS`` (default 20 per 10 minutes) and
  ``API_AUTH_FAILURES_PER_USERNAME`` (default 10 per 10 minutes). An address over
  its limit is answered 429 before its credentials are looked at. A username over
  its limit is answered 429 for wrong secrets only: the right secret still works,
  so nobody who knows a username can lock its merchant out (the secret has 256
  bits, so the limit is against load and noise, not guessing).
- Failures are logged per address and hour (``ApiAuthFailure``), not a row each.
"""

import base64
import binascii

from django.conf import settings
from django.http import HttpRequest

from portal.clients import Throttle, client_address, digest
from portal.models import Merchant

from .errors import ApiError
from .models import ApiAuthFailure, ApiCredential

DEFAULT_RATE_LIMIT = (300, 60)
DEFAULT_FAILURES_PER_ADDRESS = (20, 600)
DEFAULT_FAILURES_PER_USERNAME = (10, 600)
REALM = 'Basic realm="Order Management API", charset="UTF-8"'


def _throttle(name: str, setting: str, default: tuple[int, int]) -> Throttle:
    limit, window = getattr(settings, setting, default)
    return Throttle(name, int(limit), int(window))


def authenticate(request: HttpRequest) -> ApiCredential:
    """The credential in the ``Authorization: Basic`` header; 401 if none is
    valid, 429 with Retry-After once this address or username failed too often."""
    address = client_address(request) or "unknown"
    per_address = _throttle(
        "api-auth-address",
        "API_AUTH_FAILURES_PER_ADDRESS",
        DEFAULT_FAILURES_PER_ADDRESS,
    )
    if per_address.exceeded(address):
        ApiAuthFailure.record(address, "", refused=True)
        raise _too_many_failures(per_address)
    username, secret = _basic_credentials(request, address, per_address)
    credential = ApiCredential.authenticate(username, secret)
    if credential is not None:
        return credential
    per_username = _throttle(
        "api-auth-username",
        "API_AUTH_FAILURES_PER_USERNAME",
        DEFAULT_FAILURES_PER_USERNAME,
    )
    if per_username.exceeded(digest(username)):
        ApiAuthFailure.record(address, username, refused=True)
        raise _too_many_failures(per_username)
    per_username.hit(digest(username))
    _failed(address, username, per_address)
    raise unauthorized("The API username or secret is wrong, or it was revoked.")


def _basic_credentials(
    request: HttpRequest, address: str, per_address: Throttle
) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        _failed(address, "", per_address)
        raise unauthorized(
            "Authenticate with HTTP Basic: your API username and secret."
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    username, colon, secret = decoded.partition(":")
    if not colon:
        _failed(address, "", per_address)
        raise unauthorized("The Authorization header is not valid Basic credentials.")
    return username, secret


def _failed(address: str, username: str, per_address: Throttle) -> None:
    per_address.hit(address)
    ApiAuthFailure.record(address, username, refused=False)


def _too_many_failures(throttle: Throttle) -> ApiError:
    retry_after = throttle.retry_after()
    return ApiError(
        429,
        "TOO_MANY_REQUESTS",
        f"Too many failed authentication attempts. Try again in {retry_after} seconds.",
        headers={"Retry-After": str(retry_after), "WWW-Authenticate": REALM},
    )


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "UNAUTHORIZED", message, headers={"WWW-Authenticate": REALM})


def rate_limit() -> tuple[int, int]:
    limit, window = getattr(settings, "API_RATE_LIMIT", DEFAULT_RATE_LIMIT)
    return int(limit), int(window)


def check_rate_limit(merchant: Merchant) -> None:
    """Count one request for ``merchant``; 429 with Retry-After past the limit."""
    throttle = Throttle("api-rate", *rate_limit())
    if not throttle.allow(str(merchant.pk)):
        retry_after = throttle.retry_after()
        raise ApiError(
            429,
            "TOO_MANY_REQUESTS",
            f"Too many requests: at most {throttle.limit} every {throttle.window} "
            f"seconds. Try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )
