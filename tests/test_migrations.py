from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from factories import make_account, make_transaction
from mobip.kit.clock import ManualClock
from mobip.kit.db import Database
from mobip.kit.migrate import alembic_config, is_current, upgrade
from mobip.kit.runtime import Runtime
from mobip.models import metadata
from mobip.transactions import service
from mobip.transactions.models import Transaction, TransactionKind


def test_migrations_from_empty_reach_head_and_match_the_models(database: Database) -> None:
    # db_url is a database migrated from empty by the fixtures.
    assert is_current(database.engine)
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_last_request_at_is_filled_from_the_outbox(runtime: Runtime, clock: ManualClock) -> None:
    """20261130_0006 sets each transaction's last_request_at to its newest payment request's
    outbox time (initial, manual or reminder; other kinds do not count)."""
    merchant = make_account(runtime).account
    resent = make_transaction(runtime, merchant)
    cancelled = make_transaction(runtime, merchant)
    qr = make_transaction(runtime, merchant, kind=TransactionKind.ONE_USE_QR, media=None)
    created_at = clock.now()
    clock.advance(days=1)
    with runtime.database.transaction() as session:
        service.resend(session, merchant, resent.trid, "EMAIL", runtime.settings, clock)
        service.cancel(session, merchant, cancelled.trid, clock)  # queues a callback
    expected = {resent.trid: clock.now(), cancelled.trid: created_at, qr.trid: None}
    url = runtime.settings.resolved_database_url
    runtime.database.engine.dispose()
    try:
        command.downgrade(alembic_config(url), "20261125_0005")
    finally:
        upgrade(url)
    with runtime.database.session() as session:
        rows = session.execute(select(Transaction.trid, Transaction.last_request_at)).all()
    assert dict(rows) == expected


def test_account_branding_goes_down_and_up_with_its_revision(runtime: Runtime) -> None:
    """20261130_0007 creates account_branding; going down drops it, going up brings it back."""
    url = runtime.settings.resolved_database_url
    runtime.database.engine.dispose()
    try:
        command.downgrade(alembic_config(url), "20261130_0006")
        with runtime.database.engine.connect() as conn:
            assert "account_branding" not in inspect(conn).get_table_names()
            assert "transactions" in inspect(conn).get_table_names()
    finally:
        upgrade(url)
    with runtime.database.engine.connect() as conn:
        assert "account_branding" in inspect(conn).get_table_names()
    assert is_current(runtime.database.engine)
