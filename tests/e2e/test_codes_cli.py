"""`couponry codes generate` (SPEC 10): the job run by the command itself, with a progress bar,
talking to the database as the other commands do; a refusal exits non-zero."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from couponry.services.coupons import create_coupon
from couponry.services.tenants import get_tenant
from couponry.store.db import Database
from couponry.store.tables import coupon_codes
from tests.conftest import make_tenant, now, percent_coupon
from tests.e2e.server import cli, cli_env

pytestmark = pytest.mark.slow


def test_codes_generate_runs_the_job_and_shows_its_progress(
    db: Database, database_url: str
) -> None:
    keys = make_tenant(db, prefix="cli")
    owner = get_tenant(db, tenant_id=keys.tenant_id)
    coupon = create_coupon(db, tenant=owner, actor_id="t", doc=percent_coupon(), now=now())
    env = cli_env(database_url)
    done = cli(
        "codes",
        "generate",
        keys.tenant_id,
        coupon.id,
        "--count",
        "25000",
        "--pattern",
        "CLI-######",
        "--charset",
        "numeric",
        "--max-uses",
        "3",
        env=env,
    )
    assert "25000 codes generated" in done.stdout
    assert "25000/25000" in done.stdout  # the bar, at its end
    with db.reader() as conn:
        rows = conn.execute(
            select(coupon_codes.c.code, coupon_codes.c.max_uses).where(
                coupon_codes.c.coupon_id == coupon.id, coupon_codes.c.own.is_(False)
            )
        ).all()
        distinct = conn.execute(
            select(func.count(func.distinct(coupon_codes.c.code_normalized))).where(
                coupon_codes.c.coupon_id == coupon.id, coupon_codes.c.own.is_(False)
            )
        ).scalar_one()
    assert len(rows) == 25000 and distinct == 25000
    assert all(re.fullmatch(r"CLI-\d{6}", code) and uses == 3 for code, uses in rows)
    quiet = cli("codes", "generate", keys.tenant_id, coupon.id, "--count", "10", "--quiet", env=env)
    assert quiet.stdout.strip().startswith("10 codes generated")


def test_codes_generate_refusals_exit_non_zero(db: Database, database_url: str) -> None:
    keys = make_tenant(db, prefix="cli")
    owner = get_tenant(db, tenant_id=keys.tenant_id)
    coupon = create_coupon(db, tenant=owner, actor_id="t", doc=percent_coupon(), now=now())
    env = cli_env(database_url)
    small = cli(
        "codes",
        "generate",
        keys.tenant_id,
        coupon.id,
        "--count",
        "30",
        "--pattern",
        "AB##",
        "--charset",
        "numeric",
        env=env,
        check=False,
    )
    assert small.returncode == 1 and "quarter" in small.stderr
    missing = cli(
        "codes",
        "generate",
        keys.tenant_id,
        "0000-0000-0000-0000",
        "--count",
        "5",
        env=env,
        check=False,
    )
    assert missing.returncode == 1 and "coupon" in missing.stderr.lower()


def test_codes_export_writes_every_code(db: Database, database_url: str, tmp_path: Any) -> None:
    keys = make_tenant(db, prefix="cli")
    owner = get_tenant(db, tenant_id=keys.tenant_id)
    coupon = create_coupon(db, tenant=owner, actor_id="t", doc=percent_coupon(), now=now())
    env = cli_env(database_url)
    cli("codes", "generate", keys.tenant_id, coupon.id, "--count", "1200", "--quiet", env=env)
    target = tmp_path / "codes.csv"
    written = cli("codes", "export", keys.tenant_id, coupon.id, "-o", str(target), env=env)
    assert "1200 codes written" in written.stderr
    lines = target.read_text().splitlines()
    assert lines[0] == "code,max_uses,times_used,is_active,created_at,last_used_at"
    assert len(lines) == 1201
    to_stdout = cli("codes", "export", keys.tenant_id, coupon.id, env=env)
    assert to_stdout.stdout.splitlines() == lines
    missing = cli("codes", "export", keys.tenant_id, "0000-0000-0000-0000", env=env, check=False)
    assert missing.returncode == 1


def test_codes_import_runs_the_job_and_shows_its_progress(
    db: Database, database_url: str, tmp_path: Any
) -> None:
    keys = make_tenant(db, prefix="cli")
    owner = get_tenant(db, tenant_id=keys.tenant_id)
    coupon = create_coupon(db, tenant=owner, actor_id="t", doc=percent_coupon(), now=now())
    env = cli_env(database_url)
    source = tmp_path / "codes.csv"
    source.write_text(
        "code,max_uses\r\n" + "".join(f"CLI-IMP-{n:05d},{1 + n % 2}\r\n" for n in range(12_000))
    )
    done = cli("codes", "import", keys.tenant_id, coupon.id, str(source), env=env)
    assert f"12000 codes imported from {source}" in done.stdout
    assert "12000/12000" in done.stdout  # the bar, at its end
    with db.reader() as conn:
        count, uses = conn.execute(
            select(func.count(), func.sum(coupon_codes.c.max_uses)).where(
                coupon_codes.c.coupon_id == coupon.id, coupon_codes.c.own.is_(False)
            )
        ).one()
    assert (count, uses) == (12_000, 18_000)
    # An exported file imports into another tenant's coupon as it was (quiet: no bar).
    theirs = make_tenant(db, prefix="cli")
    target = create_coupon(
        db,
        tenant=get_tenant(db, tenant_id=theirs.tenant_id),
        actor_id="t",
        doc=percent_coupon(),
        now=now(),
    )
    exported = tmp_path / "exported.csv"
    cli("codes", "export", keys.tenant_id, coupon.id, "-o", str(exported), env=env)
    quiet = cli("codes", "import", theirs.tenant_id, target.id, str(exported), "--quiet", env=env)
    assert (
        quiet.stdout.strip()
        == f"12000 codes imported from {exported} (job "
        + (quiet.stdout.strip().rsplit("(job ", 1)[1])
    )
    again = tmp_path / "again.csv"
    cli("codes", "export", theirs.tenant_id, target.id, "-o", str(again), env=env)
    first = [line.split(",")[:2] for line in exported.read_text().splitlines()]
    assert [line.split(",")[:2] for line in again.read_text().splitlines()] == first


def test_codes_import_failures_exit_non_zero_naming_each_line(
    db: Database, database_url: str, tmp_path: Any
) -> None:
    keys = make_tenant(db, prefix="cli")
    owner = get_tenant(db, tenant_id=keys.tenant_id)
    coupon = create_coupon(
        db, tenant=owner, actor_id="t", doc=percent_coupon(code="CLI-OWN"), now=now()
    )
    env = cli_env(database_url)
    source = tmp_path / "bad.csv"
    source.write_text("code\nFINE-1\nno!\nfine-1\ncli-own\n")
    failed = cli("codes", "import", keys.tenant_id, coupon.id, str(source), env=env, check=False)
    assert failed.returncode == 1
    assert "error: the job failed: 3 line(s) refused; nothing was imported." in failed.stderr
    assert "line 3 'no!': code must be 3-64 characters" in failed.stderr
    assert "line 4 'fine-1': repeats the code of line 2 (ignoring case)" in failed.stderr
    assert (
        f"line 5 'cli-own': is already a code of this tenant (coupon {coupon.id}'s own code)"
        in (failed.stderr)
    )
    with db.reader() as conn:
        count = conn.execute(
            select(func.count()).where(
                coupon_codes.c.coupon_id == coupon.id, coupon_codes.c.own.is_(False)
            )
        ).scalar_one()
    assert count == 0
    header = tmp_path / "header.csv"
    header.write_text("codes\nFINE-1\n")
    bad_header = cli(
        "codes", "import", keys.tenant_id, coupon.id, str(header), env=env, check=False
    )
    assert bad_header.returncode == 1 and "line 1: unknown column(s) 'codes'" in bad_header.stderr
    missing = cli(
        "codes", "import", keys.tenant_id, "0000-0000-0000-0000", str(source), env=env, check=False
    )
    assert missing.returncode == 1 and "No such coupon." in missing.stderr
    nowhere = cli(
        "codes",
        "import",
        keys.tenant_id,
        coupon.id,
        str(tmp_path / "nope.csv"),
        env=env,
        check=False,
    )
    # Click's message, in a box as wide as the terminal: a long path wraps it across lines.
    said = " ".join(nowhere.stderr.replace("│", " ").split())
    assert nowhere.returncode != 0 and "' does not exist." in said
    too_big = cli(
        "codes",
        "import",
        keys.tenant_id,
        coupon.id,
        str(source),
        env=cli_env(database_url, COUPONRY_IMPORT_MAX_BYTES="10"),
        check=False,
    )
    assert too_big.returncode == 1 and "larger than 10 bytes" in too_big.stderr
