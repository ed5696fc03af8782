"""Reading an import's CSV file (domain/imports.py): lines however the file is cut into
pieces, the header, each code line's checks, and the numbers a text editor shows."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couponry.domain.codes import code_csv_line, csv_line
from couponry.domain.imports import (
    MAX_LINE_BYTES,
    MAX_REPORTED,
    BadFile,
    CodeLineCounter,
    FileReader,
    Header,
    ImportedCode,
    LineProblem,
    LineSplitter,
    ProblemList,
    first_problems,
    parse_code_line,
    parse_header,
    refused_error,
    split_cells,
)


def read(data: bytes, piece: int = 7) -> list[ImportedCode | LineProblem]:
    reader = FileReader()
    out: list[ImportedCode | LineProblem] = []
    for start in range(0, len(data), piece):
        out += reader.feed(data[start : start + piece])
    return out + reader.end()


def problems(data: bytes) -> list[tuple[int, str | None, str]]:
    return [(p.line, p.code, p.reason) for p in read(data) if isinstance(p, LineProblem)]


def test_lines_come_out_whole_whatever_the_pieces() -> None:
    data = b"\xef\xbb\xbfcode\r\nAAA\r\n\r\nBBB\nCCC"
    for size in range(1, len(data) + 1):
        splitter = LineSplitter()
        lines: list[bytes | None] = []
        for start in range(0, len(data), size):
            lines += splitter.feed(data[start : start + size])
        lines += splitter.end()
        assert lines == [b"code\r", b"AAA\r", b"\r", b"BBB", b"CCC"], size


def test_a_line_too_long_is_one_line_never_held_whole() -> None:
    data = b"code\n" + b"A" * (MAX_LINE_BYTES * 3) + b"\nBBB\n" + b"C" * (MAX_LINE_BYTES + 1)
    splitter = LineSplitter()
    lines: list[bytes | None] = []
    for start in range(0, len(data), 1000):
        lines += splitter.feed(data[start : start + 1000])
        assert len(splitter._carry) <= MAX_LINE_BYTES
    lines += splitter.end()
    assert lines == [b"code", None, b"BBB", None]
    assert problems(data) == [
        (2, None, f"the line is longer than {MAX_LINE_BYTES} bytes"),
        (4, None, f"the line is longer than {MAX_LINE_BYTES} bytes"),
    ]


def test_codes_and_max_uses_are_read_with_the_header_as_line_1() -> None:
    data = b"code,max_uses\r\nSPRING-1,3\r\n\r\n  spring_2 , \r\nSPRING-3,1\r\n"
    assert read(data) == [
        ImportedCode(2, "SPRING-1", "spring-1", 3),
        ImportedCode(4, "spring_2", "spring_2", None),  # empty: unlimited, as exported
        ImportedCode(5, "SPRING-3", "spring-3", 1),
    ]
    assert read(b"Code\nABC\n") == [ImportedCode(2, "ABC", "abc", 1)]  # no column: 1


def test_an_exported_file_reads_back_as_it_was() -> None:
    from datetime import UTC, datetime

    from couponry.domain.codes import CSV_HEADER, CampaignCode

    made = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    exported = [
        CampaignCode(1, "c", "-LEADING", 2, 1, True, made, made),
        CampaignCode(2, "c", "plain_1", None, 0, False, made, None),
    ]
    data = (csv_line(CSV_HEADER) + "".join(code_csv_line(c) for c in exported)).encode()
    assert b'"\'-LEADING"' in data
    assert read(data) == [
        ImportedCode(2, "-LEADING", "-leading", 2),
        ImportedCode(3, "plain_1", "plain_1", None),
    ]


@pytest.mark.parametrize(
    ("line", "cells"),
    [
        ("a,b", ["a", "b"]),
        (" a , b ", ["a", "b"]),
        ('"a,b",c', ["a,b", "c"]),
        ('"say ""hi""", x', ['say "hi"', "x"]),
        ('a,"",', ["a", "", ""]),
        ("", [""]),
        ('"open', None),
        ('"a"b,c', None),
        ('a"b,c', None),
    ],
)
def test_cells_follow_csv_quoting_within_a_line(line: str, cells: list[str] | None) -> None:
    assert split_cells(line) == cells


def test_the_header_must_name_a_code_column_and_only_known_ones() -> None:
    assert parse_header(b"code") == Header(0, None, 1)
    assert parse_header(b"max_uses, CODE ,created_at\r") == Header(1, 0, 3)
    export = b"code,max_uses,times_used,is_active,created_at,last_used_at"
    assert parse_header(b"\xef\xbb\xbf" + export) != parse_header(export)  # only FileReader strips
    assert read(b"\xef\xbb\xbf" + export + b"\nABC,,0,true,,\n") == [
        ImportedCode(2, "ABC", "abc", None)
    ]
    for bad, words in (
        (b"max_uses", "names no code column"),
        (b"code,uses", "unknown column(s) 'uses'"),
        (b"code,code", "named twice: code"),
        (b"", "the header line is blank"),
        (b"\xff\xfe", "not valid UTF-8"),
        (b'"code', "not closed"),
    ):
        found = parse_header(bad)
        assert isinstance(found, LineProblem) and found.line == 1 and found.code is None
        assert words in found.reason, (bad, found.reason)


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        (b"AB,1", "AB", "code must be 3-64 characters"),
        (b"A" * 65 + b",1", "A" * 65, "code must be 3-64 characters"),
        (b"has space,1", "has space", "code must be 3-64 characters"),
        (b"caf\xc3\xa9,1", "caf\u00e9", "code must be 3-64 characters"),
        (b"NUL\x00X,1", "NUL\\u0000X", "code must be 3-64 characters"),
        (b"'=SUM,1", "=SUM", "code must be 3-64 characters"),
        (b"'ABC,1", "'ABC", "code must be 3-64 characters"),  # a quote kept: not ours
        (b"ABC,0", "ABC", "max_uses must be a whole number from 1"),
        (b"ABC,-1", "ABC", "max_uses must be a whole number from 1"),
        (b"ABC,1.5", "ABC", "max_uses must be a whole number from 1"),
        (b"ABC,99999999999", "ABC", "max_uses must be a whole number from 1"),
        (b"ABC,null", "ABC", "(got 'null')"),
        (b"ABC", "ABC", "the line has 1 cell(s); the header names 2 column(s)"),
        (b"ABC,1,2", "ABC", "the line has 3 cell(s)"),
        (b"\xffABC,1", None, "not valid UTF-8"),
        (b'"ABC,1', None, "not closed"),
    ],
)
def test_a_bad_line_is_named_with_its_code_and_why(
    raw: bytes, code: str | None, words: str
) -> None:
    found = parse_code_line(9, raw, Header(0, 1, 2))
    assert isinstance(found, LineProblem)
    assert (found.line, found.code) == (9, code)
    assert words in found.reason, found.reason


def test_a_long_bad_code_is_shown_cut() -> None:
    found = parse_code_line(2, b"X" * 1000 + b"!", Header(0, None, 1))
    assert isinstance(found, LineProblem) and found.code == "X" * 80 + "..."


def test_a_file_that_cannot_be_read_is_one_problem_on_line_1() -> None:
    for data, words in (
        (b"", "the file is empty"),
        (b"\xef\xbb\xbf", "the header line is blank"),
        (b"code\n\n\n", "a header and no code lines"),
        (b"\ncode\nABC\n", "the header line is blank"),
        (b"codes\nABC\n", "unknown column(s) 'codes'"),
    ):
        with pytest.raises(BadFile) as bad:
            read(data)
        assert bad.value.problem.line == 1 and words in bad.value.problem.reason, data


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.one_of(
            st.sampled_from(["ABC", "abc", " ", "", "x", '"q,r"', "'-X1", "A,B", "é", "\r"]),
            st.text(max_size=12),
        ),
        max_size=30,
    ),
    piece=st.integers(min_value=1, max_value=50),
    crlf=st.booleans(),
)
def test_any_file_reads_the_same_whatever_its_pieces_and_never_breaks(
    lines: list[str], piece: int, crlf: bool
) -> None:
    """Lines numbered as an editor numbers them, as many as the counter counts (the job's
    total), and the same results from pieces of any size."""
    end = "\r\n" if crlf else "\n"
    data = ("code" + end + end.join(lines)).encode("utf-8", "surrogatepass")
    try:
        whole = read(data, piece=len(data) or 1)
    except BadFile:
        with pytest.raises(BadFile):
            read(data, piece)
        return
    assert read(data, piece) == whole
    counter = CodeLineCounter()
    for start in range(0, len(data), piece):
        counter.feed(data[start : start + piece])
    assert counter.end() == len(whole)
    numbers = [item.line for item in whole]
    assert numbers == sorted(set(numbers)) and all(n >= 2 for n in numbers)


def test_a_failed_import_names_the_first_100_lines_and_how_many_in_all() -> None:
    bad = ProblemList([])
    for line in range(2, 302, 2):
        bad.add(LineProblem(line, "x", "bad"))
    repeats = [LineProblem(line, "y", "repeat") for line in range(3, 60, 2)]
    first = first_problems(bad.items, repeats)
    assert len(first) == MAX_REPORTED and [p.line for p in first] == sorted(p.line for p in first)
    assert first[1].reason == "repeat"
    error = refused_error(first, bad.count + len(repeats))
    assert error["reason"] == "invalid_lines" and error["lines_refused"] == 179
    assert len(error["lines"]) == 100 and "79 more" in error["message"]
    assert error["lines"][0] == {"line": 2, "code": "x", "reason": "bad"}
    assert "more" not in refused_error(first[:3], 3)["message"]
