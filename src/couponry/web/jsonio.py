"""JSON in and out: decimals never pass through float on the way in, and bodies are bounded."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from couponry.errors import (
    FieldProblem,
    InvalidInput,
    MalformedJson,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from couponry.jsontext import dumps

MAX_BODY = 1024 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(value), status, headers=headers, media_type="application/json")


# Made once: json.loads with options builds a decoder per call.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


def parse_json(raw: bytes) -> Any:
    """Numbers with a fraction become Decimal; NaN and Infinity are refused."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedJson("The body is not valid UTF-8.") from None
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise MalformedJson("The body nests too deeply.") from None
    except json.JSONDecodeError as exc:
        raise MalformedJson(
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except ValueError:  # NaN/Infinity, or a number too long to read
        raise MalformedJson(
            "The body is not valid JSON: NaN, Infinity or an oversized number."
        ) from None


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, refusing more than `limit` bytes (1 MiB) before reading it all."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


JSON_TYPES = ("application/json",)
PATCH_TYPES = ("application/json-patch+json", "application/json")


def decode_json_body(
    request: Request, raw: bytes, media_types: tuple[str, ...] = JSON_TYPES
) -> Any:
    """Check the content type and parse; called after authentication so 401 comes first."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in media_types:
        raise UnsupportedMediaType(
            f"Send the body as {' or '.join(media_types)} (got {media or 'no content type'})."
        )
    if not raw.strip():
        raise MalformedJson("The body is empty; a JSON document is required.")
    return parse_json(raw)


def require_object(value: Any) -> dict[str, Any]:
    """Bodies that describe one thing are JSON objects."""
    if not isinstance(value, dict):
        raise InvalidInput(
            "The body must be a JSON object.", [FieldProblem("body", "not an object")]
        )
    return value
