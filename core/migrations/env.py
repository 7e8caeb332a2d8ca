"""Alembic's environment: runs on the engine core.db hands it (no alembic.ini, no URL in a file)."""

from __future__ import annotations

from alembic import context

from core.mirror.tables import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
