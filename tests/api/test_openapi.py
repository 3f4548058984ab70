"""The OpenAPI document states what the server takes: constraints, credentials, bodies, replies."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis

from mobip.accounts.service import MAX_ATTRIBUTE_CHARS, UPDATABLE
from mobip.api.openapi import BOOLEAN_SPELLINGS, INTEGER_LIMIT, build_openapi
from mobip.api.routing import Access, Endpoint
from mobip.app import ENDPOINTS

SECRETS = {"api_secret_key", "access_token", "api_account_id"}
ERROR_STATUSES = {"400", "401", "403", "404", "409", "413", "415", "429", "500"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    # What the app serves: the JSON text of the same document.
    document: dict[str, Any] = json.loads(json.dumps(build_openapi(ENDPOINTS)))
    return document


def _operation(spec: dict[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = spec["paths"][endpoint.full_path][endpoint.method.lower()]
    return operation


def _body(spec: dict[str, Any], endpoint: Endpoint, media_type: str) -> dict[str, Any]:
    schema: dict[str, Any] = _operation(spec, endpoint)["requestBody"]["content"][media_type][
        "schema"
    ]
    return schema


def _walk(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [node, *(found for value in node.values() for found in _walk(value))]
    if isinstance(node, list):
        return [found for value in node for found in _walk(value)]
    return []


def test_no_credential_and_no_field_is_described_in_the_query_string(
    spec: dict[str, Any],
) -> None:
    # Finding 2: the document itself told clients to put get_token's secret in the URL.
    located = [node for node in _walk(spec["paths"]) if "in" in node and "name" in node]
    assert [node for node in located if node["in"] == "query"] == []
    assert all(node["name"] not in SECRETS for node in located)


def test_every_operation_get_included_takes_a_form_body(spec: dict[str, Any]) -> None:
    for endpoint in ENDPOINTS:
        content = _operation(spec, endpoint)["requestBody"]["content"]
        assert set(content) == {"multipart/form-data", "application/x-www-form-urlencoded"}
        for media_type in content:
            body = _body(spec, endpoint, media_type)
            assert set(body["properties"]) == {f.name for f in endpoint.inputs} | {"format"}
            assert body["additionalProperties"] is False  # unknown fields are refused (1007)


def test_get_token_takes_its_credentials_in_the_body(spec: dict[str, Any]) -> None:
    get_token = next(e for e in ENDPOINTS if e.name == "get_token")
    assert get_token.method == "GET"
    body = _body(spec, get_token, "multipart/form-data")
    assert {"api_account_id", "api_secret_key"} <= set(body["required"])
    assert "security" not in _operation(spec, get_token)


def test_the_access_token_is_the_bearer_scheme_or_an_optional_field(
    spec: dict[str, Any],
) -> None:
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    authenticated = [e for e in ENDPOINTS if e.access is not Access.ANONYMOUS]
    assert authenticated
    for endpoint in authenticated:
        assert _operation(spec, endpoint)["security"] == [{"bearer": []}]
        body = _body(spec, endpoint, "multipart/form-data")
        assert "access_token" in body["properties"]
        assert "access_token" not in body["required"]


def test_every_declared_constraint_appears(spec: dict[str, Any]) -> None:
    for endpoint in ENDPOINTS:
        body = _body(spec, endpoint, "multipart/form-data")
        for field in endpoint.inputs:
            schema = body["properties"][field.name]
            where = f"{endpoint.name}.{field.name}"
            required = field.required and field.name != "access_token"
            assert (field.name in body["required"]) == required, where
            # An empty value counts as absent: an optional field also takes "".
            empty = [] if required else [""]
            if "anyOf" in schema:
                assert not required, where
                schema, alternative = schema["anyOf"]
                assert alternative["const"] == "", where
                empty = []
            if field.type == "integer":
                assert schema["type"] == "integer", where
                low = field.minimum if field.minimum is not None else -INTEGER_LIMIT
                high = field.maximum if field.maximum is not None else INTEGER_LIMIT
                assert (schema["minimum"], schema["maximum"]) == (low, high), where
                continue
            assert schema["type"] == "string", where
            if field.type == "boolean":
                assert schema["enum"] == [*BOOLEAN_SPELLINGS, *empty], where
                continue
            if field.enum:
                assert schema["enum"] == [*field.enum, *empty], where
                continue
            if required:
                assert schema["minLength"] == 1, where  # an empty value counts as absent
            assert schema.get("maxLength") == field.max_length, where
            assert schema.get("format") == field.format, where
            if field.pattern is not None:
                assert field.pattern in schema["pattern"], where


# send_payment_request's required fields, valid per the document (media left to each test).
SEND_BASE = {
    "item_amount_in_cents": 100,
    "tax_amount": 0,
    "redirect_url": "https://shop.example/back",
    "item_name": "Tea",
    "customer_email": "a@shop.example",
}


def _validator(spec: dict[str, Any], name: str) -> Any:
    """A JSON Schema validator of ``name``'s multipart body as the document states it."""
    endpoint = next(e for e in ENDPOINTS if e.name == name)
    return jsonschema_rs.validator_for(_body(spec, endpoint, "multipart/form-data"))


def test_an_optional_field_also_takes_an_empty_value(spec: dict[str, Any]) -> None:
    send = _validator(spec, "send_payment_request")
    base = {**SEND_BASE, "media": "EMAIL"}
    for name in ("retry_period", "language", "call_back_url", "track_id", "format"):
        assert send.is_valid({**base, name: ""}), name
    for name in ("item_name", "redirect_url", "media"):
        assert not send.is_valid({**base, name: ""}), name
    assert not send.is_valid({**base, "retry_period": "x"})


def test_text_fields_state_the_control_character_rule(spec: dict[str, Any]) -> None:
    send = next(e for e in ENDPOINTS if e.name == "send_payment_request")
    item_name = _body(spec, send, "multipart/form-data")["properties"]["item_name"]
    pattern = re.compile(item_name["pattern"])
    assert pattern.search("Café crème ✓")
    for refused in ("\x00", "\x1b", "\x07", "\t", "\n", "\x85", "\u202e", "\u2066"):
        assert not pattern.search(f"a{refused}b"), ascii(refused)


def test_format_is_an_input_of_every_operation(spec: dict[str, Any]) -> None:
    for endpoint in ENDPOINTS:
        fmt = _body(spec, endpoint, "multipart/form-data")["properties"]["format"]
        assert fmt["enum"] == ["json", "xml", ""]  # empty: the default, JSON


def test_replies_are_described_in_json_and_xml_with_every_error_status(
    spec: dict[str, Any],
) -> None:
    for endpoint in ENDPOINTS:
        responses = _operation(spec, endpoint)["responses"]
        assert set(responses) >= ERROR_STATUSES
        for status, response in responses.items():
            assert set(response["content"]) == {"application/json", "application/xml"}, status
        ok = responses["200"]["content"]["application/xml"]["schema"]
        assert ok["xml"] == {"name": "mobip"}
        assert {f.name for f in endpoint.outputs} <= set(ok["properties"])
        assert ("422" in responses) == endpoint.idempotent  # a reused Idempotency-Key
    assert spec["components"]["schemas"]["Error"]["xml"] == {"name": "mobip"}


def test_account_data_is_typed_as_it_is(spec: dict[str, Any]) -> None:
    by_name = {e.name: e for e in ENDPOINTS}
    reply = _operation(spec, by_name["get_account"])["responses"]["200"]["content"]
    account_data = reply["application/json"]["schema"]["properties"]["account_data"]
    assert account_data["type"] == "array"
    assert set(account_data["items"]["required"]) == {
        "attribute_name",
        "attribute_type",
        "attribute_value",
        "is_updatable",
    }
    update = _body(spec, by_name["update_account"], "multipart/form-data")
    assert update["properties"]["account_data"]["type"] == "string"
    assert update["properties"]["account_data"]["contentMediaType"] == "application/json"
    assert "External_AccountID" in update["properties"]["account_data"]["description"]


def test_the_create_endpoints_take_an_idempotency_key(spec: dict[str, Any]) -> None:
    for endpoint in ENDPOINTS:
        headers = {
            p["name"]
            for p in _operation(spec, endpoint).get("parameters", [])
            if p["in"] == "header"
        }
        assert ("Idempotency-Key" in headers) == endpoint.idempotent, endpoint.name
    # the two transaction creates, create_reusable_qr, refund_transaction,
    # request_invoices_payment
    assert sum(e.idempotent for e in ENDPOINTS) == 5


def test_schemathesis_reads_every_operation(spec: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in schema.get_all_operations()]
    # A read has its POST form beside its GET operation.
    assert len(operations) == len(ENDPOINTS) + sum(endpoint.reads for endpoint in ENDPOINTS)


def test_a_read_has_a_post_operation_the_same_as_its_get_one(spec: dict[str, Any]) -> None:
    operation_ids = []
    for endpoint in ENDPOINTS:
        operations = spec["paths"][endpoint.full_path]
        operation_ids += [operation["operationId"] for operation in operations.values()]
        if not endpoint.reads:
            assert set(operations) == {"post"}, endpoint.name
            continue
        assert set(operations) == {"get", "post"}, endpoint.name
        get, post = operations["get"], operations["post"]
        assert get["operationId"] == endpoint.name
        assert post["operationId"] == f"{endpoint.name}_post"
        assert endpoint.full_path in post["description"]
        assert "extension" in post["description"]
        # The fields, the replies, the security and the tag are the GET operation's.
        named = {"operationId", "summary", "description"}
        assert {k: v for k, v in post.items() if k not in named} == {
            k: v for k, v in get.items() if k not in named
        }
    assert len(operation_ids) == len(set(operation_ids))
    described = spec["info"]["description"]
    assert all(f"`{e.name}`" in described for e in ENDPOINTS if e.reads)


def test_rules_across_fields_are_stated(spec: dict[str, Any]) -> None:
    send = _validator(spec, "send_payment_request")
    base = SEND_BASE
    assert send.is_valid({**base, "media": "EMAIL"})
    assert not send.is_valid({**base, "media": "SMS"})  # 1001 customer_phone
    assert not send.is_valid({**base, "media": "SMS", "customer_phone": ""})
    get_account = _validator(spec, "get_account")
    assert get_account.is_valid({"uid": "ac_1", "document_only": "0"})
    assert not get_account.is_valid({"uid": "ac_1", "document_only": "true"})  # 1001
    assert not get_account.is_valid({"uid": "ac_1", "document_only": "1", "document_list": "|"})
    assert get_account.is_valid({"uid": "ac_1", "document_only": "1", "document_list": "kbis"})


def test_account_data_states_the_updatable_attributes(spec: dict[str, Any]) -> None:
    update = next(e for e in ENDPOINTS if e.name == "update_account")
    field = _body(spec, update, "multipart/form-data")["properties"]["account_data"]
    content = field["contentSchema"]
    assert content["additionalProperties"] is False
    assert set(content["properties"]) == set(UPDATABLE)
    for name, limit in MAX_ATTRIBUTE_CHARS.items():
        assert content["properties"][name] == {"type": ["string", "null"], "maxLength": limit}


def test_every_example_is_a_value_the_operation_takes(spec: dict[str, Any]) -> None:
    # /docs's "Try it out" form starts from them: an example refused would fail there at once.
    for endpoint in ENDPOINTS:
        body = _body(spec, endpoint, "multipart/form-data")
        for name, schema in body["properties"].items():
            where = f"{endpoint.name}.{name}"
            assert ("examples" in schema) == (name not in body["required"] or name in EXAMPLED)
            for example in schema.get("examples", []):
                assert jsonschema_rs.validator_for(schema).is_valid(example), where
        examples = {
            name: schema["examples"][0]
            for name, schema in body["properties"].items()
            if schema.get("examples", [""])[0] != ""
        }
        if set(body["required"]) <= set(examples):  # the whole form as it starts is valid
            assert jsonschema_rs.validator_for(body).is_valid(examples), endpoint.name


# The required fields with an example (the others are the caller's own: credentials, ids).
EXAMPLED = {
    "item_name",
    "item_amount_in_cents",
    "tax_amount",
    "tax_amount_in_cents",
    "redirect_url",
    "call_back_url",
    "customer_email",
    "media",
    "account_data",
}


def test_the_document_is_the_golden_copy() -> None:
    """The OpenAPI document (and the error table in it) changes only on purpose: a refactoring
    must leave it byte-identical. After a deliberate change, regenerate the copy with
    ``python -c 'import json; from mobip.app import ENDPOINTS; from mobip.api.openapi import
    build_openapi; print(json.dumps(build_openapi(ENDPOINTS), indent=1, sort_keys=True,
    ensure_ascii=False))' > tests/api/openapi_golden.json`` and review the diff."""
    golden = Path(__file__).with_name("openapi_golden.json").read_text()
    document = build_openapi(ENDPOINTS)
    assert json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n" == golden


def test_get_transactions_refunds_are_described_with_the_fields_they_have() -> None:
    """transaction_data's refunds are a list of objects (not text, as its other fields): OpenAPI
    names each field refund_data gives, and the document describes the list."""
    from datetime import UTC, datetime

    from mobip.api.openapi import _REFUND
    from mobip.transactions.models import Refund
    from mobip.transactions.service import refund_data

    now = datetime.now(UTC)
    refund = Refund(
        refund_id="rf_1",
        amount=100,
        currency="EUR",
        status="SUCCEEDED",
        source="api",
        provider="sandbox",
        provider_reference=None,
        created_at=now,
        refunded_at=now,
    )
    assert set(refund_data(refund)) == set(_REFUND["properties"])
    document = build_openapi(ENDPOINTS)
    reply = document["paths"]["/api/2.0/mobip/get_transaction"]["get"]["responses"]["200"]
    data = reply["content"]["application/json"]["schema"]["properties"]["transaction_data"]
    refunds = data["properties"]["refunds"]
    assert refunds["type"] == "array"
    assert set(refunds["items"]["properties"]) == set(refund_data(refund))
