"""Importing a coupon's campaign codes from CSV over REST (SPEC 10): the file becomes a job.
Admin only.

The one body over 1 MiB: up to 100 MiB (`COUPONRY_IMPORT_MAX_BYTES`), never held whole. A
declared Content-Length over the limit is refused (413) before the key is checked, as every
other oversized body is; then the key (401, 403), the content type (415) and the coupon (404);
then the body is read as it arrives and handed to the service a part at a time, which stores
it (a body that passes the limit as it streams is 413 too, and nothing is kept).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from couponry.config import Settings
from couponry.domain.jobs import Job, job_view
from couponry.errors import PayloadTooLarge, UnsupportedMediaType
from couponry.services import imports as svc
from couponry.store.db import Database
from couponry.web.auth import AdminKeyBodyUnread
from couponry.web.jsonio import json_response
from couponry.web.rest import params as p
from couponry.web.rest.jobs import JobDoc
from couponry.web.rest.schemas import errors_doc

router = APIRouter(tags=["jobs"])
_DIGITS = re.compile("[0-9]{1,20}")
_CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {
                "schema": {
                    "type": "string",
                    "description": "UTF-8; line 1 names the columns: code, optionally "
                    "max_uses (empty: unlimited), and the export's other columns (ignored)",
                }
            }
        },
    }
}


def _limit(request: Request) -> int:
    settings: Settings = request.app.state.settings
    return settings.import_max_bytes


def _declared_size(request: Request) -> None:
    length = request.headers.get("content-length")
    if length is not None and _DIGITS.fullmatch(length) and int(length) > _limit(request):
        raise PayloadTooLarge(f"The file is larger than {_limit(request)} bytes.")


# Before the key: an oversized body is refused first, whatever the key (as web/auth.py does).
DeclaredSize = Annotated[None, Depends(_declared_size)]


def _check_csv(request: Request) -> None:
    """`text/csv`, in UTF-8 (no charset parameter means UTF-8 here)."""
    content_type = request.headers.get("content-type", "")
    media, _, rest = content_type.partition(";")
    media = media.strip().lower()
    charset = "utf-8"
    for param in rest.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if media != "text/csv":
        raise UnsupportedMediaType(f"Send the file as text/csv (got {media or 'no content type'}).")
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"Send the file in UTF-8 (got charset={charset}).")


async def _receive(upload: svc.Upload, stream: AsyncIterator[bytes]) -> Job:
    """The body, read on the event loop as it arrives (a slow sender holds no thread), handed
    to the upload a part at a time in a worker thread; nothing is kept if it fails."""
    try:
        buffer = bytearray()
        async for piece in stream:
            buffer += piece
            if len(buffer) >= svc.PART_BYTES:
                await p.in_thread(partial(upload.add, bytes(buffer)))
                buffer.clear()
        await p.in_thread(partial(upload.add, bytes(buffer)))
        return await p.in_thread(upload.finish)
    except BaseException:
        with anyio.CancelScope(shield=True):  # even when the request is cancelled
            await p.in_thread(upload.abandon)
        raise


@router.post(
    "/coupons/{tenantId}/{coupon_id}/codes/import",
    status_code=202,
    response_model=None,
    responses={202: {"model": JobDoc}, **errors_doc(400, 401, 403, 404, 413, 415)},
    openapi_extra=_CSV_BODY,
    summary="Import a coupon's campaign codes from a CSV file (up to 100 MiB), as a job",
)
async def import_codes(
    request: Request,
    tenant_id: p.TenantId,
    coupon_id: str,
    _size: DeclaredSize,
    who: AdminKeyBodyUnread,
) -> Response:
    _check_csv(request)
    db: Database = request.app.state.db
    upload = await p.in_thread(
        lambda: svc.open_upload(
            db, tenant_id=tenant_id, coupon_id=coupon_id, clock=p.now, max_bytes=_limit(request)
        )
    )
    job = await _receive(upload, request.stream())
    return json_response(job_view(job), 202, {"Location": f"/jobs/{tenant_id}/{job.id}"})
