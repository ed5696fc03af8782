"""`make mutate`: cosmic-ray over the money path, one session per module, then the scores.

For each target module: a cosmic-ray config and session under var/mutate/, `cosmic-ray init`
(every mutant of the operators used), the exclusions below marked skipped (with their
reasons), a baseline run of the module's tests (which must pass unmutated), `cosmic-ray exec`
(one mutant at a time, one worker, the module's own test selection stopping at its first
failure), then a report: mutants, caught, score, and every surviving mutant's diff.

    couponry-mutate [--only NAME ...] [--report] [--again-survivors] [--fresh]

A session is reused while its module, the operators and the exclusions are unchanged, so an
interrupted run goes on where it stopped; `--again-survivors` runs only the survivors again
(after adding tests), `--fresh` starts every session anew.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
WORK = ROOT / "var" / "mutate"
_COSMIC_RAY = str(Path(sys.executable).parent / "cosmic-ray")

# Which of cosmic-ray's core operators are used. Its binary and comparison replacements pair
# every operator with every other one (`+` with `**`, `<<`, `^`, ...; `<` with `is`, `in`):
# only the pairs a real slip makes are kept, the rest would mostly crash or be equivalent.
_KEEP_BINARY = {("Add", "Sub"), ("Sub", "Add"), ("Mul", "Div"), ("Div", "Mul")}
_KEEP_BINARY |= {("BitOr", "BitAnd"), ("BitAnd", "BitOr")}  # `|` / `&` of SQL expressions
# A comparison moves its boundary or turns into its negation (`<` to `<=` or `>=`).
_KEEP_COMPARISON = {
    ("Lt", "LtE"), ("Lt", "GtE"), ("LtE", "Lt"), ("LtE", "Gt"),
    ("Gt", "GtE"), ("Gt", "LtE"), ("GtE", "Gt"), ("GtE", "Lt"),
    ("Eq", "NotEq"), ("NotEq", "Eq"), ("Is", "IsNot"), ("IsNot", "Is"),
    ("In", "NotIn"), ("NotIn", "In"),
}  # fmt: skip


def operator_used(name: str) -> bool:
    """Whether a cosmic-ray operator name (provider/name) is part of the run."""
    provider, _, op = name.partition("/")
    if provider == "couponry":
        return True
    if op.startswith("ReplaceBinaryOperator_"):
        a, b = op.removeprefix("ReplaceBinaryOperator_").split("_")
        return (a, b) in _KEEP_BINARY
    if op.startswith("ReplaceComparisonOperator_"):
        a, b = op.removeprefix("ReplaceComparisonOperator_").split("_")
        return (a, b) in _KEEP_COMPARISON
    return op not in ("NoOp",)


@dataclass(frozen=True)
class Target:
    name: str
    module: str
    tests: tuple[str, ...]
    postgres: bool  # the tests run on PostgreSQL too (the module's SQL runs there)
    # Only these parts of the module: (first line's text, text of the line after the part).
    regions: tuple[tuple[str, str], ...] = ()
    select: str | None = None  # pytest -k: only the tests that run the module's code

    def lines(self) -> set[int] | None:
        """The line numbers mutated (None: all of them)."""
        if not self.regions:
            return None
        text = (ROOT / self.module).read_text().splitlines()
        found: set[int] = set()
        for first, after in self.regions:
            start = next(i for i, x in enumerate(text) if x.startswith(first))
            end = next(i for i, x in enumerate(text) if i > start and x.startswith(after))
            found |= set(range(start + 1, end + 1))
        return found


_UNIT = "tests/unit"
_INT = "tests/integration"
TARGETS = (
    Target(
        "discounts",
        "src/couponry/domain/discounts.py",
        (
            f"{_UNIT}/test_discount_edges.py",
            f"{_UNIT}/test_discounts.py",
            f"{_UNIT}/test_stacking.py",
        ),
        postgres=False,
    ),
    Target(
        "cart",
        "src/couponry/domain/cart.py",
        (f"{_UNIT}/test_cart.py", f"{_UNIT}/test_discounts.py", f"{_UNIT}/test_stacking.py"),
        postgres=False,
    ),
    Target(
        "redemptions",
        "src/couponry/domain/redemptions.py",
        (f"{_UNIT}/test_redemption_states.py", f"{_UNIT}/test_discounts.py"),
        postgres=False,
    ),
    Target(
        "redemption_repo",
        "src/couponry/store/redemption_repo.py",
        (
            f"{_INT}/test_money_path.py",
            f"{_INT}/test_money_path_edges.py",
            f"{_UNIT}/test_redemption_states.py",
            f"{_INT}/test_redemptions_api.py::test_listing_pages_and_filters",
            f"{_INT}/test_idempotent_replay.py",
            f"{_INT}/test_campaign_redemption.py",
            f"{_INT}/test_checkouts.py",
        ),
        postgres=True,
    ),
    Target(
        "hot_redemptions",
        "src/couponry/store/hot_redemptions.py",
        (
            f"{_INT}/test_money_path.py",
            f"{_INT}/test_money_path_edges.py",
            f"{_INT}/test_campaign_redemption.py",
        ),
        postgres=True,
        # The hot path redeems the common coupon (no credit, budget or group), by its own
        # code or a campaign code; the GROUP and credit variants never reach it.
        select="common or code or purged",
        # The claim statements and the code that runs them (the rest of the module reads).
        regions=(
            ("_CODE_USE = (", "COUNTERS = Query("),
            ("    async def claim_and_record(", "    async def counters("),
        ),
    ),
)


@dataclass(frozen=True)
class Exclusion:
    """An equivalent mutant: no test can tell it from the original (docs/testing.md)."""

    module: str  # the target's name
    operator: str  # a regular expression on the operator's name
    line: str  # the mutated line, whole (indentation included)
    reason: str
    becomes: str | None = None  # what the line becomes (when the operator has several ways)


_FROZEN = (
    "frozen=True only refuses an assignment: no code assigns to these values or hashes them, so "
    "nothing a caller can do tells a frozen one from another"
)
_ASSERTED = (
    "an assertion after problems.raise_if_any(): every value it names is set by then, so it "
    "holds with `or` as with `and` (it only tells the type checker)"
)
EXCLUSIONS: tuple[Exclusion, ...] = (
    Exclusion("cart", "ReplaceTrueWithFalse", "@dataclass(frozen=True)", _FROZEN),
    Exclusion("redemptions", "ReplaceTrueWithFalse", "@dataclass(frozen=True)", _FROZEN),
    *(
        Exclusion(
            "hot_redemptions",
            "ReplaceFalseWithTrue",
            f"                {before}"
            if before.startswith("return False")
            else f"            {before}",
            "the caller reads the three answers in order and stops at the first that is false "
            "(nothing after it was claimed): what follows that one is never read",
            becomes=after,
        )
        for before, after in (
            ("return False, False, False", "return False, True, False"),
            ("return False, False, False", "return False, False, True"),
            ("return True, False, False", "return True, False, True"),
        )
    ),
    Exclusion(
        "hot_redemptions",
        "ReplaceTrueWithFalse",
        "            return True, False, False",
        "when the coupon's claim fails (deleted, changed, or at its usage limit) the reason is "
        "found in that order before any of the code's own state is read, so saying the code "
        "was not claimed either gives the same refusal (SQLite: its transaction undoes both)",
        becomes="return False, False, False",
    ),
    Exclusion(
        "hot_redemptions",
        "SqlBoundary",
        '    " AND coupon_id = :coupon_id AND NOT own AND times_used > 0"',
        "the code's use being given back was claimed just before by the same request: its "
        "count is at least 1 here",
    ),
    Exclusion("redemption_repo", "ReplaceTrueWithFalse", "@dataclass(frozen=True)", _FROZEN),
    Exclusion(
        "redemption_repo",
        "RemoveDecorator|NumberReplacer",
        "@lru_cache(maxsize=32)",
        "a cache of built statements: without it (or with room for 31 or 33) each call builds "
        "an equal statement, and there are fewer than 31 (source, target) pairs",
    ),
    Exclusion(
        "redemption_repo",
        "ReplaceComparisonOperator_Gt_GtE",
        "                (_c.value_units - _drawn_after > 0, _c.value_units - _drawn_after),",
        "where the credit's value less what stays drawn is 0, both branches leave 0",
    ),
    Exclusion(
        "redemption_repo",
        "NumberReplacer",
        "                (_c.value_units - _drawn_after > 0, _c.value_units - _drawn_after),",
        "`> -1` is `>= 0` for whole units: where the value less what stays drawn is 0, both "
        "branches leave 0",
        becomes="(_c.value_units - _drawn_after > -1, _c.value_units - _drawn_after),",
    ),
    Exclusion(
        "redemption_repo",
        "ReplaceFalseWithTrue",
        "        code_freed: bool = False,",
        "release_use's default code_freed is never used: its one caller passes it",
    ),
    Exclusion(
        "redemption_repo",
        "ReplaceFalseWithTrue",
        "    def by_checkout(self, checkout_id: str, *, for_update: bool = False)"
        " -> list[Redemption]:",
        "by_checkout's default is never used: its only caller reads the checkout to change it, "
        "for_update=True",
    ),
    Exclusion(
        "redemption_repo",
        "SqlBoundary",
        '    "AND NOT own AND times_used > 0 RETURNING times_used"',
        "a redemption that gives back a campaign code's use holds one of its uses, and a code "
        "is never deleted on its own (DELETE deactivates it): its count is at least 1 here",
    ),
    Exclusion(
        "redemption_repo",
        "NumberReplacer",
        "            return 0 if claimed is not None else None",
        "a claim without a draw is only tested for None by its caller: 0, 1 and -1 read alike",
    ),
    Exclusion(
        "redemption_repo",
        "NumberReplacer",
        "        return None if row is None else int(row.last_draw_units or 0)",
        "a draw of 0 (a free cart) read as -1: the cart is then quoted with nothing to draw, "
        "gives 0 as before, and 0 is not below -1, so nothing is given back: the same redemption",
        becomes="return None if row is None else int(row.last_draw_units or -1)",
    ),
    Exclusion(
        "redemption_repo",
        "ReplaceFalseWithTrue",
        "            return False",
        "unreachable: claim_user_use's `limit < 1` never holds (max_uses_per_user is at least 1)",
    ),
    Exclusion(
        "redemption_repo",
        "NumberReplacer",
        "        given_units: int = 0,",
        "claim_use's default given_units is never used: a claim without a draw always passes "
        "it, and a draw counts what it drew instead",
    ),
    *(
        Exclusion(
            "redemption_repo",
            "ReplaceFalseWithTrue",
            f"        {name}: bool = False,",
            f"claim_use's default {name} is never used: every claim passes it",
        )
        for name in ("pending", "held", "first_code_use")
    ),
    Exclusion(
        "redemption_repo",
        "ReplaceComparisonOperator_Lt_LtE",
        "    (and_(_c.budget_units.is_not(None), _budget_left < _want), _budget_left), else_=_want",
        "where the budget left equals what the cart wants, both branches draw that same amount",
    ),
    Exclusion(
        "redemption_repo",
        "ReplaceComparisonOperator_Lt_LtE",
        "    (and_(_c.remaining_units.is_not(None), _c.remaining_units < _capped),"
        " _c.remaining_units),",
        "where the credit left equals what the draw is capped at, both branches draw that "
        "same amount",
    ),
    Exclusion(
        "redemption_repo",
        "NumberReplacer",
        "        return int(found or 0)",
        "the most uses of a coupon with no user counter yet is compared with a "
        "max_uses_per_user of at least 1 (`limit < most` refuses): 0, 1 and -1 never refuse",
    ),
    Exclusion(
        "redemption_repo",
        "NumberReplacer",
        "        return int(row.uses) if row else 0",
        "a user with no counter yet is compared with a max_uses_per_user of at least 1: 0 "
        "and -1 uses are both below it",
        becomes="return int(row.uses) if row else -1",
    ),
    Exclusion(
        "redemption_repo",
        "NumberReplacer",
        "        if limit is not None and limit < 1:",
        "max_uses_per_user is a whole number of at least 1 (the coupon's rules): `limit < 0` "
        "and `limit < 1` are both false for every stored limit",
        becomes="if limit is not None and limit < 0:",
    ),
    *(
        Exclusion(
            "redemption_repo",
            operator,
            "            .where(u.coupon_id == coupon_id, u.user_id == user_id, u.uses > 0)",
            "a redemption that gives its use back holds one in its user's counter (the "
            "invariant couponry check proves), so the counter is at least 1 whenever this runs",
            becomes=f".where(u.coupon_id == coupon_id, u.user_id == user_id, u.uses {after})",
        )
        for operator, after in (("Gt_GtE", ">= 0"), ("NumberReplacer", "> -1"))
    ),
    *(
        Exclusion("cart", "ReplaceAndWithOr", line, _ASSERTED)
        for line in (
            "    assert code is not None and user_id is not None",
            "    assert price is not None and quantity is not None",
            "    assert line_id and kind and item_id and price is not None"
            " and quantity is not None",
        )
    ),
    Exclusion("discounts", "ReplaceTrueWithFalse", "@dataclass(frozen=True)", _FROZEN),
    Exclusion(
        "discounts",
        "ReplaceFalseWithTrue",
        "    return False",
        "the last line of _scope_covers is unreachable: entity_type is one of the five kinds "
        "checked above it (the coupon's own rules refuse any other)",
    ),
    Exclusion(
        "discounts",
        "ReplaceBreakWithContinue",
        "                break",
        "once a dues category has taken its N lines, every later line stops at the same test, "
        "so skipping them one by one (continue) gives what stopping (break) gives",
    ),
    Exclusion(
        "discounts",
        "ReplaceComparisonOperator_Gt_GtE",
        "    if rounded > line_left:  # a sub-cent line (or remainder) never gives more than"
        " it has",
        "when the rounded discount equals what is left of the line, what is left is already a "
        "whole minor unit, and rounding it down gives the same amount",
    ),
    Exclusion(
        "discounts",
        "ReplaceAndWithOr",
        '    if c.coupon_type == "PERCENT" and c.value_percent is not None:',
        "the coupon's rules allow value_percent on a PERCENT coupon only, and require it there: "
        "`or` picks the same coupons as `and`",
    ),
    Exclusion(
        "discounts",
        "ReplaceAndWithOr",
        '    if c.coupon_type == "AMOUNT" and c.value_amount is not None:',
        "reached only by AMOUNT coupons (USAGE, TOTAL_AMOUNT and PERCENT returned above), which "
        "the coupon's rules give a value_amount: `or` and `and` agree",
    ),
    Exclusion(
        "discounts",
        "ReplaceAndWithOr",
        "    assert isinstance(ids, list) and isinstance(type_ids, list)",
        "both are lists for every stored coupon (the coupon's rules): the assertion holds with "
        "`or` as with `and`",
    ),
    *(
        Exclusion(
            "discounts",
            "NumberReplacer",
            line,
            "quantize reads only the exponent of the quantum: Decimal(2).scaleb(-2) and "
            "Decimal(0).scaleb(-2) round to the same places as Decimal(1).scaleb(-2)",
        )
        for line in (
            "        places = Decimal(1).scaleb(-minor_unit(currency))",
            "    places = Decimal(1).scaleb(-minor_unit(currency))",
        )
    ),
)


def _config(target: Target, timeout: float) -> str:
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header"]
    command += ["-o", "addopts=", *target.tests]
    if target.select:
        command += ["-k", target.select]
    return (
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(target.module)}\n"
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(shlex.join(command))}\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )


def _test_env(target: Target) -> dict[str, str]:
    env = dict(os.environ)
    # Each mutant starts pytest afresh: without the plugins' entry points (schemathesis,
    # hypothesis' own plugin, ...) that start costs a second less; none of these tests needs them.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if target.postgres:
        env.setdefault("COUPONRY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
        env["COUPONRY_REQUIRE_POSTGRES"] = "1"
    else:
        env.pop("COUPONRY_TEST_POSTGRES_URL", None)
    return env


def _fingerprint(target: Target) -> str:
    text = (ROOT / target.module).read_text()
    here = Path(__file__).parent
    parts = [text, (here / "operators.py").read_text()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _run(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(args, cwd=ROOT, env=env, check=True)


def _baseline(target: Target, env: dict[str, str]) -> float:
    """The tests pass on the unmutated module; how long they took."""
    start = time.monotonic()
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *target.tests]
    if target.select:
        command += ["-k", target.select]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    took = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"{target.name}: the tests fail unmutated:\n{done.stdout[-3000:]}")
    return took


def _mutated_line(target: Target, operator: str, occurrence: int) -> tuple[str, str]:
    from cosmic_ray.mutating import mutate_code
    from cosmic_ray.plugins import get_operator

    source = (ROOT / target.module).read_text()
    mutated = mutate_code(source, get_operator(operator)(), occurrence)
    if mutated is None:
        return "", ""
    before, after = source.splitlines(), mutated.splitlines()
    minus = [x[2:] for x in difflib.ndiff(before, after) if x.startswith("- ")]
    plus = [x[2:] for x in difflib.ndiff(before, after) if x.startswith("+ ")]
    # A removed decorator takes its line (and blank lines around it) away: name the line.
    changed = next((x for x in minus if x.strip()), "")
    return changed, (plus[0] if plus else "")


def _in_annotation(leaf: Any) -> bool:
    """Whether a node is part of a type annotation (never evaluated: every module measured
    has `from __future__ import annotations`)."""
    node = leaf
    while node.parent is not None:
        parent = node.parent
        siblings = parent.children
        before = siblings[siblings.index(node) - 1] if siblings.index(node) else None
        if parent.type == "annassign" and node is siblings[1]:
            return True
        mark = before.value if before is not None and before.type == "operator" else None
        if (parent.type, mark) in (("tfpdef", ":"), ("funcdef", "->")):
            return True
        node = parent
    return False


@lru_cache(maxsize=16)
def _tree(module: str) -> Any:
    import parso

    # parso is untyped where the mutate extra installs it, and absent from make test's venv:
    # called through Any, mypy is content with both.
    parse: Any = parso.parse
    return parse((ROOT / module).read_text())


def why_not_counted(target: Target, operator: str, occurrence: int, line: int, column: int) -> str:
    """Why a mutant is not part of the score ("" when it is)."""
    if not operator_used(operator):
        return "operator not used"
    lines = target.lines()
    if lines is not None and line not in lines:
        return "outside the part of the module measured"
    leaf = _tree(target.module).get_leaf_for_position((line, column), include_prefixes=True)
    if leaf is not None and _in_annotation(leaf):
        return "in a type annotation (not evaluated)"
    if leaf is not None and leaf.value == "*" and leaf.parent.type == "parameters":
        return "the `*` of a parameter list (keyword-only marker), not a multiplication"
    for ex in EXCLUSIONS:
        if ex.module == target.name and re.search(ex.operator, operator):
            before, after = _mutated_line(target, operator, occurrence)
            wanted = ex.becomes is None or after.split() == ex.becomes.split()
            if before.rstrip() == ex.line and wanted:
                return f"equivalent: {ex.reason}"
    return ""


def _specs(db: sqlite3.Connection, pending_only: bool) -> list[tuple[str, str, int, int, int]]:
    where = "WHERE job_id NOT IN (SELECT job_id FROM work_results)" if pending_only else ""
    return db.execute(
        "SELECT job_id, operator_name, occurrence, start_pos_row, start_pos_col "
        f"FROM mutation_specs {where}"
    ).fetchall()


def _skip(session: Path, target: Target) -> None:
    """Mark skipped, before they run, the mutants that are not counted (and why)."""
    db = sqlite3.connect(session)
    for job_id, operator, occurrence, line, column in _specs(db, pending_only=True):
        why = why_not_counted(target, operator, occurrence, line, column)
        if why:
            db.execute(
                "INSERT INTO work_results (worker_outcome, output, job_id) VALUES (?, ?, ?)",
                ("SKIPPED", why, job_id),
            )
    db.commit()
    db.close()


def _prepare(target: Target, fresh: bool, env: dict[str, str], timeout: float) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    config = WORK / f"{target.name}.toml"
    session = WORK / f"{target.name}.sqlite"
    stamp = WORK / f"{target.name}.stamp"
    config.write_text(_config(target, timeout))
    fingerprint = _fingerprint(target)
    if fresh or not session.exists() or not stamp.exists() or stamp.read_text() != fingerprint:
        session.unlink(missing_ok=True)
        _run([_COSMIC_RAY, "init", str(config), str(session)], env)
        stamp.write_text(fingerprint)
    _skip(session, target)
    return session


def _again_survivors(session: Path) -> None:
    db = sqlite3.connect(session)
    db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")
    db.commit()
    db.close()


@dataclass
class Score:
    mutants: int
    caught: int
    excluded: int
    pending: int
    survivors: list[tuple[str, int, str]]  # operator, line, diff
    # Excluded as equivalent, yet a test caught it: the exclusion is wrong.
    wrongly_excluded: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.caught / self.mutants if self.mutants else 100.0


def score(target: Target, session: Path) -> Score:
    """The score as the exclusions now stand (a mutant excluded after it ran is not counted)."""
    db = sqlite3.connect(session)
    rows = db.execute(
        "SELECT s.operator_name, s.occurrence, s.start_pos_row, s.start_pos_col, "
        "r.worker_outcome, r.test_outcome, r.diff, r.output FROM mutation_specs s "
        "LEFT JOIN work_results r ON r.job_id = s.job_id ORDER BY s.start_pos_row, s.operator_name"
    ).fetchall()
    db.close()
    result = Score(0, 0, 0, 0, [])
    for operator, occurrence, line, column, worker, test, diff, output in rows:
        why = str(output) if worker == "SKIPPED" else ""
        if worker not in (None, "SKIPPED", "NO_TEST"):
            why = why_not_counted(target, operator, occurrence, line, column)
        if why:
            result.excluded += int(why.startswith("equivalent"))
            if why.startswith("equivalent") and test == "KILLED":
                result.wrongly_excluded.append((operator, line, why))
        elif worker is None:
            result.pending += 1
        elif worker == "NO_TEST":
            continue
        else:
            result.mutants += 1
            if test == "SURVIVED":
                hunk = "\n".join(
                    x for x in (diff or "").splitlines() if x[:1] in "+-" and x[:3] not in "+++---"
                )
                result.survivors.append((operator, line, hunk))
            else:
                result.caught += 1
    return result


def report(targets: list[Target]) -> bool:
    print("\n| module | mutants | caught | score | excluded (equivalent) |")
    print("|---|---:|---:|---:|---:|")
    scores = {}
    for target in targets:
        session = WORK / f"{target.name}.sqlite"
        if not session.exists():
            continue
        s = scores[target.name] = score(target, session)
        pending = f" ({s.pending} not run)" if s.pending else ""
        row = f"| {target.module} | {s.mutants} | {s.caught} | {s.percent:.1f}%{pending} |"
        print(f"{row} {s.excluded} |")
    for target in targets:
        s = scores.get(target.name)  # type: ignore[assignment]
        for operator, line, _ in s.wrongly_excluded if s is not None else ():
            print(f"\nEXCLUDED BUT CAUGHT (fix EXCLUSIONS): {target.module}:{line} {operator}")
        if s is None or not s.survivors:
            continue
        print(f"\n## {target.module}: {len(s.survivors)} surviving mutants")
        for operator, line, hunk in s.survivors:
            print(f"\n{target.module}:{line}  {operator}\n{hunk}")
    return all(s.percent >= 90.0 and not s.pending for s in scores.values())


def exclusions_markdown() -> str:
    """The exclusions as docs/testing.md lists them (grouped by module and reason)."""
    out: list[str] = []
    for target in TARGETS:
        mine = [e for e in EXCLUSIONS if e.module == target.name]
        if not mine:
            continue
        out.append(f"- `{target.module}`")
        for key in dict.fromkeys((e.operator, e.reason) for e in mine):
            lines = "; ".join(f"`{e.line.strip()}`" for e in mine if (e.operator, e.reason) == key)
            out.append(f"  - {key[0]} on {lines}: {key[1]}.")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=[t.name for t in TARGETS])
    parser.add_argument("--report", action="store_true", help="only print the last results")
    parser.add_argument("--again-survivors", action="store_true")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--exclusions", action="store_true", help="print them as markdown")
    args = parser.parse_args(argv)
    if args.exclusions:
        print(exclusions_markdown())
        return
    targets = [t for t in TARGETS if not args.only or t.name in args.only]
    if not args.report:
        for target in targets:
            env = _test_env(target)
            took = _baseline(target, env)
            print(f"{target.name}: the tests pass unmutated in {took:.1f} s", flush=True)
            session = _prepare(target, args.fresh, env, timeout=round(took * 3 + 30))
            if args.again_survivors:
                _again_survivors(session)
                _skip(session, target)  # survivors excluded since they ran are not run again
            start = time.monotonic()
            _run([_COSMIC_RAY, "exec", str(session.with_suffix(".toml")), str(session)], env)
            print(f"{target.name}: mutants run in {time.monotonic() - start:.0f} s", flush=True)
    ok = report(targets)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
