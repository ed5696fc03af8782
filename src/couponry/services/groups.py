"""Group use cases: the hierarchy, its members, and path resolution (SPEC 4.2, 5)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from couponry.domain.group_paths import parse_group_path, resolve_group_path
from couponry.domain.groups import (
    Group,
    GroupFields,
    Member,
    check_user_id,
    descendants,
    parse_group_input,
    parse_member_input,
)
from couponry.domain.paging import Page, new_id
from couponry.errors import (
    Conflict,
    FieldProblem,
    GroupInUse,
    GroupNotFound,
    InvalidInput,
    MemberNotFound,
    VersionConflict,
)
from couponry.store.coupon_repo import CouponRepository
from couponry.store.db import Database
from couponry.store.group_repo import GroupRepository


def create_group(db: Database, *, tenant_id: str, doc: Mapping[str, Any], now: datetime) -> Group:
    """A new group at the root or under `parent_id`."""
    if doc.get("id") is not None:
        raise InvalidInput(
            "A group's id is set by the server.", [FieldProblem("id", "must not be sent")]
        )
    fields = parse_group_input(doc)
    with db.transaction() as conn:
        repo = GroupRepository(conn, tenant_id)
        _check_parent(repo, fields, group_id=None)
        group = Group(
            id=new_id(),
            tenant_id=tenant_id,
            parent_id=fields.parent_id,
            name=fields.name,
            code=fields.code,
            sys_version=1,
            sys_created_at=now,
            sys_last_modified_at=now,
        )
        repo.insert(group)
        return group


def get_group(db: Database, *, tenant_id: str, group_id: str) -> Group:
    with db.reader() as conn:
        group = GroupRepository(conn, tenant_id).get(group_id)
    if group is None:
        raise GroupNotFound()
    return group


def list_groups(
    db: Database, *, tenant_id: str, after_seq: int, limit: int, parent_id: str | None
) -> Page[Group]:
    """All groups oldest first, or the children of `parent_id`; keyset pages."""
    with db.reader() as conn:
        rows = GroupRepository(conn, tenant_id).page(
            after_seq=after_seq, limit=limit + 1, parent_id=parent_id
        )
    return Page.from_rows(rows, limit)


def replace_group(
    db: Database,
    *,
    tenant_id: str,
    group_id: str,
    doc: Mapping[str, Any],
    if_match: int | None,
    now: datetime,
) -> Group:
    """PUT `{name, code, parent_id}`; a parent may not be the group or one below it."""
    if doc.get("id") is not None and doc.get("id") != group_id:
        raise InvalidInput(
            "id must equal the path's.", [FieldProblem("id", "must equal the path's")]
        )
    fields = parse_group_input(doc)
    with db.transaction() as conn:
        repo = GroupRepository(conn, tenant_id)
        current = repo.get(group_id, for_update=True)
        if current is None:
            raise GroupNotFound()
        body_version = doc.get("sys_version")
        for expected in (if_match, body_version):
            if expected is not None and expected != current.sys_version:
                raise VersionConflict(
                    f"The group is at version {current.sys_version}, not {expected}."
                )
        _check_parent(repo, fields, group_id=group_id)
        updated = replace(
            current,
            name=fields.name,
            code=fields.code,
            parent_id=fields.parent_id,
            sys_version=current.sys_version + 1,
            sys_last_modified_at=now,
        )
        if not repo.replace(updated, expected_version=current.sys_version):
            raise VersionConflict("The group changed meanwhile; read it again.")
        return updated


def delete_group(db: Database, *, tenant_id: str, group_id: str) -> None:
    """Refused while the group has children or an active coupon uses it."""
    with db.transaction() as conn:
        repo = GroupRepository(conn, tenant_id)
        if repo.get(group_id, for_update=True) is None:
            raise GroupNotFound()
        if repo.has_children(group_id):
            raise GroupInUse("The group has child groups; move or delete them first.")
        if CouponRepository(conn, tenant_id).active_using_group([group_id]):
            raise GroupInUse("An active coupon is scoped to or authorised by this group.")
        repo.delete(group_id)


def resolve_path(db: Database, *, tenant_id: str, path: str) -> Group:
    """The one group a path names (GroupPathNoMatch / GroupPathAmbiguous otherwise)."""
    segments = parse_group_path(path)
    with db.reader() as conn:
        repo = GroupRepository(conn, tenant_id)
        node = resolve_group_path(segments, repo.nodes())
        group = repo.get(node.id)
    if group is None:  # deleted between the two reads
        raise GroupNotFound()
    return group


def put_member(
    db: Database,
    *,
    tenant_id: str,
    group_id: str,
    user_id: str,
    doc: Mapping[str, Any],
    now: datetime,
) -> tuple[Member, bool]:
    """Add or change a membership; returns it and whether it was added."""
    check_user_id(user_id)
    role, expires_at = parse_member_input(doc)
    if doc.get("user_id") not in (None, user_id):
        raise InvalidInput(
            "user_id must equal the path's.", [FieldProblem("user_id", "must equal the path's")]
        )
    member = Member(group_id=group_id, user_id=user_id, role=role, expires_at=expires_at)
    with db.transaction() as conn:
        repo = _existing_group(conn, tenant_id, group_id)
        added = repo.put_member(member, now=now)
    return member, added


def delete_member(db: Database, *, tenant_id: str, group_id: str, user_id: str) -> None:
    check_user_id(user_id)
    with db.transaction() as conn:
        repo = _existing_group(conn, tenant_id, group_id)
        if not repo.delete_member(group_id, user_id):
            raise MemberNotFound()


def list_members(
    db: Database, *, tenant_id: str, group_id: str, limit: int | None = None
) -> list[Member]:
    """A group's members, oldest first (the first `limit` of them); GroupNotFound."""
    with db.reader() as conn:
        repo = GroupRepository(conn, tenant_id)
        if repo.get(group_id) is None:
            raise GroupNotFound()
        return repo.members(group_id, limit=limit)


def _existing_group(conn: Connection, tenant_id: str, group_id: str) -> GroupRepository:
    repo = GroupRepository(conn, tenant_id)
    if repo.get(group_id, for_update=True) is None:
        raise GroupNotFound()
    return repo


def _check_parent(repo: GroupRepository, fields: GroupFields, *, group_id: str | None) -> None:
    if fields.parent_id is None:
        return
    if repo.get(fields.parent_id) is None:
        message = "names no group of this tenant"
        raise InvalidInput(f"parent_id {message}.", [FieldProblem("parent_id", message)])
    if group_id is not None and fields.parent_id in descendants([group_id], repo.nodes()):
        message = "would make the group its own ancestor"
        raise Conflict(f"parent_id {message}.", [FieldProblem("parent_id", message)])
