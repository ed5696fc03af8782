"""The public JSON Patch conformance suite (json-patch/json-patch-tests) against our engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from couponry.domain.patching import apply_patch_to_any
from couponry.errors import InvalidPatch, PatchTestFailed

SUITE_FILES = ("tests.json", "spec_tests.json")


# The suite ships with the project (see tests/data/json-patch-tests/SOURCE.md): a test never reads
# outside the repository.
SUITE_DIR = Path(__file__).resolve().parents[1] / "data" / "json-patch-tests"


def strictly_equal(left: Any, right: Any) -> bool:
    """Recursive equality that also requires equal types, so 1, 1.0 and True all differ."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(strictly_equal(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(strictly_equal, left, right))
    return bool(left == right)


def _records() -> list[Any]:
    params: list[Any] = []
    for file_name in SUITE_FILES:
        path = SUITE_DIR / file_name
        if not path.is_file():
            params.append(
                pytest.param(None, id=file_name, marks=pytest.mark.skip(f"{path} not found"))
            )
            continue
        for index, record in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            comment = record.get("comment") or record.get("error") or ""
            test_id = f"{file_name}[{index}] {comment}".strip()
            marks = [pytest.mark.skip("disabled in the suite")] if record.get("disabled") else []
            params.append(pytest.param(record, id=test_id, marks=marks))
    return params


@pytest.mark.parametrize("record", _records())
def test_conformance(record: dict[str, Any]) -> None:
    if "doc" not in record or "patch" not in record:
        pytest.skip("comment-only record")
    original = json.loads(json.dumps(record["doc"]))
    if "error" in record:
        with pytest.raises((InvalidPatch, PatchTestFailed)):
            apply_patch_to_any(record["doc"], record["patch"])
    else:
        result = apply_patch_to_any(record["doc"], record["patch"])
        if "expected" in record:
            assert strictly_equal(result, record["expected"]), result
    # The input document is never modified, whatever happens.
    assert strictly_equal(record["doc"], original)


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (1, 1, True),
        (1, 1.0, False),
        (1, True, False),
        (0, False, False),
        (None, None, True),
        ([1, {"a": True}], [1, {"a": True}], True),
        ([1, {"a": True}], [1, {"a": 1}], False),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ([1, 2], [1, 2, 3], False),
        ("1", 1, False),
    ],
)
def test_strictly_equal_helper(left: Any, right: Any, expected: bool) -> None:
    assert strictly_equal(left, right) is expected
    assert strictly_equal(right, left) is expected


def test_suite_is_present() -> None:
    # Guards against the whole conformance run silently turning into skips.
    for file_name in SUITE_FILES:
        assert (SUITE_DIR / file_name).is_file(), f"{file_name} not found"
