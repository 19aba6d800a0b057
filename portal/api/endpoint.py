"""What every API request goes through, around the view that does the work.

In order: correlation id, allowed method, HTTP Basic authentication (throttled
per address and username), the rate limit, the body (size, content type, JSON),
the idempotency key, the view, the error body, the request log (authenticated
requests only; failed authentication is counted per address and hour). A view
only sees an authenticated ``request.merchant`` and a parsed ``request.api_body``
and returns a response or raises.

Idempotency (``Klarna-Idempotency-Key`` on POST and PATCH): the record is inserted
first, in the same transaction as the work, so a concurrent repeat blocks on the
unique key until the first request commits and then replays its stored response.
Responses to requests the API rejected as malformed (``ApiError``) are not stored,
so a corrected request may reuse the key; a refusal by the domain (``DomainError``)
is a real answer and is replayed like a success.

Within 24 hours only the key matters (Klarna: "input values of the operation are
disregarded when evaluating the idempotency of the operation, only the key
matters"; DOMAIN.md): a repeat is answered with the first response whatever its
body, before the view runs, so nothing moves twice. The key names one operation:
the same key on another method or path is refused with 409 CONFLICT (our rule).
The portal's own forms keep refusing a changed request (``refunds.engine``).

Language: the API answers in English whatever the Accept-Language, like Klarna's
``error_messages`` (issue 15): the whole request runs under
``translation.override("en")`` and the response says ``Content-Language: en``.
"""

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from functools import wraps

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt

from portal.exceptions import DomainError

from .auth import authenticate, check_rate_limit
from .errors import ApiError, error_response, from_domain_error
from .models import ApiIdempotencyRecord, ApiRequestLog

logger = logging.getLogger(__name__)

CORRELATION_HEADER = "Klarna-Correlation-Id"
IDEMPOTENCY_HEADER = "Klarna-Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_BODY_BYTES = 1024 * 1024
WRITE_METHODS = frozenset({"POST", "PATCH"})
#: The headers a replay repeats (the correlation id is always the new request's).
STORED_HEADERS = ("Content-Type", "Location", "Capture-Id", "Refund-Id")


def api_endpoint(*methods: str, body: bool = False) -> Callable:
    """Make ``view(request, ...)`` an Order Management API endpoint for ``methods``.

    ``body=True``: the view reads a JSON body (``request.api_body``); otherwise a
    body is only held to the size limit and then ignored, as Klarna does for
    cancel, release and extend.
    """

    def decorator(view: Callable) -> Callable:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            request.api_started = time.monotonic()
            request.correlation_id = str(uuid.uuid4())
            request.api_credential = None
            request.merchant = None
            request.idempotency_key = ""
            request.api_replayed = False
            request.api_logged = False  # set once the log row is written
            try:
                with translation.override("en"):
                    response = _dispatch(view, methods, body, request, args, kwargs)
            except ApiError as error:
                response = error_response(error, request.correlation_id)
            except Exception:
                logger.exception("API request %s failed", request.correlation_id)
                response = error_response(
                    ApiError(
                        500,
                        "INTERNAL_ERROR",
                        "Something went wrong on our side; nothing was changed. "
                        "Quote the correlation id when contacting support.",
                    ),
                    request.correlation_id,
                )
            response[CORRELATION_HEADER] = request.correlation_id
            response["Content-Language"] = "en"
            if not request.api_logged:
                _log(request, response)
            return response

        return wrapper

    return decorator


def _dispatch(view, methods, has_body, request, args, kwargs) -> HttpResponse:
    if request.method not in methods:
        raise ApiError(
            405,
            "METHOD_NOT_ALLOWED",
            f"{storable(request.method, 10)} is not allowed here; use {' or '.join(methods)}.",
            headers={"Allow": ", ".join(methods)},
        )
    credential = authenticate(request)
    request.api_credential = credential
    request.merchant = credential.merchant
    credential.touch()
    check_rate_limit(request.merchant)
    request.api_body = None
    if request.method not in WRITE_METHODS:
        return _call(view, request, args, kwargs)
    request.api_body = read_json_body(request) if has_body else _ignore_body(request)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return _call(view, request, args, kwargs)
    key = key.strip()
    if not 1 <= len(key) <= 255 or "\x00" in key:
        raise ApiError(
            400,
            "BAD_VALUE",
            f"{IDEMPOTENCY_HEADER}: must be 1 to 255 characters.",
        )
    request.idempotency_key = key
    return _idempotent(request, key, lambda: _call(view, request, args, kwargs))


def _call(view, request, args, kwargs) -> HttpResponse:
    try:
        return view(request, *args, **kwargs)
    except DomainError as error:
        return error_response(from_domain_error(error), request.correlation_id)


def read_json_body(request: HttpRequest):
    """The parsed JSON body, or None when there is none; 4xx for anything else."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        raise _too_large()
    try:
        raw = request.body
    except RequestDataTooBig:
        raise _too_large() from None
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large()
    if not raw.strip():
        return None
    if request.content_type != "application/json":
        raise ApiError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"Send the body as JSON with Content-Type: application/json "
            f"(not “{request.content_type[:60]}”).",
        )
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "BAD_VALUE", "The body is not valid UTF-8.") from None
    except json.JSONDecodeError as error:
        raise ApiError(
            400,
            "BAD_VALUE",
            f"The body is not valid JSON: {error.msg} (line {error.lineno}, "
            f"column {error.colno}).",
        ) from None
    except (ValueError, RecursionError) as error:
        raise ApiError(
            400, "BAD_VALUE", f"The body is not valid JSON: {error}."
        ) from None


def _ignore_body(request: HttpRequest) -> None:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        raise _too_large()


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _too_large() -> ApiError:
    return ApiError(
        413, "PAYLOAD_TOO_LARGE", f"The body is larger than {MAX_BODY_BYTES} bytes."
    )


def _body_hash(request: HttpRequest) -> str:
    if request.api_body is None:
        canonical = b""
    else:
        canonical = json.dumps(
            request.api_body, sort_keys=True, separators=(",", ":")
        ).encode()
    return hashlib.sha256(canonical).hexdigest()


def _idempotent(request: HttpRequest, key: str, call: Callable) -> HttpResponse:
    """The response to a write with an idempotency key: made once, replayed
    after. The request's log row is written in the same transaction (one
    commit, not two; issue 16); a request that fails is logged after it."""
    with transaction.atomic():
        response = _idempotent_response(request, key, call)
        _log(request, response)
    request.api_logged = True
    return response


def _idempotent_response(
    request: HttpRequest, key: str, call: Callable
) -> HttpResponse:
    identity = {"method": request.method, "path": storable(request.path)}
    body_hash = _body_hash(request)
    record = _claim(request.merchant, key, identity, body_hash)
    if record.response_status is not None:
        if record.expired:
            record.delete()
            record = _claim(request.merchant, key, identity, body_hash)
        elif not record.same_operation(request.method, identity["path"]):
            raise ApiError(
                409,
                "CONFLICT",
                f"The {IDEMPOTENCY_HEADER} “{key[:64]}” was already used for "
                f"{record.method} {record.path[:200]} in the last 24 hours.",
            )
        else:
            request.api_replayed = True
            return _replay(record)
    response = call()
    record.response_status = response.status_code
    record.response_headers = {
        name: response[name] for name in STORED_HEADERS if response.has_header(name)
    }
    record.response_body = response.content.decode()
    record.save(update_fields=["response_status", "response_headers", "response_body"])
    return response


def _claim(merchant, key: str, identity: dict, body_hash: str) -> ApiIdempotencyRecord:
    """The record for ``key``, inserted now (no response yet) or the earlier one,
    locked. A concurrent insert of the same key waits here until it commits (or
    rolls back). Inserted with ``ON CONFLICT DO NOTHING`` and then read: no
    savepoint to recover from a duplicate key (issue 16)."""
    ApiIdempotencyRecord.objects.bulk_create(
        [
            ApiIdempotencyRecord(
                merchant=merchant, key=key, body_hash=body_hash, **identity
            )
        ],
        ignore_conflicts=True,
    )
    return ApiIdempotencyRecord.objects.select_for_update().get(
        merchant=merchant, key=key
    )


def _replay(record: ApiIdempotencyRecord) -> HttpResponse:
    response = HttpResponse(record.response_body, status=record.response_status)
    for name, value in record.response_headers.items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def _error_code(response: HttpResponse) -> str:
    if response.status_code < 400:
        return ""
    try:
        return str(json.loads(response.content).get("error_code", ""))[:40]
    except (ValueError, AttributeError):
        return ""


def storable(value: str, length: int = 255) -> str:
    """``value`` cut to ``length``, without the NUL characters PostgreSQL rejects."""
    return value.replace("\x00", "\ufffd")[:length]


def _log(request: HttpRequest, response: HttpResponse) -> None:
    """One row per authenticated request. A request without a credential is not
    logged one by one: failed authentication is counted per address and hour
    (``ApiAuthFailure``), so a flood of bad credentials cannot fill the table."""
    if request.api_credential is None:
        return
    ApiRequestLog.objects.create(
        merchant=request.merchant,
        credential=request.api_credential,
        method=storable(request.method, 10),
        path=storable(request.path),
        status=response.status_code,
        error_code=_error_code(response),
        correlation_id=request.correlation_id,
        idempotency_key=storable(request.idempotency_key),
        replayed=request.api_replayed,
        duration_ms=round((time.monotonic() - request.api_started) * 1000),
    )
