"""The `couponry` command: tenants, keys, migrations and the server (SPEC 8).

It calls the same service functions as the HTTP API, with the same configuration.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO, TypeVar

import typer

from couponry.config import Settings
from couponry.errors import CouponryError
from couponry.services import tenants as tenant_svc
from couponry.store.db import Database, is_sqlite
from couponry.store.migrate import upgrade

if TYPE_CHECKING:
    from couponry.domain.jobs import Job

app = typer.Typer(no_args_is_help=True, add_completion=False, help="couponry: a coupon service.")
tenant_app = typer.Typer(no_args_is_help=True, help="Create and list tenants.")
key_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
codes_app = typer.Typer(no_args_is_help=True, help="A coupon's campaign codes.")
app.add_typer(tenant_app, name="tenant")
app.add_typer(key_app, name="key")
app.add_typer(db_app, name="db")
app.add_typer(codes_app, name="codes")

T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


def _settings() -> Settings:
    return Settings()


def _database(settings: Settings) -> Database:
    _ensure_sqlite_dir(settings.database_url)
    return Database.from_urls(
        settings.database_url,
        pool_size=2,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
    )


def _ensure_sqlite_dir(url: str) -> None:
    if is_sqlite(url) and url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)


def _run(action: Callable[[Database], T]) -> T:
    """Run with a migrated database; domain errors go to stderr with exit status 1."""
    db = _database(_settings())
    try:
        upgrade(db.primary)
        return action(db)
    except CouponryError as error:
        details = "; ".join(f"{d.field}: {d.message}" for d in error.details)
        typer.echo(f"error: {error.message}" + (f" ({details})" if details else ""), err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()


@tenant_app.command("create")
def tenant_create(
    tenant_id: Annotated[str, typer.Argument(metavar="ID")],
    name: Annotated[str, typer.Option("--name", help="display name")],
    site_url: Annotated[list[str] | None, typer.Option("--site-url", help="host name")] = None,
    admin: Annotated[list[str] | None, typer.Option("--admin", help="admin username")] = None,
    currency: Annotated[str, typer.Option("--currency")] = "USD",
) -> None:
    """Create a tenant."""
    tenant = _run(
        lambda db: tenant_svc.create_tenant(
            db,
            tenant_id=tenant_id,
            name=name,
            site_urls=list(site_url or []),
            admins=list(admin or []),
            currency=currency,
            now=_now(),
        )
    )
    typer.echo(tenant.id)


@tenant_app.command("list")
def tenant_list() -> None:
    """List tenants: id, currency, name, admins, site URLs."""
    for t in _run(tenant_svc.list_tenants):
        typer.echo(f"{t.id}\t{t.currency}\t{t.name}\t{','.join(t.admins)}\t{','.join(t.site_urls)}")


@key_app.command("create")
def key_create(
    tenant_id: Annotated[str, typer.Argument(metavar="TENANT")],
    role: Annotated[str, typer.Option("--role", help="admin, checkout or read")],
) -> None:
    """Create a key and print it (only the key, so a script can capture it)."""
    typer.echo(
        _run(lambda db: tenant_svc.create_key(db, tenant_id=tenant_id, role=role, now=_now()))
    )


@key_app.command("list")
def key_list(tenant_id: Annotated[str, typer.Argument(metavar="TENANT")]) -> None:
    """List a tenant's keys: id, role, created, revoked (never the secret)."""
    for key in _run(lambda db: tenant_svc.list_keys(db, tenant_id=tenant_id)):
        revoked = key.revoked_at.isoformat() if key.revoked_at else "-"
        typer.echo(f"{key.id}\t{key.role}\t{key.created_at.isoformat()}\trevoked: {revoked}")


@key_app.command("revoke")
def key_revoke(key_id: Annotated[str, typer.Argument(metavar="KEY_ID")]) -> None:
    """Revoke a key; it stops working at once."""
    _run(lambda db: tenant_svc.revoke_key(db, key_id=key_id, now=_now()))
    typer.echo(f"revoked {key_id}", err=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations."""
    _run(lambda db: None)
    typer.echo("database is up to date", err=True)


@codes_app.command("generate")
def codes_generate(
    tenant_id: Annotated[str, typer.Argument(metavar="TENANT")],
    coupon_id: Annotated[str, typer.Argument(metavar="COUPON_ID")],
    count: Annotated[int, typer.Option("--count", help="how many codes, 1-1,000,000")],
    pattern: Annotated[str | None, typer.Option(help="'#' for a random character")] = None,
    length: Annotated[int | None, typer.Option(help="random characters, 4-32")] = None,
    charset: Annotated[str | None, typer.Option(help="alphanumeric, numeric, alphabetic")] = None,
    prefix: Annotated[str | None, typer.Option()] = None,
    suffix: Annotated[str | None, typer.Option()] = None,
    max_uses: Annotated[int | None, typer.Option("--max-uses", help="default 1")] = None,
    unlimited: Annotated[bool, typer.Option("--unlimited", help="no max_uses")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
) -> None:
    """Generate unique codes for a coupon as a job, here, with a progress bar."""
    from couponry.domain.jobs import FAILED
    from couponry.services import jobs as job_svc

    doc: dict[str, object] = {"count": count}
    for name, value in (
        ("pattern", pattern),
        ("length", length),
        ("charset", charset),
        ("prefix", prefix),
        ("suffix", suffix),
        ("max_uses", max_uses),
    ):
        if value is not None:
            doc[name] = value
    if unlimited:
        doc["max_uses"] = None

    def work(db: Database) -> Job:
        job = job_svc.start_generation(
            db, tenant_id=tenant_id, coupon_id=coupon_id, doc=doc, now=_now()
        )
        return _follow(db, tenant_id, job, quiet, lambda now: f"job {now.id}")

    finished = _run(work)
    if finished.status == FAILED:
        typer.echo(_job_failure(finished.error), err=True)
        raise typer.Exit(1)
    typer.echo(f"{finished.done} codes generated (job {finished.id})")


@codes_app.command("import")
def codes_import(
    tenant_id: Annotated[str, typer.Argument(metavar="TENANT")],
    coupon_id: Annotated[str, typer.Argument(metavar="COUPON_ID")],
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE.csv", exists=True, dir_okay=False, readable=True, help="UTF-8 CSV"
        ),
    ],
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
) -> None:
    """Import a coupon's campaign codes from a CSV file (a `code` column, optionally
    `max_uses`), all or none, as a job run here with a progress bar."""
    from couponry.domain.jobs import FAILED
    from couponry.services import imports as import_svc

    def work(db: Database) -> Job:
        with open(file, "rb") as source:
            job = import_svc.start_import(
                db,
                tenant_id=tenant_id,
                coupon_id=coupon_id,
                pieces=iter(lambda: source.read(import_svc.PART_BYTES), b""),
                clock=_now,
                max_bytes=_settings().import_max_bytes,
            )
        return _follow(db, tenant_id, job, quiet, _import_phase)

    finished = _run(work)
    if finished.status == FAILED:
        typer.echo(_job_failure(finished.error), err=True)
        raise typer.Exit(1)
    typer.echo(f"{finished.done} codes imported from {file} (job {finished.id})")


def _import_phase(job: Job) -> str:
    from couponry.domain.jobs import RUNNING

    if job.status != RUNNING:
        return f"job {job.id}: {job.status}"
    # Every line checked: the codes are being written, in one transaction.
    return f"job {job.id}: {'writing' if job.done >= job.total else 'checking'}"


def _follow(
    db: Database, tenant_id: str, job: Job, quiet: bool, describe: Callable[[Job], str]
) -> Job:
    """Run the job here, or follow the server process that took it, with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from couponry.services import jobs as job_svc

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=quiet,
        transient=False,
    ) as bar:
        task = bar.add_task(describe(job), total=job.total)

        def show(now: Job) -> None:
            bar.update(task, completed=now.done, description=describe(now))

        return job_svc.run_job(
            db,
            tenant_id=tenant_id,
            job_id=job.id,
            owner=f"cli:{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(4)}",
            clock=_now,
            lease=timedelta(seconds=_settings().job_lease_seconds),
            on_progress=show,
        )


def _job_failure(error: object) -> str:
    """A failed job's error, readable: its message, then each line refused and why."""
    if not isinstance(error, dict):
        return f"error: the job failed: {error}"
    text = f"error: the job failed: {error.get('message') or error.get('reason')}"
    for entry in error.get("lines", []):
        code = "" if entry.get("code") is None else f" {entry['code']!r}"
        text += f"\n  line {entry['line']}{code}: {entry['reason']}"
    return text


@codes_app.command("export")
def codes_export(
    tenant_id: Annotated[str, typer.Argument(metavar="TENANT")],
    coupon_id: Annotated[str, typer.Argument(metavar="COUPON_ID")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="a file (default: standard output)")
    ] = None,
) -> None:
    """Every campaign code of a coupon as CSV, a page at a time."""
    from couponry.services.codes import export_codes

    def work(db: Database) -> int:
        pages = export_codes(db, tenant_id=tenant_id, coupon_id=coupon_id)
        written = 0
        with open(output, "w", newline="", encoding="utf-8") if output else _stdout() as out:
            for page in pages:
                out.writelines(page)
                written += len(page)
        return written - 1

    count = _run(work)
    if output is not None:
        typer.echo(f"{count} codes written to {output}", err=True)


@contextmanager
def _stdout() -> Iterator[TextIO]:
    yield sys.stdout
    sys.stdout.flush()


@app.command()
def check(
    tenant_id: Annotated[str | None, typer.Argument(metavar="[TENANT]")] = None,
) -> None:
    """Verify that counters and redemption records agree; exit 1 on any disagreement."""
    from couponry.services.check import check_invariants

    report = _run(lambda db: check_invariants(db, tenant_id=tenant_id))
    for problem in report.problems:
        typer.echo(f"DISAGREE {problem}")
    summary = (
        f"{report.coupons} coupons, {report.redemptions} redemptions, "
        f"{report.user_counters} per-user counters checked"
    )
    if not report.ok:
        typer.echo(f"{len(report.problems)} disagreement(s); {summary}", err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: {summary}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="default 127.0.0.1 (COUPONRY_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="default 8000 (COUPONRY_PORT)")] = None,
    workers: Annotated[int | None, typer.Option(help="processes (COUPONRY_WORKERS)")] = None,
    database_url: Annotated[str | None, typer.Option(help="COUPONRY_DATABASE_URL")] = None,
    ssl_certfile: Annotated[str | None, typer.Option(help="COUPONRY_SSL_CERTFILE")] = None,
    ssl_keyfile: Annotated[str | None, typer.Option(help="COUPONRY_SSL_KEYFILE")] = None,
    log_level: Annotated[str | None, typer.Option(help="COUPONRY_LOG_LEVEL")] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="on an empty database, create tenant demo and a key")
    ] = False,
) -> None:
    """Apply migrations, then serve the API with N worker processes."""
    import uvicorn

    from couponry.web.observability import prepare_multiprocess_dir

    overrides = {
        "COUPONRY_HOST": host,
        "COUPONRY_PORT": port,
        "COUPONRY_WORKERS": workers,
        "COUPONRY_DATABASE_URL": database_url,
        "COUPONRY_SSL_CERTFILE": ssl_certfile,
        "COUPONRY_SSL_KEYFILE": ssl_keyfile,
        "COUPONRY_LOG_LEVEL": log_level,
    }
    for name, value in overrides.items():
        if value is not None:
            os.environ[name] = str(value)  # workers build their Settings from the environment
    settings = _settings()
    key = _run(lambda db: tenant_svc.ensure_demo_tenant(db, now=_now()) if demo else None)
    if key:
        _print_demo(settings, key)
    metrics_dir = prepare_multiprocess_dir()
    try:
        uvicorn.run(
            "couponry.asgi:build",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level.lower(),
            access_log=False,
            ssl_certfile=settings.ssl_certfile,
            ssl_keyfile=settings.ssl_keyfile,
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _print_demo(settings: Settings, key: str) -> None:
    scheme = "https" if settings.ssl_certfile else "http"
    base = f"{scheme}://{settings.host}:{settings.port}"
    print(
        "\nCreated tenant 'demo' (admin 'admin') with this admin API key (shown once):\n"
        f"\n    {key}\n\nTry it:\n\n"
        f"    curl -s -X POST {base}/coupons/demo -H 'Authorization: {key}' \\\n"
        "      -H 'Content-Type: application/json' \\\n"
        '      -d \'{"code": "WELCOME10", "coupon_type": "PERCENT", "value_percent": 10}\'\n'
        f"    curl -s {base}/coupons/demo -H 'Authorization: {key}'\n",
        file=sys.stderr,
        flush=True,
    )


def main() -> None:
    app()
