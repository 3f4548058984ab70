"""get_account, get_account_by_external_id, update_account."""

from __future__ import annotations

from typing import Any

from mobip.accounts import service
from mobip.accounts.models import Account, Role
from mobip.api.routing import ACCESS_TOKEN, Access, Call, Endpoint, Field

DOCUMENT_FIELDS = [
    Field(
        "document_only",
        "boolean",
        "If true, return only the documents named in document_list "
        "(1/0, true/false, on/off, yes/no)",
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


def current_account(call: Call) -> Account:
    """The calling account (api/routing's principal, authenticated by auth.endpoints)."""
    assert isinstance(call.principal, Account)
    return call.principal


def get_account(call: Call) -> dict[str, Any]:
    """An account's attributes and documents, for an admin or a partner above it."""
    return service.get_account(
        call.session,
        current_account(call),
        call.required_text("uid"),
        document_list=call.text("document_list"),
        document_only=call.boolean("document_only"),
        encryptor=call.runtime.encryptor,
        settings=call.runtime.settings,
    )


def get_account_by_external_id(call: Call) -> dict[str, Any]:
    """The caller or a descendant, found by its External_AccountID."""
    return service.get_account_by_external_id(
        call.session,
        current_account(call),
        call.required_text("external_account_id"),
        document_list=call.text("document_list"),
        document_only=call.boolean("document_only"),
        encryptor=call.runtime.encryptor,
        settings=call.runtime.settings,
    )


def update_account(call: Call) -> dict[str, Any]:
    """Change an account's updatable attributes, all or nothing."""
    service.update_account(
        call.session,
        current_account(call),
        call.required_text("uid"),
        call.required_text("account_data"),
        encryptor=call.runtime.encryptor,
        now=call.runtime.clock.now(),
    )
    return {}


# get_account and update_account: admins and partners (whose tree the service then checks).
ADMINS_AND_PARTNERS = (Role.ADMIN.value, Role.PARTNER.value)

ENDPOINTS = [
    Endpoint(
        "/mobip/get_account",
        "GET",
        "Get an account (admin: any account; partner: itself and its descendants)",
        get_account,
        access=Access.RESTRICTED,
        roles=ADMINS_AND_PARTNERS,
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
        roles=ADMINS_AND_PARTNERS,
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
