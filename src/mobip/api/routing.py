"""API endpoints declared once: the route, the unit of work around the handler, and OpenAPI.

An endpoint is a module-level function of its domain's endpoints.py, named like its path, and
a declaration (``Endpoint``) of its fields, who may call it and how it may be served. Routing
reads the declaration and picks the path (fast read, group commit or unit of work); the unit
of work is kit/db's ``Database.run``, committed on success and rolled back on error (unless the
error says to keep the changes). A read (the spec's GET) also answers HEAD and POST alike
(``Endpoint.methods``); any other method gets the envelope's 405 with ``Allow``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import anyio.to_thread
from anyio import CapacityLimiter
from sqlalchemy.orm import Session
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from mobip.api import idempotency
from mobip.api.batch import GroupCommit, Writer
from mobip.api.envelope import (
    Params,
    client_ip,
    encode,
    encode_stream,
    error_payload,
    ok,
    parse_params,
    read_body,
    render,
    wants_xml,
)
from mobip.kit.characters import check_text, shown
from mobip.kit.db import Database
from mobip.kit.errors import (
    FieldTooLong,
    InternalError,
    InvalidField,
    MethodNotAllowed,
    MobipError,
    UnknownField,
)
from mobip.kit.runtime import Runtime

log = logging.getLogger("mobip.api")

API_PREFIX = "/api/2.0"
# A request retries a unit of work that met a busy SQLite for this long, then answers 500.
_BUSY_RETRY_SECONDS = 10.0
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# What a read (the spec's GET) answers: HEAD with GET, and POST with the same fields and reply,
# our extension for clients that cannot send a body with GET (browsers' fetch, many libraries).
READ_METHODS = ("GET", "HEAD", "POST")
# Taken by every endpoint: the token (also sent as a Bearer header) and the reply format.
ALWAYS_ALLOWED = ("access_token", "format")
_REPLY_FORMATS = ("json", "xml")
# An error message names at most this many unknown fields (a body may hold thousands).
_MAX_NAMED_UNKNOWN = 20


class Access(StrEnum):
    """Who may call: anyone (``anonymous``, e.g. get_token), any token holder (``public``), or
    the token holders whose role the endpoint's ``roles`` admit (``restricted``)."""

    ANONYMOUS = "anonymous"
    PUBLIC = "public"
    RESTRICTED = "restricted"


class Principal(Protocol):
    """Who calls, as routing sees it (an account: the api layer knows no domain)."""

    @property
    def uid(self) -> str: ...

    @property
    def role(self) -> str: ...


@dataclass(frozen=True)
class Field:
    """One input or output field, declared once: the checks made on it and its OpenAPI schema.

    Routing checks the name, the characters and ``max_length`` of every input before anything
    else; ``Call``'s accessors read a value as its Field says (``required``, ``default``, the
    range); ``enum``, ``format`` and ``pattern`` state what the service's own checks accept.
    """

    name: str
    type: str  # string | integer | boolean | array | object
    description: str
    required: bool = False
    # Constraints the server enforces, stated in OpenAPI as the same-named JSON Schema keywords.
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    enum: tuple[str, ...] = ()  # accepted values (matched case-insensitively where stated)
    format: str | None = None  # JSON Schema format: "uri", "email", "date", ...
    pattern: str | None = None  # a regex the whole value matches
    # Tab, line feed and carriage return are allowed (e.g. item_message); other controls never.
    multiline: bool = False
    # An optional integer's value when it is not sent (its description says so in words).
    default: int | None = None
    # The service checks minimum and maximum itself, with its own messages and beside other
    # values (the amounts, whose total is bounded): Call.integer leaves the range to it.
    service_checks_range: bool = False


# Taken by every authenticated endpoint (api/openapi makes it optional: a Bearer header will do).
TOKEN_MAX_CHARS = 200
ACCESS_TOKEN = Field(
    "access_token",
    "string",
    "Connection token from get_token (or send `Authorization: Bearer <token>`)",
    required=True,
    max_length=TOKEN_MAX_CHARS,
)


class Call:
    """Everything an endpoint's function may use for one request.

    Inputs are read through the typed accessors, which take each field's rules from the
    endpoint's declaration (a handler states no limit of its own). ``session`` is there on the
    unit of work only: a function whose rows the group commit may write (``group_commit``)
    prepares them without the database.
    """

    __slots__ = ("_session", "client_ip", "headers", "inputs", "params", "principal", "runtime")

    def __init__(
        self,
        params: Params,
        session: Session | None,
        runtime: Runtime,
        client_ip: str,
        headers: Headers,
        principal: Principal | None = None,
        inputs: Mapping[str, Field] | None = None,
    ) -> None:
        self.params = params
        self._session = session
        self.runtime = runtime
        self.client_ip = client_ip
        self.headers = headers
        self.principal = principal
        self.inputs: Mapping[str, Field] = inputs if inputs is not None else {}

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("no session here: this call prepares its rows without the database")
        return self._session

    def text(self, name: str) -> str | None:
        """A declared text input (an empty value counts as absent): MissingField when it is
        required and absent, FieldTooLong past its max_length."""
        field = self.inputs[name]
        return self.params.text(name, required=field.required, max_chars=field.max_length)

    def required_text(self, name: str) -> str:
        """A text input declared required (see ``text``)."""
        field = self.inputs[name]
        assert field.required, f"{name} is not declared required"
        value = self.params.text(name, required=True, max_chars=field.max_length)
        assert value is not None
        return value

    def integer(self, name: str) -> int:
        """A declared integer input: required or its default, within its declared range (unless
        the service checks the range, see Field)."""
        field = self.inputs[name]
        bounded = not field.service_checks_range
        value = self.params.integer(
            name,
            required=field.required,
            default=field.default,
            minimum=field.minimum if bounded else None,
            maximum=field.maximum if bounded else None,
        )
        assert value is not None, f"{name} is declared neither required nor with a default"
        return value

    def boolean(self, name: str) -> bool:
        """A declared flag: 1/0, true/false, on/off, yes/no (any case); false when absent."""
        assert self.inputs[name].type == "boolean", f"{name} is not declared boolean"
        return self.params.boolean(name)


@dataclass(frozen=True)
class PreparedWrite:
    """An endpoint's reply and the rows that make it true, prepared without the database:
    routing sends ``reply`` once ``writer`` has committed ``rows``, in the request's unit of
    work or, for a ``group_commit`` endpoint, in api/batch's group commit."""

    reply: dict[str, Any]
    writer: Writer
    rows: Any


@dataclass(frozen=True)
class CallOutside:
    """An endpoint's reply that needs a slow call outside any database transaction (a payment
    provider's refund): routing commits the unit of work that returned it (which reserved what
    the call is about and claimed the Idempotency-Key), runs ``call()`` with no transaction
    open, then ``finish(session, outcome)`` in a second unit of work; its reply is sent and
    stored under the key. An error ``finish`` raises with ``keep_changes`` (the reservation
    released) releases the key too, so the same request may be sent again, as does an error
    ``call()`` raises (e.g. a photo that cannot be downloaded: nothing was reserved)."""

    call: Callable[[], Any]
    finish: Callable[[Session, Any], dict[str, Any]]


@dataclass(frozen=True)
class Streamed:
    """An endpoint's reply with one list too long to hold in memory (a partner feed's every
    line): ``fields`` go first, then the list ``name``, read page by page. Routing calls
    ``page(session, start)`` in the handler's unit of work, so that an error there (and any
    before it) is an ordinary error reply; the later pages, ``page(session, cursor)`` while it
    gives a next cursor, are each read in a short unit of work of their own as the reply is sent
    (api/envelope.encode_stream, JSON or XML): no transaction stays open between pages and the
    memory used is one page's, however long the list. An error on a later page cuts the reply
    short (logged; the client gets an incomplete body, never a complete-looking one)."""

    fields: Mapping[str, Any]
    name: str
    start: Any
    page: Callable[[Session, Any], tuple[Sequence[Mapping[str, Any]], Any | None]]


# An endpoint's function: its reply, a write prepared for routing to make (PreparedWrite), a
# call to make outside the database before replying (CallOutside), or a reply sent as it is
# read (Streamed).
Handler = Callable[[Call], dict[str, Any] | PreparedWrite | CallOutside | Streamed]
# A read answered on the event loop's thread with SQLite's loop reader (the Call has no
# session), or None: "take the ordinary path" (a write is due, e.g. a lazy expiry). It may
# raise MobipError like a handler.
FastRead = Callable[[Call, sqlite3.Connection], dict[str, Any] | None]
Authenticator = Callable[[Session, Runtime, Params, Headers], Principal]
# The principal of a token known from the cache with no write due, else None.
CachedAuthenticator = Callable[[Runtime, Params, Headers], Principal | None]


@dataclass(frozen=True)
class Authentication:
    """How routing learns who calls (the api layer knows no accounts): the authenticator, its
    no-database variant for the fast paths, and the error for a role an endpoint does not admit."""

    authenticate: Authenticator
    cached: CachedAuthenticator
    role_not_allowed: Callable[[], MobipError]


@dataclass(frozen=True)
class Endpoint:
    path: str  # e.g. "/mobip/get_token", below API_PREFIX
    method: str
    summary: str
    # A module-level function named like the path's last part (send_payment_request).
    handler: Handler
    access: Access = Access.PUBLIC
    inputs: Sequence[Field] = ()
    outputs: Sequence[Field] = ()
    # The roles a RESTRICTED endpoint admits; routing refuses the others before the handler.
    roles: tuple[str, ...] = ()
    # Takes SQLite's write lock at BEGIN (endpoints that always write).
    writes: bool = False
    # Honours the Idempotency-Key header (create endpoints).
    idempotent: bool = False
    # A hot read with a no-thread path on SQLite (see FastRead).
    fast_read: FastRead | None = None
    # The handler touches no database and returns a PreparedWrite: for a caller whose token is
    # cached, sent without an Idempotency-Key, api/batch's group commit writes its rows.
    group_commit: bool = False
    # The body limit of this endpoint when it takes more than the server's (MOBIP_MAX_BODY_BYTES):
    # an import of 10,000 invoices (set_external_invoices).
    max_body_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.method not in ("GET", "POST"):
            raise ValueError(f"{self.path}: the spec's methods are GET (a read) and POST")
        if bool(self.roles) != (self.access is Access.RESTRICTED):
            raise ValueError(f"{self.path}: roles are what a RESTRICTED endpoint declares")

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def reads(self) -> bool:
        """A read: the spec's GET, answered alike to GET, HEAD and POST (READ_METHODS)."""
        return self.method == "GET"

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods this endpoint answers; any other gets a 405 listing these in ``Allow``."""
        return READ_METHODS if self.reads else (self.method,)


@dataclass(frozen=True)
class InputRules:
    """The checks every request to one endpoint passes before anything else reads it."""

    endpoint: str
    known: tuple[str, ...]  # in declaration order, for the message
    known_set: frozenset[str]
    max_length: dict[str, int]
    multiline: frozenset[str]
    fields: dict[str, Field]  # by name, for Call's accessors

    @classmethod
    def of(cls, endpoint: Endpoint) -> InputRules:
        known = tuple(dict.fromkeys([*(f.name for f in endpoint.inputs), *ALWAYS_ALLOWED]))
        return cls(
            endpoint=endpoint.name,
            known=known,
            known_set=frozenset(known),
            max_length={f.name: f.max_length for f in endpoint.inputs if f.max_length is not None},
            multiline=frozenset(f.name for f in endpoint.inputs if f.multiline),
            fields={f.name: f for f in endpoint.inputs},
        )

    def check(self, params: Params) -> None:
        """Refuse unknown fields (1007), refused characters (1002), declared lengths (1003)."""
        names = params.names()
        if not self.known_set.issuperset(names):
            raise self._unknown([name for name in names if name not in self.known_set])
        max_length = self.max_length
        for name, value in params.items():
            # Printable ASCII, the usual value, is settled by two C-level scans.
            if not (value.isascii() and value.isprintable()):
                check_text(name, value, multiline=name in self.multiline)
            limit = max_length.get(name)
            if limit is not None and len(value) > limit:
                raise FieldTooLong(name, limit)
        reply_format = params.raw("format")
        if reply_format and reply_format.lower() not in _REPLY_FORMATS:
            # Anything else used to mean JSON without a word: a typo ("xlm") went unnoticed.
            raise InvalidField("format", "must be json or xml")

    def _unknown(self, names: list[str]) -> UnknownField:
        quoted = ", ".join(f"'{shown(name)}'" for name in names[:_MAX_NAMED_UNKNOWN])
        if len(names) > _MAX_NAMED_UNKNOWN:
            quoted += f" and {len(names) - _MAX_NAMED_UNKNOWN} more"
        noun = "field" if len(names) == 1 else "fields"
        return UnknownField(
            names,
            f"Unknown {noun} {quoted}: {self.endpoint} takes {', '.join(self.known)}",
        )


def check_inputs(endpoint: Endpoint, params: Params) -> None:
    """Check ``params`` against what ``endpoint`` declares (see InputRules.check)."""
    InputRules.of(endpoint).check(params)


def log_context(request: Request) -> dict[str, Any]:
    """The per-request dict the access log reads (filled by the access-log middleware)."""
    ctx: dict[str, Any] = request.scope.setdefault("mobip.log", {})
    return ctx


def build_route(
    endpoint: Endpoint,
    runtime: Runtime,
    authentication: Authentication,
    limiter: CapacityLimiter,
    group_commit: GroupCommit,
) -> Route:
    """The route of one endpoint; ``limiter`` bounds the threads doing database work.

    One place decides how a request is served, from what the endpoint declares:

    - on SQLite, an endpoint with a ``fast_read`` whose caller's token is in the cache is
      answered on the event loop's thread: a WAL reader never waits, and the hop to a worker
      thread (and the GIL hand-offs it brings) costs more than the read itself;
    - a ``group_commit`` endpoint whose caller's token is in the cache, sent without an
      Idempotency-Key, is prepared on the event loop's thread and its rows are written by
      ``group_commit`` (api/batch), on either database; the reply goes out after the commit;
    - anything else takes a thread and one unit of work (kit/db's ``Database.run``).

    Every path authenticates, then refuses a role the endpoint does not admit, then calls the
    same handler.
    """
    settings = runtime.settings
    max_body_bytes = max(endpoint.max_body_bytes or 0, settings.max_body_bytes)
    database = runtime.database
    fast_read = endpoint.fast_read if database.is_sqlite else None
    input_rules = InputRules.of(endpoint)
    inputs = input_rules.fields
    roles = endpoint.roles
    methods = endpoint.methods
    allow = ", ".join(methods)
    said_methods = " or ".join(m for m in methods if m != "HEAD")

    def admitted(principal: Principal, log_ctx: dict[str, Any]) -> Principal:
        log_ctx["account_uid"] = principal.uid
        if roles and principal.role not in roles:
            raise authentication.role_not_allowed()
        return principal

    def cached_call(
        params: Params, headers: Headers, client_ip: str, log_ctx: dict[str, Any]
    ) -> Call | None:
        """A Call without a session for a caller whose token is in the cache, else None."""
        principal = authentication.cached(runtime, params, headers)
        if principal is None:
            return None
        return Call(params, None, runtime, client_ip, headers, admitted(principal, log_ctx), inputs)

    def read_on_loop(
        params: Params, headers: Headers, client_ip: str, log_ctx: dict[str, Any]
    ) -> Response | None:
        assert fast_read is not None
        call = cached_call(params, headers, client_ip, log_ctx)
        if call is None:
            return None
        data = fast_read(call, database.loop_reader)
        if data is None:
            return None
        body, media_type = encode(ok(data), xml=wants_xml(params, headers.get("accept")))
        log_ctx["return_code"] = "0"
        return Response(body, media_type=media_type)

    async def write_in_group(
        params: Params, headers: Headers, client_ip: str, log_ctx: dict[str, Any]
    ) -> Response | None:
        call = cached_call(params, headers, client_ip, log_ctx)
        if call is None:
            return None
        prepared = endpoint.handler(call)
        if not isinstance(prepared, PreparedWrite):
            raise TypeError(f"{endpoint.name} is declared group_commit: it returns a PreparedWrite")
        body, media_type = encode(ok(prepared.reply), xml=wants_xml(params, headers.get("accept")))
        await group_commit.write(prepared.writer, prepared.rows)
        log_ctx["return_code"] = "0"
        return Response(body, media_type=media_type)

    def unit_of_work(
        params: Params, headers: Headers, client_ip: str, log_ctx: dict[str, Any]
    ) -> Response:
        xml = wants_xml(params, headers.get("accept"))
        outside: list[tuple[CallOutside, str | None, str | None]] = []

        def work(session: Session) -> Response | None:
            outside.clear()  # work may run again (a busy SQLite)
            call = Call(params, session, runtime, client_ip, headers, None, inputs)
            if endpoint.access is not Access.ANONYMOUS:
                principal = authentication.authenticate(session, runtime, params, headers)
                call.principal = admitted(principal, log_ctx)
            key: str | None = None
            if endpoint.idempotent:
                key = idempotency.read_key(headers.get(idempotency.HEADER))
            if key is not None and call.principal is not None:
                stored = idempotency.claim(
                    session,
                    account_uid=call.principal.uid,
                    key=key,
                    endpoint=endpoint.name,
                    fingerprint=idempotency.request_fingerprint(endpoint.name, params),
                    now=runtime.clock.now(),
                )
                if stored is not None:
                    log_ctx["return_code"] = "0"
                    log_ctx["idempotent_replay"] = True
                    return Response(stored.body, media_type=stored.content_type)
            result = endpoint.handler(call)
            if isinstance(result, Streamed):
                response = streamed_response(result, session, database, xml, limiter)
                log_ctx["return_code"] = "0"
                return response
            if isinstance(result, CallOutside):
                outside.append((result, key, call.principal.uid if call.principal else None))
                return None  # committed; the reply comes from finish_outside
            if isinstance(result, PreparedWrite):
                result.writer(session.connection(), [result.rows])
                result = result.reply
            body, media_type = encode(ok(result), xml=xml)
            if key is not None and call.principal is not None:
                idempotency.store(
                    session,
                    account_uid=call.principal.uid,
                    key=key,
                    reply=idempotency.StoredReply(200, media_type, body),
                )
            log_ctx["return_code"] = "0"
            return Response(body, media_type=media_type)

        # Committed on success, rolled back on error (kept when the error says so: a counted
        # failed get_token); SQLite's "database is locked" runs it again (kit/db.retry_busy).
        response = database.run(work, immediate=endpoint.writes, within=_BUSY_RETRY_SECONDS)
        if response is not None:
            return response
        pending, key, account_uid = outside[0]
        try:
            outcome = pending.call()  # no transaction open: no lock held while it waits
        except Exception:
            # Nothing was done outside: the Idempotency-Key claimed with the first unit of work
            # is given back, so the same request may be sent again (not "in progress" for 24 h).
            if key is not None and account_uid is not None:
                claimed = key, account_uid
                database.run(
                    lambda session: idempotency.release(
                        session, account_uid=claimed[1], key=claimed[0]
                    ),
                    immediate=True,
                    within=_BUSY_RETRY_SECONDS,
                )
            raise

        def finish_outside(session: Session) -> Response:
            try:
                reply = pending.finish(session, outcome)
            except MobipError as error:
                if error.keep_changes and key is not None and account_uid is not None:
                    idempotency.release(session, account_uid=account_uid, key=key)
                raise
            body, media_type = encode(ok(reply), xml=xml)
            if key is not None and account_uid is not None:
                idempotency.store(
                    session,
                    account_uid=account_uid,
                    key=key,
                    reply=idempotency.StoredReply(200, media_type, body),
                )
            log_ctx["return_code"] = "0"
            return Response(body, media_type=media_type)

        return database.run(finish_outside, immediate=True, within=_BUSY_RETRY_SECONDS)

    async def asgi_endpoint(request: Request) -> Response:
        params: Params | None = None
        log_ctx = log_context(request)
        try:
            if request.method not in methods:
                raise MethodNotAllowed(
                    f"{endpoint.name} is called with {said_methods}, not {request.method}",
                    headers={"Allow": allow},
                )
            body = await read_body(request, max_body_bytes)
            params = parse_params(
                request.headers.get("content-type", ""),
                body,
                request.scope.get("query_string", b""),
                settings.max_field_chars,
            )
            # Before authentication and every path: nothing downstream sees a field the
            # endpoint does not declare, a control character or an over-long value.
            input_rules.check(params)
            headers = request.headers
            ip = client_ip(request)
            if fast_read is not None:
                reply = read_on_loop(params, headers, ip, log_ctx)
                if reply is not None:
                    return reply
            if endpoint.group_commit and idempotency.HEADER not in headers:
                reply = await write_in_group(params, headers, ip, log_ctx)
                if reply is not None:
                    return reply
            return await anyio.to_thread.run_sync(
                unit_of_work, params, headers, ip, log_ctx, limiter=limiter
            )
        except MobipError as error:
            return error_response(error, request, params)
        except Exception:
            log.exception("unhandled error in %s", endpoint.name)
            return error_response(InternalError(), request, params)

    # Every method reaches the handler, so a wrong one gets the envelope's 405, not Starlette's.
    return Route(endpoint.full_path, asgi_endpoint, methods=_ALL_METHODS, name=endpoint.name)


def streamed_response(
    streamed: Streamed,
    session: Session,
    database: Database,
    xml: bool,
    limiter: CapacityLimiter,
) -> StreamingResponse:
    """The reply of a Streamed: its first page read now, in ``session`` (the handler's unit of
    work), the others each in a read of its own while the body is sent."""
    first, cursor = streamed.page(session, streamed.start)

    def pages() -> Iterator[Sequence[Mapping[str, Any]]]:
        nonlocal cursor
        yield first
        while cursor is not None:
            items, cursor = database.run(
                _page_after(streamed, cursor), immediate=False, within=_BUSY_RETRY_SECONDS
            )
            yield items

    chunks, media_type = encode_stream(ok(streamed.fields), streamed.name, pages(), xml=xml)

    async def body() -> AsyncIterator[bytes]:
        # Each piece (a page's read and encoding) on a thread of the same limiter as every unit
        # of work: the event loop never waits for the database, the streams take no more
        # connections than the pool has, and a piece is sent before the next is read.
        try:
            while True:
                piece = await anyio.to_thread.run_sync(next, chunks, None, limiter=limiter)
                if piece is None:  # an empty piece (an empty page's) is no end
                    return
                yield piece
        except Exception:
            log.exception("streamed reply %s cut short", streamed.name)
            raise

    return StreamingResponse(body(), media_type=media_type)


def _page_after(
    streamed: Streamed, cursor: Any
) -> Callable[[Session], tuple[Sequence[Mapping[str, Any]], Any | None]]:
    return lambda session: streamed.page(session, cursor)


def error_response(error: MobipError, request: Request, params: Params | None = None) -> Response:
    log_context(request)["return_code"] = error.return_code
    return render(
        error_payload(error),
        xml=wants_xml(params, request.headers.get("accept")),
        status=error.http_status,
        headers=error.headers,
    )
