"""SPEC 12's speed target (issue 12): each console page renders in under 50 ms server-side
with 1,000,000 coupons and 1,000,000 codes in the tenant.

For one backend, in a database of its own, with `couponry serve --workers 2` running: a tenant
with `size` bulk-loaded coupons, a campaign coupon whose `size` codes its job generates,
100,000 redemptions of another coupon bulk-loaded over 90 days (1 in 100 pending approval),
and a tree of 50 groups, the first with 300 members.
Then, signed in to the console as a user would be (the sign-in form, its CSRF token, the
session cookie), each page is asked for 100 times in a row after 10 warm-up requests. The time
is the client's, from the request to the last byte on localhost: an upper bound of the
server's own. The bound is on the 99th percentile.
"""

from __future__ import annotations

import math
import os
import re
import statistics
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from bulk import bulk_load_coupons, bulk_load_redemptions
from campaign import generate_codes
from run import COUPONRY, Settings, base_env, fresh_postgres, fresh_sqlite, quiesce, run, serving

FULL_SIZE = 1_000_000
QUICK_SIZE = 100_000
REDEMPTIONS = 100_000
DATABASE = "couponry_bench_console"
BOUND_MS = 50.0
REQUESTS = 100
WARMUP = 10
GROUPS = 50
MEMBERS = 300


@dataclass
class PageRow:
    backend: str
    page: str
    path: str
    p50_ms: float
    p99_ms: float
    max_ms: float
    met: bool


@dataclass
class ConsoleRun:
    backend: str
    size: int
    rows: list[PageRow] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


def run_console(backend: str, settings: Settings) -> ConsoleRun:
    size = QUICK_SIZE if settings.quick else FULL_SIZE
    url = fresh_postgres(DATABASE) if backend == "postgres" else fresh_sqlite("bench-console")
    out = ConsoleRun(backend, size)
    started = time.monotonic()
    env = base_env(url)
    run(COUPONRY, "db", "upgrade", env=env)
    tenant = "console-bench"
    run(COUPONRY, "tenant", "create", tenant, "--name", "Console", "--admin", "admin", env=env)
    key = run(COUPONRY, "key", "create", tenant, "--role", "admin", env=env).strip()
    begun = time.monotonic()
    bulk_load_coupons(url, tenant, size)
    print(f"  {backend:8} loaded {size:,} coupons in {time.monotonic() - begun:.1f} s", flush=True)
    with serving(url) as (base, _pid):
        with httpx.Client(base_url=base, headers={"Authorization": key}, timeout=300) as api:
            campaign_id = _coupon(api, tenant, "SPRING-CAMPAIGN", "Spring campaign")
            stats_id = _coupon(api, tenant, "MEMBERS-10", "Members ten off")
            group_id = _groups(api, tenant)
            seconds = generate_codes(api, tenant, campaign_id, size)
            print(f"  {backend:8} generated {size:,} codes in {seconds:.1f} s", flush=True)
        bulk_load_redemptions(
            url,
            tenant=tenant,
            coupon_id=stats_id,
            code="MEMBERS-10",
            count=REDEMPTIONS,
            discount_units=50_000,
            days=90,
        )
        quiesce(url)
        with httpx.Client(base_url=base, timeout=60) as browser:
            _sign_in(browser, key)
            pages = {
                "Coupons (newest first)": "/console/coupons",
                "Coupons, search by code prefix (many match)": "/console/coupons?q=S12",
                "Coupons, search by name prefix": "/console/coupons?q=spring",
                "Coupons, search matching nothing": "/console/coupons?q=zz-none",
                "Coupon with its codes and stats (1M codes)": f"/console/coupons/{campaign_id}",
                "Coupon with its stats (100k redemptions)": f"/console/coupons/{stats_id}",
                "Edit form": f"/console/coupons/{campaign_id}/edit",
                "Redemptions (newest first)": "/console/redemptions",
                "Redemptions pending approval": "/console/redemptions?status=pending_approval",
                "Redemptions of one code": "/console/redemptions?code=MEMBERS-10",
                "Groups (the tree of 50)": "/console/groups",
                f"A group with {MEMBERS} members": f"/console/groups/{group_id}",
            }
            pages["Coupons, a later page"] = _next_page(browser, "/console/coupons")
            for name, path in pages.items():
                out.rows.append(_measure(browser, backend, name, path))
    out.facts = {
        "coupons": size,
        "codes": size,
        "redemptions": REDEMPTIONS,
        "quick": settings.quick,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - started, 1),
        "load": round(os.getloadavg()[0], 1),
    }
    return out


def merge(doc: dict[str, Any], runs: list[ConsoleRun]) -> None:
    """These backends' console figures into a results document, keeping the others'."""
    ran = {r.backend for r in runs}
    doc["console"] = [row for row in doc.get("console", []) if row["backend"] not in ran] + [
        asdict(row) for r in runs for row in r.rows
    ]
    kept = {k: v for k, v in doc.get("console_runs", {}).items() if k not in ran}
    doc["console_runs"] = kept | {r.backend: r.facts for r in runs}


def _coupon(api: httpx.Client, tenant: str, code: str, name: str) -> str:
    body = {"code": code, "name": name, "coupon_type": "AMOUNT", "value_amount": "5.00"}
    reply = api.post(f"/coupons/{tenant}", json=body)
    reply.raise_for_status()
    return str(reply.json()["id"])


def _groups(api: httpx.Client, tenant: str) -> str:
    """GROUPS groups, the later ones each under an earlier one; MEMBERS in the first."""
    ids: list[str] = []
    for n in range(GROUPS):
        body: dict[str, Any] = {"name": f"Chapter {n:02d}"}
        if ids:
            body["parent_id"] = ids[(n - 1) // 3]
        reply = api.post(f"/groups/{tenant}", json=body)
        reply.raise_for_status()
        ids.append(str(reply.json()["id"]))
    for n in range(MEMBERS):
        api.put(f"/groups/{tenant}/{ids[0]}/members/user-{n:04d}", json={}).raise_for_status()
    return ids[0]


def _sign_in(browser: httpx.Client, key: str) -> None:
    form = browser.get("/console/sign-in")
    form.raise_for_status()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, "no CSRF token in the sign-in form"
    reply = browser.post(
        "/console/sign-in",
        data={"api_key": key, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    if reply.status_code != 303:
        raise RuntimeError(f"console sign-in: {reply.status_code} {reply.text[:300]}")


def _next_page(browser: httpx.Client, path: str) -> str:
    """The first page's link to the next one (the HTML escapes its `&`)."""
    found = re.search(r'href="(/console/coupons\?before=[^"]+)"', browser.get(path).text)
    assert found, "no link to a next page of coupons"
    return found.group(1).replace("&amp;", "&")


def _measure(browser: httpx.Client, backend: str, name: str, path: str) -> PageRow:
    for _ in range(WARMUP):
        browser.get(path).raise_for_status()
    took: list[float] = []
    for _ in range(REQUESTS):
        begun = time.perf_counter()
        reply = browser.get(path)
        took.append((time.perf_counter() - begun) * 1000)
        if reply.status_code != 200 or "<h1" not in reply.text:
            raise RuntimeError(f"{path}: {reply.status_code} {reply.text[:300]}")
    took.sort()
    p99 = took[math.ceil(0.99 * len(took)) - 1]
    row = PageRow(backend, name, path, statistics.median(took), p99, took[-1], p99 < BOUND_MS)
    mark = "met" if row.met else "MISSED"
    print(
        f"  {backend:8} {name}: p50 {row.p50_ms:.1f} ms, p99 {row.p99_ms:.1f} ms "
        f"(bound p99 < {BOUND_MS:g} ms: {mark})",
        flush=True,
    )
    return row
