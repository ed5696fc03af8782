"""make bench: couponry measured against baselines taken in the same run on this machine.

Starts `couponry serve --workers 2` on PostgreSQL and then on SQLite, loads data through the
API and the store, drives each scenario with wrk from a separate process at a fixed
concurrency and duration, runs pgbench with scripts equivalent to one redemption on the same
PostgreSQL, measures scan latency against table size and SPEC 10's campaign targets
(bench/campaign.py), and writes bench/results.json and docs/benchmarks.md (with two charts).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
WRK_DIR = BENCH / "wrk"
PGBENCH_DIR = BENCH / "pgbench"
sys.path.insert(0, str(BENCH))

import floor  # noqa: E402
import reference  # noqa: E402
from bulk import bulk_load_coupons, scan_keys  # noqa: E402
from cpu import CpuSnapshot  # noqa: E402
from report import write_report  # noqa: E402

if TYPE_CHECKING:
    from campaign import Campaign

COUPONRY = str(Path(sys.executable).with_name("couponry"))
PG_ADMIN_URL = os.environ.get(
    "COUPONRY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BENCH_DB = "couponry_bench"
CONNECTIONS = 16
THREADS = 2


@dataclass
class Settings:
    duration: int
    warmup: int
    spread: int  # coupons the spread scenarios draw from
    scale_sizes: list[int]
    quick: bool


@dataclass
class Result:
    backend: str
    scenario: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    baseline: str | None = None
    baseline_rps: float | None = None
    ratio: float | None = None
    rss_before_mb: float | None = None
    rss_after_mb: float | None = None
    # CPU microseconds per request: server, postgres, wrk (bench/cpu.py).
    cpu_us: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


# --- processes -----------------------------------------------------------------------------


def run(*args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUPONRY_")}
    env["COUPONRY_DATABASE_URL"] = database_url
    return env


@contextmanager
def serving(database_url: str) -> Iterator[tuple[str, int]]:
    """`couponry serve --workers 2`, as a user starts it; yields (base URL, pid)."""
    port = free_port()
    process = subprocess.Popen(
        [COUPONRY, "serve", "--port", str(port), "--workers", "2"],
        env=base_env(database_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("couponry serve did not become ready")
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def rss_mb(pid: int) -> float:
    """The server's resident memory: the supervisor and its workers."""
    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs) / 2**20
    except psutil.Error:
        return float("nan")


# --- drivers ------------------------------------------------------------------------------


def wrk(
    base: str,
    script: str,
    settings: Settings,
    env: dict[str, str],
    seconds: int | None = None,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """One wrk run; with `server_pid`, also the CPU each request cost (bench/cpu.py)."""
    before = CpuSnapshot.take(server_pid)
    output = run(
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds or settings.duration}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_DIR / script),
        base,
        env={**os.environ, "BENCH_DIR": str(WRK_DIR), **env},
    )
    line = next(x for x in output.splitlines() if x.startswith("WRK_JSON "))
    data = json.loads(line[len("WRK_JSON ") :])
    after = CpuSnapshot.take(server_pid)
    seconds = data["duration_us"] / 1e6
    return {
        "rps": data["requests"] / seconds,
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "errors": data["errors"],
        "requests": data["requests"],
        "cpu_us": before.per_request(after, data["requests"], server_pid),
    }


def cpu_text(cpu_us: dict[str, float]) -> str:
    if not cpu_us:
        return ""
    return "CPU us/req " + " ".join(f"{name} {value:.0f}" for name, value in cpu_us.items())


def pgbench(database_url: str, script: str, settings: Settings) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as logs:
        output = run(
            "pgbench",
            "-n",
            f"-c{CONNECTIONS}",
            f"-j{THREADS}",
            f"-T{settings.duration}",
            "-f",
            str(PGBENCH_DIR / script),
            "-l",
            f"--log-prefix={logs}/tx",
            database_url,
        )
        latencies: list[int] = []
        for path in Path(logs).iterdir():
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    latencies.append(int(parts[2]))
    tps = float(next(x for x in output.splitlines() if x.startswith("tps = ")).split()[2])
    failed = sum(
        int(x.split(":")[1].split()[0])
        for x in output.splitlines()
        if x.startswith("number of failed transactions")
    )
    latencies.sort()

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(len(latencies) * p))] / 1000 if latencies else 0
        )

    return {
        "rps": tps,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "errors": failed,
        "requests": len(latencies),
    }


# --- setup --------------------------------------------------------------------------------


def fresh_postgres(name: str = BENCH_DB) -> str:
    admin = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    from sqlalchemy import create_engine, text

    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def fresh_sqlite(name: str = "bench") -> str:
    folder = ROOT / "var" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return f"sqlite:///{folder / 'bench.db'}"


@dataclass
class Loaded:
    tenant: str
    key: str
    ids_file: str
    codes_file: str
    keys_file: str
    cookie: str
    workdir: Path


def load(
    base: str, database_url: str, settings: Settings, workdir: Path, *, checkout: bool = True
) -> Loaded:
    """A tenant and key by the CLI; coupons through the batch API; an EduBrite session.
    `checkout`: also SPEC 11's coupons (the code before issue 9 refuses their fields)."""
    env = base_env(database_url)
    tenant = f"bench-{secrets.token_hex(3)}"
    run(COUPONRY, "tenant", "create", tenant, "--name", "Bench", "--admin", "admin", env=env)
    key = run(COUPONRY, "key", "create", tenant, "--role", "admin", env=env).strip()
    headers = {"Authorization": key}
    ids: list[str] = []
    codes: list[str] = []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for start in range(0, settings.spread, 100):
            ops = [
                {
                    "operation": "create",
                    "object": {
                        "code": f"SPREAD-{n:06d}",
                        "coupon_type": "PERCENT",
                        "value_percent": 25,
                    },
                }
                for n in range(start, min(start + 100, settings.spread))
            ]
            reply = client.post(f"/coupons/{tenant}/batch", json={"operations": ops})
            reply.raise_for_status()
            for item in reply.json()["results"]:
                ids.append(item["object"]["id"])
                codes.append(item["object"]["code"])
        hot = {"code": "HOT-1", "coupon_type": "AMOUNT", "value_amount": "5.00"}
        client.post(f"/coupons/{tenant}", json=hot).raise_for_status()
        # Checkout (SPEC 11): a coupon to hold and confirm, and two that stack.
        extras = (
            {"code": "HOLD-1", "coupon_type": "AMOUNT", "value_amount": "5.00"},
            {
                "code": "STACK-A",
                "coupon_type": "PERCENT",
                "value_percent": 10,
                "stacking": "combinable",
            },
            {
                "code": "STACK-B",
                "coupon_type": "AMOUNT",
                "value_amount": "5.00",
                "stacking": "combinable",
                "priority": 1,
            },
        )
        for extra in extras if checkout else ():
            client.post(f"/coupons/{tenant}", json=extra).raise_for_status()
        key_id, secret = key.split(".")
        login = client.get(
            "/oltpublish/site/home.do", params={"username": key_id, "password": secret}
        )
        login.raise_for_status()
        cookie = "; ".join(f"{k}={v}" for k, v in login.cookies.items())
    (workdir / "ids.txt").write_text("\n".join(ids))
    (workdir / "codes.txt").write_text("\n".join(codes))
    (workdir / "keys.txt").write_text("\n".join(scan_keys(database_url, tenant, 500)))
    return Loaded(
        tenant,
        key,
        str(workdir / "ids.txt"),
        str(workdir / "codes.txt"),
        str(workdir / "keys.txt"),
        cookie,
        workdir,
    )


# --- scenarios ----------------------------------------------------------------------------


def scenarios(data: Loaded) -> list[tuple[str, str, dict[str, str], str]]:
    """(name, wrk script, environment, baseline name)."""
    common = {"BENCH_TENANT": data.tenant, "BENCH_KEY": data.key}
    t = data.tenant
    return [
        ("hello", "hello.lua", common, ""),
        ("get", "get.lua", {**common, "BENCH_IDS_FILE": data.ids_file}, "hello"),
        ("scan_page", "scan.lua", {**common, "BENCH_KEYS_FILE": data.keys_file}, "hello"),
        (
            "validate",
            "cart.lua",
            {**common, "BENCH_PATH": f"/coupons/{t}/validate", "BENCH_CODES_FILE": data.codes_file},
            "hello",
        ),
        (
            "redeem_spread",
            "cart.lua",
            {**common, "BENCH_PATH": f"/redemptions/{t}", "BENCH_CODES_FILE": data.codes_file},
            "pgbench_redeem_spread",
        ),
        (
            "redeem_hot",
            "cart.lua",
            {**common, "BENCH_PATH": f"/redemptions/{t}", "BENCH_CODE": "HOT-1"},
            "pgbench_redeem_hot",
        ),
        # SPEC 11, against the one-code redeem: a hold then its confirm (two requests a
        # hold: req/s counts both), and one redemption of two stacked codes.
        (
            "hold_confirm",
            "hold_confirm.lua",
            {**common, "BENCH_CODE": "HOLD-1"},
            "redeem_hot",
        ),
        (
            "redeem_two_codes",
            "two_codes.lua",
            {**common, "BENCH_CODE": "STACK-A", "BENCH_CODE_2": "STACK-B"},
            "redeem_hot",
        ),
        ("create", "create.lua", common, "hello"),
        ("batch_create_100", "batch.lua", common, "hello"),
        (
            "edubrite_create",
            "edubrite_create.lua",
            {**common, "BENCH_COOKIE": data.cookie},
            "hello",
        ),
    ]


def profiled(pid: int, name: str, backend: str, seconds: int) -> subprocess.Popen[bytes]:
    """py-spy on one worker while wrk runs: collapsed stacks for bench/profile_summary.py."""
    workers = [
        p
        for p in psutil.Process(pid).children(recursive=True)
        if "spawn_main" in " ".join(p.cmdline()) and "resource_tracker" not in " ".join(p.cmdline())
    ] or [psutil.Process(pid)]
    out = BENCH / "profiles" / f"{backend}-{name}.txt"
    out.parent.mkdir(exist_ok=True)
    spy = str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen(
        [
            spy,
            "record",
            "-p",
            str(workers[0].pid),
            "-d",
            str(seconds),
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_backend(
    backend: str,
    database_url: str,
    settings: Settings,
    profile: set[str] | None = None,
    only: set[str] | None = None,
    peer: reference.Peer | None = None,
) -> list[Result]:
    """Every scenario against `couponry serve`; those the reference peer also serves run in
    alternating rounds, couponry then the peer, so both see the same state of this machine
    (its figures move by 15-30% from one minute to the next)."""
    results: list[Result] = []
    run(COUPONRY, "db", "upgrade", env=base_env(database_url))
    with tempfile.TemporaryDirectory() as tmp, serving(database_url) as (base, pid):
        data = load(base, database_url, settings, Path(tmp), checkout=backend != "sqlite_before_9")
        # Warm every path first (compiled-statement caches, prepared statements, pools,
        # threads, SQLite's page cache), so figures and RSS growth describe steady state.
        wanted = [
            s
            for s in scenarios(data)
            if (profile is None or s[0] in profile) and (only is None or s[0] in only)
        ]
        paired = {} if peer is None or profile else peer.plan
        for name, script, env, _ in wanted:
            wrk(base, script, settings, env, seconds=settings.warmup)
            if name in paired and peer is not None:
                peer_script, peer_env = paired[name]
                wrk(peer.base, peer_script, settings, peer_env, seconds=settings.warmup)
        quiesce(database_url)
        if paired and peer is not None:
            quiesce(peer.url)
        for name, script, env, baseline in wanted:
            before = rss_mb(pid)
            spy = profiled(pid, name, backend, settings.duration - 1) if profile else None
            if name in paired and peer is not None:
                figures, theirs = alternate(
                    settings, (base, script, env, pid), (peer.base, *paired[name], peer.pid)
                )
                results.append(Result("reference", name, **theirs))
                show("reference", name, theirs)
            else:
                figures = wrk(base, script, settings, env, server_pid=pid)
            if spy is not None:
                spy.wait(60)
            after = rss_mb(pid)
            result = Result(backend, name, rss_before_mb=before, rss_after_mb=after, **figures)
            result.baseline = baseline or None
            if name == "batch_create_100":
                result.extra["coupons_per_s"] = figures["rps"] * 100
            results.append(result)
            show(backend, name, figures)
        if backend == "postgres" and profile is None and (only is None or "get" in only):
            results.append(get_floor(database_url, data, settings))
        if backend == "postgres" and profile is None and (only is None or "redeem_spread" in only):
            results.append(redeem_floor(database_url, data, settings))
    return results


Target = tuple[str, str, dict[str, str], int]  # base URL, wrk script, environment, server pid


def alternate(settings: Settings, ours: Target, theirs: Target) -> tuple[dict[str, Any], ...]:
    """`settings.duration` seconds of wrk on each, in rounds: ours, theirs, ours, theirs..."""
    rounds = max(1, settings.duration // 2)
    seconds = max(1, settings.duration // rounds)
    runs: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    for _ in range(rounds):
        for side, (url, script, env, server_pid) in zip(runs, (ours, theirs), strict=True):
            side.append(wrk(url, script, settings, env, seconds=seconds, server_pid=server_pid))
    return combine(runs[0]), combine(runs[1])


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds as one run: requests over the time they took; the median round's latencies;
    CPU per request weighted by requests."""
    requests = sum(r["requests"] for r in rounds)
    seconds = sum(r["requests"] / r["rps"] for r in rounds if r["rps"])
    cpu: dict[str, float] = {}
    for r in rounds:
        for name, value in r["cpu_us"].items():
            cpu[name] = cpu.get(name, 0.0) + value * r["requests"] / max(requests, 1)
    return {
        "rps": requests / seconds if seconds else 0.0,
        "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
        "p99_ms": statistics.median(r["p99_ms"] for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
        "requests": requests,
        "cpu_us": cpu,
    }


def show(backend: str, name: str, figures: dict[str, Any]) -> None:
    print(
        f"  {backend:9} {name:18} {figures['rps']:9.1f} req/s"
        f"  p50 {figures['p50_ms']:.2f} ms  p99 {figures['p99_ms']:.2f} ms"
        f"  errors {figures['errors']}  {cpu_text(figures['cpu_us'])}",
        flush=True,
    )


def get_floor(database_url: str, data: Loaded, settings: Settings) -> Result:
    """GET's own SQL from a plain asyncpg loop at wrk's concurrency: the database's share."""
    figures = floor.get_floor(
        database_url.replace("postgresql+psycopg://", "postgresql://"),
        key_id=data.key.split(".")[0],
        tenant_id=data.tenant,
        coupon_ids=Path(data.ids_file).read_text().split(),
        concurrency=CONNECTIONS,
        seconds=settings.duration,
    )
    print(f"  postgres floor_get          {figures['rps']:9.1f} statements/s", flush=True)
    return Result("postgres", "floor_get", **figures)


def redeem_floor(database_url: str, data: Loaded, settings: Settings) -> Result:
    """A spread redemption's own SQL from a plain asyncpg loop at wrk's concurrency."""
    ids = Path(data.ids_file).read_text().split()
    codes = Path(data.codes_file).read_text().split()
    figures = floor.redeem_floor(
        database_url.replace("postgresql+psycopg://", "postgresql://"),
        key_id=data.key.split(".")[0],
        tenant_id=data.tenant,
        coupons=list(zip(ids, codes, strict=True)),
        concurrency=CONNECTIONS,
        seconds=settings.duration,
    )
    print(f"  postgres floor_redeem       {figures['rps']:9.1f} redemptions/s", flush=True)
    return Result("postgres", "floor_redeem", **figures)


def quiesce(database_url: str) -> None:
    """Start each measured phase from a quiet database: statistics fresh, no vacuum or
    checkpoint left over from loading (measured: leftovers cut GET to a fifth)."""
    if database_url.startswith("sqlite"):
        from sqlalchemy import text

        from couponry.store.db import Database

        db = Database.from_urls(database_url)
        with db.transaction() as conn:
            conn.execute(text("ANALYZE"))
        with db.reader() as conn:  # outside any transaction, as a checkpoint must be
            # PASSIVE never waits for the server's own connections
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        db.dispose()
        return
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    run("psql", url, "-q", "-c", "VACUUM ANALYZE", "-c", "CHECKPOINT")


def pgbench_baselines(database_url: str, settings: Settings) -> list[Result]:
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    run("psql", url, "-q", "-f", str(PGBENCH_DIR / "setup.sql"))
    quiesce(database_url)
    results = []
    for name, script in (
        ("pgbench_redeem_hot", "redeem_hot.sql"),
        ("pgbench_redeem_spread", "redeem_spread.sql"),
        ("pgbench_get_by_pk", "get.sql"),
    ):
        figures = pgbench(url, script, settings)
        results.append(Result("postgres", name, **figures))
        print(f"  postgres {name:22} {figures['rps']:9.1f} tps", flush=True)
    return results


def scale(backend: str, database_url: str, settings: Settings) -> list[Result]:
    """Scan page latency against table size: bulk-loaded tenants of 1k, 100k, 1M coupons."""
    results = []
    env = base_env(database_url)
    tenants = {}
    for size in settings.scale_sizes:
        tenant = f"scale-{size}"
        run(COUPONRY, "tenant", "create", tenant, "--name", "Scale", env=env)
        key = run(COUPONRY, "key", "create", tenant, "--role", "read", env=env).strip()
        started = time.monotonic()
        bulk_load_coupons(database_url, tenant, size)
        print(
            f"  {backend:8} loaded {size:>9,} coupons in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        tenants[size] = (tenant, key)
    quiesce(database_url)
    with tempfile.TemporaryDirectory() as tmp, serving(database_url) as (base, _pid):
        for size, (tenant, key) in tenants.items():
            keys_file = Path(tmp) / f"keys-{size}.txt"
            keys_file.write_text("\n".join(scan_keys(database_url, tenant, 1000)))
            figures = wrk(
                base,
                "scan.lua",
                settings,
                {"BENCH_TENANT": tenant, "BENCH_KEY": key, "BENCH_KEYS_FILE": str(keys_file)},
            )
            results.append(Result(backend, f"scan_page_at_{size}", **figures, extra={"size": size}))
            print(f"  {backend:8} scan at {size:>9,}: p50 {figures['p50_ms']:.2f} ms", flush=True)
    return results


# The hot paths of issue 9, each against the same scenario of the reference peer.
REFERENCE_SCENARIOS = ("hello", "get", "redeem_spread", "redeem_hot")


# The commit issue 9 was filed against: SQLite must not be slower than it (bench/report.py).
BEFORE_ISSUE_9 = "5a35f2f"
BEFORE_SCENARIOS = {
    "hello",
    "get",
    "validate",
    "redeem_spread",
    "redeem_hot",
    "create",
    "edubrite_create",
}


@contextmanager
def code_at(commit: str) -> Iterator[Path | None]:
    """The source tree of `commit` in a temporary git worktree (None without git history)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        added = subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
            capture_output=True,
            text=True,
        )
        if added.returncode != 0:
            print(f"  {commit} not measured: {added.stderr.strip()[:200]}", flush=True)
            yield None
            return
        try:
            yield tree / "src"
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                capture_output=True,
            )


def sqlite_before_issue_9(settings: Settings) -> list[Result]:
    """The same SQLite scenarios served by the code of `BEFORE_ISSUE_9`, in this run."""
    with code_at(BEFORE_ISSUE_9) as source:
        if source is None:
            return []
        previous = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(source)  # the server and CLI it starts import it
        try:
            url = fresh_sqlite("bench-before-9")
            return run_backend("sqlite_before_9", url, settings, only=BEFORE_SCENARIOS)
        finally:
            if previous is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = previous


def observability_cost() -> dict[str, float]:
    """CPU per request of the request id, access line and metrics (bench/overhead.py)."""
    figures: dict[str, float] = json.loads(run(sys.executable, str(BENCH / "overhead.py")))
    print(f"  observability: {figures['cost_us']:.1f} us of CPU per request", flush=True)
    return figures


def compare_with_reference(results: list[Result]) -> None:
    """PostgreSQL's hot paths are measured against the reference when it ran."""
    measured = {r.scenario for r in results if r.backend == "reference"}
    before = {r.scenario for r in results if r.backend == "sqlite_before_9"}
    for r in results:
        if r.backend == "postgres" and r.scenario in REFERENCE_SCENARIOS and r.scenario in measured:
            r.baseline = f"reference:{r.scenario}"
        if r.backend == "sqlite" and r.scenario in before:
            r.baseline = f"sqlite_before_9:{r.scenario}"  # SQLite against its own past
        if r.backend == "sqlite_before_9":
            r.baseline = None  # a baseline itself


def attach_baselines(results: list[Result]) -> None:
    by_name = {(r.backend, r.scenario): r for r in results}
    for r in results:
        if not r.baseline:
            continue
        if ":" in r.baseline:  # another backend's same scenario: reference, the past
            backend, scenario = r.baseline.split(":", 1)
            base = by_name.get((backend, scenario))
        else:
            base = by_name.get((r.backend, r.baseline)) or by_name.get(("postgres", r.baseline))
        if base is None or not base.rps:
            continue
        r.baseline_rps = base.rps
        r.ratio = r.rps / base.rps


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import sqlite3

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "postgres": run("psql", PG_ADMIN_URL, "-tAc", "SHOW server_version").strip(),
        "wrk": f"{THREADS} threads, {CONNECTIONS} connections",
        "server": "couponry serve --workers 2",
    }


def campaign_module() -> ModuleType:
    """bench/campaign.py, which builds on this module (`from run import ...`). Run as a
    script, this module is `__main__`: it is registered as `run` too, or that import would load
    a second copy of it."""
    sys.modules.setdefault("run", sys.modules[__name__])
    import campaign

    return campaign


def console_module() -> ModuleType:
    """bench/console.py (see campaign_module)."""
    sys.modules.setdefault("run", sys.modules[__name__])
    import console

    return console


def part_only(part: str, backends: list[str], settings: Settings) -> None:
    """`--campaign` (SPEC 10's targets) or `--console` (SPEC 12's) alone, merged into
    bench/results.json (every other result kept as the last run left it), and
    docs/benchmarks.md written again."""
    if part == "campaign":
        module = campaign_module()
        ran: list[Any] = [module.run_campaign(backend, settings) for backend in backends]
    else:
        module = console_module()
        ran = [module.run_console(backend, settings) for backend in backends]
    path = BENCH / "results.json"
    doc: dict[str, Any] = (
        json.loads(path.read_text())
        if path.exists()
        else {"machine": machine(), "settings": asdict(settings), "elapsed_s": 0.0, "results": []}
    )
    module.merge(doc, ran)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    write_report(doc, ROOT / "docs")
    print(f"{part} results merged into bench/results.json; docs/benchmarks.md", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about 2 minutes instead of 10")
    parser.add_argument("--only", choices=["postgres", "sqlite"], help="one backend")
    parser.add_argument(
        "--scenarios",
        metavar="NAME,...",
        help="only these scenarios (with --hot's printing; no reference unless --hot)",
    )
    parser.add_argument(
        "--hot",
        action="store_true",
        help="only the hot paths (hello, get, redeem) and the reference; prints, writes nothing",
    )
    parser.add_argument(
        "--profile",
        metavar="SCENARIO,...",
        help="run only these scenarios, with py-spy on one worker (bench/profiles/)",
    )
    parser.add_argument(
        "--campaign",
        action="store_true",
        help="only SPEC 10's campaign targets (bench/campaign.py) on --only's backend or both, "
        "merged into bench/results.json",
    )
    parser.add_argument(
        "--console",
        action="store_true",
        help="only SPEC 12's console pages (bench/console.py) on --only's backend or both, "
        "merged into bench/results.json",
    )
    args = parser.parse_args()
    settings = Settings(
        duration=3 if args.quick else 8,
        warmup=1 if args.quick else 2,
        spread=2_000 if args.quick else 10_000,
        scale_sizes=[1_000, 100_000] if args.quick else [1_000, 100_000, 1_000_000],
        quick=args.quick,
    )
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: run `make bench`, which installs it (Debian package wrk)")
    started = time.monotonic()
    results: list[Result] = []
    if args.campaign or args.console:
        part = "campaign" if args.campaign else "console"
        part_only(part, [args.only] if args.only else ["postgres", "sqlite"], settings)
        return
    if args.profile:
        wanted = set(args.profile.split(","))
        for backend in [args.only] if args.only else ["postgres", "sqlite"]:
            url = fresh_postgres() if backend == "postgres" else fresh_sqlite()
            run_backend(backend, url, settings, profile=wanted)
        print("profiles in bench/profiles/; summarise with bench/profile_summary.py")
        return
    if args.hot or args.scenarios:
        hot = set(args.scenarios.split(",")) if args.scenarios else set(REFERENCE_SCENARIOS)
        for backend in [args.only] if args.only else ["postgres", "sqlite"]:
            url = fresh_postgres() if backend == "postgres" else fresh_sqlite()
            if backend == "postgres" and args.hot:
                with reference.started(settings.spread, fresh_postgres) as peer:
                    results += run_backend(backend, url, settings, only=hot, peer=peer)
            else:
                results += run_backend(backend, url, settings, only=hot)
        compare_with_reference(results)
        attach_baselines(results)
        for r in results:
            if r.ratio is not None:
                print(f"  {r.backend} {r.scenario}: {r.ratio:.2f}x {r.baseline}")
        return
    campaigns: list[Campaign] = []
    consoles: list[Any] = []
    if args.only in (None, "postgres"):
        url = fresh_postgres()
        print("PostgreSQL", flush=True)
        with reference.started(settings.spread, fresh_postgres) as peer:
            results += run_backend("postgres", url, settings, peer=peer)
        results += pgbench_baselines(url, settings)
        results += scale("postgres", url, settings)
        print("PostgreSQL, campaign codes (SPEC 10)", flush=True)
        campaigns.append(campaign_module().run_campaign("postgres", settings))
        print("PostgreSQL, the console (SPEC 12)", flush=True)
        consoles.append(console_module().run_console("postgres", settings))
    if args.only in (None, "sqlite"):
        url = fresh_sqlite()
        print("SQLite", flush=True)
        results += run_backend("sqlite", url, settings)
        print("SQLite, the code before issue 9", flush=True)
        results += sqlite_before_issue_9(settings)
        if not args.quick:
            results += scale("sqlite", url, settings)
        print("SQLite, campaign codes (SPEC 10)", flush=True)
        campaigns.append(campaign_module().run_campaign("sqlite", settings))
        print("SQLite, the console (SPEC 12)", flush=True)
        consoles.append(console_module().run_console("sqlite", settings))
    compare_with_reference(results)
    attach_baselines(results)
    elapsed = time.monotonic() - started
    doc = {
        "machine": machine(),
        "settings": asdict(settings),
        "elapsed_s": round(elapsed, 1),
        "results": [asdict(r) for r in results],
        "observability": observability_cost(),
    }
    campaign_module().merge(doc, campaigns)
    console_module().merge(doc, consoles)
    (BENCH / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    write_report(doc, ROOT / "docs")
    print(f"done in {elapsed:.0f} s: bench/results.json, docs/benchmarks.md", flush=True)


if __name__ == "__main__":
    main()
