"""Importing campaign codes from CSV (SPEC 10): how a file is read, line by line, and what each
line must hold. Pure: the bytes come from the caller, a piece at a time.

The file is UTF-8 (a byte order mark at its start is skipped), lines end in LF or CRLF, and
line 1 is the header, as a text editor counts. The header names a `code` column, optionally
`max_uses`, and may name the other columns of our export (`times_used`, `is_active`,
`created_at`, `last_used_at`), whose cells are ignored, so an exported file imports as it is.
A cell may be quoted (`"..."`, a quote inside doubled) but may not span lines; spaces around a
cell are dropped; a cell our export protected against spreadsheet formulas (a `'` before `=`,
`+`, `-`, `@`, tab or CR) is taken back without its `'`. Blank lines are skipped. `max_uses`
is a whole number of 1 or more, or empty for unlimited (as the export writes unlimited); a
file without the column gives every code 1, the default of `POST .../codes`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from couponry.domain.coupons import check_code, normalise_code
from couponry.domain.fields import MAX_INT, Problems
from couponry.errors import visible

MAX_LINE_BYTES = 4096  # an exported line is under 200 bytes
MAX_REPORTED = 100  # lines named in a failed job's error
CODE_COLUMN, MAX_USES_COLUMN = "code", "max_uses"
IGNORED_COLUMNS = ("times_used", "is_active", "created_at", "last_used_at")
_KNOWN_COLUMNS = (CODE_COLUMN, MAX_USES_COLUMN, *IGNORED_COLUMNS)
_BOM = b"\xef\xbb\xbf"
_CODE = re.compile(r"[A-Za-z0-9_-]{3,64}")
_WHOLE = re.compile(r"[0-9]{1,10}")
_FORMULA_STARTS = "=+-@\t\r"  # what our export protects with a leading "'" (domain/codes.py)
_ECHO = 80  # characters of a bad cell shown back
TooLong = None  # what LineSplitter gives for a line over MAX_LINE_BYTES


@dataclass(frozen=True)
class LineProblem:
    """A refused line: `line` counts the header as 1; `code` is the code cell as given, when
    the line has one."""

    line: int
    code: str | None
    reason: str

    def view(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "reason": self.reason}


@dataclass(frozen=True)
class Header:
    code_at: int
    max_uses_at: int | None
    width: int


class ImportedCode(NamedTuple):  # a tuple: made a million times a file, five times faster
    line: int
    code: str
    code_normalized: str
    max_uses: int | None  # None: unlimited


class LineSplitter:
    """Cuts bytes fed a piece at a time into lines (without their LF). A line longer than
    MAX_LINE_BYTES comes out as TooLong, and is never held whole: memory stays bounded by the
    piece fed, whatever the file holds."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self._carry = b""
        self._skipping = False  # inside a line already known to be too long
        self._first = True

    def feed(self, piece: bytes) -> list[bytes | None]:
        if not piece:
            return []
        pieces = piece.split(b"\n")
        rest = pieces.pop()
        lines: list[bytes | None] = []
        if pieces:
            head = pieces[0]
            if self._skipping or len(self._carry) + len(head) > self.max_line:
                lines.append(TooLong)
            else:
                lines.append(self._carry + head)
            self._carry, self._skipping = b"", False
            max_line = self.max_line
            lines.extend(TooLong if len(p) > max_line else p for p in pieces[1:])
        if not self._skipping:
            self._carry += rest
            if len(self._carry) > self.max_line:
                self._carry, self._skipping = b"", True
        return self._strip_bom(lines)

    def end(self) -> list[bytes | None]:
        """The last line, when the file does not end with a line break."""
        if self._skipping:
            lines: list[bytes | None] = [TooLong]
        else:
            lines = [self._carry] if self._carry else []
        self._carry, self._skipping = b"", False
        return self._strip_bom(lines)

    def _strip_bom(self, lines: list[bytes | None]) -> list[bytes | None]:
        if self._first and lines:
            self._first = False
            first = lines[0]
            if first is not None and first.startswith(_BOM):
                lines[0] = first[len(_BOM) :]
        return lines


class BadFile(Exception):
    """The file cannot be read at all (empty, a bad header, no code line): one problem."""

    def __init__(self, problem: LineProblem) -> None:
        super().__init__(problem.reason)
        self.problem = problem


class FileReader:
    """A file's lines in order, fed a piece at a time: line 1 the header, then each code line
    checked (blank lines skipped). BadFile when the file cannot be read at all."""

    def __init__(self) -> None:
        self._splitter = LineSplitter()
        self._number = 0
        self._header: Header | None = None
        self.code_lines = 0

    def feed(self, piece: bytes) -> list[ImportedCode | LineProblem]:
        return self._read(self._splitter.feed(piece))

    def end(self) -> list[ImportedCode | LineProblem]:
        last = self._read(self._splitter.end())
        if self._number == 0:
            raise BadFile(LineProblem(1, None, _header_help("the file is empty")))
        if self.code_lines == 0:
            raise BadFile(LineProblem(1, None, "the file holds a header and no code lines"))
        return last

    def _read(self, lines: list[bytes | None]) -> list[ImportedCode | LineProblem]:
        if not lines:
            return []
        number = self._number
        header = self._header
        if header is None:
            number += 1
            found = parse_header(lines[0])
            if isinstance(found, LineProblem):
                raise BadFile(found)
            header = self._header = found
            lines = lines[1:]
        read: list[ImportedCode | LineProblem] = []
        for raw in lines:
            number += 1
            if raw is not None and not raw.strip():
                continue
            read.append(parse_code_line(number, raw, header))
        self._number = number
        self.code_lines += len(read)
        return read


class CodeLineCounter:
    """How many code lines a file holds (its lines after the header, blank ones aside), by
    FileReader's rules without checking them: a job's `total`, counted as the file arrives."""

    def __init__(self) -> None:
        self._splitter = LineSplitter()
        self._lines = 0
        self.count = 0

    def feed(self, piece: bytes) -> None:
        self._count(self._splitter.feed(piece))

    def end(self) -> int:
        self._count(self._splitter.end())
        return self.count

    def _count(self, lines: list[bytes | None]) -> None:
        if not lines:
            return
        skip_header = 1 if self._lines == 0 else 0
        self._lines += len(lines)
        self.count += sum(1 for raw in lines[skip_header:] if raw is None or raw.strip())


def split_cells(text: str) -> list[str] | None:
    """The cells of one CSV line (RFC 4180 quoting, within the line), spaces around each cell
    dropped; None when its quotes are malformed."""
    if '"' not in text:
        plain = text.split(",")
        return [cell.strip(" ") for cell in plain] if " " in text else plain
    cells: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] == '"':
            parts: list[str] = []
            j = i + 1
            while True:
                k = text.find('"', j)
                if k < 0:
                    return None  # unterminated (a cell may not span lines)
                parts.append(text[j:k])
                if text.startswith('"', k + 1):
                    parts.append('"')
                    j = k + 2
                    continue
                i = k + 1
                break
            while i < n and text[i] == " ":
                i += 1
            if i < n and text[i] != ",":
                return None  # text after the closing quote
            cells.append("".join(parts))
        else:
            k = text.find(",", i)
            k = n if k < 0 else k
            cell = text[i:k]
            if '"' in cell:
                return None
            cells.append(cell.strip(" "))
            i = k
        if i >= n:
            return cells
        i += 1  # the comma
        if i == n:
            cells.append("")
            return cells


def unprotect(cell: str) -> str:
    """A cell our export wrote as `'-SPRING` (so a spreadsheet shows text) as it was."""
    if cell[:1] == "'" and cell[1:2] and cell[1] in _FORMULA_STARTS:
        return cell[1:]
    return cell


def _decode(raw: bytes | None) -> str | LineProblem:
    if raw is None:
        return LineProblem(0, None, f"the line is longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return LineProblem(0, None, "the line is not valid UTF-8")
    return text[:-1] if text.endswith("\r") else text


def parse_header(raw: bytes | None) -> Header | LineProblem:
    """Line 1: which columns hold the code and max_uses, and how many cells a line has."""
    text = _decode(raw)
    if isinstance(text, LineProblem):
        return LineProblem(1, None, f"header: {text.reason}")
    cells = split_cells(text)
    if cells is None:
        return LineProblem(1, None, "header: a quoted name is not closed, or text follows it")
    names = [unprotect(cell).lower() for cell in cells]
    if names == [""]:
        return LineProblem(1, None, _header_help("the header line is blank"))
    unknown = [name for name in names if name not in _KNOWN_COLUMNS]
    if unknown:
        shown = ", ".join(repr(visible(name[:_ECHO])) for name in unknown)
        return LineProblem(1, None, _header_help(f"unknown column(s) {shown}"))
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        return LineProblem(1, None, f"header: column(s) named twice: {', '.join(repeated)}")
    if CODE_COLUMN not in names:
        return LineProblem(1, None, _header_help("the header names no code column"))
    max_uses_at = names.index(MAX_USES_COLUMN) if MAX_USES_COLUMN in names else None
    return Header(names.index(CODE_COLUMN), max_uses_at, len(names))


def _header_help(problem: str) -> str:
    return (
        f"{problem}; line 1 must name the columns: code (required), max_uses (optional), "
        f"and optionally the export's {', '.join(IGNORED_COLUMNS)} (ignored)"
    )


def parse_code_line(number: int, raw: bytes | None, header: Header) -> ImportedCode | LineProblem:
    """One line after the header: its code (SPEC 3.1's rules) and max_uses."""
    text = _decode(raw)
    if isinstance(text, LineProblem):
        return LineProblem(number, None, text.reason)
    cells = split_cells(text)
    if cells is None:
        return LineProblem(number, None, "a quoted cell is not closed, or text follows it")
    code = unprotect(cells[0 if header.code_at >= len(cells) else header.code_at])
    if len(cells) != header.width:
        return LineProblem(
            number,
            _echo(code),
            f"the line has {len(cells)} cell(s); the header names {header.width} column(s)",
        )
    if not _CODE.fullmatch(code):
        problems = Problems()
        check_code(code, CODE_COLUMN, problems)
        return LineProblem(number, _echo(code), _reason(problems))
    max_uses: int | None = 1
    if header.max_uses_at is not None:
        cell = unprotect(cells[header.max_uses_at])
        if cell == "":
            max_uses = None
        elif _WHOLE.fullmatch(cell) and 1 <= int(cell) <= MAX_INT:
            max_uses = int(cell)
        else:
            return LineProblem(
                number,
                code,
                f"max_uses must be a whole number from 1 to {MAX_INT}, or empty for unlimited "
                f"(got {visible(cell[:_ECHO])!r})",
            )
    return ImportedCode(number, code, normalise_code(code), max_uses)


def _echo(cell: str) -> str:
    return visible(cell if len(cell) <= _ECHO else cell[:_ECHO] + "...")


def _reason(problems: Problems) -> str:
    first = problems.items[0]
    return f"{first.field} {first.message}"


def repeats_problem(line: int, code: str, first_line: int) -> LineProblem:
    return LineProblem(line, code, f"repeats the code of line {first_line} (ignoring case)")


def taken_problem(line: int, code: str, coupon_id: str, own: bool) -> LineProblem:
    whose = f"coupon {coupon_id}'s own code" if own else f"a campaign code of coupon {coupon_id}"
    return LineProblem(line, code, f"is already a code of this tenant ({whose})")


@dataclass
class ProblemList:
    """The first MAX_REPORTED problems by line, and how many lines were refused in all."""

    items: list[LineProblem]
    count: int = 0

    def add(self, problem: LineProblem) -> None:
        self.count += 1
        if len(self.items) < MAX_REPORTED:
            self.items.append(problem)


def first_problems(*lists: list[LineProblem]) -> list[LineProblem]:
    """The first MAX_REPORTED of several lists, by line (each list names distinct lines)."""
    return sorted((p for problems in lists for p in problems), key=lambda p: p.line)[:MAX_REPORTED]


def refused_error(problems: list[LineProblem], count: int) -> dict[str, Any]:
    """A failed import's `error`: the first problems by line, and how many lines in all."""
    more = count - len(problems)
    message = (
        f"{count} line(s) refused; nothing was imported"
        + (f" (the first {len(problems)} are listed; {more} more)" if more > 0 else "")
        + "."
    )
    return {
        "reason": "invalid_lines",
        "message": message,
        "lines_refused": count,
        "lines": [problem.view() for problem in problems],
    }
