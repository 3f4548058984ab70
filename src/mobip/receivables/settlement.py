"""A payment settles invoices: the observer of the transactions (transactions/observers.py) that
receivables subscribes (``mobip.wiring``).

- CREATED with a track_id: each ``|``-separated id must be an InvId found in exactly one of the
  merchant's sources; then the transaction is linked to those invoices. An unknown or ambiguous
  id leaves it unlinked (logged); nothing fails.
- PAID: the transaction's total is given to its invoices, oldest due date first (no due date
  last), each up to what is left on it; what is left over goes to the customer's credit (the
  customer of the last invoice), never lost.
- REFUNDED: the refund takes back the allocations in the reverse order they were made (the
  credit first, then the invoice with the latest due date), up to the refund's amount.

It runs in the unit of work that changed the transaction (on its connection) and on the API's
hot path: a CREATED without a track_id costs nothing, one with a track_id one indexed query
(for a whole group commit's batch), a PAID or a REFUNDED one indexed query when nothing is
linked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from mobip.receivables import repository
from mobip.transactions.observers import Change, Happening

log = logging.getLogger("mobip.receivables")

_SEPARATOR = "|"


def observe(conn: Connection, changes: Sequence[Change]) -> None:
    """Link, allocate or reverse, as each change says (see the module's docstring)."""
    created = [c for c in changes if c.happening is Happening.CREATED and c.track_id]
    if created:
        _link(conn, created)
    for change in changes:
        if change.happening is Happening.PAID:
            _allocate(conn, change)
        elif change.happening is Happening.REFUNDED and change.refund_amount > 0:
            _reverse(conn, change)


def track_ids(track_id: str) -> list[str]:
    """The invoice ids a track_id lists (``inv_000|inv_002``), without blanks or repeats."""
    return list(dict.fromkeys(p.strip() for p in track_id.split(_SEPARATOR) if p.strip()))


def _link(conn: Connection, created: Sequence[Change]) -> None:
    wanted = {c.trid: track_ids(c.track_id or "") for c in created}
    all_ids = {inv_id for ids in wanted.values() for inv_id in ids}
    if not all_ids:
        return
    accounts = sorted({c.account_id for c in created})
    found: dict[tuple[int, str], list[int]] = {}
    for pk, account_id, inv_id in repository.invoices_by_inv_id(conn, accounts, sorted(all_ids)):
        found.setdefault((account_id, inv_id), []).append(pk)
    rows: list[dict[str, Any]] = []
    for change in created:
        ids = wanted[change.trid]
        if not ids:
            continue
        matches = [found.get((change.account_id, inv_id), []) for inv_id in ids]
        unknown = [i for i, m in zip(ids, matches, strict=True) if not m]
        ambiguous = [i for i, m in zip(ids, matches, strict=True) if len(m) > 1]
        if unknown or ambiguous:
            if len(unknown) < len(ids):  # some ids are invoices: worth telling the operator
                log.warning(
                    "transaction %s not linked to invoices: unknown %s, in several sources %s",
                    change.trid,
                    unknown,
                    ambiguous,
                )
            continue
        rows.extend(
            {
                "trid": change.trid,
                "invoice_pk": match[0],
                "account_id": change.account_id,
                "created_at": change.at,
            }
            for match in matches
        )
    repository.insert_links(conn, rows)


def _allocate(conn: Connection, change: Change) -> None:
    invoices = repository.linked_invoices(conn, change.trid)
    if not invoices:
        return
    left = change.total_amount
    allocations: list[dict[str, Any]] = []
    for invoice_pk, customer_pk, amount, paid in invoices:
        open_amount = amount - paid
        if left <= 0 or open_amount <= 0:
            continue
        given = min(open_amount, left)
        left -= given
        full = paid + given >= amount
        repository.add_paid(conn, invoice_pk, given, change.at if full else None)
        allocations.append(_allocation(change, invoice_pk, customer_pk, given))
    if left > 0:
        customer_pk = invoices[-1][1]
        repository.add_credit(conn, customer_pk, left)
        allocations.append(_allocation(change, None, customer_pk, left))
    repository.insert_allocations(conn, allocations)
    log.info("transaction %s settled %d invoice part(s)", change.trid, len(allocations))


def _allocation(
    change: Change, invoice_pk: int | None, customer_pk: int, amount: int
) -> dict[str, Any]:
    return {
        "trid": change.trid,
        "account_id": change.account_id,
        "invoice_pk": invoice_pk,
        "customer_pk": customer_pk,
        "amount": amount,
        "reversed_amount": 0,
        "created_at": change.at,
    }


def _reverse(conn: Connection, change: Change) -> None:
    left = change.refund_amount
    for (
        allocation_id,
        invoice_pk,
        customer_pk,
        amount,
        reversed_amount,
    ) in repository.allocations_of(conn, change.trid):
        if left <= 0:
            break
        taken = min(amount - reversed_amount, left)
        if taken <= 0:
            continue
        left -= taken
        repository.add_reversed(conn, allocation_id, taken)
        if invoice_pk is None:
            repository.add_credit(conn, customer_pk, -taken)
            continue
        total, paid, paid_at = repository.invoice_paid(conn, invoice_pk)
        still_full = paid - taken >= total
        repository.add_paid(conn, invoice_pk, -taken, paid_at if still_full else None)
