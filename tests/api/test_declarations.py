"""An endpoint is one named function and one declaration that states each field once.

- every API endpoint is a module-level function named like its path, so a grep finds it, and
  the group commit and the fast read are properties of its declaration, not second functions;
- no handler repeats a limit its Field declares: Call's accessors read them from the Field;
- Access.RESTRICTED admits the roles its declaration lists; routing refuses the others (3001)
  before the handler runs, on every path.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from anyio import CapacityLimiter
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.testclient import TestClient

from factories import form, make_account, token_for
from mobip.accounts.models import Role
from mobip.api.batch import GroupCommit
from mobip.api.envelope import Params
from mobip.api.routing import Access, Call, Endpoint, Field, PreparedWrite, build_route
from mobip.app import ENDPOINTS
from mobip.auth import endpoints as auth_endpoints
from mobip.kit.errors import FieldTooLong, InvalidField, MissingField
from mobip.kit.runtime import Runtime

# The Params accessors' limit keywords, and the Field attribute each one must be read from.
LIMIT_KEYWORDS = {
    "max_chars": "max_length",
    "minimum": "minimum",
    "maximum": "maximum",
    "default": "default",
    "required": "required",
}
ACCESSORS = {"text", "required_text", "integer", "boolean"}
ENDPOINT_MODULES = sorted({endpoint.handler.__module__ for endpoint in ENDPOINTS})


# --- one named function per endpoint ---------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_each_endpoint_is_a_module_level_function_named_like_its_path(endpoint: Endpoint) -> None:
    handler = endpoint.handler
    module = importlib.import_module(handler.__module__)
    assert handler.__name__ == handler.__qualname__ == endpoint.name  # not made by a closure
    assert getattr(module, endpoint.name) is handler
    source = Path(inspect.getfile(module)).read_text()
    assert f"\ndef {endpoint.name}(call: Call) -> " in source  # what `grep "def <name>"` finds


def test_the_fast_paths_are_declared_not_written_twice() -> None:
    """A group-committed endpoint's one function prepares a write; a fast read is declared."""
    group = {e.name for e in ENDPOINTS if e.group_commit}
    assert group == {"send_payment_request", "create_one_use_qr"}
    for endpoint in ENDPOINTS:
        returns = inspect.signature(endpoint.handler).return_annotation
        assert (returns == "PreparedWrite") is endpoint.group_commit, endpoint.name
    assert {e.name for e in ENDPOINTS if e.fast_read is not None} == {"is_valid"}


# --- each field stated once ------------------------------------------------------------------


def _limit_calls(tree: ast.AST) -> Iterator[tuple[int, str, str]]:
    """(line, accessor, keyword) of each accessor call passing a limit not read from a Field."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in ACCESSORS:
            continue
        for keyword in node.keywords:
            attribute = LIMIT_KEYWORDS.get(keyword.arg or "")
            if attribute is None:
                continue
            value = keyword.value
            # FIELD.max_length is the declaration itself; a number or a constant is a repeat.
            if not (isinstance(value, ast.Attribute) and value.attr == attribute):
                yield node.lineno, node.func.attr, keyword.arg or ""


@pytest.mark.parametrize("module", ENDPOINT_MODULES)
def test_no_endpoint_module_repeats_a_declared_limit(module: str) -> None:
    source = Path(inspect.getfile(importlib.import_module(module))).read_text()
    assert list(_limit_calls(ast.parse(source))) == []


def test_the_repeat_check_finds_a_repeat() -> None:
    repeated = ast.parse(
        'params.required_text("item_name", max_chars=255)\n'
        'call.params.integer("api_ttl", default=1, minimum=1, maximum=LIMIT)\n'
        "params.text(ACCESS_TOKEN.name, max_chars=ACCESS_TOKEN.max_length)\n"
    )
    assert list(_limit_calls(repeated)) == [
        (1, "required_text", "max_chars"),
        (2, "integer", "default"),
        (2, "integer", "minimum"),
        (2, "integer", "maximum"),
    ]


def _call(values: dict[str, str], *inputs: Field) -> Call:
    return Call(
        Params(values, max_field_chars=50),
        None,
        None,  # type: ignore[arg-type]  # the accessors need no runtime
        "127.0.0.1",
        Headers(),
        inputs={field.name: field for field in inputs},
    )


NAME = Field("name", "string", "n", required=True, max_length=5)
NOTE = Field("note", "string", "n")
TTL = Field("ttl", "integer", "t", minimum=1, maximum=9, default=3)
AMOUNT = Field("amount", "integer", "a", True, minimum=1, service_checks_range=True)
FLAG = Field("flag", "boolean", "f")


def test_call_reads_each_field_as_declared() -> None:
    fields = (NAME, NOTE, TTL, AMOUNT, FLAG)
    call = _call({"name": "Mug", "note": "", "amount": "0", "flag": "on"}, *fields)
    assert call.required_text("name") == call.text("name") == "Mug"
    assert call.text("note") is None  # empty counts as absent
    assert call.integer("ttl") == 3  # the declared default
    assert call.integer("amount") == 0  # its range is the service's, with the service's message
    assert call.boolean("flag") is True
    assert _call({"ttl": "9"}, TTL).integer("ttl") == 9
    with pytest.raises(MissingField, match="'name'"):
        _call({}, NAME).required_text("name")
    with pytest.raises(MissingField, match="'amount'"):
        _call({}, AMOUNT).integer("amount")
    with pytest.raises(FieldTooLong, match="'name'"):
        _call({"name": "abcdef"}, NAME).text("name")
    for value, message in (("0", "must be at least 1"), ("10", "must be at most 9")):
        with pytest.raises(InvalidField, match=message):
            _call({"ttl": value}, TTL).integer("ttl")
    with pytest.raises(FieldTooLong, match="'note'"):  # undeclared length: the server's bound
        _call({"note": "x" * 51}, NOTE).text("note")


def test_call_refuses_what_the_declaration_does_not_say() -> None:
    with pytest.raises(KeyError):
        _call({"other": "1"}, NAME).text("other")  # not an input of this endpoint
    with pytest.raises(AssertionError):
        _call({"note": "x"}, NOTE).required_text("note")  # declared optional
    with pytest.raises(AssertionError):
        _call({}, Field("count", "integer", "c")).integer("count")  # no default, not required
    with pytest.raises(RuntimeError, match="without the database"):
        _ = _call({}, NAME).session


def test_endpoint_errors_is_gone_and_roles_go_with_restricted() -> None:
    assert "errors" not in Endpoint.__dataclass_fields__
    with pytest.raises(ValueError, match="RESTRICTED"):
        Endpoint("/mobip/x", "GET", "x", lambda call: {}, roles=("admin",))
    with pytest.raises(ValueError, match="RESTRICTED"):
        Endpoint("/mobip/x", "GET", "x", lambda call: {}, access=Access.RESTRICTED)


# --- Access.RESTRICTED -----------------------------------------------------------------------


def test_the_restricted_endpoints_declare_their_roles() -> None:
    restricted = {e.name: set(e.roles) for e in ENDPOINTS if e.access is Access.RESTRICTED}
    assert restricted == {
        "get_account": {"admin", "partner"},
        "update_account": {"admin", "partner"},
        "get_mobip_transactions": {"admin", "partner"},
        "set_mobip_transactions": {"admin", "partner"},
    }


ROLE_REFUSED = {
    "return_code": "3001",
    "return_message": "This account's role is not allowed to call this endpoint",
}


@pytest.fixture
def probe(runtime: Runtime) -> Iterator[tuple[TestClient, list[str]]]:
    """An app of admin-only probes, one per path routing can take; ``ran`` lists what ran."""
    ran: list[str] = []

    def handler(call: Call) -> dict[str, Any]:
        ran.append("handler")
        return {}

    def prepared(call: Call) -> PreparedWrite:
        ran.append("prepared")
        return PreparedWrite({}, lambda conn, rows: None, None)

    def read(call: Call, reader: sqlite3.Connection) -> dict[str, Any] | None:
        ran.append("fast_read")
        return {}

    admins = Endpoint(
        "/mobip/unit_of_work", "POST", "p", handler, Access.RESTRICTED, roles=("admin",)
    )
    endpoints = [
        admins,
        replace(admins, path="/mobip/read", method="GET", fast_read=read),
        replace(admins, path="/mobip/group", handler=prepared, group_commit=True),
    ]
    group_commit = GroupCommit(runtime.database, delay=0)
    routes = [
        build_route(e, runtime, auth_endpoints.AUTHENTICATION, CapacityLimiter(2), group_commit)
        for e in endpoints
    ]
    try:
        with TestClient(Starlette(routes=routes)) as client:
            yield client, ran
    finally:
        group_commit.close()


@pytest.mark.parametrize("role", [Role.MERCHANT, Role.PARTNER])
def test_a_role_the_declaration_does_not_admit_is_refused_before_the_handler(
    client: TestClient, runtime: Runtime, probe: tuple[TestClient, list[str]], role: Role
) -> None:
    """The first call of each probe loads the token (the unit of work); the second finds it in
    the cache (the fast read on SQLite, the group commit): 3001 on every path, nothing run."""
    app, ran = probe
    token = token_for(client, make_account(runtime, role=role))
    for method, name in [("POST", "unit_of_work"), ("GET", "read"), ("POST", "group")]:
        for _ in range(2):
            reply = app.request(method, f"/api/2.0/mobip/{name}", files=form(access_token=token))
            assert (reply.status_code, reply.json()) == (403, ROLE_REFUSED), name
    assert ran == []


def test_an_admitted_role_reaches_the_handler_on_every_path(
    client: TestClient, runtime: Runtime, probe: tuple[TestClient, list[str]]
) -> None:
    app, ran = probe
    token = token_for(client, make_account(runtime, role=Role.ADMIN))
    paths = {}
    for method, name in [("POST", "unit_of_work"), ("GET", "read"), ("POST", "group")]:
        ran.clear()
        for _ in range(2):
            reply = app.request(method, f"/api/2.0/mobip/{name}", files=form(access_token=token))
            assert reply.json() == {"return_code": "0"}, name
        paths[name] = list(ran)
    assert paths["unit_of_work"] == ["handler", "handler"]
    # A cached token is read on the loop (SQLite only); the token was loaded by then.
    assert paths["read"][-1] == ("fast_read" if runtime.database.is_sqlite else "handler")
    assert set(paths["read"]) <= {"handler", "fast_read"}
    assert paths["group"] == ["prepared", "prepared"]


def test_a_merchant_is_refused_get_account_before_its_fields_are_read(
    client: TestClient, runtime: Runtime
) -> None:
    """The role is checked in one place, before the handler: a merchant learns nothing more."""
    token = token_for(client, make_account(runtime))
    for fields in ({}, {"uid": "acc_x", "document_only": "maybe"}):
        reply = client.request(
            "GET", "/api/2.0/mobip/get_account", files=form(access_token=token, **fields)
        )
        assert (reply.status_code, reply.json()) == (403, ROLE_REFUSED)
