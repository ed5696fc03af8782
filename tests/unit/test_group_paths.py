"""Group path grammar, canonical formatting and resolution against a group tree."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from couponry.domain.group_paths import (
    MAX_PATH_LENGTH,
    GroupNode,
    Segment,
    format_group_path,
    looks_like_group_path,
    parse_group_path,
    resolve_group_path,
)
from couponry.errors import GroupPathAmbiguous, GroupPathNoMatch, InvalidGroupPath

ANY = Segment("any", None)


def name(value: str) -> Segment:
    return Segment("name", value)


def code(value: str) -> Segment:
    return Segment("code", value)


# --- parsing: valid -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*", (ANY,)),
        ('{name:"Training"}', (name("Training"),)),
        ('{code:"TR-1"}', (code("TR-1"),)),
        (
            '{name:"Training"}/{name: "Corporate"}/*',
            (name("Training"), name("Corporate"), ANY),
        ),
        ("*/*/*", (ANY, ANY, ANY)),
        ('  {  name  :  "A"  }  /  *  /  { code :"b" }  ', (name("A"), ANY, code("b"))),
        ('{name:"a/b"}/{name:"c//d/"}', (name("a/b"), name("c//d/"))),
        (r'{name:"say \"hi\""}', (name('say "hi"'),)),
        (r'{name:"back\\slash"}', (name("back\\slash"),)),
        (r'{name:"\\\""}', (name('\\"'),)),
        ('{name:"{code:\\"x\\"}/*"}', (name('{code:"x"}/*'),)),
        ('{name:"Ünïcødé 学校 🎓"}', (name("Ünïcødé 学校 🎓"),)),
        ('{name:""}', (name(""),)),
        ('{name:"  padded  "}', (name("  padded  "),)),
        ("\u00a0*\u2003", (ANY,)),  # non-control Unicode white space is white space too
    ],
    ids=lambda value: repr(value) if isinstance(value, str) else "",
)
def test_parse_valid(text: str, expected: tuple[Segment, ...]) -> None:
    assert parse_group_path(text) == expected


# --- parsing: syntax errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "expected a segment"),
        ("   ", 3, "expected a segment"),
        ("*/", 2, "expected a segment"),
        ('{name:"a"}/ ', 12, "expected a segment"),
        ("/", 0, "empty segment"),
        ("/*", 0, "empty segment"),
        ("*//*", 2, "empty segment"),
        ("* / / *", 4, "empty segment"),
        ('{name:"abc', 10, "unterminated string"),
        ('{name:"abc\\', 11, "unterminated string"),
        ('{name:"abc"', 11, "expected '}'"),
        ('{name:"abc" x}', 12, "expected '}'"),
        ('{name "abc"}', 6, "expected ':' after key"),
        ("{name}", 5, "expected ':' after key"),
        ('{name:abc"}', 6, "expected a double-quoted value"),
        ("{name:'abc'}", 6, "expected a double-quoted value"),
        ('{:"abc"}', 1, "expected key"),
        ("{", 1, "expected key"),
        ('{Name:"abc"}', 1, "unknown key 'Name'"),
        ('{CODE:"abc"}', 1, "unknown key 'CODE'"),
        ('{ id :"abc"}', 2, "unknown key 'id'"),
        ('{name1:"abc"}', 1, "unknown key 'name1'"),
        ('{name:"a\\nb"}', 8, "invalid escape '\\n'"),
        ('{name:"a\\/b"}', 8, "invalid escape '\\/'"),
        ("*x", 1, "expected '/' or end of path"),
        ('{name:"a"}*', 10, "expected '/' or end of path"),
        ('{name:"a"} {name:"b"}', 11, "expected '/' or end of path"),
        ("x", 0, "expected '*' or '{'"),
        ('"a"', 0, "expected '*' or '{'"),
        ("*\t", 1, "control character U+0009"),
        ("*\n", 1, "control character U+000A"),
        ('{name:"a\x00"}', 8, "control character U+0000"),
        ('{name:"a\x7f"}', 8, "control character U+007F"),
        ("*/\x85", 2, "control character U+0085"),
        ("*/\ud800", 2, "lone surrogate U+D800"),
    ],
    ids=repr,
)
def test_parse_syntax_errors(text: str, position: int, fragment: str) -> None:
    with pytest.raises(InvalidGroupPath) as caught:
        parse_group_path(text)
    error = caught.value
    assert error.position == position
    assert fragment in error.message
    assert f"at position {position}" in error.message
    assert [problem.field for problem in error.details] == ["path"]


def test_parse_error_uses_given_field() -> None:
    with pytest.raises(InvalidGroupPath) as caught:
        parse_group_path("{name:", field="group")
    assert caught.value.details[0].field == "group"
    assert caught.value.code == "invalid_group_path"


def test_parse_error_message_is_a_sentence_with_position() -> None:
    with pytest.raises(InvalidGroupPath) as caught:
        parse_group_path('{name  "X"}')
    assert caught.value.message == "expected ':' after key at position 7"


def test_unterminated_string_names_the_opening_quote() -> None:
    with pytest.raises(InvalidGroupPath) as caught:
        parse_group_path('*/{code:"abc')
    assert caught.value.position == 12
    assert "opened at position 8" in caught.value.message


def test_length_limit() -> None:
    limit_path = "/".join(["*"] * 1000)  # 1,999 characters
    assert len(parse_group_path(limit_path + " ")) == 1000
    with pytest.raises(InvalidGroupPath) as caught:
        parse_group_path(limit_path + "  ")
    assert caught.value.position == MAX_PATH_LENGTH
    assert "2000" in caught.value.message


@given(st.text(max_size=60))
def test_parse_never_raises_anything_but_invalid_group_path(text: str) -> None:
    try:
        segments = parse_group_path(text)
    except InvalidGroupPath as error:
        assert 0 <= error.position <= len(text)
    else:
        assert segments


# --- formatting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segments", "text"),
    [
        ((ANY,), "*"),
        ((name("Training"), name("Corporate"), ANY), '{name:"Training"}/{name:"Corporate"}/*'),
        ((code('a"b\\c/d'),), '{code:"a\\"b\\\\c/d"}'),
        ((name(""),), '{name:""}'),
    ],
)
def test_format_examples(segments: tuple[Segment, ...], text: str) -> None:
    assert format_group_path(segments) == text
    assert parse_group_path(text) == segments


# Parsable value text: anything but control characters and lone surrogates.
_values = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=20)
_segments = st.one_of(
    st.just(ANY),
    st.builds(Segment, st.sampled_from(["name", "code"]), _values),
)


@given(st.lists(_segments, min_size=1, max_size=8))
def test_format_parse_round_trip(segments: list[Segment]) -> None:
    assert parse_group_path(format_group_path(segments)) == tuple(segments)


def test_segment_kind_and_value_must_agree() -> None:
    with pytest.raises(ValueError):
        Segment("any", "x")
    with pytest.raises(ValueError):
        Segment("name", None)


# --- telling paths from ids ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{name:"A"}', True),
        ("*", True),
        ("  \t{", True),
        (" */x", True),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", False),
        ("", False),
        ("   ", False),
        ("name", False),
        ("/*", False),
    ],
)
def test_looks_like_group_path(text: str, expected: bool) -> None:
    assert looks_like_group_path(text) is expected


# --- resolution -------------------------------------------------------------------------

# Training
# ├── Corporate (code CORP)
# │   └── Onboarding
# └── Retail
#     └── Onboarding (code ON-R)
# Sales (code " sales ")
# └── Corporate
# Archive (no code)
TREE = [
    GroupNode("g-training", None, "Training", None),
    GroupNode("g-corp", "g-training", "Corporate", "CORP"),
    GroupNode("g-corp-onb", "g-corp", "Onboarding", None),
    GroupNode("g-retail", "g-training", "Retail", None),
    GroupNode("g-retail-onb", "g-retail", "Onboarding", "ON-R"),
    GroupNode("g-sales", None, "Sales", " sales "),
    GroupNode("g-sales-corp", "g-sales", "Corporate", None),
    GroupNode("g-archive", None, "  ARCHIVE ", None),
]


def resolve(text: str) -> GroupNode:
    return resolve_group_path(parse_group_path(text), TREE)


@pytest.mark.parametrize(
    ("text", "group_id"),
    [
        ('{name:"Training"}', "g-training"),
        ('{name:"Training"}/{name:"Corporate"}', "g-corp"),
        ('{name:"Sales"}/{name:"Corporate"}', "g-sales-corp"),
        ('{name:"Training"}/{code:"corp"}/*', "g-corp-onb"),
        # '*' fans out to Corporate and Retail, the code narrows to one Onboarding.
        ('{name:"Training"}/*/{code:"ON-R"}', "g-retail-onb"),
        ('*/{code:"CORP"}', "g-corp"),
        ('*/*/{code:"on-r"}', "g-retail-onb"),
        # case-insensitive, both sides trimmed
        ('{name:"  training "}/{name:"CORPORATE"}', "g-corp"),
        ('{name:"archive"}', "g-archive"),
        ('{code:"SALES"}', "g-sales"),
        ('{code:"  Sales"}', "g-sales"),
    ],
)
def test_resolve_unique(text: str, group_id: str) -> None:
    assert resolve(text).id == group_id


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("*", 3),
        ('{name:"Training"}/*', 2),
        ("*/*", 3),
        ('*/{name:"Corporate"}', 2),
        ('{name:"Training"}/*/{name:"onboarding"}', 2),
        ("*/*/*", 2),
    ],
)
def test_resolve_ambiguous(text: str, count: int) -> None:
    with pytest.raises(GroupPathAmbiguous) as caught:
        resolve(text)
    error = caught.value
    assert error.count == count
    assert error.message == f"group path matches {count} groups"
    assert error.details[0].field == "path"
    assert error.code == "group_path_ambiguous"


@pytest.mark.parametrize(
    ("text", "segment_number"),
    [
        ('{name:"Nope"}/*', 1),
        ('{name:"Corporate"}', 1),  # exists, but not at the root level
        ('{name:"Training"}/{name:"Nope"}/*', 2),
        ('{name:"Training"}/*/{name:"Nope"}', 3),
        ('{name:"Training"}/{name:"Corporate"}/{name:"Onboarding"}/*', 4),
        ('{name:"Sales"}/{name:"Retail"}', 2),  # Retail exists, but under Training
        ('{name:"Sales"}/{name:"Corporate"}/{name:"Onboarding"}', 3),
        ('{code:"ARCHIVE"}', 1),  # a group without a code never matches a code segment
        ('{name:"Training"}/{code:"Retail"}', 2),
        ('{name:"Training"}/{code:""}', 2),  # not even the empty code
    ],
)
def test_resolve_no_match(text: str, segment_number: int) -> None:
    with pytest.raises(GroupPathNoMatch) as caught:
        resolve(text)
    error = caught.value
    assert error.message.startswith("group path matches no group")
    assert f"segment {segment_number}," in error.message
    assert error.details[0].field == "path"
    assert error.code == "group_path_no_match"


def test_resolve_children_only_of_kept_groups() -> None:
    # A and B both have a child named X; only the children of the kept parent may match.
    groups = [
        GroupNode("a", None, "A", None),
        GroupNode("b", None, "B", None),
        GroupNode("a-x", "a", "X", None),
        GroupNode("b-x", "b", "X", None),
        GroupNode("b-y", "b", "Y", None),
    ]
    assert resolve_group_path((name("a"), name("x")), groups).id == "a-x"
    assert resolve_group_path((name("b"), name("x")), groups).id == "b-x"
    with pytest.raises(GroupPathNoMatch):
        resolve_group_path((name("a"), name("y")), groups)


def test_resolve_uses_given_field() -> None:
    with pytest.raises(GroupPathAmbiguous) as ambiguous:
        resolve_group_path((ANY,), TREE, field="group_path")
    assert ambiguous.value.details[0].field == "group_path"
    with pytest.raises(GroupPathNoMatch) as missing:
        resolve_group_path((name("none"),), TREE, field="group_path")
    assert missing.value.details[0].field == "group_path"


def test_resolve_empty_inputs() -> None:
    with pytest.raises(GroupPathNoMatch):
        resolve_group_path((), TREE)
    with pytest.raises(GroupPathNoMatch):
        resolve_group_path((ANY,), [])


def test_resolve_accepts_any_iterable_once() -> None:
    # A generator can only be read once: the index must be built in a single pass.
    assert resolve_group_path((name("Sales"),), (group for group in TREE)).id == "g-sales"


def test_resolve_many_groups() -> None:
    # 40 roots x 50 children x 2 grandchildren: one grandchild code is unique.
    groups: list[GroupNode] = []
    for r in range(40):
        groups.append(GroupNode(f"r{r}", None, f"Root {r}", None))
        for c in range(50):
            groups.append(GroupNode(f"r{r}c{c}", f"r{r}", f"Child {c}", None))
            for g in range(2):
                groups.append(GroupNode(f"r{r}c{c}g{g}", f"r{r}c{c}", "Leaf", f"L-{r}-{c}-{g}"))
    found = resolve_group_path(parse_group_path('*/*/{code:"l-39-49-1"}'), groups)
    assert found.id == "r39c49g1"
    with pytest.raises(GroupPathAmbiguous) as caught:
        resolve_group_path(parse_group_path('*/{name:"child 7"}/*'), groups)
    assert caught.value.count == 80
