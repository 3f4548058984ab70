"""Feed tests' helpers: payments made PAID and refunds made through transactions' service, as
the checkout and refund_transaction make them; the feed's endpoints called over HTTP."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.testclient import TestClient

from factories import TRANSACTION
from mobip.accounts.models import Account
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions

GET = "/api/2.0/neosystems/get_mobip_transactions"
SET = "/api/2.0/neosystems/set_mobip_transactions"


def paid(runtime: Runtime, shop: Account, item: int = 1_000, tax: int = 200, **fields: Any) -> str:
    """A transaction of ``shop`` made as the create endpoints make one, then PAID now (its fee
    from the schedule in force), in one unit of work that takes SQLite's write lock at once
    (tests write from several threads); its trid."""
    with runtime.database.transaction(immediate=True) as session:
        owner = session.get(Account, shop.id)
        assert owner is not None
        data = replace(TRANSACTION, item_amount=item, tax_amount=tax, **fields)
        prepared = transactions.prepare_create(owner, data, runtime.settings, runtime.clock)
        transactions.write_created(session.connection(), [prepared])
        found = transactions.get_of_account(session, owner, prepared.trid)
        assert found is not None
        assert transactions.mark_paid(
            session, found, now=runtime.clock.now(), settings=runtime.settings
        )
        return prepared.trid


def refund(runtime: Runtime, shop: Account, trid: str, amount: int | None = None) -> None:
    """A refund of ``amount`` (default: all that is left), reserved then completed as
    refund_transaction does once the provider took it."""
    with runtime.database.transaction(immediate=True) as session:
        owner = session.get(Account, shop.id)
        assert owner is not None
        reserved = transactions.reserve_refund(
            session, owner, trid, amount, provider="sandbox", clock=runtime.clock
        )
    with runtime.database.transaction(immediate=True) as session:
        transactions.complete_refund(
            session, reserved, f"sandbox_{reserved.refund_id}", runtime.clock
        )


def pull(client: TestClient, token: str, **fields: str) -> Any:
    """get_mobip_transactions' reply (the httpx response)."""
    return client.get(GET, params={"access_token": token, **fields})


def lines(client: TestClient, token: str, **fields: str) -> list[dict[str, str]]:
    reply = pull(client, token, **fields)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["return_code"] == "0"
    found: list[dict[str, str]] = data["transactions_list"]
    return found


def ack(client: TestClient, token: str, *trids: str) -> Any:
    """set_mobip_transactions' reply (the httpx response) for ``trids``."""
    return client.post(
        SET, files={"access_token": (None, token), "trid_list": (None, "|".join(trids))}
    )
