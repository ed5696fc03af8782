"""Turning what a client names (a group id or path, a site URL) into stored ids."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Connection

from couponry.domain.coupons import CouponFields
from couponry.domain.group_paths import looks_like_group_path, parse_group_path, resolve_group_path
from couponry.domain.tenants import Tenant, normalise_site_url
from couponry.errors import FieldProblem, GroupPathNoMatch, InvalidInput
from couponry.store.group_repo import GroupRepository


def resolve_group_ref(conn: Connection, tenant_id: str, ref: str, *, field: str) -> str:
    """A group id, or a group path resolved to exactly one group (SPEC 5)."""
    repo = GroupRepository(conn, tenant_id)
    if looks_like_group_path(ref):
        segments = parse_group_path(ref, field=field)
        return resolve_group_path(segments, repo.nodes(), field=field).id
    if repo.get(ref.strip()) is None:
        message = f"No group with id {ref.strip()!r}."
        raise GroupPathNoMatch(message, [FieldProblem(field, message)])
    return ref.strip()


def resolve_coupon_references(conn: Connection, tenant: Tenant, data: CouponFields) -> CouponFields:
    """Default and normalise the scope, and store group references as group ids."""
    entity_type = data.entity_type
    entity_id = data.entity_id
    if data.coupon_type is not None and entity_type is None:
        entity_type = "SITE"
    if entity_type == "SITE":
        entity_id = _site_entity(tenant, entity_id)
    elif entity_type == "GROUP" and entity_id is not None:
        entity_id = resolve_group_ref(conn, tenant.id, entity_id, field="entity_id")
    authorized = data.authorized_group_id
    if authorized is not None:
        authorized = resolve_group_ref(conn, tenant.id, authorized, field="authorized_group_id")
    return replace(
        data, entity_type=entity_type, entity_id=entity_id, authorized_group_id=authorized
    )


def _site_entity(tenant: Tenant, entity_id: str | None) -> str:
    if entity_id is None or entity_id.strip() == tenant.id:
        return tenant.id
    if normalise_site_url(entity_id) in tenant.site_urls:
        return tenant.id
    message = "must be this tenant's id or one of its site URLs"
    raise InvalidInput(f"entity_id {message}.", [FieldProblem("entity_id", message)])
