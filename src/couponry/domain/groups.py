"""Groups and their members (SPEC 4.2): checks of client input, and the hierarchy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from couponry.domain.coupons import check_code, normalise_code
from couponry.domain.fields import Problems, check_enum, check_instant, check_text, format_instant
from couponry.domain.group_paths import GroupNode

MEMBER_ROLES = ("member", "admin")


@dataclass(frozen=True)
class Group:
    id: str
    tenant_id: str
    parent_id: str | None
    name: str
    code: str | None
    sys_version: int
    sys_created_at: datetime
    sys_last_modified_at: datetime

    def node(self) -> GroupNode:
        return GroupNode(id=self.id, parent_id=self.parent_id, name=self.name, code=self.code)


@dataclass(frozen=True)
class GroupFields:
    name: str
    code: str | None
    parent_id: str | None


@dataclass(frozen=True)
class Member:
    group_id: str
    user_id: str
    role: str
    expires_at: datetime | None

    def is_current(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


def parse_group_input(doc: Mapping[str, Any]) -> GroupFields:
    """`{name, code, parent_id}`; read-only fields a GET shows are ignored, others refused."""
    problems = Problems()
    for key in doc:
        if key not in ("name", "code", "parent_id", *GROUP_READ_ONLY):
            problems.add_unknown(key)
    name = check_text(doc.get("name"), "name", problems, max_len=200, min_len=1)
    code = None if doc.get("code") is None else check_code(doc["code"], "code", problems)
    parent = doc.get("parent_id")
    if parent is not None:
        parent = check_text(parent, "parent_id", problems, max_len=19, min_len=1)
    problems.raise_if_any()
    assert name is not None
    return GroupFields(name=name, code=code, parent_id=parent)


def parse_member_input(doc: Mapping[str, Any]) -> tuple[str, datetime | None]:
    problems = Problems()
    for key in doc:
        if key not in ("role", "expires_at", "user_id"):
            problems.add_unknown(key)
    role = check_enum(doc.get("role", "member"), "role", problems, MEMBER_ROLES)
    expires = doc.get("expires_at")
    expires_at = None if expires is None else check_instant(expires, "expires_at", problems)
    problems.raise_if_any()
    assert role is not None
    return role, expires_at


def check_user_id(user_id: str) -> None:
    problems = Problems()
    check_text(user_id, "user_id", problems, max_len=200, min_len=1)
    problems.raise_if_any()


GROUP_READ_ONLY = ("id", "sys_version", "sys_created_at", "sys_last_modified_at")


def group_code_key(code: str | None) -> str | None:
    return None if code is None else normalise_code(code)


def descendants(root_ids: Iterable[str], nodes: Iterable[GroupNode]) -> set[str]:
    """The given groups and every group below them."""
    children: dict[str, list[str]] = {}
    for node in nodes:
        if node.parent_id is not None:
            children.setdefault(node.parent_id, []).append(node.id)
    found: set[str] = set()
    stack = list(root_ids)
    while stack:
        current = stack.pop()
        if current in found:
            continue
        found.add(current)
        stack.extend(children.get(current, ()))
    return found


def group_view(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "parent_id": group.parent_id,
        "name": group.name,
        "code": group.code,
        "sys_version": group.sys_version,
        "sys_created_at": format_instant(group.sys_created_at),
        "sys_last_modified_at": format_instant(group.sys_last_modified_at),
    }


def member_view(member: Member) -> dict[str, Any]:
    return {
        "user_id": member.user_id,
        "role": member.role,
        "expires_at": format_instant(member.expires_at),
    }
