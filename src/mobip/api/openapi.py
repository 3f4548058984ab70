"""The OpenAPI 3.1 description, generated from the endpoint declarations and the error table.

The document states what the server accepts, constraint by constraint, so that a client generator
and schemathesis (tests/test_openapi_fuzz.py) send only what the server takes and the server
refuses what the document rules out:

- every operation, GET included, takes its inputs as a multipart/form-data or urlencoded body
  (the spec's multipart GET); the query string also works for non-secret fields but is not
  described, so no generated client puts a secret in a URL;
- a read (the spec's GET) also answers POST alike (api/routing): its path has a second operation,
  ``<name>_post``, the same as the GET one but for its operationId, summary and description;
- each input carries the constraints its ``Field`` declares (length, range, enum, format,
  pattern); text fields also carry the server's rule on control characters as a ``pattern``;
- integers travel as text in a form, so they are ``type: integer`` with the range the server
  reads (at most 18 digits): form encoders write them as digit strings;
- the access token goes in ``Authorization: Bearer`` (the ``bearer`` scheme) or the optional
  ``access_token`` body field, never in the query string;
- replies are described in JSON and XML (root ``<mobip>``), with every error status.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from mobip import __version__
from mobip.api.routing import Access, Endpoint, Field
from mobip.kit.errors import MobipError, all_error_classes

FORM_MEDIA_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
REPLY_MEDIA_TYPES = ("application/json", "application/xml")
XML_ROOT = {"name": "mobip"}
# A read's POST operation is named like the read with this suffix (get_token_post).
POST_FORM_SUFFIX = "_post"

# The server reads integers written as -?[0-9]{1,18} (api/envelope): a range that keeps every
# generated value within 18 digits whatever bounds a field leaves open.
INTEGER_LIMIT = 10**18 - 1
# Spellings the server reads as a boolean flag (api/envelope.Params.boolean, any case).
BOOLEAN_SPELLINGS = ("1", "0", "true", "false", "on", "off", "yes", "no")

# Characters no text field takes (the server answers 1002 naming the field): C0 controls, DEL and
# C1 controls, the bidi embeddings/overrides U+202A-U+202E and isolates U+2066-U+2069. Tab, line
# feed and carriage return are allowed in multi-line fields only. Lone surrogates are refused too;
# UTF-8 cannot carry one, so only a JSON text's \ud800 escape can (update_account's account_data).
_BIDI = r"\u202a-\u202e\u2066-\u2069"
SINGLE_LINE_TEXT = rf"^[^\u0000-\u001f\u007f-\u009f{_BIDI}]*$"
MULTI_LINE_TEXT = rf"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f{_BIDI}]*$"
TEXT_RULE = (
    "Refused: control characters (U+0000-U+001F, U+007F-U+009F), bidi overrides (U+202A-U+202E, "
    "U+2066-U+2069) and lone surrogates."
)
MULTI_LINE_RULE = TEXT_RULE.replace("U+001F,", "U+001F but tab, LF and CR,")

# Inputs every operation takes beside its own (api/envelope reads them before any handler).
FORMAT_FIELD = Field(
    "format",
    "string",
    "Reply format: json (default) or xml; `Accept: application/xml` also selects XML",
    enum=("json", "xml"),
)

# The shape of the outputs that are lists or objects, by field name (a Field says only "array").
_ATTRIBUTE = {
    "type": "object",
    "properties": {
        "attribute_name": {"type": "string"},
        "attribute_type": {"type": "string", "enum": ["string", "datetime"]},
        "attribute_value": {"type": "string"},
        "is_updatable": {"type": "string", "enum": ["true", "false"]},
    },
    "required": ["attribute_name", "attribute_type", "attribute_value", "is_updatable"],
}
_DOCUMENT = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "content_type": {"type": "string"},
        "size": {"type": "string", "pattern": "^[0-9]+$"},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "content": {"type": "string", "contentEncoding": "base64"},
    },
    "required": ["name", "content_type", "size", "sha256", "content"],
}
_STATUS_EVENT = {
    "type": "object",
    "properties": {
        "status": {"type": "string"},
        "reason": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
    },
}
_MESSAGE = {
    "type": "object",
    "properties": {
        name: {"type": "string"}
        for name in (
            "kind",
            "media",
            "recipient",
            "status",
            "attempts",
            "last_error",
            "created_at",
        )
    },
}
# A refund as get_transaction lists it (transactions.service.refund_data).
_REFUND = {
    "type": "object",
    "properties": {
        name: {"type": "string"}
        for name in (
            "refund_id",
            "amount_in_cents",
            "currency",
            "status",
            "source",
            "provider",
            "provider_reference",
            "created_at",
            "refunded_at",
        )
    },
}

_OUTPUT_SHAPES: dict[str, dict[str, Any]] = {
    "account_data": {
        "type": "array",
        "items": {**_ATTRIBUTE, "xml": {"name": "item"}},
        "xml": {"wrapped": True},
    },
    "documents": {
        "type": "array",
        "items": {**_DOCUMENT, "xml": {"name": "item"}},
        "xml": {"wrapped": True},
    },
    "transaction_data": {
        "type": "object",
        "description": "Every stored field as text, plus status_history, messages and refunds",
        "properties": {
            "refunds": {
                "type": "array",
                "items": {**_REFUND, "xml": {"name": "item"}},
                "xml": {"wrapped": True},
            },
            "status_history": {
                "type": "array",
                "items": {**_STATUS_EVENT, "xml": {"name": "item"}},
                "xml": {"wrapped": True},
            },
            "messages": {
                "type": "array",
                "items": {**_MESSAGE, "xml": {"name": "item"}},
                "xml": {"wrapped": True},
            },
        },
        "additionalProperties": {"type": "string"},
    },
}

# The JSON object a text input holds (contentSchema), by field name: update_account's attributes
# (accounts.service.UPDATABLE and MAX_ATTRIBUTE_CHARS; tests/api/test_openapi.py compares them).
_JSON_INPUTS: dict[str, dict[str, Any]] = {
    "account_data": {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            name: {"type": ["string", "null"], "maxLength": limit}
            for name, limit in (
                ("External_AccountID", 255),
                ("Public_Payment_Provider_key", 4096),
                ("Private_Payment_Provider_key", 4096),
                ("Payment_Provider_login", 255),
            )
        },
    }
}

_TRUE_SPELLINGS = ["1", "true", "on", "yes"]
# Rules across fields, which a Field cannot state: JSON Schema if/then, by operation name.
_ACROSS_FIELDS: dict[str, list[dict[str, Any]]] = {
    "send_payment_request": [
        {  # an SMS needs a number to go to (else 1001 naming customer_phone)
            "if": {"properties": {"media": {"const": "SMS"}}, "required": ["media"]},
            "then": {
                "properties": {"customer_phone": {"minLength": 1}},
                "required": ["customer_phone"],
            },
        }
    ],
    **{
        name: [
            {  # document_only returns documents only: it needs their names (else 1001)
                "if": {
                    "properties": {"document_only": {"enum": _TRUE_SPELLINGS}},
                    "required": ["document_only"],
                },
                "then": {
                    "properties": {"document_list": {"pattern": r"[^|\s]"}},
                    "required": ["document_list"],
                },
            }
        ]
        for name in ("get_account", "get_account_by_external_id")
    },
}

DESCRIPTION = """\
MOBIP API 2.0. Every input is sent as a multipart/form-data body (the spec's form, for GET
requests too) or an application/x-www-form-urlencoded body; the query string is also read for
fields that are not secret (a body field wins over the same name in the query), but secrets
(`api_secret_key`, `access_token`) belong in the body or the `Authorization` header, never in a
URL. An empty value counts as absent. A field name the operation does not take, or a name sent
twice, is refused (400). The access token goes in `Authorization: Bearer <token>` or in the
`access_token` field; two different tokens in one request are refused. Replies are JSON, or XML
(root element `<mobip>`, list items as `<item>`) with `format=xml` or `Accept: application/xml`.
Every reply has `return_code` ("0" when OK) and, on error, `return_message`; the HTTP status
mirrors the error class (table below).

Our extension of the spec: a read operation (the spec's GET) also answers POST, with the same
fields and the same reply, for HTTP clients that cannot send a body with GET (browsers' `fetch`,
so the "Try it out" of the interactive docs at `/docs`, among them). Each read has a second
operation named `<name>_post`: {reads}. A write operation answers POST only (any other method:
405, with `Allow`).
"""


def _anchored(pattern: str) -> str:
    """A Field's pattern matches the whole value; a JSON Schema pattern is a search."""
    return pattern if pattern.startswith("^") and pattern.endswith("$") else f"^(?:{pattern})$"


def input_schema(field: Field) -> dict[str, Any]:
    """The JSON Schema of one form input, with every constraint its Field declares, and the
    value a reader (and the interactive docs' form) starts from (``examples``).

    An empty value counts as absent: a required field has ``minLength: 1``, and an optional one
    also takes "" (the server reads it as not sent) beside the values its constraints allow.
    """
    value = _value_schema(field)
    example = _EXAMPLES.get(field.name, "" if not field.required else None)
    examples = {"examples": [example]} if example is not None else {}
    if field.required or _takes_empty(value):
        return {**value, "description": _described(field), **examples}
    if "enum" in value:
        return {**value, "enum": [*value["enum"], ""], "description": _described(field), **examples}
    return {"description": _described(field), "anyOf": [value, _EMPTY], **examples}


# What the docs' form starts from, where a value can be shown; an optional field's is "" (not
# sent). Without one, Swagger UI makes a value up from the pattern: a random string a newcomer
# would send as it is. A required field with none (a trid, the credentials) is the caller's own.
_EXAMPLES: dict[str, Any] = {
    "item_name": "Blue mug",
    "item_amount_in_cents": 1250,
    "tax_amount": 250,
    "tax_amount_in_cents": 250,
    "redirect_url": "https://shop.example/thanks",
    "call_back_url": "https://shop.example/mobip-callback",
    "customer_email": "jane@shop.example",
    "media": "EMAIL",
    "account_data": '{"Payment_Provider_login": "shop-7"}',
}


_EMPTY = {"type": "string", "const": "", "description": "Empty: the same as not sent"}


def _described(field: Field) -> str:
    if field.type == "integer":
        return f"{field.description} (decimal digits, at most 18)"
    if field.type in ("boolean", "integer") or field.enum:
        return field.description
    return f"{field.description}. {MULTI_LINE_RULE if field.multiline else TEXT_RULE}"


def _value_schema(field: Field) -> dict[str, Any]:
    """What a non-empty value may be."""
    if field.type == "integer":
        return {
            "type": "integer",
            "minimum": field.minimum if field.minimum is not None else -INTEGER_LIMIT,
            "maximum": field.maximum if field.maximum is not None else INTEGER_LIMIT,
        }
    if field.type == "boolean":
        return {"type": "string", "enum": list(BOOLEAN_SPELLINGS)}
    schema: dict[str, Any] = {"type": "string"}
    if field.type == "object":
        # A form value is text: the object travels as a JSON text in it (update_account).
        schema.update(
            contentMediaType="application/json",
            contentSchema=_JSON_INPUTS.get(field.name, {"type": "object"}),
        )
    if field.enum:
        schema["enum"] = list(field.enum)
        return schema
    if field.required:
        schema["minLength"] = 1  # an empty value counts as absent
    if field.max_length is not None:
        schema["maxLength"] = field.max_length
    if field.format is not None:
        schema["format"] = field.format
    if field.pattern is not None:
        schema["pattern"] = _anchored(field.pattern)
    else:
        schema["pattern"] = MULTI_LINE_TEXT if field.multiline else SINGLE_LINE_TEXT
    return schema


def _takes_empty(schema: dict[str, Any]) -> bool:
    """Whether "" already satisfies ``schema`` (a plain text field without a minimum)."""
    if schema.get("type") != "string" or "enum" in schema or "format" in schema:
        return False
    if schema.get("minLength", 0) > 0:
        return False
    return re.search(schema["pattern"], "") is not None


def output_schema(field: Field) -> dict[str, Any]:
    shape = _OUTPUT_SHAPES.get(field.name)
    if shape is not None:
        return {**shape, "description": field.description}
    if field.type == "array":
        return {"type": "array", "items": {}, "description": field.description}
    if field.type == "object":
        return {"type": "object", "description": field.description}
    return {"type": "string", "description": field.description}


def error_table() -> list[type[MobipError]]:
    return sorted(all_error_classes(), key=lambda cls: cls.return_code)


def _inputs(endpoint: Endpoint) -> list[Field]:
    inputs = list(endpoint.inputs)
    names = {f.name for f in inputs}
    if FORMAT_FIELD.name not in names:
        inputs.append(FORMAT_FIELD)
    if endpoint.access is not Access.ANONYMOUS:
        # The token may come from the Authorization header instead: never a required field.
        inputs = [replace(f, required=False) if f.name == "access_token" else f for f in inputs]
    return inputs


def _request_body(endpoint: Endpoint) -> dict[str, Any]:
    inputs = _inputs(endpoint)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {f.name: input_schema(f) for f in inputs},
        "required": [f.name for f in inputs if f.required],
        # An unknown field is refused (1007), so the document allows none.
        "additionalProperties": False,
    }
    rules = _ACROSS_FIELDS.get(endpoint.name)
    if rules:
        schema["allOf"] = rules
    return {
        "required": bool(schema["required"]),
        "description": "The operation's fields; the query string is also read for non-secret ones",
        "content": {media_type: {"schema": schema} for media_type in FORM_MEDIA_TYPES},
    }


def _reply_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {media_type: {"schema": schema} for media_type in REPLY_MEDIA_TYPES}


def _ok_schema(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "return_code": {"type": "string", "const": "0"},
            **{f.name: output_schema(f) for f in endpoint.outputs},
        },
        "required": ["return_code"],
        "xml": XML_ROOT,
    }


def _error_responses(endpoint: Endpoint, codes: Iterable[type[MobipError]]) -> dict[str, Any]:
    by_status: dict[int, list[type[MobipError]]] = {}
    for cls in codes:
        by_status.setdefault(cls.http_status, []).append(cls)
    # Statuses every operation can answer whatever the table holds today: bad input, a bad or
    # missing token (or wrong credentials), a role or tenant refusal, an unknown object, a state
    # conflict, a body too large, a media type not read, throttling, an internal error.
    for status in (400, 401, 403, 404, 409, 413, 415, 429, 500):
        by_status.setdefault(status, [])
    if not endpoint.idempotent:
        by_status.pop(422, None)  # only a reused Idempotency-Key
    responses: dict[str, Any] = {}
    for status in sorted(by_status):
        listed = ", ".join(f"{cls.return_code} {cls.__name__}" for cls in by_status[status])
        responses[str(status)] = {
            "description": f"Error ({listed})" if listed else "Error",
            "content": _reply_content({"$ref": "#/components/schemas/Error"}),
        }
    return responses


def _operation(endpoint: Endpoint, codes: Sequence[type[MobipError]]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.name,
        "summary": endpoint.summary,
        "tags": [endpoint.path.split("/")[1]],
        "x-access": endpoint.access.value,
        "requestBody": _request_body(endpoint),
        "responses": {
            "200": {
                "description": 'OK (return_code "0")',
                "content": _reply_content(_ok_schema(endpoint)),
            },
            **_error_responses(endpoint, codes),
        },
    }
    if endpoint.access is not Access.ANONYMOUS:
        operation["security"] = [{"bearer": []}]
        operation["description"] = (
            "Authenticated: `Authorization: Bearer <token>`, or the token in the `access_token` "
            "body field (the same token if both are sent)."
        )
    if endpoint.idempotent:
        operation["parameters"] = [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": (
                    "Any unique string: a retry with the same key and the same fields gets the "
                    "first reply again (for 24 h); the same key with other fields is refused (422)"
                ),
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 255,
                    # Printable ASCII, not only spaces (the key is read stripped).
                    "pattern": r"^[\u0020-\u007e]*[\u0021-\u007e][\u0020-\u007e]*$",
                },
            }
        ]
    return operation


def _post_form(endpoint: Endpoint, operation: dict[str, Any]) -> dict[str, Any]:
    """A read's POST operation: its GET operation under another operationId, with its purpose."""
    said = (
        f"The same as `GET {endpoint.full_path}` (`{endpoint.name}`), sent with POST: the same "
        "fields, the same reply. Our extension of the spec, for clients that cannot send a body "
        "with GET (browsers among them)."
    )
    shared = operation.get("description")
    return {
        **operation,
        "operationId": f"{endpoint.name}{POST_FORM_SUFFIX}",
        "summary": f"{endpoint.summary} (POST form)",
        "description": f"{said}\n\n{shared}" if shared else said,
    }


def build_openapi(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    codes = error_table()
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        operation = _operation(endpoint, codes)
        operations = paths.setdefault(endpoint.full_path, {})
        operations[endpoint.method.lower()] = operation
        if endpoint.reads:
            operations["post"] = _post_form(endpoint, operation)
    reads = ", ".join(f"`{endpoint.name}`" for endpoint in endpoints if endpoint.reads)
    table = "\n".join(
        f"| {cls.return_code} | {cls.http_status} | {cls.__name__} | {cls.default_message} |"
        for cls in codes
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MOBIP API",
            "version": f"2.0 (server {__version__})",
            "description": DESCRIPTION.format(reads=reads)
            + "\n## Error codes\n\n| return_code | HTTP | name | meaning |\n|---|---|---|---|\n"
            + table,
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The access token from get_token (or send it as access_token)",
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "return_code": {
                            "type": "string",
                            "enum": [cls.return_code for cls in codes],
                        },
                        "return_message": {"type": "string"},
                    },
                    "required": ["return_code", "return_message"],
                    "xml": XML_ROOT,
                }
            },
        },
        "x-error-codes": [
            {
                "return_code": cls.return_code,
                "http_status": cls.http_status,
                "name": cls.__name__,
                "message": cls.default_message,
            }
            for cls in codes
        ],
    }
