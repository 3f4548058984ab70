from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from factories import form, make_account, token_for
from mobip.accounts import service
from mobip.accounts.models import Account, Role
from mobip.accounts.service import NewCredentials
from mobip.kit.runtime import Runtime

GET_ACCOUNT = "/api/2.0/mobip/get_account"
BY_EXTERNAL_ID = "/api/2.0/mobip/get_account_by_external_id"
UPDATE = "/api/2.0/mobip/update_account"


@dataclass
class Tree:
    admin: NewCredentials
    partner: NewCredentials
    merchant: NewCredentials  # under partner
    other_partner: NewCredentials
    other_merchant: NewCredentials  # under other_partner


@pytest.fixture
def tree(runtime: Runtime) -> Tree:
    admin = make_account(runtime, role=Role.ADMIN, name="Platform")
    partner = make_account(runtime, role=Role.PARTNER, parent=admin, external_id="P1")
    merchant = make_account(runtime, parent=partner, external_id="M1")
    other_partner = make_account(runtime, role=Role.PARTNER, parent=admin, external_id="P2")
    other_merchant = make_account(runtime, parent=other_partner, external_id="M2")
    return Tree(admin, partner, merchant, other_partner, other_merchant)


def attributes(reply: dict[str, object]) -> dict[str, dict[str, str]]:
    rows = reply["account_data"]
    assert isinstance(rows, list)
    return {row["attribute_name"]: row for row in rows}


def get_account(
    client: TestClient, caller: NewCredentials, uid: str, **extra: str
) -> tuple[int, dict[str, object]]:
    reply = client.request(
        "GET", GET_ACCOUNT, files=form(access_token=token_for(client, caller), uid=uid, **extra)
    )
    return reply.status_code, reply.json()


# (caller, target) → expected status of get_account / update_account
MATRIX = [
    ("admin", "admin", 200),
    ("admin", "partner", 200),
    ("admin", "merchant", 200),
    ("admin", "other_merchant", 200),
    ("partner", "partner", 200),
    ("partner", "merchant", 200),
    ("partner", "admin", 404),
    ("partner", "other_partner", 404),
    ("partner", "other_merchant", 404),
    ("merchant", "merchant", 403),
    ("merchant", "partner", 403),
    ("other_merchant", "merchant", 403),
]


@pytest.mark.parametrize(("caller", "target", "expected"), MATRIX)
def test_get_account_visibility(
    client: TestClient, tree: Tree, caller: str, target: str, expected: int
) -> None:
    status, reply = get_account(client, getattr(tree, caller), getattr(tree, target).account.uid)
    assert status == expected, reply
    if expected == 200:
        assert attributes(reply)["uid"]["attribute_value"] == getattr(tree, target).account.uid
    else:
        assert reply["return_code"] == {403: "3001", 404: "4002"}[expected]


@pytest.mark.parametrize(("caller", "target", "expected"), MATRIX)
def test_update_account_visibility(
    client: TestClient, runtime: Runtime, tree: Tree, caller: str, target: str, expected: int
) -> None:
    target_creds = getattr(tree, target)
    reply = client.post(
        UPDATE,
        files=form(
            access_token=token_for(client, getattr(tree, caller)),
            uid=target_creds.account.uid,
            account_data=json.dumps({"Payment_Provider_login": "changed"}),
        ),
    )
    assert reply.status_code == expected, reply.json()
    with runtime.database.transaction() as session:
        login = session.scalars(
            select(Account.provider_login).where(Account.uid == target_creds.account.uid)
        ).one()
    assert login == ("changed" if expected == 200 else None)


@pytest.mark.parametrize(
    ("caller", "external_id", "expected"),
    [
        ("admin", "M2", 200),
        ("partner", "P1", 200),
        ("partner", "M1", 200),
        ("partner", "M2", 404),
        ("partner", "P2", 404),
        ("merchant", "M1", 200),
        ("merchant", "P1", 404),
        ("other_merchant", "M1", 404),
        ("merchant", "nope", 404),
    ],
)
def test_get_account_by_external_id_visibility(
    client: TestClient, tree: Tree, caller: str, external_id: str, expected: int
) -> None:
    reply = client.request(
        "GET",
        BY_EXTERNAL_ID,
        files=form(
            access_token=token_for(client, getattr(tree, caller)), external_account_id=external_id
        ),
    )
    assert reply.status_code == expected
    if expected == 200:
        assert attributes(reply.json())["External_AccountID"]["attribute_value"] == external_id
    else:
        # Not found and not yours are the same reply.
        assert reply.json() == {"return_code": "4002", "return_message": "Account not found"}


def test_account_data_lists_every_attribute_with_type_and_updatability(
    client: TestClient, tree: Tree
) -> None:
    status, reply = get_account(client, tree.partner, tree.merchant.account.uid)
    assert status == 200
    rows = attributes(reply)
    assert rows["parent_uid"]["attribute_value"] == tree.partner.account.uid
    assert rows["role"]["attribute_value"] == "merchant"
    assert rows["currency"]["attribute_value"] == "EUR"
    assert rows["country"] == {  # our extension, set by the operator
        "attribute_name": "country",
        "attribute_type": "string",
        "attribute_value": "FR",
        "is_updatable": "false",
    }
    assert rows["External_AccountID"] == {
        "attribute_name": "External_AccountID",
        "attribute_type": "string",
        "attribute_value": "M1",
        "is_updatable": "true",
    }
    updatable = {name for name, row in rows.items() if row["is_updatable"] == "true"}
    assert updatable == set(service.UPDATABLE)
    assert rows["created_at"]["attribute_type"] == "datetime"


def test_update_account_sets_keys_and_never_returns_the_private_key(
    client: TestClient, runtime: Runtime, tree: Tree
) -> None:
    private_key = "sk_test_" + "S3cr3tPrivateKeyValue" * 2 + "WXYZ"
    reply = client.post(
        UPDATE,
        files=form(
            access_token=token_for(client, tree.partner),
            uid=tree.merchant.account.uid,
            account_data=json.dumps(
                {
                    "External_AccountID": "M1-new",
                    "Public_Payment_Provider_key": "pk_test_public",
                    "Private_Payment_Provider_key": private_key,
                    "Payment_Provider_login": "acct_login",
                }
            ),
        ),
    )
    assert reply.json() == {"return_code": "0"}
    status, data = get_account(client, tree.partner, tree.merchant.account.uid)
    assert status == 200
    rows = attributes(data)
    assert rows["External_AccountID"]["attribute_value"] == "M1-new"
    assert rows["Public_Payment_Provider_key"]["attribute_value"] == "pk_test_public"
    assert rows["Private_Payment_Provider_key"]["attribute_value"] == "****WXYZ"
    assert private_key not in json.dumps(data)
    with runtime.database.transaction() as session:
        stored = session.scalars(
            select(Account).where(Account.uid == tree.merchant.account.uid)
        ).one()
        assert stored.provider_private_key_encrypted
        assert private_key not in stored.provider_private_key_encrypted
        assert runtime.encryptor.decrypt(stored.provider_private_key_encrypted) == private_key


def test_private_key_absent_in_clear_from_database_file_and_logs(
    client: TestClient,
    runtime: Runtime,
    tree: Tree,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not runtime.database.is_sqlite:
        pytest.skip("scans the SQLite file; the PostgreSQL half checks the column in another test")
    caplog.set_level(logging.DEBUG)
    private_key = "sk_live_NEVER_IN_CLEAR_" + "q" * 40
    token = token_for(client, tree.admin)
    reply = client.post(
        UPDATE,
        files=form(
            access_token=token,
            uid=tree.merchant.account.uid,
            account_data=json.dumps({"Private_Payment_Provider_key": private_key}),
        ),
    )
    assert reply.status_code == 200
    runtime.database.dispose()  # checkpoint the WAL into the file
    db_path = Path(runtime.database.url.removeprefix("sqlite:///"))
    files = [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]
    for path in files:
        assert private_key.encode() not in path.read_bytes()
    assert private_key not in caplog.text
    assert token not in caplog.text
    assert "request" in caplog.text  # the access log did run


@pytest.mark.parametrize(
    ("account_data", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        ("{}", "JSON object"),
        ('{"uid": "x"}', "uid"),
        ('{"External_AccountID": "ok", "name": "x"}', "name"),
        ('{"External_AccountID": 5}', "string"),
        ('{"Payment_Provider_login": "' + "x" * 300 + '"}', "longer than 255"),
    ],
)
def test_update_account_rejects_bad_account_data_and_changes_nothing(
    client: TestClient, runtime: Runtime, tree: Tree, account_data: str, fragment: str
) -> None:
    reply = client.post(
        UPDATE,
        files=form(
            access_token=token_for(client, tree.admin),
            uid=tree.merchant.account.uid,
            account_data=account_data,
        ),
    )
    assert reply.status_code == 400
    assert reply.json()["return_code"] == "1002"
    assert "account_data" in reply.json()["return_message"]
    assert fragment in reply.json()["return_message"]
    with runtime.database.transaction() as session:
        merchant = session.scalars(
            select(Account).where(Account.uid == tree.merchant.account.uid)
        ).one()
    assert merchant.external_account_id == "M1"
    assert merchant.provider_login is None


def test_update_account_duplicate_external_id_is_a_conflict_and_atomic(
    client: TestClient, runtime: Runtime, tree: Tree
) -> None:
    sibling = make_account(runtime, parent=tree.partner, external_id="M1-sibling")
    reply = client.post(
        UPDATE,
        files=form(
            access_token=token_for(client, tree.partner),
            uid=sibling.account.uid,
            account_data=json.dumps(
                {"Payment_Provider_login": "would-change", "External_AccountID": "M1"}
            ),
        ),
    )
    assert reply.status_code == 409
    assert reply.json()["return_code"] == "5001"
    with runtime.database.transaction() as session:
        stored = session.scalars(select(Account).where(Account.uid == sibling.account.uid)).one()
    assert (stored.external_account_id, stored.provider_login) == ("M1-sibling", None)
    # The same external id under another parent is fine.
    other = client.post(
        UPDATE,
        files=form(
            access_token=token_for(client, tree.other_partner),
            uid=tree.other_merchant.account.uid,
            account_data=json.dumps({"External_AccountID": "M1"}),
        ),
    )
    assert other.status_code == 200


def test_documents_are_returned_by_name_and_unknown_names_are_errors(
    client: TestClient, runtime: Runtime, tree: Tree
) -> None:
    content = b"%PDF-1.4 fake kbis"
    with runtime.database.transaction() as session:
        service.add_document(
            session,
            tree.merchant.account.uid,
            name="kbis.pdf",
            content=content,
            content_type=None,
            now=runtime.clock.now(),
        )
        service.add_document(
            session,
            tree.merchant.account.uid,
            name="rib.txt",
            content=b"FR76",
            content_type=None,
            now=runtime.clock.now(),
        )
    uid = tree.merchant.account.uid
    status, reply = get_account(client, tree.partner, uid, document_list="kbis.pdf")
    assert status == 200
    assert attributes(reply)["document_names"]["attribute_value"] == "kbis.pdf|rib.txt"
    assert reply["documents"] == [
        {
            "name": "kbis.pdf",
            "content_type": "application/pdf",
            "size": str(len(content)),
            "sha256": hashlib.sha256(content).hexdigest(),
            "content": base64.b64encode(content).decode(),
        }
    ]
    status, only = get_account(
        client, tree.partner, uid, document_list="rib.txt|kbis.pdf", document_only="true"
    )
    assert status == 200
    assert set(only) == {"return_code", "documents"}
    assert [doc["name"] for doc in only["documents"]] == ["rib.txt", "kbis.pdf"]  # type: ignore[union-attr]

    status, missing = get_account(client, tree.partner, uid, document_list="kbis.pdf|nope|x.doc")
    assert status == 404
    assert missing["return_code"] == "4003"
    assert "nope" in str(missing["return_message"]) and "x.doc" in str(missing["return_message"])

    status, no_list = get_account(client, tree.partner, uid, document_only="1")
    assert (status, no_list["return_code"]) == (400, "1001")
    assert "document_list" in str(no_list["return_message"])


def test_document_only_must_be_a_boolean(client: TestClient, tree: Tree) -> None:
    status, reply = get_account(
        client, tree.admin, tree.merchant.account.uid, document_only="maybe"
    )
    assert (status, reply["return_code"]) == (400, "1002")
    assert "document_only" in str(reply["return_message"])


def test_xml_reply_of_get_account(client: TestClient, tree: Tree) -> None:
    reply = client.request(
        "GET",
        GET_ACCOUNT,
        files=form(
            access_token=token_for(client, tree.admin), uid=tree.partner.account.uid, format="xml"
        ),
    )
    assert reply.headers["content-type"].startswith("application/xml")
    import xml.etree.ElementTree as ET

    root = ET.fromstring(reply.text)
    assert root.findtext("return_code") == "0"
    names = [item.findtext("attribute_name") for item in root.find("account_data")]  # type: ignore[union-attr]
    assert "External_AccountID" in names


def test_external_id_seen_twice_by_the_caller_is_ambiguous(
    client: TestClient, runtime: Runtime, tree: Tree
) -> None:
    make_account(runtime, parent=tree.other_partner, external_id="M1")  # M1 under both partners
    reply = client.request(
        "GET",
        BY_EXTERNAL_ID,
        files=form(access_token=token_for(client, tree.admin), external_account_id="M1"),
    )
    assert (reply.status_code, reply.json()["return_code"]) == (409, "5002")
    # Each partner still sees exactly its own.
    mine = client.request(
        "GET",
        BY_EXTERNAL_ID,
        files=form(access_token=token_for(client, tree.partner), external_account_id="M1"),
    )
    assert attributes(mine.json())["uid"]["attribute_value"] == tree.merchant.account.uid
