"""Our JSON Patch wrapper: atomicity, error naming, strict `test`, touched paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from couponry.domain.patching import (
    apply_patch,
    apply_patch_to_any,
    json_equal,
    json_size,
    touched_paths,
    validate_patch,
)
from couponry.errors import FieldProblem, InvalidInput, InvalidPatch, PatchTestFailed

COUPON: dict[str, Any] = {
    "id": "c-1",
    "code": "SPRING",
    "discount": {"percent": 10, "max": 25.5},
    "tags": ["a", "b", "c"],
    "active": True,
    "note": None,
}


def fresh() -> dict[str, Any]:
    return copy.deepcopy(COUPON)


# --- results ------------------------------------------------------------------------------


def test_apply_returns_patched_copy() -> None:
    document = fresh()
    result = apply_patch(
        document,
        [
            {"op": "replace", "path": "/code", "value": "SUMMER"},
            {"op": "add", "path": "/tags/-", "value": "d"},
            {"op": "remove", "path": "/note"},
            {"op": "move", "from": "/discount/max", "path": "/max_discount"},
            {"op": "copy", "from": "/tags/0", "path": "/first_tag"},
            {"op": "test", "path": "/code", "value": "SUMMER"},
        ],
    )
    assert result == {
        "id": "c-1",
        "code": "SUMMER",
        "discount": {"percent": 10},
        "tags": ["a", "b", "c", "d"],
        "active": True,
        "max_discount": 25.5,
        "first_tag": "a",
    }
    assert document == COUPON


def test_empty_patch_returns_equal_copy() -> None:
    document = fresh()
    result = apply_patch(document, [])
    assert result == document
    assert result is not document
    assert result["tags"] is not document["tags"]


def test_result_shares_nothing_with_the_operations() -> None:
    value = {"nested": [1]}
    result = apply_patch(fresh(), [{"op": "add", "path": "/extra", "value": value}])
    result["extra"]["nested"].append(2)
    assert value == {"nested": [1]}


def test_unknown_members_are_ignored() -> None:
    result = apply_patch(fresh(), [{"op": "remove", "path": "/note", "value": 1, "x": 2}])
    assert "note" not in result


def test_move_checks_its_target_after_removing_the_source() -> None:
    # After removing /a/0 the array is [5, {}], so /a/1/k lands in the object (RFC 6902 4.4).
    assert apply_patch_to_any(
        {"a": [1, 5, {}]}, [{"op": "move", "from": "/a/0", "path": "/a/1/k"}]
    ) == {"a": [5, {"k": 1}]}


def test_move_to_the_same_location_is_a_no_op() -> None:
    assert apply_patch(fresh(), [{"op": "move", "from": "/tags", "path": "/tags"}]) == COUPON


def test_root_can_be_replaced_by_another_object() -> None:
    result = apply_patch(fresh(), [{"op": "replace", "path": "", "value": {"id": "x"}}])
    assert result == {"id": "x"}


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "replace", "path": "", "value": [1]}],
        [{"op": "add", "path": "", "value": "text"}],
        [{"op": "copy", "from": "/tags", "path": ""}],
        [{"op": "move", "from": "/code", "path": ""}],
    ],
)
def test_result_must_be_an_object(operations: list[dict[str, Any]]) -> None:
    with pytest.raises(InvalidPatch) as caught:
        apply_patch(fresh(), operations)
    assert caught.value.details[0].field == "patch"
    assert "JSON object" in caught.value.message


def test_apply_patch_to_any_allows_non_objects() -> None:
    assert apply_patch_to_any([1, 2], [{"op": "remove", "path": "/0"}]) == [2]
    assert apply_patch_to_any("a", [{"op": "replace", "path": "", "value": 3}]) == 3


# --- atomicity ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failing", "error"),
    [
        ({"op": "remove", "path": "/missing"}, InvalidPatch),
        ({"op": "test", "path": "/code", "value": "OTHER"}, PatchTestFailed),
        ({"op": "add", "path": "/tags/9", "value": 1}, InvalidPatch),
        ({"op": "bogus", "path": "/code"}, InvalidPatch),
    ],
)
def test_failure_leaves_the_document_untouched(
    failing: dict[str, Any], error: type[Exception]
) -> None:
    document = fresh()
    operations = [
        {"op": "replace", "path": "/code", "value": "CHANGED"},
        {"op": "remove", "path": "/tags/0"},
        {"op": "add", "path": "/discount/min", "value": 1},
        {"op": "move", "from": "/note", "path": "/moved"},
        failing,
    ]
    with pytest.raises(error):
        apply_patch(document, operations)
    assert document == COUPON
    assert document["tags"] == ["a", "b", "c"]


def test_operations_are_not_modified() -> None:
    operations = [
        {"op": "add", "path": "/x", "value": {"y": [1]}, "extra": True},
        {"op": "add", "path": "/x/y/-", "value": 2},
    ]
    snapshot = copy.deepcopy(operations)
    apply_patch(fresh(), operations)
    assert operations == snapshot


# --- error naming -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operations", "field"),
    [
        ({"op": "add", "path": "/a", "value": 1}, "patch"),
        ("[]", "patch"),
        (None, "patch"),
        ([{"op": "test", "path": "/id", "value": "c-1"}, "add"], "patch[1]"),
        ([["op", "add"]], "patch[0]"),
        ([{"path": "/a", "value": 1}], "patch[0].op"),
        ([{"op": 1, "path": "/a"}], "patch[0].op"),
        ([{"op": "ADD", "path": "/a", "value": 1}], "patch[0].op"),
        ([{"op": "append", "path": "/code", "value": "x"}], "patch[0].op"),
        ([{"op": "add", "value": 1}], "patch[0].path"),
        ([{"op": "add", "path": None, "value": 1}], "patch[0].path"),
        ([{"op": "add", "path": 3, "value": 1}], "patch[0].path"),
        ([{"op": "add", "path": "a", "value": 1}], "patch[0].path"),
        ([{"op": "add", "path": "/a~2", "value": 1}], "patch[0].path"),
        ([{"op": "add", "path": "/a~", "value": 1}], "patch[0].path"),
        ([{"op": "add", "path": "/a"}], "patch[0].value"),
        ([{"op": "replace", "path": "/code"}], "patch[0].value"),
        ([{"op": "test", "path": "/code"}], "patch[0].value"),
        ([{"op": "move", "path": "/a"}], "patch[0].from"),
        ([{"op": "copy", "path": "/a", "from": "tags"}], "patch[0].from"),
        ([{"op": "copy", "path": "/a", "from": None}], "patch[0].from"),
        # application problems
        (
            [
                {"op": "test", "path": "/id", "value": "c-1"},
                {"op": "add", "path": "/a", "value": 1},
                {"op": "remove", "path": "/missing"},
            ],
            "patch[2].path",
        ),
        ([{"op": "remove", "path": ""}], "patch[0].path"),
        ([{"op": "replace", "path": "/nope", "value": 1}], "patch[0].path"),
        ([{"op": "replace", "path": "/tags/3", "value": 1}], "patch[0].path"),
        ([{"op": "replace", "path": "/tags/-", "value": 1}], "patch[0].path"),
        ([{"op": "add", "path": "/nope/x", "value": 1}], "patch[0].path"),
        ([{"op": "add", "path": "/tags/4", "value": 1}], "patch[0].path"),
        ([{"op": "add", "path": "/tags/01", "value": 1}], "patch[0].path"),
        ([{"op": "add", "path": "/tags/x", "value": 1}], "patch[0].path"),
        ([{"op": "add", "path": "/code/x", "value": 1}], "patch[0].path"),
        ([{"op": "add", "path": "/active/0", "value": 1}], "patch[0].path"),
        ([{"op": "add", "path": "/note/x", "value": 1}], "patch[0].path"),
        ([{"op": "remove", "path": "/tags/-"}], "patch[0].path"),
        ([{"op": "remove", "path": "/code/0"}], "patch[0].path"),
        ([{"op": "move", "from": "/nope", "path": "/a"}], "patch[0].from"),
        ([{"op": "copy", "from": "/tags/3", "path": "/a"}], "patch[0].from"),
        ([{"op": "copy", "from": "/tags/-", "path": "/a"}], "patch[0].from"),
        ([{"op": "move", "from": "/discount", "path": "/discount/inner"}], "patch[0].path"),
        ([{"op": "move", "from": "", "path": "/inner"}], "patch[0].path"),
        ([{"op": "move", "from": "/tags/0", "path": "/tags/3"}], "patch[0].path"),
        ([{"op": "copy", "from": "/code", "path": "/nope/x"}], "patch[0].path"),
    ],
)
def test_invalid_patch_names_the_field(operations: Any, field: str) -> None:
    with pytest.raises(InvalidPatch) as caught:
        apply_patch(fresh(), operations)
    error = caught.value
    assert [problem.field for problem in error.details] == [field]
    assert error.code == "invalid_patch"
    # Messages are ours: they name the operation but never dump the document.
    assert "SPRING" not in error.message


def test_custom_field_prefix() -> None:
    with pytest.raises(InvalidPatch) as caught:
        apply_patch(fresh(), [{"op": "remove", "path": "/x"}], field="body")
    assert caught.value.details[0].field == "body[0].path"


def test_test_failure_names_op_and_path() -> None:
    operations = [
        {"op": "add", "path": "/a", "value": 1},
        {"op": "test", "path": "/code", "value": "WINTER"},
    ]
    with pytest.raises(PatchTestFailed) as caught:
        apply_patch(fresh(), operations)
    error = caught.value
    assert "patch[1]" in error.message
    assert "'/code'" in error.message
    assert error.code == "patch_test_failed"
    assert [problem.field for problem in error.details] == ["patch[1].value"]


@pytest.mark.parametrize("path", ["/missing", "/tags/3", "/tags/-", "/tags/01", "/code/0"])
def test_test_of_a_missing_location_fails_the_test(path: str) -> None:
    with pytest.raises(PatchTestFailed) as caught:
        apply_patch(fresh(), [{"op": "test", "path": path, "value": None}])
    assert caught.value.details[0].field == "patch[0].path"


def test_deeply_nested_value_is_an_invalid_patch_not_a_crash() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InvalidPatch):
        apply_patch(fresh(), [{"op": "add", "path": "/deep", "value": deep}])
    with pytest.raises(InvalidPatch):
        apply_patch({"deep": deep}, [])


# --- type-strict test ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "tested", "passes"),
    [
        (1, 1, True),
        (1, True, False),
        (True, 1, False),
        (0, False, False),
        (False, 0, False),
        (None, False, False),
        (None, 0, False),
        (None, "", False),
        (None, None, True),
        ("1", 1, False),
        (10, "10", False),
        # RFC 6902 4.6: numbers are equal when numerically equal; JSON has one number type.
        (1, 1.0, True),
        (2.5, 2.5, True),
        ([1, True], [1, True], True),
        ([1, True], [True, 1], False),
        ([1, 1], [1, True], False),
        ({"a": 1, "b": [False]}, {"b": [False], "a": 1}, True),
        ({"a": 1, "b": [False]}, {"b": [0], "a": 1}, False),
        ({"a": 1}, {"a": 1, "b": None}, False),
        ({}, [], False),
        ([], {}, False),
    ],
)
def test_test_op_is_type_strict(actual: Any, tested: Any, passes: bool) -> None:
    document = {"x": actual}
    operations = [{"op": "test", "path": "/x", "value": tested}]
    if passes:
        assert apply_patch(document, operations) == document
    else:
        with pytest.raises(PatchTestFailed):
            apply_patch(document, operations)
    assert json_equal(actual, tested) is passes


def test_test_of_the_whole_document() -> None:
    assert apply_patch({"a": 1}, [{"op": "test", "path": "", "value": {"a": 1.0}}]) == {"a": 1}
    with pytest.raises(PatchTestFailed):
        apply_patch({"a": 1}, [{"op": "test", "path": "", "value": {"a": True}}])


# --- touched paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operations", "expected"),
    [
        ([], []),
        ([{"op": "replace", "path": "/code", "value": "X"}], [(0, "replace", "code")]),
        ([{"op": "add", "path": "/discount/max", "value": 1}], [(0, "add", "discount")]),
        ([{"op": "remove", "path": "/tags/0"}], [(0, "remove", "tags")]),
        ([{"op": "test", "path": "/code", "value": "X"}], []),
        ([{"op": "copy", "from": "/code", "path": "/alias"}], [(0, "copy", "alias")]),
        (
            [{"op": "move", "from": "/code", "path": "/alias"}],
            [(0, "move", "alias"), (0, "move", "code")],
        ),
        ([{"op": "replace", "path": "", "value": {}}], [(0, "replace", "")]),
        ([{"op": "add", "path": "/", "value": 1}], [(0, "add", "")]),
        ([{"op": "add", "path": "/a~1b/c", "value": 1}], [(0, "add", "a/b")]),
        ([{"op": "add", "path": "/m~0n", "value": 1}], [(0, "add", "m~n")]),
        ([{"op": "add", "path": "/~01", "value": 1}], [(0, "add", "~1")]),
        (
            [
                {"op": "test", "path": "/id", "value": "c-1"},
                {"op": "replace", "path": "/code", "value": "X"},
                {"op": "copy", "from": "/id", "path": "/tags/-"},
                {"op": "move", "from": "/sys_locked", "path": "/x/y"},
            ],
            [
                (1, "replace", "code"),
                (2, "copy", "tags"),
                (3, "move", "x"),
                (3, "move", "sys_locked"),
            ],
        ),
    ],
)
def test_touched_paths(
    operations: list[dict[str, Any]], expected: list[tuple[int, str, str]]
) -> None:
    assert touched_paths(operations) == expected


def test_touched_paths_rejects_malformed_operations() -> None:
    with pytest.raises(InvalidPatch) as caught:
        touched_paths([{"op": "replace", "path": "/code", "value": 1}, {"op": "add", "path": "x"}])
    assert caught.value.details[0].field == "patch[1].path"


def test_validate_patch_keeps_only_rfc_members() -> None:
    assert validate_patch([{"op": "copy", "from": "/a", "path": "/b", "value": 1, "extra": 2}]) == [
        {"op": "copy", "path": "/b", "from": "/a"}
    ]


# --- the work a patch may cause is bounded by its size (issue 8) ------------------------------


@pytest.mark.parametrize(
    "value",
    [{}, [], "", "abc", 12, None, True, {"a": [1, "x", {"b": None}]}, ["é" * 10, {"k": "v"}]],
)
def test_json_size_is_close_to_the_compact_json_length(value: object) -> None:
    import json

    exact = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    assert exact <= json_size(value, 10_000) <= exact + 8


def test_json_size_stops_counting_past_its_limit() -> None:
    huge = ["x" * 100] * 100_000
    assert json_size(huge, 1_000) == 1_001


def test_a_document_may_not_grow_past_the_size_limit() -> None:
    doc = {"a": "x" * 600_000}
    with pytest.raises(InvalidPatch) as refused:
        apply_patch(doc, [{"op": "add", "path": "/b", "value": "y" * 600_000}])
    assert refused.value.details[0].field == "patch[0]"
    assert "exceed" in refused.value.details[0].message
    assert set(doc) == {"a"}


def test_a_smaller_limit_is_honoured() -> None:
    with pytest.raises(InvalidPatch):
        apply_patch({"a": 1}, [{"op": "add", "path": "/b", "value": "y" * 200}], max_size=100)
    assert apply_patch({"a": 1}, [{"op": "add", "path": "/b", "value": "y"}], max_size=100) == {
        "a": 1,
        "b": "y",
    }


def test_copy_and_remove_cycles_run_out_of_work() -> None:
    # Each cycle copies and removes 100 KB: the document never grows, the work does.
    doc = {"big": "x" * 100_000}
    cycle = [
        {"op": "copy", "from": "/big", "path": "/twin"},
        {"op": "remove", "path": "/twin"},
    ]
    with pytest.raises(InvalidPatch) as refused:
        apply_patch(doc, cycle * 50)
    assert "too much work" in refused.value.details[0].message


def test_replace_frees_the_size_it_replaces() -> None:
    # 700 KB replaced by 700 KB, three times: never more than 1 MiB at once.
    doc = {"a": "x" * 700_000}
    ops = [{"op": "replace", "path": "/a", "value": c * 700_000} for c in "yzw"]
    assert apply_patch(doc, ops)["a"][0] == "w"


def test_ordinary_patches_are_untouched_by_the_bounds() -> None:
    doc = {"custom_field_values": [{"custom_field_id": f"f{i}"} for i in range(40)], "n": 1}
    ops = [
        {"op": "copy", "from": "/custom_field_values/0", "path": "/custom_field_values/-"},
        {"op": "move", "from": "/n", "path": "/m"},
        {"op": "test", "path": "/m", "value": 1},
    ]
    result = apply_patch(doc, ops)
    assert len(result["custom_field_values"]) == 41 and result["m"] == 1


def test_a_growth_check_names_its_field_and_the_operation() -> None:
    def at_most_two(document: object) -> FieldProblem | None:
        assert isinstance(document, dict)
        return FieldProblem("items", "must have at most 2") if len(document["items"]) > 2 else None

    ops = [{"op": "add", "path": "/items/-", "value": i} for i in range(3)]
    with pytest.raises(InvalidInput) as refused:
        apply_patch({"items": [0]}, ops, check=at_most_two)
    assert refused.value.details == [FieldProblem("items", "must have at most 2")]
    assert refused.value.message.startswith("patch[1]")
