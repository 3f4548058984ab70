"""The OpenAPI 3.1 description, generated from the endpoint declarations and the error table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mobip import __version__
from mobip.kit.errors import MobipError, all_error_classes
from mobip.kit.routing import Access, Endpoint, Field

_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "boolean": {"type": "string", "enum": ["1", "0", "true", "false", "on", "off"]},
    "array": {"type": "array", "items": {}},
    "object": {"type": "string", "description": "JSON object"},
}

DESCRIPTION = """\
MOBIP API 2.0. Every input may be sent as multipart/form-data (for GET requests too),
as an application/x-www-form-urlencoded body or as a query string; `access_token` may also be sent
as `Authorization: Bearer <token>`. Replies are JSON, or XML with `format=xml` or
`Accept: application/xml`. Every reply has `return_code` ("0" when OK) and, on error,
`return_message`; the HTTP status mirrors the error class.
"""


def _schema(field: Field) -> dict[str, Any]:
    return {**_TYPES[field.type], "description": field.description}


def error_table() -> list[type[MobipError]]:
    return sorted(all_error_classes(), key=lambda cls: cls.return_code)


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.name,
        "summary": endpoint.summary,
        "tags": [endpoint.path.split("/")[1]],
        "x-access": endpoint.access.value,
        "responses": {
            "200": {
                "description": 'OK (return_code "0")',
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "return_code": {"type": "string", "enum": ["0"]},
                                **{f.name: _schema(f) for f in endpoint.outputs},
                            },
                            "required": ["return_code"],
                        }
                    }
                },
            },
            "default": {
                "description": "Error: see the error-code table",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    if endpoint.access is not Access.ANONYMOUS:
        operation["security"] = [{"bearer": []}, {}]
    if endpoint.method == "GET":
        operation["parameters"] = [
            {"name": f.name, "in": "query", "required": f.required, "schema": _schema(f)}
            for f in endpoint.inputs
        ]
    else:
        operation["requestBody"] = {
            "required": True,
            "content": {
                content_type: {
                    "schema": {
                        "type": "object",
                        "properties": {f.name: _schema(f) for f in endpoint.inputs},
                        "required": [f.name for f in endpoint.inputs if f.required],
                    }
                }
                for content_type in ("multipart/form-data", "application/x-www-form-urlencoded")
            },
        }
    return operation


def build_openapi(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.full_path, {})[endpoint.method.lower()] = _operation(endpoint)
    codes = error_table()
    table = "\n".join(
        f"| {cls.return_code} | {cls.http_status} | {cls.__name__} | {cls.default_message} |"
        for cls in codes
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MOBIP API",
            "version": f"2.0 (server {__version__})",
            "description": DESCRIPTION
            + "\n## Error codes\n\n| return_code | HTTP | name | meaning |\n|---|---|---|---|\n"
            + table,
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
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
