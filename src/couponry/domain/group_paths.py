"""Group paths: a small language for naming one group by walking down the group tree.

Grammar (product spec)::

    path    = segment ("/" segment)*
    segment = "*" | "{" key ":" quoted "}"
    key     = "name" | "code"
    quoted  = '"' (any character but '"' and '\\' | '\\"' | '\\\\')* '"'

White space around tokens is ignored. Control characters are refused everywhere (also inside
quotes) so a path can never smuggle line breaks or NULs into logs or queries. Matching is
case-insensitive after trimming both sides.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from couponry.errors import FieldProblem, GroupPathAmbiguous, GroupPathNoMatch, InvalidGroupPath

MAX_PATH_LENGTH = 2000

SegmentKind = Literal["any", "name", "code"]

_KEYS: dict[str, SegmentKind] = {"name": "name", "code": "code"}


@dataclass(frozen=True)
class Segment:
    """One step of a group path: `*` (kind "any") or a name/code equality test."""

    kind: SegmentKind
    value: str | None  # None for "any"

    def __post_init__(self) -> None:
        # A mismatched kind/value pair is a programming error, not user input.
        if (self.kind == "any") != (self.value is None):
            raise ValueError("a segment has a value exactly when its kind is not 'any'")


@dataclass(frozen=True)
class GroupNode:
    """The part of a group that path resolution needs."""

    id: str
    parent_id: str | None
    name: str
    code: str | None


# --- parsing ------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, field: str) -> None:
        self.text = text
        self.field = field
        self.pos = 0

    def fail(self, message: str, position: int | None = None, note: str = "") -> InvalidGroupPath:
        where = self.pos if position is None else position
        return InvalidGroupPath(f"{message} at position {where}{note}", where, self.field)

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def expect(self, char: str, message: str) -> None:
        self.skip_space()
        if self.peek() != char:
            raise self.fail(message)
        self.pos += 1

    def parse(self) -> tuple[Segment, ...]:
        if len(self.text) > MAX_PATH_LENGTH:
            raise self.fail(
                f"group path is longer than {MAX_PATH_LENGTH} characters", MAX_PATH_LENGTH
            )
        for index, char in enumerate(self.text):
            category = unicodedata.category(char)
            # Cc: C0/C1 controls (tab and newline too); Cs: lone surrogates from bad JSON escapes.
            if category == "Cc":
                raise self.fail(f"control character U+{ord(char):04X} not allowed", index)
            if category == "Cs":
                raise self.fail(f"lone surrogate U+{ord(char):04X} not allowed", index)

        segments = [self.segment()]
        while True:
            self.skip_space()
            if self.at_end():
                return tuple(segments)
            if self.peek() != "/":
                raise self.fail("expected '/' or end of path")
            self.pos += 1
            segments.append(self.segment())

    def segment(self) -> Segment:
        self.skip_space()
        char = self.peek()
        if char == "*":
            self.pos += 1
            return Segment("any", None)
        if char == "{":
            self.pos += 1
            return self.braced()
        if char == "":
            raise self.fail("expected a segment ('*' or '{')")
        if char == "/":
            raise self.fail("empty segment")
        raise self.fail("expected '*' or '{'")

    def braced(self) -> Segment:
        self.skip_space()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos].isalnum():
            self.pos += 1
        word = self.text[start : self.pos]
        if not word:
            raise self.fail("expected key 'name' or 'code'")
        kind = _KEYS.get(word)
        if kind is None:
            raise self.fail(f"unknown key '{word}' (expected 'name' or 'code')", start)
        self.expect(":", "expected ':' after key")
        self.skip_space()
        if self.peek() != '"':
            raise self.fail("expected a double-quoted value")
        value = self.quoted()
        self.expect("}", "expected '}'")
        return Segment(kind, value)

    def quoted(self) -> str:
        opening = self.pos
        self.pos += 1
        chars: list[str] = []
        while True:
            if self.at_end():
                raise self.fail("unterminated string", note=f" (opened at position {opening})")
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(chars)
            if char == "\\":
                escaped = self.text[self.pos + 1 : self.pos + 2]
                if not escaped:
                    self.pos += 1
                    raise self.fail("unterminated string", note=f" (opened at position {opening})")
                if escaped not in ('"', "\\"):
                    # Only \" and \\ exist; anything else is almost surely a mistake.
                    raise self.fail(f"invalid escape '\\{escaped}'")
                chars.append(escaped)
                self.pos += 2
                continue
            chars.append(char)
            self.pos += 1


def parse_group_path(text: str, *, field: str = "path") -> tuple[Segment, ...]:
    """Parse a group path into its segments.

    Raises InvalidGroupPath whose message names the 0-based character position of the problem
    (also available as `.position`); `field` names the offending request field.
    """
    return _Parser(text, field).parse()


def looks_like_group_path(text: str) -> bool:
    """True when `text` (after leading white space) starts with '{' or '*'.

    Used to tell a group path from a plain group id in fields that accept either.
    """
    return text.lstrip().startswith(("{", "*"))


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_group_path(segments: Sequence[Segment]) -> str:
    """Render segments as canonical path text (no white space; `"` and `\\` escaped).

    `parse_group_path(format_group_path(s)) == tuple(s)` for every value the parser accepts,
    i.e. values without control characters.
    """
    parts = ["*" if s.value is None else f"{{{s.kind}:{_quote(s.value)}}}" for s in segments]
    return "/".join(parts)


# --- resolution ---------------------------------------------------------------------------


def _norm(text: str) -> str:
    return text.strip().casefold()


def _matches(segment: Segment, group: GroupNode, wanted: str) -> bool:
    if segment.kind == "any":
        return True
    if segment.kind == "name":
        return _norm(group.name) == wanted
    return group.code is not None and _norm(group.code) == wanted


def resolve_group_path(
    segments: Sequence[Segment], groups: Iterable[GroupNode], *, field: str = "path"
) -> GroupNode:
    """Walk `segments` down the tree formed by `groups` and return the single group reached.

    The first segment looks at root groups (no parent); each later one at the children of the
    groups kept so far. Raises GroupPathNoMatch when a segment keeps nothing (the message names
    the segment) and GroupPathAmbiguous (with `.count`) when more than one group remains.
    """
    # Built once so each segment only visits the children of kept groups.
    by_id = {group.id: group for group in groups}
    children: dict[str | None, list[GroupNode]] = {}
    for group in by_id.values():
        children.setdefault(group.parent_id, []).append(group)

    if not segments:
        message = "group path matches no group (the path is empty)"
        raise GroupPathNoMatch(message, details=[FieldProblem(field, message)])

    kept: list[GroupNode] = []
    for number, segment in enumerate(segments, start=1):
        if number == 1:
            candidates = children.get(None, [])
        else:
            candidates = [child for group in kept for child in children.get(group.id, [])]
        wanted = "" if segment.value is None else _norm(segment.value)
        kept = [group for group in candidates if _matches(segment, group, wanted)]
        if not kept:
            shown = format_group_path([segment])
            message = f"group path matches no group (segment {number}, {shown}, matches nothing)"
            raise GroupPathNoMatch(message, details=[FieldProblem(field, message)])

    if len(kept) > 1:
        raise GroupPathAmbiguous(f"group path matches {len(kept)} groups", len(kept), field)
    return kept[0]
