"""Queries on accounts and their documents.

Every read of another account's data takes the caller as ``scope``: only the caller itself and
its descendants are found (an admin sees every account).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Connection, Row, Select, Table, bindparam, func, select
from sqlalchemy.orm import Session

from mobip.accounts.models import Account, AccountBranding, AccountDocument, Role
from mobip.kit.db import DriverStatement, among


def _visible_to(session: Session, scope: Account) -> Select[Account]:
    """The accounts ``scope`` sees: itself and those below it on the materialised path (an
    admin: every account)."""
    query = select(Account)
    if scope.role == Role.ADMIN:
        return query
    query = query.where(Account.path.startswith(scope.path, autoescape=True))
    if session.get_bind().dialect.name == "sqlite":
        # SQLite serves no LIKE with a bound pattern from an index: it scanned every account.
        # In its BINARY order (bytes) the paths starting with "…/" are exactly those from "…/"
        # up to "…0" ('0' follows '/'), a range the path index serves. (Not on PostgreSQL: a
        # linguistic collation does not order paths by bytes.)
        after = scope.path[:-1] + chr(ord(scope.path[-1]) + 1)
        query = query.where(Account.path >= scope.path, Account.path < after)
    return query


def get_by_api_account_id(session: Session, api_account_id: str) -> Account | None:
    return session.scalars(select(Account).where(Account.api_account_id == api_account_id)).first()


def get_visible_by_uid(session: Session, scope: Account, uid: str) -> Account | None:
    return session.scalars(_visible_to(session, scope).where(Account.uid == uid)).first()


def find_visible_by_external_id(
    session: Session, scope: Account, external_account_id: str
) -> Sequence[Account]:
    query = _visible_to(session, scope).where(Account.external_account_id == external_account_id)
    return session.scalars(query.limit(2)).all()


def external_id_taken(
    session: Session, parent_id: int | None, external_account_id: str, except_id: int
) -> bool:
    query = select(Account.id).where(
        Account.external_account_id == external_account_id, Account.id != except_id
    )
    query = query.where(
        Account.parent_id.is_(None) if parent_id is None else Account.parent_id == parent_id
    )
    return session.scalars(query.limit(1)).first() is not None


def own_fee_schedules_on_path(session: Session, account: Account) -> Sequence[Account]:
    """The account and its ancestors (by its path's uids) that have their own fee schedule,
    deepest first: one query whatever the depth."""
    uids = [uid for uid in account.path.split("/") if uid]
    return session.scalars(
        select(Account)
        .where(Account.uid.in_(uids), Account.fee_bp.is_not(None))
        .order_by(func.length(Account.path).desc())
    ).all()


def subtree_ids(session: Session, scope: Account) -> list[int]:
    """The ids of ``scope`` and of every account below it (an admin: every account), one query
    on the materialised path."""
    query = _visible_to(session, scope).with_only_columns(Account.id)
    return sorted(session.scalars(query))  # in id order, sorted here: no temporary B-tree


def lineage(conn: Connection, account_id: int) -> list[int]:
    """The id of ``account_id`` and of each of its ancestors: one recursive query up
    ``parent_id``, compiled once (the stats observer asks on every create, the API's hot path)."""
    return [int(row[0]) for row in _LINEAGE.fetch(conn, {"account_id": account_id})]


def _lineage_statement() -> DriverStatement:
    accounts = cast(Table, Account.__table__)
    up = (
        select(accounts.c.id, accounts.c.parent_id)
        .where(accounts.c.id == bindparam("account_id"))
        .cte("up", recursive=True)
    )
    up = up.union_all(
        select(accounts.c.id, accounts.c.parent_id).join(up, accounts.c.id == up.c.parent_id)
    )
    return DriverStatement(select(up.c.id))


_LINEAGE = _lineage_statement()


def root_ids(session: Session) -> list[int]:
    """The accounts without a parent (the tree's tops), ascending."""
    query = select(Account.id).where(Account.parent_id.is_(None)).order_by(Account.id)
    return list(session.scalars(query).all())


def labels_by_ids(session: Session, ids: Sequence[int]) -> Sequence[Row[int, str, str, str | None]]:
    """(id, uid, name, external_account_id) of the accounts of ``ids`` that exist: Core rows,
    one statement however many (a report page names thousands of merchants)."""
    if not ids:
        return []
    query = select(Account.id, Account.uid, Account.name, Account.external_account_id)
    return session.execute(query.where(among(session, Account.id, ids))).all()


def by_ids(session: Session, ids: Sequence[int]) -> Sequence[Account]:
    """The accounts of ``ids`` that exist, in one statement however many (kit/db.among: a
    partner's day can name more merchants than a statement takes parameters)."""
    return (
        session.scalars(select(Account).where(among(session, Account.id, ids))).all() if ids else []
    )


def get_by_id(session: Session, account_id: int) -> Account | None:
    """The account with this primary key (the owner of a row another domain holds)."""
    return session.get(Account, account_id)


def get_parent_uid(session: Session, account: Account) -> str | None:
    if account.parent_id is None:
        return None
    return session.scalars(select(Account.uid).where(Account.id == account.parent_id)).first()


# --- operator (CLI) queries: not tenant-scoped, never reached from the API ----------------------


def get_by_uid(session: Session, uid: str) -> Account | None:
    return session.scalars(select(Account).where(Account.uid == uid)).first()


def first_admin(session: Session) -> Account | None:
    return session.scalars(
        select(Account).where(Account.role == Role.ADMIN).order_by(Account.id).limit(1)
    ).first()


def list_all(session: Session) -> Sequence[Account]:
    return session.scalars(select(Account).order_by(Account.path)).all()


def any_exists(session: Session) -> bool:
    return session.scalars(select(Account.id).limit(1)).first() is not None


def add(session: Session, account: Account) -> Account:
    session.add(account)
    session.flush()
    return account


# --- documents --------------------------------------------------------------------------------


def document_names(session: Session, account: Account) -> list[str]:
    return list(
        session.scalars(
            select(AccountDocument.name)
            .where(AccountDocument.account_id == account.id)
            .order_by(AccountDocument.name)
        )
    )


def documents_named(session: Session, account: Account, names: list[str]) -> list[AccountDocument]:
    return list(
        session.scalars(
            select(AccountDocument).where(
                AccountDocument.account_id == account.id, AccountDocument.name.in_(names)
            )
        )
    )


def get_document(session: Session, account: Account, name: str) -> AccountDocument | None:
    return session.scalars(
        select(AccountDocument).where(
            AccountDocument.account_id == account.id, AccountDocument.name == name
        )
    ).first()


# --- branding ---------------------------------------------------------------------------------


def branding_of(session: Session, account_id: int) -> tuple[str | None, str | None, str | None]:
    """(accent colour, logo sha256, logo content type) of ``account_id``, without the logo's
    bytes; all None when it has no branding."""
    row = session.execute(
        select(
            AccountBranding.accent_colour,
            AccountBranding.logo_sha256,
            AccountBranding.logo_content_type,
        ).where(AccountBranding.account_id == account_id)
    ).first()
    return (row[0], row[1], row[2]) if row is not None else (None, None, None)


def logo_of(session: Session, account_id: int) -> tuple[str, bytes] | None:
    row = session.execute(
        select(AccountBranding.logo_content_type, AccountBranding.logo).where(
            AccountBranding.account_id == account_id
        )
    ).first()
    if row is None or row[0] is None or row[1] is None:
        return None
    return row[0], row[1]


def branding_row(session: Session, account: Account) -> AccountBranding | None:
    return session.get(AccountBranding, account.id)


def add_branding(session: Session, branding: AccountBranding) -> AccountBranding:
    session.add(branding)
    session.flush()
    return branding
