"""An import's file in parts (`job_payloads`) and its checked lines (`import_lines`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select

from couponry.domain.imports import ImportedCode
from couponry.store.tables import coupon_codes, import_lines, job_payloads


@dataclass(frozen=True)
class ProblemLine:
    """A staged line that repeats an earlier line's code (`first_line`), or whose code the
    tenant has (`taken_by`, and whether it is that coupon's own code)."""

    line: int
    code: str
    first_line: int | None
    taken_by: str | None
    own: bool


_LINE_COLUMNS = "job_id, line, code, code_normalized, max_uses"
_COPY_LINES = f"COPY import_lines ({_LINE_COLUMNS}) FROM STDIN"
_INSERT_LINES = f"INSERT INTO import_lines ({_LINE_COLUMNS}) VALUES (?, ?, ?, ?, ?)"


class ImportRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- the file, as received ---------------------------------------------------------------

    def add_part(self, job_id: str, part: int, data: bytes, *, now: datetime) -> None:
        self.conn.execute(
            insert(job_payloads), {"job_id": job_id, "part": part, "data": data, "created_at": now}
        )

    def part(self, job_id: str, part: int) -> bytes | None:
        query = select(job_payloads.c.data).where(
            job_payloads.c.job_id == job_id, job_payloads.c.part == part
        )
        data = self.conn.execute(query).scalar_one_or_none()
        return None if data is None else bytes(data)

    def parts(self, job_id: str) -> tuple[int, int]:
        """How many parts of the file are stored, and their bytes."""
        query = select(func.count(), func.coalesce(func.sum(func.length(job_payloads.c.data)), 0))
        row = self.conn.execute(query.where(job_payloads.c.job_id == job_id)).one()
        return int(row[0]), int(row[1])

    def uploads(self) -> dict[str, datetime]:
        """Each file stored (its job's id), and when its last part was received."""
        query = select(job_payloads.c.job_id, func.max(job_payloads.c.created_at)).group_by(
            job_payloads.c.job_id
        )
        return {row[0]: row[1] for row in self.conn.execute(query)}

    def staged_jobs(self) -> list[str]:
        """The jobs with staged lines: a few, however many lines (a walk of the index)."""
        found: list[str] = []
        while True:
            query = select(func.min(import_lines.c.job_id))
            if found:
                query = query.where(import_lines.c.job_id > found[-1])
            job_id = self.conn.execute(query).scalar_one()
            if job_id is None:
                return found
            found.append(job_id)

    def drop(self, job_id: str) -> None:
        """Forget the job's file and staged lines."""
        self.conn.execute(delete(job_payloads).where(job_payloads.c.job_id == job_id))
        self.clear_lines(job_id)

    # --- the checked lines -------------------------------------------------------------------

    def add_lines(self, job_id: str, codes: Sequence[ImportedCode]) -> None:
        """Stage checked lines. On the plain drivers, not through SQLAlchemy's parameters:
        a file can hold a million lines (PostgreSQL's COPY; SQLite's executemany)."""
        if not codes:
            return
        rows = [(job_id, *code) for code in codes]
        if self.conn.dialect.name == "postgresql":
            driver = self.conn.connection.driver_connection
            with driver.cursor() as cursor, cursor.copy(_COPY_LINES) as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
        else:
            self.conn.exec_driver_sql(_INSERT_LINES, rows)

    def clear_lines(self, job_id: str) -> None:
        self.conn.execute(delete(import_lines).where(import_lines.c.job_id == job_id))

    def problem_lines(self, tenant_id: str, job_id: str, *, limit: int) -> list[ProblemLine]:
        """The first `limit` staged lines, by line, that repeat an earlier line's code or whose
        code the tenant has already (a coupon's own or a campaign code)."""
        problems = self._problems(tenant_id, job_id).subquery()
        query = select(problems).order_by(problems.c.line).limit(limit)
        return [
            ProblemLine(
                line=row.line,
                code=row.code,
                first_line=row.first_line if row.first_line < row.line else None,
                taken_by=row.coupon_id,
                own=bool(row.own),
            )
            for row in self.conn.execute(query)
        ]

    def count_problem_lines(self, tenant_id: str, job_id: str) -> int:
        query = select(func.count()).select_from(self._problems(tenant_id, job_id).subquery())
        return int(self.conn.execute(query).scalar_one())

    def _problems(self, tenant_id: str, job_id: str) -> Any:
        # One pass with a window, never a join of the lines with their repeats: a plan made
        # before the table's statistics know a million fresh lines cannot turn quadratic.
        staged = select(
            import_lines.c.line,
            import_lines.c.code,
            import_lines.c.code_normalized,
            func.min(import_lines.c.line)
            .over(partition_by=import_lines.c.code_normalized)
            .label("first_line"),
        ).where(import_lines.c.job_id == job_id)
        lines = staged.subquery()
        return (
            select(
                lines.c.line,
                lines.c.code,
                lines.c.first_line,
                coupon_codes.c.coupon_id,
                coupon_codes.c.own,
            )
            .select_from(lines)
            .outerjoin(
                coupon_codes,
                and_(
                    coupon_codes.c.tenant_id == tenant_id,
                    coupon_codes.c.code_normalized == lines.c.code_normalized,
                ),
            )
            .where((lines.c.first_line < lines.c.line) | coupon_codes.c.seq.is_not(None))
        )
