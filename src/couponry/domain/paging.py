"""Opaque keyset page tokens and identifiers."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from couponry.errors import InvalidStartKey

_TOKEN = re.compile(r"^v1:(0|[1-9][0-9]{0,17})$")  # fits a signed 64-bit sequence
ID_PATTERN = re.compile(r"^[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}$")
T = TypeVar("T")
MAX_PAGE = 1000
DEFAULT_PAGE = 100


def looks_like_id(value: str) -> bool:
    """Ids are ours to make: anything else names nothing, so no query is needed."""
    return ID_PATTERN.match(value) is not None


def new_id() -> str:
    """19 characters, `xxxx-xxxx-xxxx-xxxx` of lowercase hex."""
    raw = secrets.token_hex(8)
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def encode_start_key(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode().rstrip("=")


def decode_start_key(token: str) -> int:
    """The position after which the next page starts; InvalidStartKey when malformed."""
    error = InvalidStartKey("exclusiveStartKey is not a key this service gave out.")
    if not token or len(token) > 64 or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
        raise error
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise error from None
    match = _TOKEN.match(text)
    if match is None:
        raise error
    return int(match.group(1))


@dataclass(frozen=True)
class Page(Generic[T]):
    """One keyset page and where the next starts (None when nothing remains)."""

    items: list[T]
    last_seq: int | None

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[int, T]], limit: int) -> Page[T]:
        """`rows` holds up to limit + 1 (seq, item) pairs: the extra one says more remain."""
        kept = list(rows[:limit])
        more = len(rows) > limit and bool(kept)
        return cls([item for _, item in kept], kept[-1][0] if more else None)
