"""Plain factory functions for tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import MetaData
from starlette.testclient import TestClient

from mobip.accounts import service as accounts_service
from mobip.accounts.models import Language, Role
from mobip.accounts.service import NewCredentials
from mobip.kit.db import Database
from mobip.kit.runtime import Runtime


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
