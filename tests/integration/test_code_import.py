"""Importing campaign codes from CSV (SPEC 10): the file streamed into the database, the job
that checks it whole, all of its codes or none, every refused line named as an editor numbers
it; run by a server process's runner, or taken up again when its process died."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.testclient import TestClient

from couponry.config import Settings
from couponry.domain.imports import CodeLineCounter, ImportedCode, ProblemList
from couponry.domain.jobs import IMPORT_CODES, QUEUED, Job
from couponry.domain.paging import new_id
from couponry.services import import_job
from couponry.services import imports as svc
from couponry.store.db import Database
from couponry.store.import_repo import ImportRepository
from couponry.store.job_repo import JobRepository
from couponry.store.tables import coupon_codes, import_lines, job_payloads, jobs
from tests.conftest import Api, TenantKeys, percent_coupon

LEASE = timedelta(seconds=30)


def _now() -> datetime:
    return datetime.now(UTC)


def _coupon(api: Api, tenant: TenantKeys, code: str = "IMPORT-1") -> dict[str, Any]:
    reply = api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(code=code))
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _post(api: Api, tenant: TenantKeys, coupon_id: str, body: bytes | str, **headers: str) -> Any:
    data = body.encode() if isinstance(body, str) else body
    return api.post(
        f"/coupons/{tenant.tenant_id}/{coupon_id}/codes/import",
        content=data,
        headers={"Content-Type": "text/csv", **headers},
    )


def _finished(api: Api, location: str, seconds: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = api.get(location).json()
        if job["status"] in ("succeeded", "failed"):
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(f"the job did not finish: {api.get(location).text}")


def _import(api: Api, tenant: TenantKeys, coupon_id: str, body: bytes | str) -> dict[str, Any]:
    reply = _post(api, tenant, coupon_id, body)
    assert reply.status_code == 202, reply.text
    return _finished(api, reply.headers["Location"])


def _codes(db: Database, coupon_id: str) -> list[tuple[str, int | None]]:
    with db.reader() as conn:
        rows = conn.execute(
            select(coupon_codes.c.code, coupon_codes.c.max_uses)
            .where(coupon_codes.c.coupon_id == coupon_id, coupon_codes.c.own.is_(False))
            .order_by(coupon_codes.c.seq)
        )
        return [(row.code, row.max_uses) for row in rows]


def _leftovers(db: Database, job_id: str) -> tuple[int, int]:
    """The job's file parts and staged lines still stored."""
    with db.reader() as conn:
        parts = conn.execute(
            select(func.count()).where(job_payloads.c.job_id == job_id)
        ).scalar_one()
        lines = conn.execute(
            select(func.count()).where(import_lines.c.job_id == job_id)
        ).scalar_one()
    return int(parts), int(lines)


def _dropped(db: Database, job_id: str, seconds: float = 60) -> bool:
    """Whether the job's file and staged lines are gone: a runner drops them in a transaction
    of its own, just after the one that ends the job."""
    deadline = time.monotonic() + seconds
    while _leftovers(db, job_id) != (0, 0):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _refused(job: dict[str, Any]) -> list[tuple[int, str | None, str]]:
    assert job["status"] == "failed", job
    assert job["error"]["reason"] == "invalid_lines", job["error"]
    return [(e["line"], e["code"], e["reason"]) for e in job["error"]["lines"]]


def _held(db: Database, tenant_id: str, coupon_id: str, data: bytes, owner: str) -> Job:
    """An import job whose file is stored, taken by `owner` at once (so no runner takes it):
    as a server process would hold it."""
    counter = CodeLineCounter()
    counter.feed(data)
    job = Job(
        seq=0,
        id=new_id(),
        tenant_id=tenant_id,
        kind=IMPORT_CODES,
        coupon_id=coupon_id,
        status=QUEUED,
        total=counter.end(),
        done=0,
        params={"parts": 1 if data else 0, "bytes": len(data)},
        error=None,
        created_at=_now(),
        started_at=None,
        finished_at=None,
    )
    with db.transaction() as conn:
        if data:
            ImportRepository(conn).add_part(job.id, 0, data, now=_now())
        JobRepository(conn).create(job)
        taken = JobRepository(conn).take_this(job.id, owner=owner, now=_now(), lease=LEASE)
    assert taken is not None
    return taken


def _job_row(db: Database, job_id: str) -> Any:
    with db.reader() as conn:
        return conn.execute(select(jobs).where(jobs.c.id == job_id)).one()


# --- what an import writes ------------------------------------------------------------------


def test_an_import_writes_every_code_with_its_max_uses(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _coupon(api, tenant)
    body = "code,max_uses\nSPRING-A1,3\nspring-b2,\n\nSpring_C3,1\n"
    reply = _post(api, tenant, coupon["id"], body)
    assert reply.status_code == 202, reply.text
    started = reply.json()
    assert started["kind"] == "import_codes" and started["status"] == "queued"
    assert started["total"] == 3 and started["done"] == 0 and started["coupon_id"] == coupon["id"]
    assert reply.headers["Location"] == f"/jobs/{tenant.tenant_id}/{started['id']}"
    job = _finished(api, reply.headers["Location"])
    assert job["status"] == "succeeded" and job["done"] == 3 and job["error"] is None
    assert _codes(db, coupon["id"]) == [("SPRING-A1", 3), ("spring-b2", None), ("Spring_C3", 1)]
    assert _dropped(db, started["id"])
    listed = api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes").json()
    assert [c["code"] for c in listed] == ["SPRING-A1", "spring-b2", "Spring_C3"]
    # Without a max_uses column, each code may be used once (the default of POST .../codes).
    other = _coupon(api, tenant, "IMPORT-2")
    assert _import(api, tenant, other["id"], "code\nONCE-1\nONCE-2")["status"] == "succeeded"
    assert _codes(db, other["id"]) == [("ONCE-1", 1), ("ONCE-2", 1)]


def test_crlf_lines_and_a_bom_read_as_an_editor_shows_them(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _coupon(api, tenant)
    body = "\ufeffcode,max_uses\r\nWIN-1,2\r\n\r\nWIN-2,\r\n"
    assert _import(api, tenant, coupon["id"], body)["status"] == "succeeded"
    assert _codes(db, coupon["id"]) == [("WIN-1", 2), ("WIN-2", None)]
    bad = "\ufeffcode\r\nWIN-3\r\n\r\nWIN 4\r\n"
    assert _refused(_import(api, tenant, coupon["id"], bad)) == [
        (4, "WIN 4", "code must be 3-64 characters of letters, digits, '_' or '-'")
    ]


def test_an_export_imports_into_another_tenant_as_it_was(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys, db: Database
) -> None:
    source = _coupon(api, tenant, "EXPORTED")
    path = f"/coupons/{tenant.tenant_id}/{source['id']}/codes"
    assert api.post(path, json={"codes": ["-LEADING"], "max_uses": 5}).status_code == 201
    assert api.post(path, json={"codes": ["plain_2"], "max_uses": None}).status_code == 201
    exported = api.get(f"/coupons/{tenant.tenant_id}/{source['id']}/codes.csv")
    assert '"\'-LEADING"' in exported.text  # protected against spreadsheet formulas
    theirs = Api(api.client, other_tenant.admin)
    target = _coupon(theirs, other_tenant, "IMPORTED")
    job = _import(theirs, other_tenant, target["id"], exported.content)
    assert job["status"] == "succeeded", job
    assert _codes(db, target["id"]) == [("-LEADING", 5), ("plain_2", None)]


# --- all or nothing -------------------------------------------------------------------------


def test_a_header_without_a_code_column_fails_on_line_1(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _coupon(api, tenant)
    job = _import(api, tenant, coupon["id"], "max_uses,codes\n3,ABC-1\n")
    [(line, code, reason)] = _refused(job)
    assert (line, code) == (1, None)
    assert "unknown column(s) 'codes'" in reason and "code (required)" in reason
    assert _refused(_import(api, tenant, coupon["id"], "max_uses\n3\n"))[0][:2] == (1, None)
    assert _codes(db, coupon["id"]) == [] and _dropped(db, job["id"])


def test_an_empty_file_fails_on_line_1(api: Api, tenant: TenantKeys, db: Database) -> None:
    coupon = _coupon(api, tenant)
    [(line, code, reason)] = _refused(_import(api, tenant, coupon["id"], b""))
    assert (line, code) == (1, None) and "the file is empty" in reason
    [(line, _, reason)] = _refused(_import(api, tenant, coupon["id"], "code\r\n\r\n"))
    assert line == 1 and "no code lines" in reason
    assert _codes(db, coupon["id"]) == []


def test_a_bad_line_is_named_counting_the_header_and_nothing_is_written(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _coupon(api, tenant)
    body = "code,max_uses\nGOOD-1,1\nGOOD-2,2\nno way,1\nGOOD-3,0\nGOOD-4,1\n"
    job = _import(api, tenant, coupon["id"], body)
    assert job["total"] == 5 and job["done"] == 5
    assert _refused(job) == [
        (4, "no way", "code must be 3-64 characters of letters, digits, '_' or '-'"),
        (
            5,
            "GOOD-3",
            "max_uses must be a whole number from 1 to 2147483647, or empty for unlimited "
            "(got '0')",
        ),
    ]
    assert job["error"]["lines_refused"] == 2
    assert "2 line(s) refused; nothing was imported" in job["error"]["message"]
    assert _codes(db, coupon["id"]) == [] and _dropped(db, job["id"])


def test_a_code_repeated_in_the_file_names_the_later_line(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _coupon(api, tenant)
    job = _import(api, tenant, coupon["id"], "code\nDUP-1\nOTHER-1\ndup-1\nOTHER-2\nDup-1\n")
    assert _refused(job) == [
        (4, "dup-1", "repeats the code of line 2 (ignoring case)"),
        (6, "Dup-1", "repeats the code of line 2 (ignoring case)"),
    ]
    assert _codes(db, coupon["id"]) == []


def test_a_code_the_tenant_has_fails_the_import(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys, db: Database
) -> None:
    owner = _coupon(api, tenant, "TAKEN-OWN")
    campaign = _coupon(api, tenant, "CAMPAIGN-OWNER")
    added = api.post(
        f"/coupons/{tenant.tenant_id}/{campaign['id']}/codes", json={"codes": ["Taken-Campaign"]}
    )
    assert added.status_code == 201
    Api(api.client, other_tenant.admin).post(  # another tenant's codes are no matter
        f"/coupons/{other_tenant.tenant_id}", json=percent_coupon(code="FRESH-1")
    )
    coupon = _coupon(api, tenant)
    job = _import(api, tenant, coupon["id"], "code\nFRESH-1\ntaken-own\nTAKEN-CAMPAIGN\n")
    assert _refused(job) == [
        (3, "taken-own", f"is already a code of this tenant (coupon {owner['id']}'s own code)"),
        (
            4,
            "TAKEN-CAMPAIGN",
            f"is already a code of this tenant (a campaign code of coupon {campaign['id']})",
        ),
    ]
    assert _codes(db, coupon["id"]) == []
    assert _import(api, tenant, coupon["id"], "code\nFRESH-1\n")["status"] == "succeeded"


def test_more_than_100_bad_lines_name_the_first_100_and_count_them_all(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _coupon(api, tenant)
    lines = ["code", "FIRST-1", "first-1"]  # line 3 repeats line 2
    lines += ["no" if n % 2 else f"GOOD-{n}" for n in range(300)]  # 150 bad: lines 5, 7, ...
    lines += ["GOOD-0"] * 20  # repeats of line 4
    job = _import(api, tenant, coupon["id"], "\n".join(lines))
    refused = _refused(job)
    assert len(refused) == 100
    assert refused[0] == (3, "first-1", "repeats the code of line 2 (ignoring case)")
    assert [line for line, _, _ in refused[1:]] == list(range(5, 203, 2))
    assert job["error"]["lines_refused"] == 1 + 150 + 20
    assert "the first 100 are listed; 71 more" in job["error"]["message"]
    assert _codes(db, coupon["id"]) == []


# --- the request ----------------------------------------------------------------------------


def test_the_body_must_be_csv_in_utf8(api: Api, tenant: TenantKeys) -> None:
    coupon = _coupon(api, tenant)
    for content_type, words in (
        ("application/json", "Send the file as text/csv (got application/json)."),
        ("text/plain", "Send the file as text/csv (got text/plain)."),
        ("text/csv; charset=latin-1", "Send the file in UTF-8 (got charset=latin-1)."),
    ):
        reply = _post(api, tenant, coupon["id"], "code\nABC\n", **{"Content-Type": content_type})
        assert reply.status_code == 415, reply.text
        error = reply.json()["error"]
        assert error["code"] == "unsupported_media_type" and error["message"] == words
    reply = _post(
        api, tenant, coupon["id"], "code\nUTF-1\n", **{"Content-Type": "text/CSV; charset=UTF-8"}
    )
    assert reply.status_code == 202
    _finished(api, reply.headers["Location"])
    assert [j["kind"] for j in api.get(f"/jobs/{tenant.tenant_id}").json()] == ["import_codes"]


def test_only_the_tenant_s_admin_may_import(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    coupon = _coupon(api, tenant)
    theirs = Api(api.client, other_tenant.admin)
    their_coupon = _coupon(theirs, other_tenant, "THEIRS-1")
    body = "code\nSNEAKY-1\n"
    for key, status, code in (
        (tenant.read, 403, "insufficient_role"),
        (tenant.checkout, 403, "insufficient_role"),
        (other_tenant.admin, 403, "wrong_tenant"),
        ("nope.nope", 401, "invalid_credentials"),
    ):
        reply = _post(api.as_key(key), tenant, coupon["id"], body)
        assert reply.status_code == status, reply.text
        assert reply.json()["error"]["code"] == code
    for coupon_id in (their_coupon["id"], "0000-0000-0000-0000", "not an id"):
        reply = _post(api, tenant, coupon_id, body)
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "coupon_not_found"
    assert api.get(f"/jobs/{tenant.tenant_id}").json() == []
    assert theirs.get(f"/jobs/{other_tenant.tenant_id}").json() == []


def _payload_rows(db: Database) -> int:
    with db.reader() as conn:
        return int(conn.execute(select(func.count()).select_from(job_payloads)).scalar_one())


def test_a_file_over_the_limit_is_413_and_leaves_nothing(
    db: Database, database_url: str, tenant: TenantKeys, api: Api
) -> None:
    from couponry.app import create_app

    coupon = _coupon(api, tenant)
    app = create_app(Settings(database_url=database_url, import_max_bytes=1000), db)
    before = _payload_rows(db)
    path = f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes/import"
    big = ("code\n" + "".join(f"BIG-{n:06d}\n" for n in range(200))).encode()  # 2,205 bytes
    with TestClient(app) as small:
        # Declared too large: refused before the key is looked at, as any oversized body.
        declared = small.post(path, content=big, headers={"Content-Type": "text/csv"})
        assert declared.status_code == 413, declared.text
        error = declared.json()["error"]
        assert error["code"] == "payload_too_large"
        assert error["message"] == "The file is larger than 1000 bytes."

        def chunks() -> Any:  # no Content-Length: the limit is found as the body streams
            for start in range(0, len(big), 100):
                yield big[start : start + 100]

        headers = {"Content-Type": "text/csv", "Authorization": tenant.admin}
        streamed = small.post(path, content=chunks(), headers=headers)
        assert streamed.status_code == 413, streamed.text
        exactly = small.post(path, content=big[:1000].rsplit(b"\n", 1)[0], headers=headers)
        assert exactly.status_code == 202, exactly.text
    assert _finished(api, exactly.headers["Location"])["status"] == "succeeded"
    assert _payload_rows(db) == before  # the refused files were never kept; the job's, dropped
    assert len(api.get(f"/jobs/{tenant.tenant_id}").json()) == 1
    assert len(_codes(db, coupon["id"])) == 90


def test_a_file_over_1_mib_is_taken(api: Api, tenant: TenantKeys, db: Database) -> None:
    """The one exception to the 1 MiB limit of every other body; it is stored in parts."""
    coupon = _coupon(api, tenant)
    body = "code\n" + "".join(f"LONG-CODE-NUMBER-{n:09d}\n" for n in range(60_000))
    assert len(body) > 1024 * 1024 + 100_000
    job = _import(api, tenant, coupon["id"], body)
    assert job["status"] == "succeeded" and job["done"] == 60_000
    assert len(_codes(db, coupon["id"])) == 60_000


def test_an_upload_cut_short_leaves_nothing(tenant: TenantKeys, db: Database, api: Api) -> None:
    coupon = _coupon(api, tenant)
    before = _payload_rows(db)

    def pieces() -> Any:
        yield b"code\n" + b"CUT-1234567\n" * 200_000  # two parts stored
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        svc.start_import(
            db, tenant_id=tenant.tenant_id, coupon_id=coupon["id"], pieces=pieces(), clock=_now
        )
    assert _payload_rows(db) == before


def test_leftovers_no_job_will_read_are_swept(tenant: TenantKeys, db: Database, api: Api) -> None:
    """A process that dies mid-upload leaves parts of no job; one that dies between a job's
    end and its clean-up leaves the job's file and lines: the runners forget them, and only
    them."""
    coupon = _coupon(api, tenant)
    orphan = new_id()
    with db.transaction() as conn:
        ImportRepository(conn).add_part(orphan, 0, b"code\nORPHAN-1\n", now=_now())
    held = _held(db, tenant.tenant_id, coupon["id"], b"code\nKEPT-1\n", owner="holder")
    ended = _held(db, tenant.tenant_id, coupon["id"], b"code\nENDED-1\n", owner="holder")
    staged = [ImportedCode(2, "ENDED-1", "ended-1", 1)]
    with db.transaction() as conn:
        ImportRepository(conn).add_lines(ended.id, staged)
        assert JobRepository(conn).finish(ended, owner="holder", now=_now(), error={"x": 1})
    assert _leftovers(db, ended.id) == (1, 1)
    svc.sweep_leftovers(db, now=_now())
    assert _leftovers(db, ended.id) == (0, 0)
    assert _leftovers(db, orphan) == (1, 0)  # its upload may go on: too recent to say
    svc.sweep_leftovers(db, now=_now() + timedelta(hours=2))
    assert _leftovers(db, orphan) == (0, 0)
    assert _leftovers(db, held.id) == (1, 0)  # a job's file stays until the job ends
    import_job.run_import(db, held, owner="holder", clock=_now, lease=LEASE)
    assert _codes(db, coupon["id"]) == [("KEPT-1", 1)] and _leftovers(db, held.id) == (0, 0)


# --- races and dead processes ---------------------------------------------------------------


def test_a_coupon_deleted_before_the_job_runs_fails_it(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _coupon(api, tenant)
    job = _held(db, tenant.tenant_id, coupon["id"], b"code\nGONE-A\nGONE-B\n", "holder")
    assert api.delete(f"/coupons/{tenant.tenant_id}/{coupon['id']}").status_code == 200
    import_job.run_import(db, job, owner="holder", clock=_now, lease=LEASE)
    view = api.get(f"/jobs/{tenant.tenant_id}/{job.id}").json()
    assert view["status"] == "failed" and view["error"]["reason"] == "coupon_deleted", view
    assert "deleted" in view["error"]["message"]
    assert _codes(db, coupon["id"]) == [] and _leftovers(db, job.id) == (0, 0)


def test_a_coupon_deleted_between_the_check_and_the_copy_fails_it(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _coupon(api, tenant)
    job = _held(db, tenant.tenant_id, coupon["id"], b"code\nLATE-A\nLATE-B\n", "holder")
    checked = import_job.check_import(db, job, owner="holder", clock=_now, lease=LEASE)
    assert checked is not None and checked.code_lines == 2
    assert api.delete(f"/coupons/{tenant.tenant_id}/{coupon['id']}").status_code == 200
    import_job.copy_import(db, job, checked, owner="holder", clock=_now, lease=LEASE)
    view = api.get(f"/jobs/{tenant.tenant_id}/{job.id}").json()
    assert view["status"] == "failed" and view["error"]["reason"] == "coupon_deleted"
    assert _codes(db, coupon["id"]) == [] and _leftovers(db, job.id) == (0, 0)


def test_a_code_taken_between_the_check_and_the_copy_fails_the_import_naming_it(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    """The tenant's unique index is the arbiter: the copy finds the code taken, says which,
    and writes nothing."""
    coupon = _coupon(api, tenant)
    other = _coupon(api, tenant, "RACER")
    data = b"code\nRACE-A\nRACE-B\nRACE-C\n"
    job = _held(db, tenant.tenant_id, coupon["id"], data, "holder")
    checked = import_job.check_import(db, job, owner="holder", clock=_now, lease=LEASE)
    assert checked is not None and checked.refused.count == 0
    taken = api.post(f"/coupons/{tenant.tenant_id}/{other['id']}/codes", json={"codes": ["race-b"]})
    assert taken.status_code == 201
    import_job.copy_import(db, job, checked, owner="holder", clock=_now, lease=LEASE)
    view = api.get(f"/jobs/{tenant.tenant_id}/{job.id}").json()
    assert _refused(view) == [
        (3, "RACE-B", f"is already a code of this tenant (a campaign code of coupon {other['id']})")
    ]
    assert _codes(db, coupon["id"]) == [] and _codes(db, other["id"]) == [("race-b", 1)]
    assert _leftovers(db, job.id) == (0, 0)


def test_an_import_whose_process_died_is_finished_by_another_exactly_once(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    """A process took the job, staged part of the file, and died: its lease runs out, a
    runner takes the job up, checks the file afresh, and writes every code once. The dead
    process, waking up, writes nothing."""
    coupon = _coupon(api, tenant)
    count = 25_000
    data = ("code\n" + "".join(f"DIED-{n:06d}\n" for n in range(count))).encode()
    job = _held(db, tenant.tenant_id, coupon["id"], data, "dead-process")
    staged = [ImportedCode(n + 2, f"DIED-{n:06d}", f"died-{n:06d}", 1) for n in range(10_000)]
    with db.transaction() as conn:  # its one batch, then its lease has run out
        repo = JobRepository(conn)
        expired = timedelta(seconds=-1)
        assert repo.progress(job, owner="dead-process", added=10_000, now=_now(), lease=expired)
        ImportRepository(conn).add_lines(job.id, staged)
    finished = _finished(api, f"/jobs/{tenant.tenant_id}/{job.id}")
    assert finished["status"] == "succeeded" and finished["done"] == count, finished
    codes = _codes(db, coupon["id"])
    assert len(codes) == count and len({c.lower() for c, _ in codes}) == count
    assert _dropped(db, job.id)
    # The dead process wakes up mid-check, or at its copy: neither writes anything.
    assert import_job.check_import(db, job, owner="dead-process", clock=_now, lease=LEASE) is None
    stale = import_job.Checked(ProblemList([]), 10_000)
    import_job.copy_import(db, job, stale, owner="dead-process", clock=_now, lease=LEASE)
    import_job.run_import(db, job, owner="dead-process", clock=_now, lease=LEASE)
    assert len(_codes(db, coupon["id"])) == count
    assert _job_row(db, job.id).status == "succeeded"


NASTY = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["\x00", "\ud800", "\ufeff", '"', '""', "'", "'-", ",", "\r", "\t", "é", "x" * 70]
    ),
)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    header=st.sampled_from(["code", "code,max_uses", "max_uses,code,created_at", "", "CODE"]),
    lines=st.lists(st.lists(NASTY, min_size=1, max_size=3).map(",".join), max_size=8),
)
def test_hostile_files_end_the_job_never_break_it(
    api: Api, tenant: TenantKeys, db: Database, header: str, lines: list[str]
) -> None:
    """Whatever a file holds, its job ends succeeded or failed with reasons, never with a
    fault of ours, and leaves nothing staged."""
    coupon = _coupon(api, tenant, f"HOSTILE-{new_id()[:4]}")
    data = "\n".join([header, *lines]).encode("utf-8", "surrogatepass")
    job = _held(db, tenant.tenant_id, coupon["id"], data, "holder")
    import_job.run_import(db, job, owner="holder", clock=_now, lease=LEASE)
    row = _job_row(db, job.id)
    assert row.status in ("succeeded", "failed")
    if row.status == "failed":
        error = json.loads(row.error)
        assert error["reason"] == "invalid_lines", error
        assert 1 <= len(error["lines"]) <= 100 and error["lines_refused"] >= len(error["lines"])
    assert _leftovers(db, job.id) == (0, 0)


def test_a_fault_of_ours_ends_the_job_instead_of_retrying_it_forever(
    api: Api, tenant: TenantKeys, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug met while the file is read (injected here) fails the job without internals, and
    reaches the runner, which logs it; no process takes the job up again and again."""

    class Broken(import_job.FileReader):
        def feed(self, piece: bytes) -> Any:
            raise RuntimeError("a bug of ours, with SELECT secrets")

    coupon = _coupon(api, tenant)
    job = _held(db, tenant.tenant_id, coupon["id"], b"code\nFAULT-1\n", "holder")
    monkeypatch.setattr(import_job, "FileReader", Broken)
    with pytest.raises(RuntimeError):
        import_job.run_import(db, job, owner="holder", clock=_now, lease=LEASE)
    view = api.get(f"/jobs/{tenant.tenant_id}/{job.id}").json()
    assert view["status"] == "failed" and view["error"]["reason"] == "internal_error"
    assert "SELECT" not in json.dumps(view["error"])
    assert _codes(db, coupon["id"]) == [] and _leftovers(db, job.id) == (0, 0)


# --- at a realistic size --------------------------------------------------------------------

LARGE = 300_000


@pytest.mark.slow
def test_one_bad_line_near_the_end_of_a_large_file_leaves_nothing_behind(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    """All or nothing at a realistic size: line 290,000 of 300,001 is bad, and no code of
    the file is written; the same file with that line mended imports every code."""
    coupon = _coupon(api, tenant)
    lines = [f"BULK-{n:07d}-X,{1 + n % 3}" for n in range(LARGE)]
    bad_line = 290_000  # as an editor numbers it: the header is line 1
    good = lines[bad_line - 2]
    lines[bad_line - 2] = "BULK-!!,1"
    body = "code,max_uses\n" + "\n".join(lines) + "\n"
    job = _import(api, tenant, coupon["id"], body)
    assert job["total"] == LARGE and job["done"] == LARGE
    assert _refused(job) == [
        (bad_line, "BULK-!!", "code must be 3-64 characters of letters, digits, '_' or '-'")
    ]
    assert _codes(db, coupon["id"]) == [] and _dropped(db, job["id"])
    lines[bad_line - 2] = good
    job = _import(api, tenant, coupon["id"], "code,max_uses\n" + "\n".join(lines) + "\n")
    assert job["status"] == "succeeded" and job["done"] == LARGE, job
    with db.reader() as conn:
        count, distinct, uses = conn.execute(
            select(
                func.count(),
                func.count(func.distinct(coupon_codes.c.code_normalized)),
                func.sum(coupon_codes.c.max_uses),
            ).where(coupon_codes.c.coupon_id == coupon["id"], coupon_codes.c.own.is_(False))
        ).one()
    assert (count, distinct, uses) == (LARGE, LARGE, LARGE * 2)
    assert _dropped(db, job["id"])
