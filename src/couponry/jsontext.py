"""Compact JSON text, the same bytes wherever a document is written (a reply, or a stored
reply that must replay byte for byte)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from couponry.domain.fields import format_instant


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
