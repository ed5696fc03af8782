"""A CSV download streamed a page of lines at a time (the REST API's and the console's)."""

from __future__ import annotations

from collections.abc import Iterator

from starlette.responses import StreamingResponse


def csv_download(pages: Iterator[list[str]], filename: str) -> StreamingResponse:
    """Starlette reads a synchronous iterator in a worker thread, one item per hop: an item
    is a page of lines (thousands), not a line."""
    return StreamingResponse(
        ("".join(page).encode() for page in pages),
        media_type="text/csv; charset=utf-8",
        # Live codes: no cache along the way keeps a copy.
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
