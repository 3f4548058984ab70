"""The queries of receivables/ tables (only this package queries them).

Every query that reads a merchant's data takes its account id: a source, a customer or an
invoice of another merchant is never found. The imports write in bulk (executemany through
Core), not one ORM object per row: 10,000 invoices a call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from mobip.kit.db import DriverInsert, DriverStatement, among, insert_unless_present
from mobip.receivables.models import (
    Allocation,
    ExternalBatch,
    ExternalCustomer,
    ExternalInvoice,
    ExternalInvoiceChange,
    ExternalSource,
    ExternalStatusCode,
    PaymentLink,
)

_CUSTOMERS: Table = ExternalCustomer.__table__  # type: ignore[assignment]
_INVOICES: Table = ExternalInvoice.__table__  # type: ignore[assignment]
_CHANGES: Table = ExternalInvoiceChange.__table__  # type: ignore[assignment]
# An import's rows go through the driver's executemany (kit/db): 10,000 a call.
_INSERT_CUSTOMERS = DriverInsert(_CUSTOMERS)
_INSERT_INVOICES = DriverInsert(_INVOICES)
_INSERT_CHANGES = DriverInsert(_CHANGES)
CUSTOMER_VALUES = ("phone", "email", "balance", "balance_date", "updated_at")
INVOICE_VALUES = (
    "customer_pk",
    "inv_date",
    "due_date",
    "label",
    "amount",
    "external_status",
    "updated_at",
)


def _update_by_id(table: Table, columns: Sequence[str]) -> DriverStatement:
    return DriverStatement(
        update(table)
        .where(table.c.id == bindparam("row_id", type_=table.c.id.type))
        .values({name: bindparam(name, type_=table.c[name].type) for name in columns})
    )


_UPDATE_CUSTOMERS = _update_by_id(_CUSTOMERS, CUSTOMER_VALUES)
_UPDATE_INVOICES = _update_by_id(_INVOICES, INVOICE_VALUES)


# --- sources and mappings ----------------------------------------------------------------------


def get_source(session: Session, account_id: int, source_id: str) -> ExternalSource | None:
    return session.execute(
        select(ExternalSource).where(
            ExternalSource.account_id == account_id, ExternalSource.source_id == source_id
        )
    ).scalar_one_or_none()


def locked_source(
    session: Session, account_id: int, source_id: str, now: datetime
) -> ExternalSource:
    """The merchant's source, created when new, its row locked until the end of the unit of work
    (PostgreSQL: two imports or mappings of one source run one after the other; SQLite's write
    lock already does that)."""
    insert_unless_present(
        session,
        ExternalSource,
        ["account_id", "source_id"],
        account_id=account_id,
        source_id=source_id,
        created_at=now,
    )
    return session.execute(
        select(ExternalSource)
        .where(ExternalSource.account_id == account_id, ExternalSource.source_id == source_id)
        .with_for_update()
    ).scalar_one()


def status_codes(session: Session, source_pks: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    """Each source's (code, MOBIP status) pairs, in the order they were given."""
    found: dict[int, list[tuple[str, str]]] = {pk: [] for pk in source_pks}
    if not source_pks:
        return found
    rows = session.execute(
        select(
            ExternalStatusCode.source_pk, ExternalStatusCode.code, ExternalStatusCode.mobip_status
        )
        .where(ExternalStatusCode.source_pk.in_(source_pks))
        .order_by(ExternalStatusCode.source_pk, ExternalStatusCode.position)
    ).all()
    for source_pk, code, status in rows:
        found[source_pk].append((code, status))
    return found


def replace_status_codes(
    session: Session, source_pk: int, codes: Sequence[tuple[str, str]]
) -> None:
    session.execute(delete(ExternalStatusCode).where(ExternalStatusCode.source_pk == source_pk))
    session.execute(
        insert(ExternalStatusCode),
        [
            {"source_pk": source_pk, "code": code, "mobip_status": status, "position": position}
            for position, (code, status) in enumerate(codes)
        ],
    )


# --- batches --------------------------------------------------------------------------------------


def batch_reply(session: Session, source_pk: int, batch_id: str) -> str | None:
    return session.execute(
        select(ExternalBatch.reply).where(
            ExternalBatch.source_pk == source_pk, ExternalBatch.batch_id == batch_id
        )
    ).scalar_one_or_none()


def add_batch(session: Session, source_pk: int, batch_id: str, reply: str, now: datetime) -> None:
    session.execute(
        insert(ExternalBatch).values(
            source_pk=source_pk, batch_id=batch_id, reply=reply, created_at=now
        )
    )


# --- customers ------------------------------------------------------------------------------------


def _keyed_rows(
    session: Session,
    key: InstrumentedAttribute[str],
    source: InstrumentedAttribute[int],
    source_pk: int,
    keys: Sequence[str],
    *columns: InstrumentedAttribute[Any],
) -> dict[str, tuple[Any, ...]]:
    """The columns of one source's rows whose key is in keys, by key, without loading ORM
    objects."""
    query = select(key, *columns).where(source == source_pk, among(session, key, keys))
    return {row[0]: tuple(row[1:]) for row in session.execute(query)}


def _customer_rows(
    session: Session, source_pk: int, customer_ids: Sequence[str], *columns: Any
) -> dict[str, tuple[Any, ...]]:
    return _keyed_rows(
        session,
        ExternalCustomer.customer_id,
        ExternalCustomer.source_pk,
        source_pk,
        customer_ids,
        *columns,
    )


def existing_customers(
    session: Session, source_pk: int, customer_ids: Sequence[str]
) -> dict[str, tuple[Any, ...]]:
    """(id, phone, email, balance, balance_date) by CustomerId."""
    c = ExternalCustomer
    return _customer_rows(
        session, source_pk, customer_ids, c.id, c.phone, c.email, c.balance, c.balance_date
    )


def customer_pks(session: Session, source_pk: int, customer_ids: Sequence[str]) -> dict[str, int]:
    rows = _customer_rows(session, source_pk, customer_ids, ExternalCustomer.id)
    return {customer_id: pk for customer_id, (pk,) in rows.items()}


def insert_customers(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    _INSERT_CUSTOMERS.execute(session.connection(), rows)


def update_customers(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows of ``row_id`` and CUSTOMER_VALUES (executemany by primary key)."""
    _UPDATE_CUSTOMERS.execute(session.connection(), rows)


def customer_of_account(
    session: Session, account_id: int, source_pk: int, customer_id: str
) -> ExternalCustomer | None:
    return session.execute(
        select(ExternalCustomer).where(
            ExternalCustomer.account_id == account_id,
            ExternalCustomer.source_pk == source_pk,
            ExternalCustomer.customer_id == customer_id,
        )
    ).scalar_one_or_none()


def customer_by_portal_id(session: Session, portal_id: str) -> ExternalCustomer | None:
    """A customer by the public half of its portal token (the portal is reached by its token
    alone; the caller checked the token's signature)."""
    return session.scalars(
        select(ExternalCustomer).where(ExternalCustomer.portal_id == portal_id)
    ).first()


def customers_by_pk(session: Session, pks: Sequence[int]) -> dict[int, ExternalCustomer]:
    query = select(ExternalCustomer).where(among(session, ExternalCustomer.id, pks))
    return {customer.id: customer for customer in session.scalars(query)}


def add_credit(conn: Connection, customer_pk: int, amount: int) -> None:
    conn.execute(
        update(ExternalCustomer)
        .where(ExternalCustomer.id == customer_pk)
        .values(credit=ExternalCustomer.credit + amount)
    )


# --- invoices -------------------------------------------------------------------------------------


def existing_invoices(
    session: Session, source_pk: int, inv_ids: Sequence[str]
) -> dict[str, tuple[Any, ...]]:
    """The columns an import compares, by InvId: (id, customer_pk, inv_date, due_date, label,
    amount, external_status)."""
    return _keyed_rows(
        session,
        ExternalInvoice.inv_id,
        ExternalInvoice.source_pk,
        source_pk,
        inv_ids,
        ExternalInvoice.id,
        ExternalInvoice.customer_pk,
        ExternalInvoice.inv_date,
        ExternalInvoice.due_date,
        ExternalInvoice.label,
        ExternalInvoice.amount,
        ExternalInvoice.external_status,
    )


def insert_invoices(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    _INSERT_INVOICES.execute(session.connection(), rows)


def update_invoices(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows of ``row_id`` and INVOICE_VALUES (executemany by primary key)."""
    _UPDATE_INVOICES.execute(session.connection(), rows)


def insert_changes(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    _INSERT_CHANGES.execute(session.connection(), rows)


def invoices_of_source(
    session: Session, source_pk: int, inv_ids: Sequence[str] | None
) -> list[tuple[ExternalInvoice, str]]:
    """A source's invoices (all, or those of ``inv_ids``) with their CustomerId, by customer
    then InvId."""
    query = (
        select(ExternalInvoice, ExternalCustomer.customer_id)
        .join(ExternalCustomer, ExternalCustomer.id == ExternalInvoice.customer_pk)
        .where(ExternalInvoice.source_pk == source_pk)
        .order_by(ExternalCustomer.customer_id, ExternalInvoice.inv_id)
    )
    if inv_ids is not None:
        query = query.where(among(session, ExternalInvoice.inv_id, inv_ids))
    return [(row[0], row[1]) for row in session.execute(query)]


def invoices_of_customer(session: Session, customer_pk: int) -> list[ExternalInvoice]:
    return list(
        session.execute(
            select(ExternalInvoice)
            .where(ExternalInvoice.customer_pk == customer_pk)
            .order_by(ExternalInvoice.due_date, ExternalInvoice.inv_id)
        ).scalars()
    )


# --- settlement (on the observer's connection) ----------------------------------------------------


def invoices_by_inv_id(
    conn: Connection, account_ids: Sequence[int], inv_ids: Sequence[str]
) -> list[tuple[int, int, str]]:
    """(id, account_id, inv_id) of the invoices of ``account_ids`` whose InvId is one of
    ``inv_ids``, in any of their sources (the caller pairs them). The settlement observer asks
    on every create with a track_id (the API's hot path): a few ids of one merchant, its usual
    case, are looked up one by one through a statement compiled once; more in indexed IN
    queries."""
    if len(account_ids) * len(inv_ids) <= _ONE_BY_ONE:
        return [
            (int(row[0]), int(row[1]), str(row[2]))
            for account_id in account_ids
            for inv_id in inv_ids
            for row in _INVOICE_BY_INV_ID.fetch(conn, {"account_id": account_id, "inv_id": inv_id})
        ]
    query = select(ExternalInvoice.id, ExternalInvoice.account_id, ExternalInvoice.inv_id).where(
        among(conn, ExternalInvoice.account_id, account_ids),
        among(conn, ExternalInvoice.inv_id, list(inv_ids)),
    )
    return [(row[0], row[1], row[2]) for row in conn.execute(query)]


_ONE_BY_ONE = 4
_INVOICE_BY_INV_ID = DriverStatement(
    select(ExternalInvoice.id, ExternalInvoice.account_id, ExternalInvoice.inv_id).where(
        ExternalInvoice.account_id == bindparam("account_id"),
        ExternalInvoice.inv_id == bindparam("inv_id"),
    )
)


def insert_links(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert(PaymentLink), list(rows))


def linked_invoices(conn: Connection, trid: str) -> list[tuple[int, int, int, int]]:
    """(id, customer_pk, amount, paid_amount) of the invoices linked to ``trid``, oldest due
    date first (no due date last), then by InvId."""
    rows = conn.execute(
        select(
            ExternalInvoice.id,
            ExternalInvoice.customer_pk,
            ExternalInvoice.amount,
            ExternalInvoice.paid_amount,
        )
        .join(PaymentLink, PaymentLink.invoice_pk == ExternalInvoice.id)
        .where(PaymentLink.trid == trid)
        .order_by(
            ExternalInvoice.due_date.is_(None), ExternalInvoice.due_date, ExternalInvoice.inv_id
        )
    ).all()
    return [(row[0], row[1], row[2], row[3]) for row in rows]


def add_paid(conn: Connection, invoice_pk: int, delta: int, paid_at: datetime | None) -> None:
    """Add ``delta`` (negative for a reversal) to an invoice's paid amount and set when it was
    covered in full (None: it is not)."""
    conn.execute(
        update(ExternalInvoice)
        .where(ExternalInvoice.id == invoice_pk)
        .values(paid_amount=ExternalInvoice.paid_amount + delta, paid_at=paid_at)
    )


def insert_allocations(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert(Allocation), list(rows))


def allocations_of(conn: Connection, trid: str) -> list[tuple[int, int | None, int, int, int]]:
    """(id, invoice_pk, customer_pk, amount, reversed_amount) of ``trid``'s allocations, the
    last allocated first."""
    rows = conn.execute(
        select(
            Allocation.id,
            Allocation.invoice_pk,
            Allocation.customer_pk,
            Allocation.amount,
            Allocation.reversed_amount,
        )
        .where(Allocation.trid == trid)
        .order_by(Allocation.id.desc())
    ).all()
    return [(row[0], row[1], row[2], row[3], row[4]) for row in rows]


def add_reversed(conn: Connection, allocation_id: int, amount: int) -> None:
    conn.execute(
        update(Allocation)
        .where(Allocation.id == allocation_id)
        .values(reversed_amount=Allocation.reversed_amount + amount)
    )


def invoice_paid(conn: Connection, invoice_pk: int) -> tuple[int, int, datetime | None]:
    """(amount, paid_amount, paid_at) of an invoice."""
    row = conn.execute(
        select(ExternalInvoice.amount, ExternalInvoice.paid_amount, ExternalInvoice.paid_at).where(
            ExternalInvoice.id == invoice_pk
        )
    ).one()
    return row[0], row[1], row[2]


def paid_by(session: Session, invoice_pks: Sequence[int]) -> dict[int, list[str]]:
    """The trids whose payment (not wholly reversed) settled each invoice, in allocation
    order."""
    found: dict[int, list[str]] = {}
    rows = session.execute(
        select(Allocation.invoice_pk, Allocation.trid)
        .where(
            among(session, Allocation.invoice_pk, invoice_pks),
            Allocation.amount > Allocation.reversed_amount,
        )
        .order_by(Allocation.id)
    )
    for invoice_pk, trid in rows:
        if invoice_pk is None:
            continue
        trids = found.setdefault(invoice_pk, [])
        if trid not in trids:
            trids.append(trid)
    return found
