"""Generating campaign codes (domain/codegen.py): what a request may ask, and what it makes."""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couponry.domain.codegen import (
    CHARSETS,
    CodeSpaceTooSmall,
    Generation,
    generate,
    parse_generation,
)
from couponry.errors import InvalidInput


def test_the_defaults_are_ten_characters_without_look_alikes() -> None:
    plan = parse_generation({"count": 5})
    assert plan == Generation(5, "#" * 10, CHARSETS["alphanumeric"], 1)
    assert not set("0O1IL") & set(plan.charset)
    codes = generate(plan, 100, os.urandom)
    assert len(codes) == 100
    assert all(re.fullmatch(f"[{plan.charset}]{{10}}", code) for code in codes)


def test_a_pattern_keeps_its_literals_prefix_and_suffix() -> None:
    plan = parse_generation(
        {"count": 3, "pattern": "SPR-##_#", "charset": "numeric", "prefix": "A", "suffix": "-z"}
    )
    assert plan.template == "ASPR-##_#-z" and plan.space == 1000
    assert all(re.fullmatch(r"ASPR-\d\d_\d-z", code) for code in generate(plan, 50, os.urandom))


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({}, "count"),
        ({"count": 0}, "count"),
        ({"count": 1_000_001}, "count"),
        ({"count": True}, "count"),
        ({"count": 1, "length": 3}, "length"),
        ({"count": 1, "length": 33}, "length"),
        ({"count": 1, "pattern": "NOSLOTS"}, "pattern"),
        ({"count": 1, "pattern": "AB #"}, "pattern"),
        ({"count": 1, "pattern": "A#", "length": 5}, "length"),
        ({"count": 1, "charset": "émoji"}, "charset"),
        ({"count": 1, "charset": "a"}, "charset"),
        ({"count": 1, "charset": "aA"}, "charset"),  # equal ignoring case, as codes compare
        ({"count": 1, "charset": "ab$"}, "charset"),
        ({"count": 1, "prefix": "X Y"}, "prefix"),
        ({"count": 1, "suffix": 7}, "suffix"),
        ({"count": 1, "max_uses": 0}, "max_uses"),
        ({"count": 1, "pattern": "#" * 40, "prefix": "P" * 30}, "pattern"),  # over 64
        ({"count": 1, "colour": "red"}, "colour"),
    ],
)
def test_each_bad_request_names_its_field(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_generation(doc)
    assert field in [d.field for d in refused.value.details]


def test_more_than_a_quarter_of_the_space_is_refused() -> None:
    assert parse_generation({"count": 25, "pattern": "AB##", "charset": "numeric"}).space == 100
    with pytest.raises(CodeSpaceTooSmall) as refused:
        parse_generation({"count": 26, "pattern": "AB##", "charset": "numeric"})
    assert refused.value.space == 100


def test_max_uses_may_be_unlimited() -> None:
    assert parse_generation({"count": 1, "max_uses": None}).max_uses is None
    assert parse_generation({"count": 1, "max_uses": 3}).max_uses == 3


def test_every_character_of_the_charset_is_equally_likely() -> None:
    """31 characters do not divide 256: bytes past 248 are drawn again, not folded in."""
    plan = parse_generation({"count": 1, "pattern": "AB#"})
    counts = Counter(code[2] for code in generate(plan, 62_000, os.urandom))
    assert set(counts) == set(plan.charset)
    expected = 62_000 / len(plan.charset)
    assert all(abs(n - expected) < expected * 0.12 for n in counts.values())


def test_rejected_bytes_are_drawn_again() -> None:
    """Fed only bytes the charset cannot use, then good ones: nothing biased gets through."""
    plan = parse_generation({"count": 1, "pattern": "X##", "charset": "ABC"})  # 255 is rejected
    feeds = iter([b"\xff" * 66, bytes([0, 1, 2, 3]) * 20])
    assert generate(plan, 2, lambda n: next(feeds)) == ["XAB", "XCA"]


@settings(max_examples=60, deadline=None)
@given(
    charset=st.sampled_from([*CHARSETS, "xyz", "0123456789ABCDEF"]),
    pattern=st.text(alphabet="#AB-_9", min_size=1, max_size=12).filter(lambda p: "#" in p),
    seed=st.binary(min_size=64, max_size=64),
)
def test_any_plan_makes_codes_of_its_template(charset: str, pattern: str, seed: bytes) -> None:
    doc = {"count": 1, "pattern": "X" + pattern + "Y", "charset": charset}
    try:
        plan = parse_generation(doc)
    except (InvalidInput, CodeSpaceTooSmall):
        return
    stream = iter(seed * 1000)
    codes = generate(plan, 20, lambda n: bytes(next(stream) for _ in range(n)))
    alphabet = CHARSETS.get(charset, charset)
    for code in codes:
        assert len(code) == len(plan.template)
        for made, asked in zip(code, plan.template, strict=True):
            assert made in alphabet if asked == "#" else made == asked
