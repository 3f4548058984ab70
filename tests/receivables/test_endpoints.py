"""The external-invoice endpoints over HTTP: the spec's example as a form field and as an uploaded
file, the body limit of the import, errors as the envelope renders them (nothing stored), XML
replies, merchants only, request_invoices_payment's e-mail with the portal link, and the whole
loop from import to a settled invoice read back with its mapped code."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from checkout.support import pay_by_card
from factories import form, make_account, token_for
from mobip.accounts.models import Role
from mobip.accounts.service import NewCredentials
from mobip.delivery.models import OutboxMessage
from mobip.kit.clock import ManualClock
from mobip.kit.runtime import Runtime
from mobip.receivables import settlement
from mobip.receivables.models import ExternalInvoice
from mobip.transactions import observers
from mobip.transactions.models import Transaction
from receivables.support import MAPPING, SPEC_EXAMPLE
from transactions import emails

API = "/api/2.0/mobip"
MARCH = datetime(2023, 3, 15, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def subscribed() -> None:
    observers.subscribe(settlement.observe)  # as mobip.wiring does (again: nothing changes)


@pytest.fixture
def shop(runtime: Runtime, clock: ManualClock) -> NewCredentials:
    clock.set(MARCH)
    return make_account(runtime, name="Bakery Dupont")


@pytest.fixture
def token(client: TestClient, shop: NewCredentials) -> str:
    return token_for(client, shop)


def post(client: TestClient, name: str, **fields: Any) -> Any:
    return client.post(f"{API}/{name}", files=form(**fields))


def get(client: TestClient, name: str, **fields: Any) -> Any:
    return client.request("GET", f"{API}/{name}", files=form(**fields))


def ok(reply: Any) -> dict[str, Any]:
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    assert data["return_code"] == "0"
    return data


def invoice_count(runtime: Runtime) -> int:
    with runtime.database.session() as session:
        return session.execute(select(func.count()).select_from(ExternalInvoice)).scalar_one()


def imported(client: TestClient, token: str) -> None:
    ok(
        post(
            client,
            "set_external_invoices",
            access_token=token,
            ExternalSourceId="erp",
            InvoicesLists=SPEC_EXAMPLE,
        )
    )
    ok(
        post(
            client,
            "set_external_invoice_status",
            access_token=token,
            ExternalSourceId="erp",
            **MAPPING,
        )
    )


def test_the_spec_example_as_a_field_and_as_an_uploaded_file(
    client: TestClient, token: str, runtime: Runtime
) -> None:
    data = ok(
        post(
            client,
            "set_external_invoices",
            access_token=token,
            ExternalSourceId="erp",
            InvoicesLists=SPEC_EXAMPLE,
            BatchId="B1",
        )
    )
    assert (data["customers"], data["invoices_created"]) == ("2", "4")
    # The same file uploaded as a file part (curl -F InvoicesLists=@file.json), to another source.
    reply = client.post(
        f"{API}/set_external_invoices",
        files={
            "access_token": (None, token),
            "ExternalSourceId": (None, "crm"),
            "InvoicesLists": ("invoices.json", SPEC_EXAMPLE.encode(), "application/json"),
        },
    )
    assert ok(reply)["invoices_created"] == "4"
    assert invoice_count(runtime) == 8


def test_a_malformed_list_is_a_400_naming_line_and_column_and_nothing_is_stored(
    client: TestClient, token: str, runtime: Runtime
) -> None:
    broken = SPEC_EXAMPLE.replace("]},\n{", "]}\n{", 1)  # the comma between two customers
    reply = post(
        client,
        "set_external_invoices",
        access_token=token,
        ExternalSourceId="erp",
        InvoicesLists=broken,
    )
    assert reply.status_code == 400
    data = reply.json()
    assert data["return_code"] == "1050"
    assert "line 11, column 1" in data["return_message"]
    bad_amount = SPEC_EXAMPLE.replace('"33000"', '"-5"', 1)
    reply = post(
        client,
        "set_external_invoices",
        access_token=token,
        ExternalSourceId="erp",
        InvoicesLists=bad_amount,
        format="xml",
    )
    assert reply.status_code == 400
    root = ET.fromstring(reply.content)
    assert root.findtext("return_code") == "1051"
    assert "customer 'custom_1', invoice 'inv_002', Amount_in_cents" in (
        root.findtext("return_message") or ""
    )
    assert invoice_count(runtime) == 0


def test_the_import_takes_up_to_8_mib_other_endpoints_the_server_limit(
    client: TestClient, token: str, runtime: Runtime
) -> None:
    customers = [
        {
            "CustomerId": f"c{n}",
            "Invoices": [{"InvId": f"i{n}", "Amount_in_cents": "1", "InvLbl": "x" * 200}],
        }
        for n in range(6000)
    ]
    big = json.dumps({"InvoicesLists": customers})
    assert runtime.settings.max_body_bytes < len(big) < 8 * 1024 * 1024
    data = ok(
        post(
            client,
            "set_external_invoices",
            access_token=token,
            ExternalSourceId="erp",
            InvoicesLists=big,
        )
    )
    assert data["invoices_created"] == "6000"
    reply = post(
        client, "get_external_invoices_status", access_token=token, ExternalSourceId="x" * len(big)
    )
    assert reply.status_code == 413


def test_replies_in_xml_list_the_invoices_and_the_mapping(client: TestClient, token: str) -> None:
    imported(client, token)
    reply = get(
        client,
        "get_external_invoices",
        access_token=token,
        ExternalSourceId="erp",
        InvoicesList="inv_000|inv_404",
        format="xml",
    )
    assert reply.status_code == 200, reply.text
    root = ET.fromstring(reply.content)
    [item] = root.findall("InvoicesList/item")
    assert item.findtext("InvId") == "inv_000"
    assert item.findtext("InvStatus") == "status_1"
    assert item.findtext("mobip_status") == "due"
    assert root.findtext("not_found") == "inv_404"
    reply = get(
        client,
        "get_external_invoices_status",
        access_token=token,
        ExternalSourceId="erp",
        format="xml",
    )
    root = ET.fromstring(reply.content)
    assert [i.findtext("external_statuses") for i in root.findall("InvoiceStatusesList/item")] == [
        "status_0",
        "status_1",
        "status_2|paid",
        "status_3",
    ]


def test_a_code_in_two_statuses_is_a_400(client: TestClient, token: str) -> None:
    reply = post(
        client,
        "set_external_invoice_status",
        access_token=token,
        ExternalSourceId="erp",
        **{**MAPPING, "due": "status_0"},
    )
    assert reply.status_code == 400
    assert reply.json()["return_code"] == "1053"


def test_merchants_only_and_another_merchant_sees_nothing(
    client: TestClient, token: str, runtime: Runtime
) -> None:
    imported(client, token)
    partner = token_for(client, make_account(runtime, role=Role.PARTNER))
    reply = get(client, "get_external_invoices", access_token=partner, ExternalSourceId="erp")
    assert (reply.status_code, reply.json()["return_code"]) == (403, "3001")
    stranger = token_for(client, make_account(runtime, name="Stranger"))
    for name in ("get_external_invoices", "get_external_invoices_status"):
        reply = get(client, name, access_token=stranger, ExternalSourceId="erp")
        assert (reply.status_code, reply.json()["return_code"]) == (404, "4050"), name
    reply = post(
        client,
        "request_invoices_payment",
        access_token=stranger,
        ExternalSourceId="erp",
        CustomerId="custom_1",
        media="EMAIL",
    )
    assert reply.status_code == 404


def test_request_invoices_payment_e_mails_the_due_invoices_with_the_portal_link(
    client: TestClient, token: str, runtime: Runtime, shop: NewCredentials
) -> None:
    imported(client, token)
    portal = ok(
        get(
            client,
            "get_external_invoices",
            access_token=token,
            ExternalSourceId="erp",
            InvoicesList="inv_000",
        )
    )["InvoicesList"][0]["url_portal"]
    data = ok(
        post(
            client,
            "request_invoices_payment",
            access_token=token,
            ExternalSourceId="erp",
            CustomerId="custom_1",
            media="EMAIL",
        )
    )
    assert data["track_id"] == "inv_000|inv_002"
    assert data["amount_in_cents"] == "68000"
    with runtime.database.session() as session:
        transaction = session.execute(
            select(Transaction).where(Transaction.trid == data["trid"])
        ).scalar_one()
        [message] = session.execute(
            select(OutboxMessage).where(OutboxMessage.subject == data["trid"])
        ).scalars()
    assert message.target == "custom1@email.com"
    assert transaction.total_amount == 68000
    mail = emails.payment_request(runtime, transaction)
    assert portal in mail.text
    assert f'href="{portal}"' in mail.html
    # Paid on its page: both invoices settled, read back with the code mapped to fully_paid.
    pay_by_card(client, "/pay/" + data["url_checkout"].rsplit("/pay/", 1)[1])
    invoices = {
        i["InvId"]: i
        for i in ok(
            get(client, "get_external_invoices", access_token=token, ExternalSourceId="erp")
        )["InvoicesList"]
    }
    assert {k: (v["mobip_status"], v["InvStatus"]) for k, v in invoices.items()} == {
        "inv_000": ("fully_paid", "status_2"),
        "inv_002": ("fully_paid", "status_2"),
        "inv_003": ("due", "status_1"),
        "inv_004": ("due", "status_1"),
    }
    assert invoices["inv_000"]["paid_by"] == data["trid"]
    # Nothing left to ask for that customer.
    reply = post(
        client,
        "request_invoices_payment",
        access_token=token,
        ExternalSourceId="erp",
        CustomerId="custom_1",
        media="EMAIL",
    )
    assert (reply.status_code, reply.json()["return_code"]) == (409, "5070")


def test_request_invoices_payment_refuses_what_it_cannot_ask_and_queues_nothing(
    client: TestClient, token: str, runtime: Runtime
) -> None:
    imported(client, token)
    cases = [
        ({"CustomerId": "nobody"}, 404, "4051"),
        ({"InvoicesList": "inv_003"}, 400, "1002"),  # custom_2's
        ({"InvoicesList": "|".join(["inv_000"] * 2 + ["x" * 64] * 4)}, 400, "1002"),
        ({"media": "FAX"}, 400, "1002"),
    ]
    for fields, status, code in cases:
        reply = post(
            client,
            "request_invoices_payment",
            access_token=token,
            **{"ExternalSourceId": "erp", "CustomerId": "custom_1", "media": "EMAIL", **fields},
        )
        assert (reply.status_code, reply.json()["return_code"]) == (status, code), fields
    with runtime.database.session() as session:
        assert session.execute(select(func.count()).select_from(Transaction)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 0


def test_too_many_invoices_for_one_track_id_names_invoices_list(
    client: TestClient, token: str
) -> None:
    lists = [
        {
            "CustomerId": "c",
            "Invoices": [
                {
                    "InvId": f"invoice-number-{n:04d}",
                    "Amount_in_cents": "10",
                    "InvDueDate": "2023-01-01",
                }
                for n in range(20)
            ],
        }
    ]
    ok(
        post(
            client,
            "set_external_invoices",
            access_token=token,
            ExternalSourceId="erp",
            InvoicesLists=json.dumps(lists),
        )
    )
    reply = post(
        client,
        "request_invoices_payment",
        access_token=token,
        ExternalSourceId="erp",
        CustomerId="c",
        media="EMAIL",
    )
    assert reply.status_code == 400
    assert "InvoicesList" in reply.json()["return_message"]
