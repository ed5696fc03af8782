"""Generating campaign codes (SPEC 10): what a generation asks for, and the codes it makes.

Pure: the random bytes come from the caller (`os.urandom` in production: a code is a bearer
secret, so it must not be predictable), which lets tests fix them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from couponry.domain.fields import Problems, check_int

MAX_COUNT = 1_000_000
SLOT = "#"
# Uppercase letters and digits without the look-alikes 0 O 1 I L (SPEC 10).
CHARSETS = {
    "alphanumeric": "ABCDEFGHJKMNPQRSTUVWXYZ23456789",
    "numeric": "0123456789",
    "alphabetic": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
}
_CODE = re.compile(r"[A-Za-z0-9_-]{3,64}")
_CUSTOM = re.compile(r"[A-Za-z0-9]{2,64}")
_LITERAL = re.compile(r"[A-Za-z0-9_-]*")
_KEYS = frozenset({"count", "pattern", "length", "charset", "prefix", "suffix", "max_uses"})
RandomBytes = Callable[[int], bytes]


class CodeSpaceTooSmall(ValueError):
    """More codes asked for than a quarter of what the pattern can make."""

    def __init__(self, count: int, space: int) -> None:
        super().__init__(f"{count} codes asked for; the pattern makes {space}")
        self.count = count
        self.space = space


@dataclass(frozen=True)
class Generation:
    """A checked request: `count` codes of `template` (literal characters, and SLOT for one
    random character of `charset`)."""

    count: int
    template: str
    charset: str
    max_uses: int | None

    @property
    def slots(self) -> int:
        return self.template.count(SLOT)

    @property
    def space(self) -> int:
        """How many distinct codes the template can make (codes compare ignoring case, and
        the charset holds no two characters equal ignoring case)."""
        return int(len(self.charset) ** self.slots)


def parse_generation(doc: Any) -> Generation:
    """Check `{count, pattern, length, charset, prefix, suffix, max_uses}`; InvalidInput /
    UnknownField name every problem, CodeSpaceTooSmall when `count` is more than a quarter of
    the codes the pattern can make (so a fresh code rarely meets a taken one)."""
    problems = Problems()
    if not isinstance(doc, Mapping):
        problems.add("body", "must be a JSON object")
        problems.raise_if_any()
        raise AssertionError  # unreachable
    for key in doc:
        if key not in _KEYS:
            problems.add_unknown(str(key))
    count = None
    if doc.get("count") is None:
        problems.add("count", "is required", missing=True)
    else:
        count = check_int(doc["count"], "count", problems, minimum=1, maximum=MAX_COUNT)
    charset = _charset(doc.get("charset", "alphanumeric"), problems)
    body = _body(doc, problems)
    prefix = _literal(doc, "prefix", problems)
    suffix = _literal(doc, "suffix", problems)
    max_uses: int | None = 1
    if "max_uses" in doc:
        max_uses = (
            None if doc["max_uses"] is None else check_int(doc["max_uses"], "max_uses", problems)
        )
    problems.raise_if_any()
    assert count is not None and charset is not None and body is not None
    template = prefix + body + suffix
    example = template.replace(SLOT, charset[0])
    if not _CODE.fullmatch(example):
        problems.add(
            "pattern" if "pattern" in doc else "length",
            "with prefix and suffix must make codes of 3-64 letters, digits, '_' or '-'",
        )
        problems.raise_if_any()
    plan = Generation(count, template, charset, max_uses)
    if count * 4 > plan.space:
        raise CodeSpaceTooSmall(count, plan.space)
    return plan


def _charset(value: Any, problems: Problems) -> str | None:
    if isinstance(value, str) and value in CHARSETS:
        return CHARSETS[value]
    if not isinstance(value, str) or not _CUSTOM.fullmatch(value):
        problems.add(
            "charset",
            "must be alphanumeric, numeric, alphabetic, or 2-64 letters and digits",
        )
        return None
    if len(set(value.lower())) != len(value):
        problems.add("charset", "must not hold a character twice (ignoring case, as codes do)")
        return None
    return value


def _body(doc: Mapping[str, Any], problems: Problems) -> str | None:
    pattern = doc.get("pattern")
    if pattern is not None:
        if "length" in doc:
            problems.add("length", "goes with no pattern (the pattern says the length)")
        if not isinstance(pattern, str) or SLOT not in pattern:
            problems.add("pattern", f"must be text with at least one {SLOT!r}")
            return None
        if not _LITERAL.fullmatch(pattern.replace(SLOT, "")):
            problems.add("pattern", f"must hold only {SLOT!r}, letters, digits, '_' or '-'")
            return None
        return pattern
    length = doc.get("length", 10)
    checked = check_int(length, "length", problems, minimum=4, maximum=32)
    return None if checked is None else SLOT * checked


def _literal(doc: Mapping[str, Any], name: str, problems: Problems) -> str:
    value = doc.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or not _LITERAL.fullmatch(value) or len(value) > 60:
        problems.add(name, "must be at most 60 letters, digits, '_' or '-'")
        return ""
    return value


def generate(plan: Generation, how_many: int, random_bytes: RandomBytes) -> list[str]:
    """`how_many` codes of the plan, each random character drawn without bias: a byte maps to
    a character only below the largest multiple of the charset's size (the rest are drawn
    again). May hold duplicates; the store keeps one of each."""
    size = len(plan.charset)
    limit = 256 - 256 % size
    rejected = bytes(range(limit, 256))
    table = bytes(ord(plan.charset[b % size]) if b < limit else ord("?") for b in range(256))
    needed = how_many * plan.slots
    drawn = b""
    while len(drawn) < needed:
        fresh = random_bytes(needed - len(drawn) + 64).translate(None, rejected)
        drawn += fresh
    characters = drawn[:needed].translate(table).decode("ascii")
    pieces = plan.template.split(SLOT)
    codes: list[str] = []
    slots = plan.slots
    for start in range(0, needed, slots):
        chunk = characters[start : start + slots]
        code = pieces[0]
        for index, character in enumerate(chunk):
            code += character + pieces[index + 1]
        codes.append(code)
    return codes
