"""Klarna's published Order Management API description, read at test time.

The file lives beside the project (``../shared/reference`` from the repository
root) and is reference data: it is never copied into the project. Tests that need
it skip with ``MISSING`` when it is absent.
"""

import copy
import re
from functools import cache
from pathlib import Path

import yaml
from jsonschema import Draft4Validator, ValidationError

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = (
    REPO_ROOT.parent / "shared" / "reference" / "klarna-order-management-openapi.yml"
)
MISSING = f"Klarna's Order Management description is not at {REFERENCE}"

#: Klarna's ``path`` → our URL pattern: the same, with ``{...}`` placeholders.
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


@cache
def klarna_document() -> dict | None:
    """Klarna's description with its self-contradictions repaired, or None."""
    if not REFERENCE.exists():
        return None
    return repaired(yaml.safe_load(REFERENCE.read_text(encoding="utf-8")))


def repaired(document: dict) -> dict:
    """Where the description contradicts itself, follow Klarna's prose docs:

    - ``enum: [null]`` on integer fields (prices, tax rates of shipping options)
      would allow no integer at all: the enum is dropped.
    - ``order_line.type`` has one enum value "physical|discount|…" while its
      pattern lists the types: the enum is dropped and the pattern anchored.
    - Operations require ``basicAuth`` while the scheme is called
      ``Basic-authorization``: ``basicAuth`` is added as the same scheme.
    - 201 and 204 responses that declare a JSON string body: Klarna's prose
      (“Refund created” with Location and Refund-Id headers) sends none.
    """
    document = copy.deepcopy(document)
    _repair_enums(document)
    schemes = document["components"]["securitySchemes"]
    schemes.setdefault("basicAuth", {"type": "http", "scheme": "basic"})
    for item in document["paths"].values():
        for operation in item.values():
            for status in ("201", "204"):
                operation["responses"].get(status, {}).pop("content", None)
    return document


def _repair_enums(node) -> None:
    if isinstance(node, list):
        for item in node:
            _repair_enums(item)
        return
    if not isinstance(node, dict):
        return
    enum = node.get("enum")
    if enum == [None]:
        del node["enum"]
    elif (
        isinstance(enum, list)
        and len(enum) == 1
        and isinstance(enum[0], str)
        and "|" in enum[0]
    ):
        del node["enum"]
        node["pattern"] = f"^(?:{node.get('pattern', enum[0]).strip()})$"
    for value in node.values():
        _repair_enums(value)


def operations(document: dict) -> set[tuple[str, str]]:
    """Every ``(METHOD, path)`` Klarna describes."""
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
    }


def response_errors(
    document: dict, method: str, path: str, status: int, body: bytes, json_body
) -> list[ValidationError | str]:
    """Where a response differs from what Klarna describes for the operation.

    A status Klarna does not list for the operation (our 400, 422, 409...) is held
    to Klarna's generic error body (``ErrorMessageDto``); a 2xx it does not list
    is itself a difference.
    """
    response = document["paths"][path][method.lower()]["responses"].get(str(status))
    if response is None:
        if status < 400:
            return [f"Klarna lists no {status} for {method} {path}"]
        schema = {"$ref": "#/components/schemas/ErrorMessageDto"}
    else:
        content = response.get("content", {}).get("application/json")
        if content is None:
            return [f"Klarna sends no body with {status}"] if body.strip() else []
        schema = content["schema"]
    if json_body is None:
        return [f"{status} has no JSON body"]
    validator = Draft4Validator(
        {"allOf": [schema], "components": document["components"]}
    )
    return list(validator.iter_errors(json_body))


def klarna_path(url_path: str, document: dict) -> str:
    """Klarna's path template that ``url_path`` (one of ours) matches."""
    for template in document["paths"]:
        pattern = PLACEHOLDER.sub("[^/]+", template)
        if re.fullmatch(pattern, url_path):
            return template
    raise LookupError(url_path)
