"""Coupon use cases: create, read, scan, replace, patch, delete, batch (SPEC 4.1, 4.4)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from couponry.domain.coupons import (
    READ_ONLY_FIELDS,
    Coupon,
    CouponFields,
    check_change_allowed,
    coupon_view,
    generate_code,
    normalise_code,
    parse_coupon_input,
    patched_coupon_problem,
    remaining_after_change,
)
from couponry.domain.paging import Page, new_id
from couponry.domain.patching import apply_patch, touched_paths
from couponry.domain.tenants import Tenant, split_key
from couponry.errors import (
    BatchTooLarge,
    CodeTaken,
    CouponLocked,
    CouponNotFound,
    CouponryError,
    FieldProblem,
    IdMismatch,
    InvalidCredentials,
    InvalidInput,
    InvalidPatch,
    UnknownField,
    UsageLimitBelowUsed,
    VersionConflict,
)
from couponry.services.references import resolve_coupon_references
from couponry.services.tenants import Principal, principal_of
from couponry.store.async_db import AsyncDatabase
from couponry.store.coupon_repo import CouponRepository, code_taken
from couponry.store.db import Database
from couponry.store.hot_reads import key_with_coupon_view
from couponry.store.redemption_repo import RedemptionRepository

log = logging.getLogger("couponry.services.coupons")
MAX_BATCH = 100


def create_coupon(
    db: Database, *, tenant: Tenant, actor_id: str, doc: Mapping[str, Any], now: datetime
) -> Coupon:
    """Create a coupon from a client document (REST JSON or EduBrite parameters)."""
    draft = parse_coupon_input(doc, creating=True)
    with db.transaction() as conn:
        return _insert(conn, tenant, actor_id, draft, now)


def _insert(
    conn: Connection, tenant: Tenant, actor_id: str, draft: CouponFields, now: datetime
) -> Coupon:
    repo = CouponRepository(conn, tenant.id)
    data = resolve_coupon_references(conn, tenant, draft)
    if data.code is None:
        code = generate_code()
        while repo.code_in_use(code):
            code = generate_code()
        data = replace(data, code=code)
    coupon = _new_coupon(tenant, actor_id, data, now)
    repo.insert(coupon)
    return coupon


def _new_coupon(tenant: Tenant, actor_id: str, data: CouponFields, now: datetime) -> Coupon:
    if data.name is None:
        data = replace(data, name=data.code)
    return Coupon(
        id=new_id(),
        tenant_id=tenant.id,
        data=data,
        sys_version=1,
        sys_created_at=now,
        sys_last_modified_at=now,
        sys_created_by_id=actor_id,
        sys_last_modified_by_id=actor_id,
        remaining_amount=data.value_amount if data.coupon_type == "TOTAL_AMOUNT" else None,
    )


def get_coupon(db: Database, *, tenant_id: str, coupon_id: str, consistent: bool = True) -> Coupon:
    """One live coupon of this tenant; CouponNotFound otherwise."""
    with db.reader(consistent=consistent) as conn:
        coupon = CouponRepository(conn, tenant_id).get(coupon_id)
    if coupon is None:
        raise CouponNotFound()
    return coupon


async def read_coupon_view(
    adb: AsyncDatabase, *, key: str, tenant_id: str, coupon_id: str
) -> tuple[Principal, dict[str, Any] | None]:
    """Who is calling, and the live coupon's view (None if there is none), in one round trip.

    InvalidCredentials as `authenticate` decides; the caller checks the principal's access
    before it looks at the coupon.
    """
    parts = split_key(key)
    if parts is None:
        raise InvalidCredentials("The API key is malformed.")
    found = await key_with_coupon_view(
        adb, key_id=parts[0], tenant_id=tenant_id, coupon_id=coupon_id
    )
    if found is None:
        raise InvalidCredentials("Unknown API key.")
    record, tenant, view = found
    return principal_of(record, tenant, secret=parts[1]), view


def get_coupon_by_code(db: Database, *, tenant_id: str, code: str) -> Coupon:
    with db.reader() as conn:
        coupon = CouponRepository(conn, tenant_id).get_by_code(code)
    if coupon is None:
        raise CouponNotFound()
    return coupon


def scan_coupons(
    db: Database,
    *,
    tenant_id: str,
    after_seq: int,
    limit: int,
    code: str | None = None,
    is_active: bool | None = None,
    consistent: bool = True,
) -> Page[Coupon]:
    """Oldest first, by keyset: fetch one more than asked to know whether more remain."""
    with db.reader(consistent=consistent) as conn:
        rows = CouponRepository(conn, tenant_id).scan(
            after_seq=after_seq, limit=limit + 1, code=code, is_active=is_active
        )
    return Page.from_rows(rows, limit)


def list_coupons_by_position(
    db: Database, *, tenant_id: str, page: int, page_size: int, is_active: bool | None
) -> tuple[list[Coupon], int]:
    """One page by position, oldest first, and how many coupons match in all."""
    with db.reader() as conn:
        repo = CouponRepository(conn, tenant_id)
        total = repo.count_live(is_active=is_active)
        items = repo.page_by_position(offset=page * page_size, limit=page_size, is_active=is_active)
    return items, total


def replace_coupon(
    db: Database,
    *,
    tenant: Tenant,
    actor_id: str,
    coupon_id: str,
    doc: Mapping[str, Any],
    if_match: int | None,
    now: datetime,
) -> Coupon:
    """PUT: every writable field from `doc` (left out: default; no `code`: keep it)."""
    if doc.get("id") is not None and doc.get("id") != coupon_id:
        message = "must equal the id in the path"
        raise IdMismatch(f"id {message}.", [FieldProblem("id", message)])
    body_version = doc.get("sys_version")
    if body_version is not None and (
        isinstance(body_version, bool) or not isinstance(body_version, int)
    ):
        raise InvalidInput(
            "sys_version must be a whole number.",
            [FieldProblem("sys_version", "must be a whole number")],
        )
    draft = parse_coupon_input(doc, creating=False)
    with db.transaction() as conn:
        current = _current(conn, tenant.id, coupon_id, if_match, body_version)
        return _write(conn, tenant, actor_id, current, draft, now)


def patch_coupon(
    db: Database,
    *,
    tenant: Tenant,
    actor_id: str,
    coupon_id: str,
    operations: Any,
    if_match: int | None,
    now: datetime,
) -> Coupon:
    """RFC 6902 on the coupon's JSON view, then checked as a whole; all or nothing."""
    _refuse_read_only_targets(operations)
    with db.transaction() as conn:
        current = _current(conn, tenant.id, coupon_id, if_match, None)
        patched = apply_patch(coupon_view(current), operations, check=patched_coupon_problem)
        draft = parse_coupon_input(patched, creating=False)
        return _write(conn, tenant, actor_id, current, draft, now)


def update_coupon_fields(
    db: Database,
    *,
    tenant: Tenant,
    actor_id: str,
    coupon_id: str,
    changes: Mapping[str, Any],
    now: datetime,
) -> Coupon:
    """Change only the given fields (the EduBrite updateCoupon semantics)."""
    with db.transaction() as conn:
        current = _current(conn, tenant.id, coupon_id, None, None)
        doc = coupon_view(current) | dict(changes)
        draft = parse_coupon_input(doc, creating=False)
        return _write(conn, tenant, actor_id, current, draft, now)


def delete_coupon(
    db: Database, *, tenant_id: str, actor_id: str, coupon_id: str, now: datetime
) -> None:
    """Soft delete: the coupon disappears, its code is free, its redemptions stay."""
    with db.transaction() as conn:
        repo = CouponRepository(conn, tenant_id)
        # Not locked here: soft_delete takes the codes' rows before the coupon's, the order
        # a redemption takes them in. A refusal below rolls the whole delete back.
        if not repo.soft_delete(coupon_id, by=actor_id, now=now):
            current = repo.get(coupon_id)
            if current is not None and current.data.sys_locked:
                raise CouponLocked()
            raise CouponNotFound()


def _refuse_read_only_targets(operations: Any) -> None:
    if not isinstance(operations, list):
        return  # apply_patch names the problem
    problems = []
    for index, op, member in touched_paths(operations):
        if member in READ_ONLY_FIELDS or member == "":
            what = member or "the whole document"
            problems.append(FieldProblem(f"patch[{index}]", f"{op} may not change {what}"))
    if problems:
        raise InvalidPatch("The patch writes read-only fields.", problems)


def _current(
    conn: Connection,
    tenant_id: str,
    coupon_id: str,
    if_match: int | None,
    body_version: int | None,
) -> Coupon:
    current = CouponRepository(conn, tenant_id).get(coupon_id, for_update=True)
    if current is None:
        raise CouponNotFound()
    for expected in (if_match, body_version):
        if expected is not None and expected != current.sys_version:
            raise VersionConflict(
                f"The coupon is at version {current.sys_version}, not {expected}."
            )
    return current


def _write(
    conn: Connection,
    tenant: Tenant,
    actor_id: str,
    current: Coupon,
    draft: CouponFields,
    now: datetime,
) -> Coupon:
    data = resolve_coupon_references(conn, tenant, draft)
    if data.code is None:
        data = replace(data, code=current.data.code)
    if data.name is None:
        data = replace(data, name=data.code)
    if data == current.data:
        return current  # nothing changes, so the version stays (and a lock has nothing to stop)
    check_change_allowed(current, data)
    if data.usage_limit is not None and data.usage_limit < current.times_used:
        raise UsageLimitBelowUsed(
            f"usage_limit {data.usage_limit} is below the {current.times_used} uses so far.",
            [FieldProblem("usage_limit", f"must be at least {current.times_used}")],
        )
    per_user = data.max_uses_per_user
    if per_user is not None and per_user != current.data.max_uses_per_user:
        # Read under the coupon's lock: a redemption that counted a use has committed.
        most = RedemptionRepository(conn, tenant.id).most_uses_by_a_user(current.id)
        if per_user < most:
            raise UsageLimitBelowUsed(
                f"max_uses_per_user {per_user} is below the {most} uses of one user so far.",
                [FieldProblem("max_uses_per_user", f"must be at least {most}")],
            )
    updated = replace(
        current,
        data=data,
        sys_version=current.sys_version + 1,
        sys_last_modified_at=now,
        sys_last_modified_by_id=actor_id,
        remaining_amount=remaining_after_change(current, data),
    )
    if not CouponRepository(conn, tenant.id).replace(updated, expected_version=current.sys_version):
        raise VersionConflict("The coupon changed meanwhile; read it again.")
    return updated


# --- batch --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    operation: str | None
    id: str | None
    error: CouponryError | None
    coupon: Coupon | None


def run_batch(
    db: Database, *, tenant: Tenant, actor_id: str, body: Any, now: datetime
) -> list[BatchResult]:
    """Up to 100 operations; one failing undoes no other.

    A run of creates is written in one transaction (after every check that could refuse one of
    them); anything else, and creates that meet a race, run one transaction each.
    """
    operations = _batch_operations(body)
    results: list[BatchResult] = []
    index = 0
    while index < len(operations):
        end = index
        while end < len(operations) and _plain_create(operations[end]):
            end += 1
        if end - index > 1:
            results += _create_run(db, tenant, actor_id, operations, index, end, now)
            index = end
        else:
            results.append(_run_one(db, tenant, actor_id, index, operations[index], now))
            index += 1
    return results


def _plain_create(op: Any) -> bool:
    return (
        isinstance(op, dict)
        and op.get("operation") == "create"
        and set(op) <= _BATCH_KEYS
        and isinstance(op.get("object"), dict)
    )


def _create_run(
    db: Database,
    tenant: Tenant,
    actor_id: str,
    operations: list[Any],
    start: int,
    end: int,
    now: datetime,
) -> list[BatchResult]:
    outcome: dict[int, Coupon | CouponryError] = {}
    drafts: dict[int, CouponFields] = {}
    for index in range(start, end):
        try:
            drafts[index] = parse_coupon_input(operations[index]["object"], creating=True)
        except CouponryError as error:
            outcome[index] = error
    try:
        with db.transaction() as conn:
            outcome |= _insert_drafts(conn, tenant, actor_id, drafts, now)
    except CodeTaken:  # a concurrent writer took a code between our check and our insert
        return [
            _run_one(db, tenant, actor_id, i, operations[i], now)
            if i in drafts
            else _result("create", outcome[i])
            for i in range(start, end)
        ]
    return [_result("create", outcome[i]) for i in range(start, end)]


def _result(name: str, item: Coupon | CouponryError) -> BatchResult:
    if isinstance(item, Coupon):
        return BatchResult(name, item.id, None, item)
    return BatchResult(name, None, item, None)


def _insert_drafts(
    conn: Connection,
    tenant: Tenant,
    actor_id: str,
    drafts: dict[int, CouponFields],
    now: datetime,
) -> dict[int, Coupon | CouponryError]:
    """Resolve, check codes against the store and each other, then one multi-row INSERT."""
    repo = CouponRepository(conn, tenant.id)
    outcome: dict[int, Coupon | CouponryError] = {}
    ready: dict[int, CouponFields] = {}
    for index, draft in drafts.items():
        try:
            ready[index] = resolve_coupon_references(conn, tenant, draft)
        except CouponryError as error:
            outcome[index] = error
    given = [normalise_code(d.code) for d in ready.values() if d.code is not None]
    taken = repo.codes_in_use(given)
    for index in sorted(ready):
        code = ready[index].code
        if code is None:
            continue
        if normalise_code(code) in taken:
            outcome[index] = code_taken(code)
            del ready[index]
        taken.add(normalise_code(code))
    _generate_codes(repo, ready, taken)
    made = {index: _new_coupon(tenant, actor_id, data, now) for index, data in ready.items()}
    if made:
        repo.insert_many(list(made.values()))
    return outcome | dict(made)


def _generate_codes(
    repo: CouponRepository, ready: dict[int, CouponFields], taken: set[str]
) -> None:
    missing = [index for index, data in ready.items() if data.code is None]
    while missing:
        fresh = {index: generate_code() for index in missing}
        clash = repo.codes_in_use([normalise_code(c) for c in fresh.values()]) | taken
        missing = []
        for index, code in fresh.items():
            if normalise_code(code) in clash:
                missing.append(index)
            else:
                ready[index] = replace(ready[index], code=code)
                taken.add(normalise_code(code))


def _batch_operations(body: Any) -> list[Any]:
    def refuse(message: str, field: str = "operations") -> InvalidInput:
        return BatchTooLarge(message, [FieldProblem(field, message)])

    if not isinstance(body, dict):
        raise refuse("The body must be an object with `operations`.", "body")
    unknown = [k for k in body if k != "operations"]
    if unknown:
        raise UnknownField(
            "Unknown field(s): " + ", ".join(unknown),
            [FieldProblem(k, "is not a known field") for k in unknown],
        )
    operations = body.get("operations")
    if not isinstance(operations, list):
        raise refuse("operations must be an array of 1 to 100 operations.")
    if not 1 <= len(operations) <= MAX_BATCH:
        raise refuse(f"operations must hold 1 to {MAX_BATCH} items, not {len(operations)}.")
    return operations


_BATCH_KEYS = {"operation", "id", "object", "patch_directives"}


def _run_one(
    db: Database, tenant: Tenant, actor_id: str, index: int, op: Any, now: datetime
) -> BatchResult:
    name = op.get("operation") if isinstance(op, dict) else None
    coupon_id = op.get("id") if isinstance(op, dict) else None
    name = name if isinstance(name, str) else None
    coupon_id = coupon_id if isinstance(coupon_id, str) else None
    try:
        coupon = _dispatch(db, tenant, actor_id, index, op, now)
        return BatchResult(name, coupon.id if coupon else coupon_id, None, coupon)
    except CouponryError as error:
        return BatchResult(name, coupon_id, error, None)
    except Exception:  # one broken operation must not hide the outcome of the others
        log.exception("batch operation %d failed", index)
        return BatchResult(name, coupon_id, CouponryError(), None)


def _dispatch(
    db: Database, tenant: Tenant, actor_id: str, index: int, op: Any, now: datetime
) -> Coupon | None:
    where = f"operations[{index}]"
    if not isinstance(op, dict):
        raise InvalidInput(
            "Each operation must be an object.", [FieldProblem(where, "not an object")]
        )
    unknown = set(op) - _BATCH_KEYS
    if unknown:
        raise UnknownField(
            "Unknown field(s) in operation: " + ", ".join(sorted(unknown)),
            [FieldProblem(f"{where}.{k}", "is not a known field") for k in sorted(unknown)],
        )
    name = op.get("operation")
    coupon_id = op.get("id")
    obj = op.get("object")
    if name == "create":
        if not isinstance(obj, dict):
            raise _needs(where, "object", "create")
        return create_coupon(db, tenant=tenant, actor_id=actor_id, doc=obj, now=now)
    if name not in ("update", "patch", "delete"):
        raise InvalidInput(
            "operation must be create, update, patch or delete.",
            [FieldProblem(f"{where}.operation", "must be create, update, patch or delete")],
        )
    if not isinstance(coupon_id, str) or not coupon_id:
        raise _needs(where, "id", name)
    if name == "delete":
        delete_coupon(db, tenant_id=tenant.id, actor_id=actor_id, coupon_id=coupon_id, now=now)
        return None
    if name == "update":
        if not isinstance(obj, dict):
            raise _needs(where, "object", "update")
        return replace_coupon(
            db,
            tenant=tenant,
            actor_id=actor_id,
            coupon_id=coupon_id,
            doc=obj,
            if_match=None,
            now=now,
        )
    if "patch_directives" not in op:
        raise _needs(where, "patch_directives", "patch")
    return patch_coupon(
        db,
        tenant=tenant,
        actor_id=actor_id,
        coupon_id=coupon_id,
        operations=op["patch_directives"],
        if_match=None,
        now=now,
    )


def _needs(where: str, key: str, name: str) -> InvalidInput:
    return InvalidInput(
        f"A {name} operation needs `{key}`.", [FieldProblem(f"{where}.{key}", "is required")]
    )
