"""Alembic environment: runs migrations against the URL MOBIP passes in its Config."""

from __future__ import annotations

from alembic import context

from mobip.kit.db import make_engine
from mobip.models import metadata

url = context.config.get_main_option("sqlalchemy.url")
assert url, "MOBIP passes the database URL to Alembic"


def run_migrations_online() -> None:
    engine = make_engine(url, pool=False)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
