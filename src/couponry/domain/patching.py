"""RFC 6902 JSON Patch, applied with the `jsonpatch` library behind a strict front door.

Why not hand the operations straight to `jsonpatch`:

* its structural checks are partial and its failures come as several unrelated exception
  types (JsonPatchException, JsonPointerException, KeyError, TypeError, ...) whose messages
  can quote the whole document; callers here need InvalidPatch / PatchTestFailed naming the
  offending operation (`patch[2].path`);
* the `test` operation must follow RFC 6902 section 4.6 whatever jsonpatch version is
  installed (1.33 compares with Python `==`, where `True == 1`), so `test` is evaluated here.

Operations are validated first, then applied one at a time to a private deep copy, so a
failure part-way through never leaves a half-patched document visible to the caller.

The work a patch can cause is bounded by its size, during application: `copy` can double a
document with a few bytes of patch, so the document's size is tracked operation by operation
(refused past `max_size`), and every value the engine walks counts against a work budget
proportional to the document and the patch. A 2 KB patch of self-copies is refused in
milliseconds instead of growing a worker to gigabytes.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import jsonpatch
from jsonpointer import JsonPointerException

from couponry.errors import FieldProblem, InvalidInput, InvalidPatch, PatchTestFailed

OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")
_NEEDS_VALUE = frozenset({"add", "replace", "test"})
_NEEDS_FROM = frozenset({"move", "copy"})

# RFC 6901: array indices are decimal without leading zeros; '~' must be followed by 0 or 1.
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_BAD_ESCAPE = re.compile(r"~(?![01])")

# Whatever jsonpatch (or the containers underneath it) may raise while applying one operation.
_LIBRARY_ERRORS: tuple[type[BaseException], ...] = (
    jsonpatch.JsonPatchException,
    JsonPointerException,
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
    RecursionError,
)


def _invalid(field: str, message: str) -> NoReturn:
    raise InvalidPatch(message, [FieldProblem(field, message)])


# --- JSON pointers ------------------------------------------------------------------------


def _pointer_problem(pointer: str) -> str | None:
    if pointer and not pointer.startswith("/"):
        return "must be empty or start with '/'"
    if _BAD_ESCAPE.search(pointer):
        return "has '~' not followed by '0' or '1'"
    return None


def _tokens(pointer: str) -> list[str]:
    # '~1' first, so '~01' becomes '~1' and not '/' (RFC 6901 section 4).
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


class _Unresolved(Exception):
    """A pointer that does not lead to an existing value."""


def _step(container: Any, token: str) -> Any:
    if isinstance(container, Mapping):
        if token not in container:
            raise _Unresolved
        return container[token]
    if isinstance(container, list):
        # '-' names the element after the last, which never exists.
        if not _ARRAY_INDEX.fullmatch(token) or int(token) >= len(container):
            raise _Unresolved
        return container[int(token)]
    raise _Unresolved


def _resolve(document: Any, tokens: list[str]) -> Any:
    value = document
    for token in tokens:
        value = _step(value, token)
    return value


def _exists(document: Any, tokens: list[str]) -> bool:
    try:
        _resolve(document, tokens)
    except _Unresolved:
        return False
    return True


# --- RFC 6902 equality --------------------------------------------------------------------


def json_equal(left: Any, right: Any) -> bool:
    """Equality as RFC 6902 section 4.6 defines it for the `test` operation.

    `true`/`false`/`null` equal only themselves (Python's `True == 1` does not count), numbers
    compare by value (`1` equals `1.0`, as JSON has a single number type), strings by code
    points, arrays element by element, objects by member set regardless of order.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    return False


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "a non-JSON value"


# --- size and work bounds ----------------------------------------------------------------

# The largest document a patch may produce, in characters of compact JSON (the body limit).
MAX_DOCUMENT_SIZE = 1024 * 1024
# Fixed allowance on top of the work proportional to the document and the patch.
_WORK_ALLOWANCE = 64 * 1024
_WORK_FACTOR = 4


def json_size(value: Any, limit: int) -> int:
    """The length of `value` as compact JSON, near enough; stops counting once past `limit`.

    Walks at most about `limit` characters' worth of the value, so measuring a huge value to
    learn that it is too big costs no more than the limit.
    """
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, Mapping):
            size += 2 + len(item)
            for key, child in item.items():
                size += len(key) + 3
                stack.append(child)
        elif isinstance(item, list):
            size += 2 + len(item)
            stack.extend(item)
        else:
            size += 5  # numbers, booleans and null: a few characters each
        if size > limit:
            return limit + 1
    return size


class _Bounds:
    """The document's running size and the work done so far, both capped."""

    def __init__(self, document: Any, operations: list[dict[str, Any]], max_size: int) -> None:
        self.max_size = max_size
        self.size = json_size(document, max_size)
        patch_size = sum(json_size(op.get("value"), max_size) for op in operations)
        self.max_work = _WORK_FACTOR * (self.size + patch_size) + _WORK_ALLOWANCE
        self.work = 0

    def measure(self, value: Any, where: str) -> int:
        size = json_size(value, self.max_size)
        self.work += size
        if self.work > self.max_work:
            _invalid(where, f"{where}: the patch does too much work for its size")
        return size

    def grow(self, by: int, where: str) -> None:
        self.size += by
        if self.size > self.max_size:
            _invalid(where, f"{where}: the patched document would exceed {self.max_size} bytes")


# --- validation ---------------------------------------------------------------------------


def _check_pointer(operation: Mapping[str, Any], member: str, where: str) -> None:
    if member not in operation:
        _invalid(f"{where}.{member}", f"{where}: missing '{member}'")
    pointer = operation[member]
    if not isinstance(pointer, str):
        _invalid(f"{where}.{member}", f"{where}: '{member}' must be a string (a JSON pointer)")
    problem = _pointer_problem(pointer)
    if problem is not None:
        _invalid(f"{where}.{member}", f"{where}: '{member}' {pointer!r} {problem}")


def validate_patch(operations: Any, *, field: str = "patch") -> list[dict[str, Any]]:
    """Check the structure of a patch and return its operations reduced to their RFC members.

    Each operation must be an object with a known string `op`, a valid JSON pointer `path`,
    a valid `from` for move/copy and a `value` for add/replace/test; other members are ignored
    (RFC 6902 section 4). Raises InvalidPatch naming the operation, e.g. `patch[2].path`.
    """
    if not isinstance(operations, list):
        _invalid(field, f"{field} must be a JSON array of operations")
    cleaned: list[dict[str, Any]] = []
    for index, operation in enumerate(operations):
        where = f"{field}[{index}]"
        if not isinstance(operation, Mapping):
            _invalid(where, f"{where} must be an object")
        name = operation.get("op")
        if not isinstance(name, str):
            _invalid(f"{where}.op", f"{where}: 'op' must be one of {', '.join(OPERATIONS)}")
        if name not in OPERATIONS:
            _invalid(f"{where}.op", f"{where}: unknown op {name!r}")
        _check_pointer(operation, "path", where)
        op: dict[str, Any] = {"op": name, "path": operation["path"]}
        if name in _NEEDS_FROM:
            _check_pointer(operation, "from", where)
            op["from"] = operation["from"]
        if name in _NEEDS_VALUE:
            if "value" not in operation:
                _invalid(f"{where}.value", f"{where}: missing 'value'")
            op["value"] = operation["value"]
        cleaned.append(op)
    return cleaned


def touched_paths(operations: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    """List (op index, op name, top-level member) for every location the patch writes.

    Covers the `path` of add/remove/replace/move/copy and the `from` of a move (a move removes
    its source); not `test`, and not the `from` of a copy (only read). The member is the first
    reference token of the pointer, unescaped; it is '' both for the root pointer '' and for
    '/' (the member named ''). Raises InvalidPatch if the operations are malformed.
    """
    touched: list[tuple[int, str, str]] = []
    for index, op in enumerate(validate_patch(operations)):
        name = op["op"]
        if name == "test":
            continue
        pointers = [op["path"], op["from"]] if name == "move" else [op["path"]]
        for pointer in pointers:
            tokens = _tokens(pointer)
            touched.append((index, name, tokens[0] if tokens else ""))
    return touched


# --- application --------------------------------------------------------------------------


def _check_test(document: Any, op: dict[str, Any], where: str) -> None:
    path = op["path"]
    try:
        actual = _resolve(document, _tokens(path))
    except _Unresolved:
        message = f"{where}: test failed, path {path!r} does not exist"
        raise PatchTestFailed(message, [FieldProblem(f"{where}.path", message)]) from None
    try:
        equal = json_equal(actual, op["value"])
    except RecursionError:
        _invalid(f"{where}.value", f"{where}: the tested value is too deeply nested")
    if not equal:
        message = f"{where}: test failed, the value at {path!r} differs from the tested value"
        raise PatchTestFailed(message, [FieldProblem(f"{where}.value", message)])


def _check_target(document: Any, name: str, path: str, where: str) -> None:
    """Explain the usual path problems ourselves, with messages that name the operation."""
    tokens = _tokens(path)
    field = f"{where}.path"
    if name == "remove" and not tokens:
        _invalid(field, f"{where}: cannot remove the whole document")
    if name in ("remove", "replace"):
        if not _exists(document, tokens):
            _invalid(field, f"{where}: path {path!r} does not exist")
        return
    if not tokens:
        return  # adding at the root replaces the whole document
    try:
        parent = _resolve(document, tokens[:-1])
    except _Unresolved:
        _invalid(field, f"{where}: the parent of path {path!r} does not exist")
    last = tokens[-1]
    if isinstance(parent, list):
        if last != "-" and not _ARRAY_INDEX.fullmatch(last):
            _invalid(field, f"{where}: {last!r} in {path!r} is not a valid array index")
        if last != "-" and int(last) > len(parent):
            _invalid(field, f"{where}: array index {last} in {path!r} is out of range")
    elif not isinstance(parent, Mapping):
        _invalid(field, f"{where}: the parent of path {path!r} is not an object or array")


def _library_apply(document: Any, op: dict[str, Any], where: str, name: str, member: str) -> Any:
    try:
        # in_place: `document` is already our private copy; the result may be a new root.
        return jsonpatch.JsonPatch([op]).apply(document, in_place=True)
    except _LIBRARY_ERRORS:
        # Library messages can quote the whole document, so they are not passed on.
        message = f"{where}: {name} at {op[member]!r} could not be applied"
        raise InvalidPatch(message, [FieldProblem(f"{where}.{member}", message)]) from None


def _move(document: Any, op: dict[str, Any], where: str) -> Any:
    source, target = _tokens(op["from"]), _tokens(op["path"])
    if len(target) > len(source) and target[: len(source)] == source:
        _invalid(f"{where}.path", f"{where}: cannot move a value into one of its own children")
    if target == source:
        return document
    # RFC 6902 4.4: a move is a remove then an add of the removed value. Done in two steps so
    # the target is checked against the document *after* the removal (indices may shift).
    value = _resolve(document, source)
    removal = {"op": "remove", "path": op["from"]}
    document = _library_apply(document, removal, where, "move", "from")
    _check_target(document, "add", op["path"], where)
    addition = {"op": "add", "path": op["path"], "value": value}
    return _library_apply(document, addition, where, "move", "path")


def _apply_one(document: Any, op: dict[str, Any], where: str, bounds: _Bounds) -> Any:
    name = op["op"]
    if name == "test":
        bounds.measure(op["value"], where)
        _check_test(document, op, where)
        return document
    if name in _NEEDS_FROM and not _exists(document, _tokens(op["from"])):
        _invalid(f"{where}.from", f"{where}: 'from' {op['from']!r} does not exist")
    if name == "move":
        return _move(document, op, where)  # the size does not change
    _check_target(document, name, op["path"], where)
    if name in ("remove", "replace"):
        bounds.grow(-bounds.measure(_resolve(document, _tokens(op["path"])), where), where)
    if name == "copy":
        # Measured before the library deep-copies it: a copy too big is never made.
        bounds.grow(bounds.measure(_resolve(document, _tokens(op["from"])), where), where)
    elif name in ("add", "replace"):
        bounds.grow(bounds.measure(op["value"], where), where)
    return _library_apply(document, op, where, name, "path")


# A check of the document after each operation: the field that grew past what it may hold.
GrowthCheck = Callable[[Any], FieldProblem | None]


def apply_patch_to_any(
    document: Any,
    operations: Any,
    *,
    field: str = "patch",
    max_size: int = MAX_DOCUMENT_SIZE,
    check: GrowthCheck | None = None,
) -> Any:
    """Apply a JSON Patch to any JSON value (object, array or scalar) and return the result.

    Works on a deep copy: `document` is never changed, also when an operation fails. Raises
    InvalidPatch for malformed operations or ones that cannot be applied (missing path,
    out-of-range index, ...), and as soon as the document grows past `max_size` characters of
    JSON, the work past its budget, or `check` finds a problem; PatchTestFailed when a `test`
    operation does not hold. The error's details name the operation, e.g. `patch[2].path`.
    """
    ops = validate_patch(operations, field=field)
    bounds = _Bounds(document, ops, max_size)
    if bounds.size > max_size:
        _invalid(field, f"the document to patch is larger than {max_size} bytes")
    try:
        result = copy.deepcopy(document)
    except RecursionError:
        _invalid(field, "the document is too deeply nested to patch")
    for index, op in enumerate(ops):
        where = f"{field}[{index}]"
        result = _apply_one(result, op, where, bounds)
        problem = check(result) if check is not None else None
        if problem is not None:
            raise InvalidInput(f"{where}: {problem.field} {problem.message}.", [problem])
    return result


def apply_patch(
    document: dict[str, Any],
    operations: Any,
    *,
    field: str = "patch",
    max_size: int = MAX_DOCUMENT_SIZE,
    check: GrowthCheck | None = None,
) -> dict[str, Any]:
    """Apply a JSON Patch to a JSON object and return the patched copy.

    Like `apply_patch_to_any`, and the result must still be a JSON object (InvalidPatch
    otherwise, e.g. after replacing the root with an array).
    """
    result = apply_patch_to_any(document, operations, field=field, max_size=max_size, check=check)
    if not isinstance(result, dict):
        _invalid(field, f"{field} must leave a JSON object, not {_json_type(result)}")
    return result
