from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mobip.kit.db import Database
from mobip.kit.migrate import is_current
from mobip.models import metadata


def test_migrations_from_empty_reach_head_and_match_the_models(database: Database) -> None:
    # db_url is a database migrated from empty by the fixtures.
    assert is_current(database.engine)
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
