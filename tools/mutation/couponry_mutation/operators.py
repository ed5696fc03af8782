"""couponry's own cosmic-ray operators (provider `couponry`, docs/testing.md).

cosmic-ray mutates Python: comparisons, arithmetic, constants, booleans, anywhere in a module
(module-level statements too, where the claims are built). Two kinds of change it has no
operator for matter on the money path:

- the SQL text of the claim statements (`text(...)` / `Query(...)` strings): a generic tool sees
  a string constant there. The `Sql*` operators change the operators *inside* such a string,
  one occurrence at a time: `+` / `-`, `<` / `<=`, `>` / `>=`, `AND` / `OR`, `NOT`, `IS NULL` /
  `IS NOT NULL`, `least` / `greatest`, `true` / `false`, an integer literal changed. Only
  strings that read as SQL are touched (an upper-case keyword in the string or in the implicit
  concatenation it is part of), never a docstring.
- a deleted statement: `DeleteCall` turns a statement that is only a call (`repo.delete(...)`,
  `self.conn.execute(...)`, `problems.add(...)`) into `pass`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import parso.python.tree
from cosmic_ray.operators.operator import Example, Operator

Position = tuple[tuple[int, int], tuple[int, int]]

_SQL_WORDS = re.compile(
    r"\b(SELECT|UPDATE|INSERT|DELETE|WHERE|SET|AND|OR|VALUES|RETURNING|CASE|WHEN|FROM|NULL)\b"
)


def _sql_leaf(node: Any) -> bool:
    """A piece of SQL text: a string (or an f-string's text) that is not a docstring, in a
    constant that reads as SQL."""
    if node.type == "fstring_string":
        owner = node.parent.parent  # fstring_string -> fstring -> (strings | statement)
        start = node.parent
    elif node.type == "string":
        owner, start = node.parent, node
    else:
        return False
    whole = owner if owner is not None and owner.type == "strings" else start
    statement = whole.parent
    if statement is not None and statement.type == "simple_stmt":
        return False  # a string that is the whole statement: a docstring
    return bool(_SQL_WORDS.search(whole.get_code()))


def _position(node: Any, offset: int, length: int) -> Position:
    """Where `length` characters at `offset` in a leaf's value are in the module."""
    line, col = node.start_pos
    before = node.value[:offset]
    newlines = before.count("\n")
    if newlines:
        line += newlines
        col = len(before) - before.rfind("\n") - 1
    else:
        col += offset
    return (line, col), (line, col + max(length, 1))


class _SqlTextOperator(Operator):  # type: ignore[misc]
    """Replace each match of `pattern` in SQL text with `replace(match)`, one at a time."""

    pattern: re.Pattern[str]

    @staticmethod
    def replace(match: re.Match[str]) -> str:
        raise NotImplementedError

    def _matches(self, node: Any) -> list[re.Match[str]]:
        if not _sql_leaf(node):
            return []
        return list(self.pattern.finditer(node.value))

    def mutation_positions(self, node: Any) -> Iterator[Position]:
        for match in self._matches(node):
            yield _position(node, match.start(), match.end() - match.start())

    def mutate(self, node: Any, index: int) -> Any:
        match = self._matches(node)[index]
        node.value = node.value[: match.start()] + self.replace(match) + node.value[match.end() :]
        return node


class SqlArithmetic(_SqlTextOperator):
    """`a + b` becomes `a - b` and `a - b` becomes `a + b` in SQL text."""

    pattern = re.compile(r"(?<=\s)[+-](?=\s)")

    @staticmethod
    def replace(match: re.Match[str]) -> str:
        return "-" if match.group() == "+" else "+"

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (
            Example('q = text("UPDATE t SET n = n + 1")', 'q = text("UPDATE t SET n = n - 1")'),
            Example('q = text("UPDATE t SET n = n - 1")', 'q = text("UPDATE t SET n = n + 1")'),
        )


class SqlBoundary(_SqlTextOperator):
    """A comparison's boundary moves: `<` / `<=`, `>` / `>=` in SQL text."""

    pattern = re.compile(r"<=|>=|<(?![>=])|(?<![<-])>(?!=)")
    _SWAP = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}

    @staticmethod
    def replace(match: re.Match[str]) -> str:
        return SqlBoundary._SWAP[match.group()]

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (
            Example('q = text("SELECT 1 WHERE a < b")', 'q = text("SELECT 1 WHERE a <= b")'),
            Example('q = text("SELECT 1 WHERE a >= b")', 'q = text("SELECT 1 WHERE a > b")'),
        )


class SqlAndOr(_SqlTextOperator):
    """`AND` becomes `OR` and `OR` becomes `AND` in SQL text."""

    pattern = re.compile(r"\b(AND|OR)\b")

    @staticmethod
    def replace(match: re.Match[str]) -> str:
        return "OR" if match.group() == "AND" else "AND"

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (Example('q = text("SELECT 1 WHERE a AND b")', 'q = text("SELECT 1 WHERE a OR b")'),)


class SqlNot(_SqlTextOperator):
    """A `NOT` goes: `AND NOT own` becomes `AND own`, `IS NOT NULL` becomes `IS NULL`."""

    pattern = re.compile(r"\bNOT ")

    @staticmethod
    def replace(match: re.Match[str]) -> str:
        return ""

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (Example('q = text("SELECT 1 WHERE NOT a")', 'q = text("SELECT 1 WHERE a")'),)


class SqlIsNull(_SqlTextOperator):
    """`IS NULL` becomes `IS NOT NULL`."""

    pattern = re.compile(r"\bIS NULL\b")

    @staticmethod
    def replace(match: re.Match[str]) -> str:
        return "IS NOT NULL"

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (
            Example(
                'q = text("SELECT 1 WHERE a IS NULL")', 'q = text("SELECT 1 WHERE a IS NOT NULL")'
            ),
        )


class SqlLeastGreatest(_SqlTextOperator):
    """`least(` becomes `greatest(` and the other way round."""

    pattern = re.compile(r"\b(least|greatest)\(", re.IGNORECASE)

    @staticmethod
    def replace(match: re.Match[str]) -> str:
        return "greatest(" if match.group().lower().startswith("least") else "least("

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (Example('q = text("SELECT least(a, b)")', 'q = text("SELECT greatest(a, b)")'),)


class SqlNumber(_SqlTextOperator):
    """An integer literal in SQL text changes: 1 becomes 0 (`+ 1` adds nothing, a flag of 1
    is off), any other grows by one (`0` becomes `1`, `LIMIT 50` becomes `LIMIT 51`)."""

    pattern = re.compile(r"(?<![:\w.])\d+(?![\w.])")

    @staticmethod
    def replace(match: re.Match[str]) -> str:
        value = int(match.group())
        return "0" if value == 1 else str(value + 1)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (
            Example('q = text("UPDATE t SET n = n + 1")', 'q = text("UPDATE t SET n = n + 0")'),
            Example('q = text("SELECT 1 LIMIT 50")', 'q = text("SELECT 0 LIMIT 50")'),
            Example('q = text("SELECT 1 LIMIT 50")', 'q = text("SELECT 1 LIMIT 51")', occurrence=1),
        )


class SqlBoolean(_SqlTextOperator):
    """`true` becomes `false` and `false` becomes `true` in SQL text."""

    pattern = re.compile(r"\b(true|false|TRUE|FALSE)\b")

    @staticmethod
    def replace(match: re.Match[str]) -> str:
        return {"true": "false", "false": "true", "TRUE": "FALSE", "FALSE": "TRUE"}[match.group()]

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (Example('q = text("UPDATE t SET b = true")', 'q = text("UPDATE t SET b = false")'),)


def _bare_call(node: Any) -> Any | None:
    """The call of a statement that is nothing but a call (awaited or not), else None."""
    if node.type != "simple_stmt":
        return None
    call = node.children[0]
    if call.type not in ("atom_expr", "power"):
        return None
    last = call.children[-1]  # `await x.f(...)` is one atom_expr too, `await` first
    if last.type == "trailer" and last.children[0].value == "(":
        return call
    return None


class DeleteCall(Operator):  # type: ignore[misc]
    """A statement that is only a call is deleted (it becomes `pass`)."""

    def mutation_positions(self, node: Any) -> Iterator[Position]:
        call = _bare_call(node)
        if call is not None:
            yield call.start_pos, call.end_pos

    def mutate(self, node: Any, index: int) -> Any:
        call = _bare_call(node)
        assert call is not None and index == 0
        prefix = call.get_first_leaf().prefix
        node.children[0] = parso.python.tree.Keyword("pass", call.start_pos, prefix=prefix)
        return node

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (
            Example("def f():\n    repo.delete(x)\n", "def f():\n    pass\n"),
            Example("async def f():\n    await tx.execute(q)\n", "async def f():\n    pass\n"),
        )


_OPERATORS: dict[str, type[Operator]] = {
    op.__name__: op
    for op in (
        SqlArithmetic,
        SqlBoundary,
        SqlAndOr,
        SqlNot,
        SqlIsNull,
        SqlLeastGreatest,
        SqlNumber,
        SqlBoolean,
        DeleteCall,
    )
}


class OperatorProvider:
    """cosmic-ray's entry point `cosmic_ray.operator_providers`: couponry/<name>."""

    def __iter__(self) -> Iterator[str]:
        return iter(_OPERATORS)

    def __getitem__(self, name: str) -> type[Operator]:
        return _OPERATORS[name]
