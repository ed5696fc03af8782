"""SPEC 10's scale targets (issue 10): a million campaign codes, through `couponry serve`.

For one backend, in a database of its own, with `couponry serve --workers 2` running (its
job runners generate the codes):

1. generation: POST .../codes/generate of `size` codes, then GET the job until it succeeded;
   the time from the POST. The database must then hold exactly `size` codes, none twice.
2. export: GET .../codes.csv of those codes, streamed and its lines counted, while the RSS of
   every server process (the serve process and its workers) is sampled every 50 ms; each
   process's growth is against its RSS just before the request, after warm-up requests of
   the same endpoint on a small coupon (so first-use allocations are not counted).
3. redeem by a generated code, a fresh one every request (bench/wrk/redeem_codes.lua),
   against redeem by a coupon's own code (no limits, as `redeem_hot`), the same cart through
   the same script, in alternating rounds.
4. GET and the scan page in the tenant before and after its codes were generated, each in
   alternating rounds with a control tenant of the same shape that never gets a code (it
   shows how much the machine itself moved between the two measurements).
5. GET .../stats of a coupon with `size` redemptions bulk-loaded over 120 days and its
   counters set to match (`couponry check TENANT` must pass): 200 sequential requests
   (p50, p99), and wrk for its throughput.

The bounds are SPEC's for 1,000,000; a quick run's smaller size scales the time bounds of
generation and export with it.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from bulk import bulk_load_redemptions
from run import (
    COUPONRY,
    THREADS,
    Loaded,
    Result,
    Settings,
    alternate,
    base_env,
    fresh_postgres,
    fresh_sqlite,
    load,
    quiesce,
    run,
    serving,
    show,
    wrk,
)
from sqlalchemy import distinct, func, select

from couponry.store.db import Database
from couponry.store.tables import coupon_codes, coupons

FULL_SIZE = 1_000_000
QUICK_SIZE = 100_000
DATABASE = "couponry_bench_campaign"
GENERATE_BOUND_S = 60.0  # for FULL_SIZE codes
EXPORT_BOUND_S = 30.0  # for FULL_SIZE codes
RSS_BOUND_MB = 50.0
REDEEM_BOUND = 0.9  # redeem by a generated code against redeem by a coupon's own code
READ_BOUND = 0.9  # GET and scan after the codes against before
STATS_P99_BOUND_MS = 50.0
STATS_REQUESTS = 200
STATS_DAYS = 120
RSS_EVERY_S = 0.05
POLL_S = 0.1
SMALL_CODES = 12_000  # the export's warm-up coupon: three pages of the export's 5,000
DISCOUNT_UNITS = 50_000  # 5.00: what the bench carts get from an AMOUNT 5.00 coupon


@dataclass
class Row:
    """One target: what was measured, the figure, the bound, and whether it was met."""

    backend: str
    measure: str
    figure: str
    bound: str
    met: bool


@dataclass
class Campaign:
    """One backend's run: its wrk scenarios (for the table of every scenario), its targets."""

    backend: str
    size: int
    results: list[Result] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, measure: str, figure: str, bound: str, met: bool) -> None:
        # The machine's load when the figure was taken: another job on the two cores shows.
        figure += f"; load {os.getloadavg()[0]:.1f}"
        self.rows.append(Row(self.backend, measure, figure, bound, met))
        mark = "met" if met else "MISSED"
        print(f"  {self.backend:8} {measure}: {figure} (bound {bound}: {mark})", flush=True)


def run_campaign(backend: str, settings: Settings) -> Campaign:
    size = QUICK_SIZE if settings.quick else FULL_SIZE
    url = fresh_postgres(DATABASE) if backend == "postgres" else fresh_sqlite("bench-campaign")
    out = Campaign(backend, size)
    started = time.monotonic()
    run(COUPONRY, "db", "upgrade", env=base_env(url))
    with tempfile.TemporaryDirectory() as tmp, serving(url) as (base, pid):
        work = Path(tmp)
        for name in ("tenant", "control"):
            (work / name).mkdir()
        data = load(base, url, settings, work / "tenant")  # the codes are generated here
        control = load(base, url, settings, work / "control")  # the same shape, no codes
        with httpx.Client(base_url=base, headers={"Authorization": data.key}, timeout=120) as api:
            campaign_id = _coupon(api, data.tenant, "CAMPAIGN-1")
            small_id = _coupon(api, data.tenant, "SMALL-1")
            stats_id = _coupon(api, data.tenant, "STATS-1")
            generate_codes(api, data.tenant, small_id, SMALL_CODES)
            before = _reads(out, "before", base, pid, url, data, control, settings)

            seconds = generate_codes(api, data.tenant, campaign_id, size)
            _generation_rows(out, seconds, url, data.tenant, campaign_id)

            quiesce(url)
            _export(out, base, pid, data, campaign_id, small_id)
            after = _reads(out, "after", base, pid, url, data, control, settings)
            _read_rows(out, before, after)

            _redeem(out, base, pid, url, data, campaign_id, settings, work)
            _stats(out, base, pid, url, data, stats_id, settings)
    out.facts = {
        "codes": size,
        "redemptions": size,
        "quick": settings.quick,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    return out


def merge(doc: dict[str, Any], campaigns: list[Campaign]) -> None:
    """Put these backends' campaign results into a results document, replacing what an
    earlier run of the same backends left there and keeping everything else."""
    ran = {c.backend for c in campaigns}

    def kept(item: dict[str, Any]) -> bool:
        return item["backend"] not in ran

    doc["results"] = [
        r for r in doc.get("results", []) if kept(r) or not r["scenario"].startswith("campaign_")
    ] + [asdict(r) for c in campaigns for r in c.results]
    doc["campaign"] = [r for r in doc.get("campaign", []) if kept(r)] + [
        asdict(row) for c in campaigns for row in c.rows
    ]
    runs = {k: v for k, v in doc.get("campaign_runs", {}).items() if k not in ran}
    doc["campaign_runs"] = runs | {c.backend: c.facts for c in campaigns}


# --- the parts -----------------------------------------------------------------------------


def _coupon(api: httpx.Client, tenant: str, code: str) -> str:
    """A coupon without limits, shaped as the bench's HOT-1: 5.00 off."""
    body = {"code": code, "coupon_type": "AMOUNT", "value_amount": "5.00"}
    reply = api.post(f"/coupons/{tenant}", json=body)
    reply.raise_for_status()
    return str(reply.json()["id"])


def generate_codes(api: httpx.Client, tenant: str, coupon_id: str, count: int) -> float:
    """Seconds from the POST until its job succeeded (a server process runs it)."""
    started = time.monotonic()
    reply = api.post(f"/coupons/{tenant}/{coupon_id}/codes/generate", json={"count": count})
    if reply.status_code != 202:
        raise RuntimeError(f"generate: {reply.status_code} {reply.text[:500]}")
    location = reply.headers["Location"]
    while True:
        job = api.get(location).json()
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(POLL_S)
    seconds = time.monotonic() - started
    if job["status"] != "succeeded" or job["done"] != count:
        raise RuntimeError(f"generation ended {job['status']}: {job}")
    return seconds


def _generation_rows(out: Campaign, seconds: float, url: str, tenant: str, cid: str) -> None:
    bound = GENERATE_BOUND_S * out.size / FULL_SIZE
    out.add(
        f"{out.size:,} codes generated (POST to job succeeded)",
        f"{seconds:.1f} s ({out.size / seconds:,.0f} codes/s)",
        f"<= {bound:g} s",
        seconds <= bound,
    )
    k = coupon_codes.c
    db = Database.from_urls(url)
    with db.reader() as conn:
        rows, distinct_codes = conn.execute(
            select(func.count(), func.count(distinct(k.code_normalized))).where(
                k.tenant_id == tenant, k.coupon_id == cid, k.own.is_(False)
            )
        ).one()
        counted = conn.execute(select(coupons.c.codes_total).where(coupons.c.id == cid)).scalar()
    db.dispose()
    out.add(
        "codes in the database after the job",
        f"{rows:,} rows, {distinct_codes:,} distinct; the coupon counts {counted:,}",
        f"exactly {out.size:,}, none twice",
        rows == distinct_codes == counted == out.size,
    )


class RssSampler:
    """Every 50 ms on a thread, the RSS of the server's processes (the serve process and its
    workers); each one's largest growth over its RSS when the sampler was made."""

    def __init__(self, pid: int) -> None:
        parent = psutil.Process(pid)
        self.processes = [parent, *parent.children(recursive=True)]
        self.before = {p.pid: p.memory_info().rss for p in self.processes}
        self.peak = dict(self.before)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(RSS_EVERY_S):
            self._sample()

    def _sample(self) -> None:
        for process in self.processes:
            try:
                rss = process.memory_info().rss
            except psutil.Error:
                continue
            self.peak[process.pid] = max(self.peak[process.pid], rss)
        self.samples += 1

    def largest_growth(self) -> tuple[int, float, float]:
        """(pid, its RSS before in MB, its growth in MB) of the process that grew most."""
        pid = max(self.peak, key=lambda p: self.peak[p] - self.before[p])
        return pid, self.before[pid] / 2**20, (self.peak[pid] - self.before[pid]) / 2**20


def _count_lines(client: httpx.Client, path: str) -> int:
    lines = 0
    with client.stream("GET", path) as reply:
        reply.raise_for_status()
        for chunk in reply.iter_bytes():
            lines += chunk.count(b"\n")
    return lines


def _export(
    out: Campaign, base: str, pid: int, data: Loaded, campaign_id: str, small_id: str
) -> None:
    def client() -> httpx.Client:
        return httpx.Client(base_url=base, headers={"Authorization": data.key}, timeout=300)

    def warm(_: int) -> int:
        with client() as c:
            return _count_lines(c, f"/coupons/{data.tenant}/{small_id}/codes.csv")

    # Warm-up: the small coupon's export from four connections at once, twice over, so that
    # each worker serves one (a connection goes to whichever worker accepts it first).
    with ThreadPoolExecutor(4) as pool:
        for _ in range(2):
            assert all(n == SMALL_CODES + 1 for n in pool.map(warm, range(4)))
    with client() as c, RssSampler(pid) as rss:
        started = time.monotonic()
        lines = _count_lines(c, f"/coupons/{data.tenant}/{campaign_id}/codes.csv")
        seconds = time.monotonic() - started
    bound = EXPORT_BOUND_S * out.size / FULL_SIZE
    out.add(
        f"codes.csv of {out.size:,} codes streamed",
        f"{seconds:.1f} s, {lines:,} lines ({out.size / seconds:,.0f} codes/s)",
        f"<= {bound:g} s and {out.size + 1:,} lines",
        seconds <= bound and lines == out.size + 1,
    )
    grown_pid, rss_before, growth = rss.largest_growth()
    role = "the serve process" if grown_pid == pid else f"worker {grown_pid}"
    out.add(
        "server RSS growth during that export (the process that grew most)",
        f"{growth:+.1f} MB ({role}, {rss_before:.0f} MB before; {rss.samples} samples)",
        f"< {RSS_BOUND_MB:g} MB",
        growth < RSS_BOUND_MB,
    )


def _read_env(data: Loaded, name: str) -> tuple[str, dict[str, str]]:
    common = {"BENCH_TENANT": data.tenant, "BENCH_KEY": data.key}
    if name == "get":
        return "get.lua", {**common, "BENCH_IDS_FILE": data.ids_file}
    return "scan.lua", {**common, "BENCH_KEYS_FILE": data.keys_file}


def _reads(
    out: Campaign,
    when: str,
    base: str,
    pid: int,
    url: str,
    data: Loaded,
    control: Loaded,
    settings: Settings,
) -> dict[str, tuple[Result, Result]]:
    """GET and the scan page in the tenant and in the control tenant, alternating rounds."""
    quiesce(url)
    measured = {}
    for name in ("get", "scan"):
        script, ours = _read_env(data, name)
        _, theirs = _read_env(control, name)
        wrk(base, script, settings, ours, seconds=settings.warmup)
        wrk(base, script, settings, theirs, seconds=settings.warmup)
        mine, other = alternate(settings, (base, script, ours, pid), (base, script, theirs, pid))
        scenario = f"campaign_{name}_{when}"
        show(out.backend, scenario, mine)
        show(out.backend, f"{scenario}_control", other)
        pair = (
            Result(out.backend, scenario, **mine),
            Result(out.backend, f"{scenario}_control", **other),
        )
        out.results += pair
        measured[name] = pair
    return measured


def _read_rows(
    out: Campaign,
    before: dict[str, tuple[Result, Result]],
    after: dict[str, tuple[Result, Result]],
) -> None:
    for name, label in (("get", "GET"), ("scan", "scan page")):
        (was, was_control), (now, now_control) = before[name], after[name]
        now.baseline, now.baseline_rps = was.scenario, was.rps
        now.ratio = now.rps / was.rps
        now_control.baseline, now_control.baseline_rps = was_control.scenario, was_control.rps
        now_control.ratio = now_control.rps / was_control.rps
        out.add(
            f"{label} with {out.size:,} codes in the tenant against before them",
            f"{now.ratio:.2f}x ({now.rps:,.0f} against {was.rps:,.0f} req/s; "
            f"p99 {now.p99_ms:.1f} against {was.p99_ms:.1f} ms; "
            f"control tenant {now_control.ratio:.2f}x, so {now.ratio / now_control.ratio:.2f}x "
            "with the machine's own drift taken out)",
            f">= {READ_BOUND:g}x",
            now.ratio >= READ_BOUND,
        )


def _redeem(
    out: Campaign,
    base: str,
    pid: int,
    url: str,
    data: Loaded,
    campaign_id: str,
    settings: Settings,
    work: Path,
) -> None:
    """Redeem by a fresh generated code each request against redeem by HOT-1's own code."""
    k = coupon_codes.c
    db = Database.from_urls(url)
    with db.reader() as conn:
        codes = list(
            conn.execute(
                select(k.code).where(k.coupon_id == campaign_id, k.own.is_(False)).order_by(k.seq)
            ).scalars()
        )
    # In no particular order, as customers bring them: in the order they were made, the 16
    # connections would all update codes of the same page at once (a page holds 55), which
    # keeps PostgreSQL from pruning it and from updating in place, a contention no campaign
    # has. Seeded, so every run redeems the same codes.
    random.Random(FULL_SIZE).shuffle(codes)
    (work / "campaign-codes.txt").write_text("\n".join(codes) + "\n")
    common = {
        "BENCH_TENANT": data.tenant,
        "BENCH_KEY": data.key,
        "BENCH_PATH": f"/redemptions/{data.tenant}",
        "BENCH_THREADS": str(THREADS),
    }
    by_code = {
        **common,
        "BENCH_CODES_FILE": str(work / "campaign-codes.txt"),
        "BENCH_CODES_STATE": str(work / "campaign-codes.next"),  # where the next run starts
    }
    # HOT-1's code through the same lines of the script (a file as long, read the same way),
    # so wrk spends as much per request on either side of the comparison.
    (work / "own-codes.txt").write_text("HOT-1\n" * len(codes))
    by_own = {
        **common,
        "BENCH_CODES_FILE": str(work / "own-codes.txt"),
        "BENCH_CODES_STATE": str(work / "own-codes.next"),
    }
    script = "redeem_codes.lua"
    warm = [wrk(base, script, settings, env, seconds=settings.warmup) for env in (by_code, by_own)]
    quiesce(url)
    mine, theirs = alternate(settings, (base, script, by_code, pid), (base, script, by_own, pid))
    own = Result(out.backend, "campaign_redeem_own_code", **theirs)
    generated = Result(out.backend, "campaign_redeem_generated_code", **mine)
    generated.baseline, generated.baseline_rps = own.scenario, own.rps
    generated.ratio = generated.rps / own.rps
    for r, figures in ((own, theirs), (generated, mine)):
        show(out.backend, r.scenario, figures)
        out.results.append(r)
    with db.reader() as conn:
        used, most = conn.execute(
            select(func.count(), func.max(k.times_used)).where(
                k.coupon_id == campaign_id, k.own.is_(False), k.times_used > 0
            )
        ).one()
        times_used = conn.execute(
            select(coupons.c.times_used).where(coupons.c.id == campaign_id)
        ).scalar()
    db.dispose()
    out.add(
        "redeem by a generated code against by a coupon's own code",
        f"{generated.ratio:.2f}x ({generated.rps:,.0f} against {own.rps:,.0f} req/s; "
        f"p99 {generated.p99_ms:.1f} against {own.p99_ms:.1f} ms)",
        f">= {REDEEM_BOUND:g}x",
        generated.ratio >= REDEEM_BOUND,
    )
    errors = generated.errors + own.errors + sum(w["errors"] for w in warm)
    out.add(
        "redeem rounds: answers not 2xx; generated codes used more than once",
        f"{errors}; {used:,} codes used, at most {most or 0} time(s) each, "
        f"the coupon counts {times_used:,} uses",
        "0; each once",
        errors == 0 and (most or 0) <= 1 and used == times_used,
    )


def _stats(
    out: Campaign,
    base: str,
    pid: int,
    url: str,
    data: Loaded,
    stats_id: str,
    settings: Settings,
) -> None:
    started = time.monotonic()
    bulk_load_redemptions(
        url,
        tenant=data.tenant,
        coupon_id=stats_id,
        code="STATS-1",
        count=out.size,
        discount_units=DISCOUNT_UNITS,
        days=STATS_DAYS,
    )
    loaded_s = time.monotonic() - started
    print(f"  {out.backend:8} loaded {out.size:,} redemptions in {loaded_s:.1f} s", flush=True)
    started = time.monotonic()
    checked = subprocess.run(
        [COUPONRY, "check", data.tenant], env=base_env(url), capture_output=True, text=True
    )
    check_s = time.monotonic() - started
    said = (checked.stdout.strip().splitlines() or [checked.stderr.strip()])[-1]
    out.add(
        f"couponry check TENANT with {out.size:,} bulk-loaded redemptions (and the rest)",
        f"exit {checked.returncode} in {check_s:.0f} s: {said[:160]}",
        "exit 0",
        checked.returncode == 0,
    )
    quiesce(url)
    path = f"/coupons/{data.tenant}/{stats_id}/stats"
    with httpx.Client(base_url=base, headers={"Authorization": data.key}, timeout=30) as api:
        for _ in range(20):  # warm-up: both workers, their pools and statement caches
            api.get(path).raise_for_status()
        took: list[float] = []
        for _ in range(STATS_REQUESTS):
            begun = time.perf_counter()
            reply = api.get(path)
            took.append((time.perf_counter() - begun) * 1000)
            reply.raise_for_status()
        doc = reply.json()
    took.sort()
    p50 = statistics.median(took)
    p99 = took[math.ceil(0.99 * len(took)) - 1]  # nearest rank: the 198th of 200
    holding = doc["times_used"]
    figures = wrk(
        base,
        "stats.lua",
        settings,
        {"BENCH_TENANT": data.tenant, "BENCH_KEY": data.key, "BENCH_COUPON_ID": stats_id},
        server_pid=pid,
    )
    show(out.backend, "campaign_stats", figures)
    out.results.append(Result(out.backend, "campaign_stats", **figures))
    out.add(
        f"GET stats of a coupon with {out.size:,} redemptions, {STATS_REQUESTS} sequential",
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {took[-1]:.1f} ms "
        f"({holding:,} uses, {len(doc['by_day'])} days; under wrk's 16 connections "
        f"{figures['rps']:,.0f} req/s, p99 {figures['p99_ms']:.1f} ms)",
        f"p99 < {STATS_P99_BOUND_MS:g} ms",
        p99 < STATS_P99_BOUND_MS,
    )
