"""Receivables tests' helpers: imports and mappings made through the service, as the endpoints
make them, and payments made PAID / refunded through transactions.service (the checkout's path)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from mobip.accounts.models import Account
from mobip.kit.runtime import Runtime
from mobip.receivables import service
from mobip.transactions import service as transactions

# set_external_invoices' example, copied byte for byte from the spec (see test_parsing).
SPEC_EXAMPLE = (Path(__file__).parent / "spec_example.txt").read_text(encoding="utf-8")
MAPPING = {
    "pending": "status_0",
    "due": "status_1",
    "fully_paid": "status_2|paid",
    "partially_paid": "status_3",
}


def customer(customer_id: str, *invoices: dict[str, Any], **values: Any) -> dict[str, Any]:
    return {"CustomerId": customer_id, **values, "Invoices": list(invoices)}


def invoice(
    inv_id: str, amount: int, due: str | None = "2023-02-01", **values: Any
) -> dict[str, Any]:
    found: dict[str, Any] = {"InvId": inv_id, "Amount_in_cents": str(amount), **values}
    if due is not None:
        found["InvDueDate"] = due
    return found


def import_lists(
    runtime: Runtime,
    merchant: Account,
    lists: str | list[dict[str, Any]],
    *,
    source: str = "erp",
    batch: str | None = None,
) -> dict[str, Any]:
    text = lists if isinstance(lists, str) else json.dumps({"InvoicesLists": lists})
    with runtime.database.transaction() as session:
        owner = session.get(Account, merchant.id)
        assert owner is not None
        return service.set_external_invoices(
            session, owner, source, batch, text, runtime.settings, runtime.clock
        )


def map_statuses(
    runtime: Runtime, merchant: Account, source: str = "erp", **codes: str
) -> dict[str, Any]:
    with runtime.database.transaction() as session:
        owner = session.get(Account, merchant.id)
        assert owner is not None
        return service.set_external_invoice_status(
            session, owner, source, {**MAPPING, **codes}, runtime.clock
        )


def read(
    runtime: Runtime, merchant: Account, ids: str | None = None, source: str = "erp"
) -> dict[str, dict[str, Any]]:
    """get_external_invoices' invoices by InvId."""
    with runtime.database.session() as session:
        owner = session.get(Account, merchant.id)
        assert owner is not None
        reply = service.get_external_invoices(
            session, owner, source, ids, runtime.settings, runtime.clock
        )
    return {item["InvId"]: item for item in reply["InvoicesList"]}


def pay(runtime: Runtime, trid: str, at: datetime | None = None) -> None:
    """The transaction made PAID (the checkout's path: mark_paid)."""
    with runtime.database.transaction() as session:
        found = transactions.get_for_worker(session, trid)
        assert found is not None
        moment = at or runtime.clock.now()
        assert transactions.mark_paid(session, found[0], now=moment, settings=runtime.settings)


def refund(runtime: Runtime, merchant: Account, trid: str, amount: int) -> None:
    """A sandbox refund of ``amount``, reserved then completed (refund_transaction's path)."""
    with runtime.database.transaction() as session:
        owner = session.get(Account, merchant.id)
        assert owner is not None
        reserved = transactions.reserve_refund(
            session, owner, trid, amount, provider="sandbox", clock=runtime.clock
        )
    with runtime.database.transaction() as session:
        transactions.complete_refund(session, reserved, f"re_{reserved.refund_id}", runtime.clock)
