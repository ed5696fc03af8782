"""The console's coupon search (SPEC 12): a prefix of a code or of a name, read by index range.

A prefix `p` is the range `p <= x < upper(p)` in code point order, which both databases use
for the columns searched (SQLite's BINARY collation, PostgreSQL's "C"), so a search reads only
the matching rows of an index, never the whole table. Results come in two runs: coupons whose
code starts with the text, by code; then those whose name starts with it (and code does not),
by name. A cursor says where the next page starts in that order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from couponry.errors import InvalidStartKey

MAX_SEARCH = 200
_CODE_PREFIX = re.compile(r"^[a-z0-9_-]{1,64}$")
_SURROGATES = range(0xD800, 0xE000)


def upper_bound(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix` (None: no bound)."""
    chars = list(prefix)
    while chars:
        point = ord(chars[-1]) + 1
        if point in _SURROGATES:
            point = 0xE000
        if point <= 0x10FFFF:
            chars[-1] = chr(point)
            return "".join(chars)
        chars.pop()  # U+10FFFF: no character above it, so bound by the shorter prefix
    return None


def code_prefix(text: str) -> str | None:
    """The text as a normalised code prefix, or None when no code could start with it."""
    lowered = text.lower()
    return lowered if _CODE_PREFIX.match(lowered) else None


@dataclass(frozen=True)
class SearchCursor:
    """Where a page of results starts: after a code (first run) or a (name, seq) (second)."""

    code: str | None = None
    name: str | None = None
    seq: int = 0

    def encode(self) -> str:
        if self.code is not None:
            return f"c:{self.code}"
        return f"n:{self.seq}:{self.name}"

    @classmethod
    def decode(cls, token: str | None) -> SearchCursor | None:
        if not token:
            return None
        kind, _, rest = token.partition(":")
        if kind == "c" and rest:
            return cls(code=rest)
        seq, _, name = rest.partition(":")
        if kind == "n" and seq.isascii() and seq.isdigit() and len(seq) < 19:
            return cls(name=name, seq=int(seq))
        raise InvalidStartKey("The page asked for is not one this console gave out.")
