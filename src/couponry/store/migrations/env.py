"""Alembic environment: always run through couponry.store.migrate, which hands us a connection
that already holds the migration lock."""

from __future__ import annotations

from alembic import context

from couponry.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `couponry db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
    compare_type=True,
)
context.run_migrations()
