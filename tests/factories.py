"""Plain factory functions for tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import MetaData
from starlette.testclient import TestClient

from mobip.accounts import service as accounts_service
from mobip.accounts.models import Account, Language, Role
from mobip.accounts.service import NewCredentials
from mobip.kit.db import Database
from mobip.kit.runtime import Runtime
from mobip.transactions import repository as transactions_repository
from mobip.transactions import service as transactions_service
from mobip.transactions.models import Transaction, TransactionKind


def free_port() -> int:
    """A TCP port free on loopback now (for a real server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_account(
    runtime: Runtime,
    *,
    role: Role = Role.MERCHANT,
    parent: NewCredentials | None = None,
    name: str | None = None,
    external_id: str | None = None,
    currency: str = "EUR",
) -> NewCredentials:
    with runtime.database.transaction() as session:
        return accounts_service.create_account(
            session,
            name=name or f"{role.value} account",
            role=role,
            parent_uid=parent.account.uid if parent else None,
            currency=currency,
            language=Language.EN,
            external_id=external_id,
            now=runtime.clock.now(),
        )


# make_transaction's values: a payment request by e-mail, in English, no reminders.
TRANSACTION = transactions_service.NewTransaction(
    kind=TransactionKind.PAYMENT_REQUEST,
    item_amount=1250,
    tax_amount=250,
    item_name="Blue mug",
    redirect_url="https://shop.example/thanks?order=7",
    call_back_url="https://shop.example/callback",
    track_id="order-7",
    customer_name="Ada Lovelace",
    customer_email="ada@example.com",
    customer_phone=None,
    media="EMAIL",
    language="EN",
    retry_period_days=0,
    retry_attempts=0,
    ttl_days=30,
)


def make_transaction(runtime: Runtime, merchant: Account, **overrides: Any) -> Transaction:
    """A PENDING transaction of ``merchant``, made as the create endpoints make one (prepare_create,
    then write_created in one unit of work); ``overrides`` change TRANSACTION's fields."""
    with runtime.database.transaction() as session:
        account = session.get(Account, merchant.id)
        assert account is not None
        prepared = transactions_service.prepare_create(
            account, replace(TRANSACTION, **overrides), runtime.settings, runtime.clock
        )
        transactions_service.write_created(session.connection(), [prepared])
        found = transactions_repository.get_with_merchant_by_trid(session, prepared.trid)
        assert found is not None
        return found[0]


def token_for(client: TestClient, creds: NewCredentials, **extra: Any) -> str:
    reply = client.request(
        "GET",
        "/api/2.0/mobip/get_token",
        files={
            "api_account_id": (None, creds.account.api_account_id),
            "api_secret_key": (None, creds.api_secret_key),
            **{k: (None, str(v)) for k, v in extra.items()},
        },
    )
    assert reply.status_code == 200, reply.text
    token = reply.json()["access_token"]
    assert isinstance(token, str)
    return token


def form(**fields: Any) -> dict[str, tuple[None, str]]:
    """Fields as httpx ``files=`` so the body is multipart/form-data, as the spec requires."""
    return {name: (None, str(value)) for name, value in fields.items()}


@contextmanager
def own_tables(database: Database, metadata: MetaData) -> Iterator[Database]:
    """A test's own tables, made for it and dropped after (the shared schema stays untouched)."""
    metadata.create_all(database.engine)
    try:
        yield database
    finally:
        metadata.drop_all(database.engine)
