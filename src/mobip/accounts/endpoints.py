"""get_account, get_account_by_external_id, update_account."""

from __future__ import annotations

from typing import Any

from mobip.accounts import service
from mobip.api.routing import Access, Call, Endpoint, Field
from mobip.auth.endpoints import ACCESS_TOKEN, current_account

DOCUMENT_FIELDS = [
    Field(
        "document_only",
        "boolean",
        "If true, return only the documents named in document_list (1/0, true/false, on/off)",
    ),
    Field(
        "document_list",
        "string",
        "Names of the documents to return, separated by '|'; by default none are returned",
        max_length=4096,
    ),
]
ACCOUNT_OUTPUTS = [
    Field(
        "account_data",
        "array",
        "List of {attribute_name, attribute_type, attribute_value, is_updatable}",
    ),
    Field("documents", "array", "Requested documents: {name, content_type, size, sha256, content}"),
]


def get_account(call: Call) -> dict[str, Any]:
    return service.get_account(
        call.session,
        current_account(call),
        call.params.required_text("uid", max_chars=64),
        document_list=call.params.text("document_list", max_chars=4096),
        document_only=call.params.boolean("document_only"),
        encryptor=call.runtime.encryptor,
    )


def get_account_by_external_id(call: Call) -> dict[str, Any]:
    return service.get_account_by_external_id(
        call.session,
        current_account(call),
        call.params.required_text("external_account_id", max_chars=255),
        document_list=call.params.text("document_list", max_chars=4096),
        document_only=call.params.boolean("document_only"),
        encryptor=call.runtime.encryptor,
    )


def update_account(call: Call) -> dict[str, Any]:
    service.update_account(
        call.session,
        current_account(call),
        call.params.required_text("uid", max_chars=64),
        call.params.required_text("account_data", max_chars=20000),
        encryptor=call.runtime.encryptor,
        now=call.runtime.clock.now(),
    )
    return {}


ENDPOINTS = [
    Endpoint(
        "/mobip/get_account",
        "GET",
        "Get an account (admin: any account; partner: itself and its descendants)",
        get_account,
        access=Access.RESTRICTED,
        inputs=[
            ACCESS_TOKEN,
            Field(
                "uid", "string", "Identifies the account to retrieve", required=True, max_length=64
            ),
            *DOCUMENT_FIELDS,
        ],
        outputs=ACCOUNT_OUTPUTS,
    ),
    Endpoint(
        "/mobip/get_account_by_external_id",
        "GET",
        "Get an account (the caller or a descendant) by its External_AccountID",
        get_account_by_external_id,
        inputs=[
            ACCESS_TOKEN,
            Field(
                "external_account_id",
                "string",
                "Identifies the account to retrieve",
                required=True,
                max_length=255,
            ),
            *DOCUMENT_FIELDS,
        ],
        outputs=ACCOUNT_OUTPUTS,
    ),
    Endpoint(
        "/mobip/update_account",
        "POST",
        "Update an account's updatable attributes, all or nothing",
        update_account,
        access=Access.RESTRICTED,
        inputs=[
            ACCESS_TOKEN,
            Field(
                "account_data",
                "object",
                "JSON object; allowed keys: External_AccountID, Public_Payment_Provider_key, "
                "Private_Payment_Provider_key, Payment_Provider_login (string, or null to clear); "
                "no key twice, no control characters",
                required=True,
                max_length=20000,
            ),
            Field(
                "uid", "string", "Identifies the account to update", required=True, max_length=64
            ),
        ],
    ),
]
