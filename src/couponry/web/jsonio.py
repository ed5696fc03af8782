"""JSON in and out: decimals never pass through float on the way in, and bodies are bounded."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from couponry.domain.fields import format_instant
from couponry.errors import (
    FieldProblem,
    InvalidInput,
    MalformedJson,
    PayloadTooLarge,
    UnsupportedMediaType,
)

MAX_BODY = 1024 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Coupon amounts are JSON numbers, as in the Rhythm schema; at most 4 places and
        # bounded, so the float repr is the exact decimal text.
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return format_instant(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME  # instants through _encode, as we format them


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON. orjson renders a coupon several times faster than `json`; what it
    refuses (a lone surrogate, an integer past 64 bits) goes through `json` instead."""
    try:
        return orjson.dumps(value, default=_encode, option=_ORJSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        pass
    text = json.dumps(value, default=_encode, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate got this far (refusals are made `visible`, so this is a last line):
        # JSON's \uXXXX escapes carry it, where UTF-8 cannot.
        return json.dumps(value, default=_encode, separators=(",", ":")).encode()


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


async def read_body(request: Request) -> bytes:
    """The body, refusing more than 1 MiB before reading it all."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        raise PayloadTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
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
