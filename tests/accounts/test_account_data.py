"""update_account's account_data JSON: duplicate keys, lone surrogates, control characters."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from factories import form, make_account, token_for
from mobip.accounts.models import Account, Role
from mobip.kit.runtime import Runtime

UPDATE = "/api/2.0/mobip/update_account"


@pytest.mark.parametrize(
    ("account_data", "fragment"),
    [
        # Before: the last copy won silently (duplicate form fields are a 1006).
        ('{"External_AccountID": "A", "External_AccountID": "B"}', "External_AccountID"),
        # Before: a 500 (the lone surrogate could not be encoded for the database).
        ('{"External_AccountID": "\\ud800"}', "External_AccountID"),
        ('{"Payment_Provider_login": "a\\udfffb"}', "Payment_Provider_login"),
        ('{"\\ud800": "x"}', "account_data"),
        # Before: stored (SQLite) or a 500 (PostgreSQL).
        ('{"External_AccountID": "a\\u0000b"}', "External_AccountID"),
        ('{"External_AccountID": "a\\u001bb"}', "External_AccountID"),
        ('{"Payment_Provider_login": "a\\u202eb"}', "Payment_Provider_login"),
        ('{"Public_Payment_Provider_key": "a\\u0085b"}', "Public_Payment_Provider_key"),
    ],
)
def test_update_account_refuses_unsafe_json_and_changes_nothing(
    client: TestClient, runtime: Runtime, account_data: str, fragment: str
) -> None:
    admin = make_account(runtime, role=Role.ADMIN)
    merchant = make_account(runtime, parent=admin, external_id="M1")
    for fmt in ("json", "xml"):
        reply = client.post(
            UPDATE,
            files=form(
                access_token=token_for(client, admin),
                uid=merchant.account.uid,
                account_data=account_data,
                format=fmt,
            ),
        )
        assert reply.status_code == 400, reply.text
        if fmt == "json":
            body = reply.json()
            assert body["return_code"] == "1002"
            assert "'account_data'" in body["return_message"]
            assert fragment in body["return_message"]
    with runtime.database.transaction() as session:
        stored = session.scalars(select(Account).where(Account.uid == merchant.account.uid)).one()
    assert stored.external_account_id == "M1"
    assert stored.provider_login is None
    assert stored.provider_public_key is None


def test_duplicate_keys_are_refused_even_when_they_agree(
    client: TestClient, runtime: Runtime
) -> None:
    admin = make_account(runtime, role=Role.ADMIN)
    merchant = make_account(runtime, parent=admin)
    reply = client.post(
        UPDATE,
        files=form(
            access_token=token_for(client, admin),
            uid=merchant.account.uid,
            account_data='{"Payment_Provider_login": "a", "Payment_Provider_login": "a"}',
        ),
    )
    assert reply.status_code == 400
    assert "more than once" in reply.json()["return_message"]
