"""Groups and memberships, always scoped to one tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from couponry.domain.group_paths import GroupNode
from couponry.domain.groups import Group, Member, group_code_key
from couponry.domain.paging import looks_like_id
from couponry.errors import GroupCodeTaken
from couponry.store.tables import group_members, groups


def _row_to_group(row: Row[Any]) -> Group:
    return Group(
        id=row.id,
        tenant_id=row.tenant_id,
        parent_id=row.parent_id,
        name=row.name,
        code=row.code,
        sys_version=row.sys_version,
        sys_created_at=row.sys_created_at,
        sys_last_modified_at=row.sys_last_modified_at,
    )


def _code_taken(group: Group) -> GroupCodeTaken:
    return GroupCodeTaken(f"The group code {group.code!r} is already used by another group.")


class GroupRepository:
    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self.conn = conn
        self.tenant_id = tenant_id

    def get(self, group_id: str, *, for_update: bool = False) -> Group | None:
        if not looks_like_id(group_id):
            return None
        query = select(groups).where(groups.c.tenant_id == self.tenant_id, groups.c.id == group_id)
        if for_update:
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return _row_to_group(row) if row else None

    def page(
        self, *, after_seq: int, limit: int, parent_id: str | None = None
    ) -> list[tuple[int, Group]]:
        if parent_id is not None and not looks_like_id(parent_id):
            return []
        query = select(groups).where(groups.c.tenant_id == self.tenant_id, groups.c.seq > after_seq)
        if parent_id is not None:
            query = query.where(groups.c.parent_id == parent_id)
        rows = self.conn.execute(query.order_by(groups.c.seq).limit(limit))
        return [(row.seq, _row_to_group(row)) for row in rows]

    def nodes(self) -> list[GroupNode]:
        """The whole hierarchy, for path resolution and descendant checks."""
        query = select(groups.c.id, groups.c.parent_id, groups.c.name, groups.c.code).where(
            groups.c.tenant_id == self.tenant_id
        )
        return [
            GroupNode(id=r.id, parent_id=r.parent_id, name=r.name, code=r.code)
            for r in self.conn.execute(query)
        ]

    def insert(self, group: Group) -> None:
        try:
            self.conn.execute(
                insert(groups).values(
                    id=group.id,
                    tenant_id=self.tenant_id,
                    parent_id=group.parent_id,
                    name=group.name,
                    code=group.code,
                    code_normalized=group_code_key(group.code),
                    sys_version=group.sys_version,
                    sys_created_at=group.sys_created_at,
                    sys_last_modified_at=group.sys_last_modified_at,
                )
            )
        except IntegrityError as exc:
            raise _code_taken(group) from exc

    def replace(self, group: Group, *, expected_version: int) -> bool:
        statement = (
            update(groups)
            .where(
                groups.c.tenant_id == self.tenant_id,
                groups.c.id == group.id,
                groups.c.sys_version == expected_version,
            )
            .values(
                parent_id=group.parent_id,
                name=group.name,
                code=group.code,
                code_normalized=group_code_key(group.code),
                sys_version=group.sys_version,
                sys_last_modified_at=group.sys_last_modified_at,
            )
        )
        try:
            return self.conn.execute(statement).rowcount == 1
        except IntegrityError as exc:
            raise _code_taken(group) from exc

    def has_children(self, group_id: str) -> bool:
        query = select(groups.c.id).where(
            groups.c.tenant_id == self.tenant_id, groups.c.parent_id == group_id
        )
        return self.conn.execute(query.limit(1)).first() is not None

    def delete(self, group_id: str) -> bool:
        self.conn.execute(
            delete(group_members).where(
                group_members.c.tenant_id == self.tenant_id, group_members.c.group_id == group_id
            )
        )
        result = self.conn.execute(
            delete(groups).where(groups.c.tenant_id == self.tenant_id, groups.c.id == group_id)
        )
        return result.rowcount == 1

    # --- members ---------------------------------------------------------------------------

    def get_member(self, group_id: str, user_id: str) -> Member | None:
        row = self.conn.execute(
            select(group_members).where(
                group_members.c.tenant_id == self.tenant_id,
                group_members.c.group_id == group_id,
                group_members.c.user_id == user_id,
            )
        ).first()
        if row is None:
            return None
        return Member(row.group_id, row.user_id, row.role, row.expires_at)

    def put_member(self, member: Member, *, now: datetime) -> bool:
        """Add or change a membership; True when it was added."""
        where = (
            group_members.c.tenant_id == self.tenant_id,
            group_members.c.group_id == member.group_id,
            group_members.c.user_id == member.user_id,
        )
        changed = self.conn.execute(
            update(group_members)
            .where(*where)
            .values(role=member.role, expires_at=member.expires_at)
        )
        if changed.rowcount == 1:
            return False
        self.conn.execute(
            insert(group_members).values(
                tenant_id=self.tenant_id,
                group_id=member.group_id,
                user_id=member.user_id,
                role=member.role,
                expires_at=member.expires_at,
                created_at=now,
            )
        )
        return True

    def delete_member(self, group_id: str, user_id: str) -> bool:
        result = self.conn.execute(
            delete(group_members).where(
                group_members.c.tenant_id == self.tenant_id,
                group_members.c.group_id == group_id,
                group_members.c.user_id == user_id,
            )
        )
        return result.rowcount == 1

    def members(self, group_id: str, *, limit: int | None = None) -> list[Member]:
        query = (
            select(group_members)
            .where(
                group_members.c.tenant_id == self.tenant_id, group_members.c.group_id == group_id
            )
            .order_by(group_members.c.created_at, group_members.c.user_id)
        )
        rows = self.conn.execute(query if limit is None else query.limit(limit))
        return [Member(r.group_id, r.user_id, r.role, r.expires_at) for r in rows]
