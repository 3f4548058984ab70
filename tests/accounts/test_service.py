"""accounts.service's scope rule (sees): an account sees itself and the accounts below it; an admin
sees every account; by_ids and labels_by_ids read any number of ids."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, update

from factories import make_account
from mobip.accounts import service
from mobip.accounts.models import Account, Role
from mobip.kit.runtime import Runtime


def test_an_account_sees_itself_and_its_subtree_only(runtime: Runtime) -> None:
    admin = make_account(runtime, role=Role.ADMIN).account
    partner = make_account(runtime, role=Role.PARTNER)
    shop = make_account(runtime, parent=partner).account
    sibling = make_account(runtime, parent=partner).account
    stranger = make_account(runtime).account
    accounts = [admin, partner.account, shop, sibling, stranger]
    assert [[service.sees(scope, other) for other in accounts] for scope in accounts] == [
        [True, True, True, True, True],  # the admin: everyone
        [False, True, True, True, False],  # the partner: itself and its two shops
        [False, False, True, False, False],  # a merchant: itself only
        [False, False, False, True, False],
        [False, False, False, False, True],
    ]


def test_by_ids_and_labels_read_any_number_of_ids_in_one_statement(runtime: Runtime) -> None:
    """A partner's day can name more merchants than a statement takes parameters (65,535 on
    PostgreSQL): 70,000 ids, three of them accounts."""
    made = [make_account(runtime).account for _ in range(3)]
    ids = [account.id for account in made] + list(range(10**6, 10**6 + 70_000))
    with runtime.database.session() as session:
        found = service.by_ids(session, ids)
        labels = service.labels_by_ids(session, ids)
    assert {key: account.uid for key, account in found.items()} == {a.id: a.uid for a in made}
    assert labels == {a.id: service.Label(a.uid, a.name, a.external_account_id) for a in made}


def test_the_subtree_is_exactly_the_subtree_and_sqlite_reads_it_from_the_path_index(
    runtime: Runtime,
) -> None:
    """Paths that share a prefix with the partner's without being below it ('…A0/', '…A./',
    '…a/': the next byte after '/', a lower one, another case) stay out; on SQLite the range
    that replaced the table scan is served by the path index."""
    made = make_account(runtime, role=Role.PARTNER)
    partner = made.account
    shop = make_account(runtime, parent=make_account(runtime, role=Role.PARTNER)).account
    below = [make_account(runtime, parent=made).account for _ in range(2)]
    near = [make_account(runtime).account for _ in range(3)]
    base = partner.path[:-1]
    with runtime.database.transaction() as session:
        for account, path in zip(near, (base + "0/", base + "./", base.lower() + "/"), strict=True):
            session.execute(update(Account).where(Account.id == account.id).values(path=path))
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    engine = runtime.database.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with runtime.database.session() as session:
            found = service.subtree_ids(session, partner)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert found == sorted([partner.id, *(account.id for account in below)])
    assert shop.id not in found
    with runtime.database.session() as session:  # the same rule behind a lookup by uid
        assert [service.visible_by_uid(session, partner, a.uid) for a in near] == [None] * 3
        assert service.visible_by_uid(session, partner, below[0].uid) is not None
    if engine.dialect.name == "sqlite":
        [(statement, parameters)] = statements
        with engine.connect() as conn:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        assert "INDEX ix_accounts_path" in " ".join(str(row[-1]) for row in plan), plan
