"""Groups, members and group-path resolution over REST (SPEC 4.2, 5)."""

from __future__ import annotations

from fastapi import APIRouter, Header, Query
from starlette.requests import Request
from starlette.responses import Response

from couponry.domain.groups import Group, group_view, member_view
from couponry.domain.paging import Page
from couponry.errors import FieldProblem, InvalidQuery
from couponry.services import groups as svc
from couponry.store.db import Database
from couponry.web.auth import AdminKey, Body, ReadKey
from couponry.web.jsonio import decode_json_body, json_response, require_object
from couponry.web.rest import params as p
from couponry.web.rest.schemas import (
    GroupRead,
    GroupWrite,
    MemberRead,
    MemberWrite,
    body_doc,
    errors_doc,
)

router = APIRouter(prefix="/groups", tags=["groups"])
_AUTH = (400, 401, 403)


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _reply(group: Group, status: int = 200) -> Response:
    return json_response(group_view(group), status, {"ETag": f'"{group.sys_version}"'})


@router.post(
    "/{tenantId}",
    status_code=201,
    response_model=None,
    responses={201: {"model": GroupRead}, **errors_doc(*_AUTH, 409, 413, 415, 422)},
    openapi_extra=body_doc(GroupWrite),
    summary="Create a group",
)
async def create_group(
    request: Request, tenant_id: p.TenantId, who: AdminKey, raw: Body
) -> Response:
    doc = require_object(decode_json_body(request, raw))
    group = await p.in_thread(
        lambda: svc.create_group(_db(request), tenant_id=tenant_id, doc=doc, now=p.now())
    )
    return _reply(group, 201)


@router.get(
    "/{tenantId}",
    response_model=None,
    responses={200: {"model": list[GroupRead]}, **errors_doc(*_AUTH)},
    summary="List groups oldest first, or the children of parent_id",
)
async def list_groups(
    request: Request,
    tenant_id: p.TenantId,
    who: ReadKey,
    parent_id: str | None = Query(None),
    limit: str | None = Query(None),
    exclusive_start_key: str | None = Query(None, alias="exclusiveStartKey"),
    x_exclusive_start_key: str | None = Header(None),
) -> Response:
    size = p.query_limit(limit)
    after = p.query_start(exclusive_start_key, x_exclusive_start_key)
    page: Page[Group] = await p.in_thread(
        lambda: svc.list_groups(
            _db(request), tenant_id=tenant_id, after_seq=after, limit=size, parent_id=parent_id
        )
    )
    body = [group_view(g) for g in page.items]
    return json_response(body, 200, p.next_page_headers(request, page.last_seq))


@router.get(
    "/{tenantId}/resolve",
    response_model=None,
    responses={200: {"model": GroupRead}, **errors_doc(*_AUTH, 404, 409, 422)},
    summary="Resolve a group path to exactly one group",
)
async def resolve(
    request: Request, tenant_id: p.TenantId, who: ReadKey, path: str | None = Query(None)
) -> Response:
    if path is None:
        raise InvalidQuery("path is required.", [FieldProblem("path", "is required")])
    group = await p.in_thread(
        lambda: svc.resolve_path(_db(request), tenant_id=tenant_id, path=path)
    )
    return _reply(group)


@router.get(
    "/{tenantId}/{group_id}",
    response_model=None,
    responses={200: {"model": GroupRead}, **errors_doc(*_AUTH, 404)},
    summary="Get one group",
)
async def get_group(
    request: Request, tenant_id: p.TenantId, group_id: str, who: ReadKey
) -> Response:
    group = await p.in_thread(
        lambda: svc.get_group(_db(request), tenant_id=tenant_id, group_id=group_id)
    )
    return _reply(group)


@router.put(
    "/{tenantId}/{group_id}",
    response_model=None,
    responses={200: {"model": GroupRead}, **errors_doc(*_AUTH, 404, 409, 413, 415, 422)},
    openapi_extra=body_doc(GroupWrite),
    summary="Replace a group's name, code and parent",
)
async def put_group(
    request: Request, tenant_id: p.TenantId, group_id: str, who: AdminKey, raw: Body
) -> Response:
    expected = p.if_match(request)
    doc = require_object(decode_json_body(request, raw))
    group = await p.in_thread(
        lambda: svc.replace_group(
            _db(request),
            tenant_id=tenant_id,
            group_id=group_id,
            doc=doc,
            if_match=expected,
            now=p.now(),
        )
    )
    return _reply(group)


@router.delete(
    "/{tenantId}/{group_id}",
    response_model=None,
    responses={200: {"model": str}, **errors_doc(*_AUTH, 404, 409)},
    summary="Delete a group without children that no active coupon uses",
)
async def delete_group(
    request: Request, tenant_id: p.TenantId, group_id: str, who: AdminKey
) -> Response:
    await p.in_thread(
        lambda: svc.delete_group(_db(request), tenant_id=tenant_id, group_id=group_id)
    )
    return json_response(group_id)


@router.get(
    "/{tenantId}/{group_id}/members",
    response_model=None,
    responses={200: {"model": list[MemberRead]}, **errors_doc(*_AUTH, 404)},
    summary="A group's members",
)
async def list_members(
    request: Request, tenant_id: p.TenantId, group_id: str, who: ReadKey
) -> Response:
    members = await p.in_thread(
        lambda: svc.list_members(_db(request), tenant_id=tenant_id, group_id=group_id)
    )
    return json_response([member_view(m) for m in members])


@router.put(
    "/{tenantId}/{group_id}/members/{user_id}",
    response_model=None,
    responses={
        200: {"model": MemberRead},
        201: {"model": MemberRead},
        **errors_doc(*_AUTH, 404, 413, 415, 422),
    },
    openapi_extra=body_doc(MemberWrite),
    summary="Add (201) or change (200) a membership",
)
async def put_member(
    request: Request, tenant_id: p.TenantId, group_id: str, user_id: str, who: AdminKey, raw: Body
) -> Response:
    doc = require_object(decode_json_body(request, raw)) if raw.strip() else {}
    member, added = await p.in_thread(
        lambda: svc.put_member(
            _db(request),
            tenant_id=tenant_id,
            group_id=group_id,
            user_id=user_id,
            doc=doc,
            now=p.now(),
        )
    )
    return json_response(member_view(member), 201 if added else 200)


@router.delete(
    "/{tenantId}/{group_id}/members/{user_id}",
    response_model=None,
    responses={200: {"model": str}, **errors_doc(*_AUTH, 404)},
    summary="Remove a membership",
)
async def delete_member(
    request: Request, tenant_id: p.TenantId, group_id: str, user_id: str, who: AdminKey
) -> Response:
    await p.in_thread(
        lambda: svc.delete_member(
            _db(request), tenant_id=tenant_id, group_id=group_id, user_id=user_id
        )
    )
    return json_response(user_id)
