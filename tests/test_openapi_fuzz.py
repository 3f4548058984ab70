"""schemathesis against the OpenAPI document: what the document allows, the server accepts.

The app runs in process on a fresh migrated SQLite database, with a merchant (and, for the account
operations, its partner) whose token goes in the Bearer header, so authenticated operations get
past authentication. Every operation is fed
requests the document calls valid (the server must not refuse them: ST202) and requests it calls
invalid (the server must refuse them: ST201), as multipart and urlencoded bodies, GET included
(and each read's POST form, an operation of its own); no reply may be a 5xx, and every reply must
match its documented status, media type and schema, XML replies included (parsed back with the
document's own shapes).

A bounded, derandomized run is part of `make test`; `make fuzz` sets MOBIP_FUZZ_EXAMPLES for a
longer one.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
import schemathesis
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.config._checks import PositiveDataAcceptanceConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient

from billing.support import make_invoice
from callback_receiver import Receiver, running_receiver
from factories import form, make_account, token_for
from mobip.accounts.models import Role
from mobip.api.openapi import POST_FORM_SUFFIX, build_openapi
from mobip.app import ENDPOINTS, create_app
from mobip.config import Settings
from mobip.kit.clock import ManualClock
from mobip.kit.db import Database
from mobip.kit.runtime import Runtime
from products.support import make_reusable_qr, serve_photos
from receivables.support import MAPPING, SPEC_EXAMPLE, import_lists, map_statuses

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"

# `make fuzz` sets MOBIP_FUZZ_EXAMPLES: many more examples, and schemathesis's coverage phase
# (every boundary: empty, shortest, longest, just past each limit). That phase draws each
# maximum-length value character by character through the fields' patterns (a 20,000-character
# account_data, 2,048-character URLs): ≈ 50 s before the first request, too long for `make test`.
LONG_RUN = "MOBIP_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("MOBIP_FUZZ_EXAMPLES", "25"))
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]

# The document the app serves at /api/2.0/openapi.json (the same function builds it). It is loaded
# at import: schemathesis's fixture-based loader does not work with pytest 9.2's nodes.
SPEC: dict[str, Any] = json.loads(json.dumps(build_openapi(ENDPOINTS)))
schema = schemathesis.openapi.from_dict(SPEC)
schema.config.generation.update(max_examples=EXAMPLES, deterministic=True)
schema.config.phases.coverage.enabled = LONG_RUN
# The fields' examples (what /docs's form starts from) cannot run with @schema.given (ACCOUNT_DATA
# below); tests/api/test_openapi.py checks each against its schema instead.
schema.config.phases.examples.enabled = False
# A valid request may still meet a state the document cannot know: 401, 403, 404, 409, 429
# (schemathesis's defaults, less 3xx: the API never redirects).
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=["2xx", "401", "403", "404", "409", "429", "5xx"]
)

# International numbers that phonenumbers calls valid, one per region, for `format: phone`
# (validity is a table lookup, not a pattern).
PHONE_NUMBERS = sorted(
    phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    for region in sorted(phonenumbers.SUPPORTED_REGIONS)
    if (number := phonenumbers.example_number(region)) is not None
)
schemathesis.openapi.format("phone", st.sampled_from(PHONE_NUMBERS))


@schemathesis.deserializer("application/xml")
def _xml_reply(ctx: schemathesis.DeserializationContext, response: schemathesis.Response) -> Any:
    """An XML reply read back into the JSON shape its documented schema gives (or a failure)."""
    root = ET.fromstring(response.content)
    assert root.tag == "mobip"
    assert ctx.operation is not None
    documented = ctx.operation.definition.raw["responses"].get(str(response.status_code))
    if documented is None:
        raise NotImplementedError  # no schema to read it with: status_code_conformance fails
    return _from_xml(root, _resolve(documented["content"]["application/xml"]["schema"]))


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = SPEC
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return _resolve(target)


def _from_xml(element: ET.Element, node: dict[str, Any]) -> Any:
    node = _resolve(node)
    if node.get("type") == "array":
        return [_from_xml(child, node.get("items", {})) for child in element]
    if node.get("type") == "object" or "properties" in node:
        properties = node.get("properties", {})
        others = node.get("additionalProperties")
        fallback = others if isinstance(others, dict) else {}
        return {
            child.tag: _from_xml(child, properties.get(child.tag, fallback)) for child in element
        }
    return element.text or ""


@pytest.fixture(scope="module")
def fuzz_settings(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Settings:
    """One fresh migrated SQLite database for the whole run."""
    folder = tmp_path_factory.mktemp("fuzz")
    shutil.copy(sqlite_template, folder / "mobip.sqlite3")
    return Settings(
        data_dir=folder / "data",
        database_url=f"sqlite:///{folder / 'mobip.sqlite3'}",
        secret_key="test-secret-key-" + "x" * 32,
        worker_enabled=False,
    )


def _runtime(settings_: Settings) -> Runtime:
    return Runtime(settings_, Database(settings_.database_url), ManualClock())


@dataclass(frozen=True)
class Callers:
    """Who calls: a partner for the account operations (a merchant may not), a merchant else."""

    merchant_token: str
    partner_token: str
    merchant_uid: str  # a descendant of the partner's
    merchant_external_id: str
    # PENDING payment requests of the merchant's, sent by e-mail, with a phone number: one for
    # cancel_transaction (which ends it), one for the other operations on a transaction.
    trid_to_cancel: str
    trid: str
    # A reusable QR code of the merchant's, and a photo a create can download (loopback).
    qr_id: str
    photo_url: str
    # A fee invoice of the merchant's.
    invoice_id: str

    def token_for(self, operation: str) -> str:
        return self.partner_token if operation in ACCOUNT_OPERATIONS else self.merchant_token


ACCOUNT_OPERATIONS = {
    "get_account",
    "get_account_by_external_id",
    "update_account",
    "get_mobip_transactions",  # the partner feed: partners and admins
    "set_mobip_transactions",
}


def endpoint_name(operation: dict[str, Any]) -> str:
    """The endpoint an operation calls: a read's POST form (get_account_post) is the read's."""
    operation_id: str = operation["operationId"]
    return operation_id.removesuffix(POST_FORM_SUFFIX)


@pytest.fixture(scope="module")
def photo_site() -> Iterator[Receiver]:
    """create_reusable_qr's photos, on loopback (admitted outside production)."""
    with running_receiver() as receiver:
        serve_photos(receiver)
        yield receiver


@pytest.fixture(scope="module")
def callers(fuzz_settings: Settings, photo_site: Receiver) -> Callers:
    runtime = _runtime(fuzz_settings)
    admin = make_account(runtime, role=Role.ADMIN)
    partner = make_account(runtime, role=Role.PARTNER, parent=admin)
    merchant = make_account(runtime, parent=partner, external_id="fuzz-merchant")
    with TestClient(create_app(runtime)) as client:
        token = token_for(client, merchant)
        trids = [_payment_request(client, token)["trid"] for _ in range(2)]
        partner_token = token_for(client, partner)
    import_lists(runtime, merchant.account, SPEC_EXAMPLE)  # the external invoices' source
    map_statuses(runtime, merchant.account)
    return Callers(
        token,
        partner_token,
        merchant.account.uid,
        "fuzz-merchant",
        trids[0],
        trids[1],
        make_reusable_qr(runtime, merchant),
        photo_site.url("/photo.png"),
        make_invoice(runtime, merchant.account),
    )


def _payment_request(client: TestClient, token: str) -> dict[str, Any]:
    created = client.post(
        "/api/2.0/mobip/send_payment_request",
        headers={"Authorization": f"Bearer {token}"},
        files=form(
            item_amount_in_cents=1500,
            tax_amount=300,
            redirect_url="https://shop.example/back",
            item_name="Tea",
            customer_email="customer@shop.example",
            customer_phone="+33612345678",
            media="EMAIL",
        ),
    )
    assert created.status_code == 200, created.text
    reply: dict[str, Any] = created.json()
    return reply


@pytest.fixture
def fuzz_runtime(fuzz_settings: Settings) -> Runtime:
    # A new app and runtime per operation: schemathesis ends the app's lifespan after each test
    # item, and the lifespan's end closes the database and the group commit for good.
    return _runtime(fuzz_settings)


@pytest.fixture
def fuzz_app(fuzz_runtime: Runtime) -> Any:
    return create_app(fuzz_runtime)


# update_account's account_data: a JSON text whose object its contentSchema describes (which
# attributes, each a string within its limit or null). schemathesis draws any JSON text for
# `contentMediaType: application/json`, so the test draws from the contentSchema itself; strings
# hold no refused character (the document's rule for text, in words inside JSON).
_UPDATE = SPEC["paths"]["/api/2.0/mobip/update_account"]["post"]["requestBody"]
_ACCOUNT_DATA = _UPDATE["content"]["multipart/form-data"]["schema"]["properties"]["account_data"]
_TEXT = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters=BIDI)
ACCOUNT_DATA = (
    st.fixed_dictionaries(
        {},
        optional={
            name: st.none() | st.text(_TEXT, max_size=min(40, attribute["maxLength"]))
            for name, attribute in _ACCOUNT_DATA["contentSchema"]["properties"].items()
        },
    )
    .filter(bool)
    .map(json.dumps)
)


def _fit_positive_case(case: Any, callers: Callers, runtime: Runtime, data: st.DataObject) -> None:
    """What a valid request needs beyond the document: state it cannot know, a sum it cannot say.

    - a token in the body must be the same as the Bearer one (the document says so in words);
    - a trid, uid or external_account_id names an existing transaction or account the caller may
      see, so the operations get past 404 (and their replies, JSON and XML, are checked whole);
    - an Idempotency-Key is new (reusing one for other fields is a 422 the document states);
    - item + tax at most MOBIP_MAX_TOTAL_AMOUNT (in the field's description: JSON Schema cannot
      add two fields): a larger generated sum is discarded, not sent;
    - account_data is drawn as its contentSchema says (see ACCOUNT_DATA);
    - a qr_id (or a list's cursor) is the merchant's QR code, an item_photo a photo that downloads;
    - an invoice_id is the merchant's fee invoice;
    - get_stats' day lies in month_period, and get_gz_file comes with a day (both said in words).
    """
    operation = endpoint_name(case.operation.definition.raw)
    headers = case.headers or {}
    if "Idempotency-Key" in headers:
        headers["Idempotency-Key"] = headers["Idempotency-Key"][:200] + f"-{next(_KEYS)}"
    body = case.body
    if not isinstance(body, dict):
        return
    if body.get("access_token"):
        body["access_token"] = callers.token_for(operation)
    if "trid" in body:
        body["trid"] = callers.trid_to_cancel if operation == "cancel_transaction" else callers.trid
    if "uid" in body:
        body["uid"] = callers.merchant_uid
    if "external_account_id" in body:
        body["external_account_id"] = callers.merchant_external_id
    if "account_data" in body:
        body["account_data"] = data.draw(ACCOUNT_DATA)
    # A reusable QR's: an existing code of the caller's; a photo that downloads (a URL's
    # content is a fact the document cannot state).
    for name in ("qr_id", "starting_after"):
        if name in body:
            body[name] = callers.qr_id
    if "item_photo" in body:
        body["item_photo"] = callers.photo_url
    if "invoice_id" in body:
        body["invoice_id"] = callers.invoice_id
    _fit_external_invoices(operation, body)
    if operation == "get_stats":
        month = body.get("month_period")
        if (month and body.get("day")) or (
            str(body.get("get_gz_file")).lower() in ("1", "true", "on", "yes")
            and not body.get("day")
        ):
            body["day"] = f"{month or '2026-11'}-15"
    amounts = [
        body.get(name)
        for name in ("item_amount_in_cents", "item_amount", "tax_amount", "tax_amount_in_cents")
    ]
    total = sum(value for value in amounts if isinstance(value, int))
    assume(total <= runtime.settings.max_total_amount)


def _fit_external_invoices(operation: str, body: dict[str, Any]) -> None:
    """The external invoices' (receivables): the merchant's source; an InvoicesLists that reads
    (a JSON text whose shape the document states in words); a mapping whose codes are each
    given once (the document cannot say "no code in two fields"); request_invoices_payment for
    an imported customer's due invoices (InvoicesList must name that customer's)."""
    if "ExternalSourceId" in body:
        body["ExternalSourceId"] = "erp"
    if "InvoicesLists" in body:
        body["InvoicesLists"] = SPEC_EXAMPLE
    if operation == "set_external_invoice_status":
        body.update({name: codes for name, codes in MAPPING.items() if name in body})
    if operation == "request_invoices_payment":
        body["CustomerId"] = "custom_1"
        body.pop("InvoicesList", None)


_KEYS = itertools.count()


@schema.given(data=st.data())
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_server_takes_what_its_openapi_document_allows(
    case: Any, data: st.DataObject, fuzz_app: Any, fuzz_runtime: Runtime, callers: Callers
) -> None:
    positive = case.meta.generation.mode.is_positive
    if positive:
        _fit_positive_case(case, callers, fuzz_runtime, data)
    # The caller's token goes in the Bearer header of every operation that takes one, unless
    # the case is about the headers themselves (e.g. a negative case without Authorization).
    operation = case.operation.definition.raw
    if operation.get("security") and not case.meta.is_negative_at(ParameterLocation.HEADER):
        token = callers.token_for(endpoint_name(operation))
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    response = case.call_and_validate(app=fuzz_app, checks=CHECKS)
    if case.method == "GET" and positive and isinstance(case.body, dict) and case.body:
        # The spec's form on a GET: the fields travel in the body, not in the URL.
        assert response.request.body
        assert "?" not in response.request.url
