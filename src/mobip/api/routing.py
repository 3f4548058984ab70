"""API endpoints declared once: the route, the unit of work around the handler, and OpenAPI.

A handler is a plain function run in a worker thread with an open session; the edge here
commits on success and rolls back on error (unless the error says to keep the changes).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import anyio.to_thread
from anyio import CapacityLimiter
from sqlalchemy.orm import Session
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mobip.api import idempotency
from mobip.api.batch import GroupCommit, Writer
from mobip.api.envelope import (
    Params,
    encode,
    error_payload,
    ok,
    parse_params,
    read_body,
    render,
    wants_xml,
)
from mobip.kit.characters import check_text, shown
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
# Taken by every endpoint: the token (also sent as a Bearer header) and the reply format.
ALWAYS_ALLOWED = ("access_token", "format")
_REPLY_FORMATS = ("json", "xml")
# An error message names at most this many unknown fields (a body may hold thousands).
_MAX_NAMED_UNKNOWN = 20


class Access(StrEnum):
    """Who may call: anyone (``anonymous``, e.g. get_token) or a token holder."""

    ANONYMOUS = "anonymous"
    PUBLIC = "public"
    RESTRICTED = "restricted"


class Principal(Protocol):
    @property
    def uid(self) -> str: ...


@dataclass(frozen=True)
class Field:
    """One input or output field, declared once: the checks made on it and its OpenAPI schema."""

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


@dataclass
class Call:
    """Everything a handler may use for one request."""

    params: Params
    session: Session
    runtime: Runtime
    client_ip: str
    headers: Headers
    principal: Principal | None = None


Handler = Callable[[Call], dict[str, Any]]
Authenticator = Callable[[Session, Runtime, Params, Headers], Principal]
# A read answered on the event loop's thread with SQLite's loop reader, or None: "take the
# ordinary path" (a write is due, e.g. a lazy expiry). It may raise MobipError like a handler.
FastRead = Callable[[sqlite3.Connection, Runtime, Params, Principal], dict[str, Any] | None]


@dataclass(frozen=True)
class PreparedWrite:
    """A write prepared on the event loop: ``reply`` is sent once ``writer`` committed ``rows``."""

    reply: dict[str, Any]
    writer: Writer
    rows: Any


# A create prepared on the event loop's thread (validation, ids, the reply) whose rows api/batch's
# group commit writes; it may raise MobipError like a handler (then nothing is written).
FastWrite = Callable[[Runtime, Params, Principal], PreparedWrite]
# The principal of a token known from the cache with no write due, else None.
CachedAuthenticator = Callable[[Runtime, Params, Headers], Principal | None]


@dataclass(frozen=True)
class Endpoint:
    path: str  # e.g. "/mobip/get_token", below API_PREFIX
    method: str
    summary: str
    handler: Handler
    access: Access = Access.PUBLIC
    inputs: Sequence[Field] = ()
    outputs: Sequence[Field] = ()
    errors: Sequence[type[MobipError]] = field(default_factory=tuple)
    # Takes SQLite's write lock at BEGIN (endpoints that always write).
    writes: bool = False
    # Honours the Idempotency-Key header (create endpoints).
    idempotent: bool = False
    # A hot read with a no-thread path on SQLite (see FastRead).
    fast_read: FastRead | None = None
    # A create with a group-committed path for callers whose token is cached (see FastWrite).
    fast_write: FastWrite | None = None

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class InputRules:
    """The checks every request to one endpoint passes before anything else reads it."""

    endpoint: str
    known: tuple[str, ...]  # in declaration order, for the message
    known_set: frozenset[str]
    max_length: dict[str, int]
    multiline: frozenset[str]

    @classmethod
    def of(cls, endpoint: Endpoint) -> InputRules:
        known = tuple(dict.fromkeys([*(f.name for f in endpoint.inputs), *ALWAYS_ALLOWED]))
        return cls(
            endpoint=endpoint.name,
            known=known,
            known_set=frozenset(known),
            max_length={f.name: f.max_length for f in endpoint.inputs if f.max_length is not None},
            multiline=frozenset(f.name for f in endpoint.inputs if f.multiline),
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
    authenticate: Authenticator,
    limiter: CapacityLimiter,
    cached_authenticate: CachedAuthenticator,
    group_commit: GroupCommit,
) -> Route:
    """The route of one endpoint; ``limiter`` bounds the threads doing database work.

    On SQLite, an endpoint with a ``fast_read`` whose caller's token is in the cache is answered
    on the event loop's thread: a WAL reader never waits, and the hop to a worker thread (and the
    GIL hand-offs it brings) costs more than the read itself. An endpoint with a ``fast_write``
    whose caller's token is in the cache, sent without an Idempotency-Key, is prepared on the
    event loop's thread and its rows are written by ``group_commit`` (api/batch), on either
    database; the reply goes out after the commit. Anything else takes a thread.
    """
    settings = runtime.settings
    fast_read = endpoint.fast_read if runtime.database.is_sqlite else None
    input_rules = InputRules.of(endpoint)

    def fast_path(params: Params, headers: Headers, log_ctx: dict[str, Any]) -> Response | None:
        assert fast_read is not None
        principal = cached_authenticate(runtime, params, headers)
        if principal is None:
            return None
        log_ctx["account_uid"] = principal.uid
        data = fast_read(runtime.database.loop_reader, runtime, params, principal)
        if data is None:
            return None
        body, media_type = encode(ok(data), xml=wants_xml(params, headers.get("accept")))
        log_ctx["return_code"] = "0"
        return Response(body, media_type=media_type)

    async def write_path(
        params: Params, headers: Headers, log_ctx: dict[str, Any]
    ) -> Response | None:
        assert endpoint.fast_write is not None
        principal = cached_authenticate(runtime, params, headers)
        if principal is None:
            return None
        log_ctx["account_uid"] = principal.uid
        prepared = endpoint.fast_write(runtime, params, principal)
        body, media_type = encode(ok(prepared.reply), xml=wants_xml(params, headers.get("accept")))
        await group_commit.write(prepared.writer, prepared.rows)
        log_ctx["return_code"] = "0"
        return Response(body, media_type=media_type)

    def unit_of_work(
        params: Params, headers: Headers, client_ip: str, log_ctx: dict[str, Any]
    ) -> Response:
        # SQLite refuses a reader's upgrade to writer when another writer committed in between;
        # the transaction was rolled back, so running it again is safe (kit/db.retry_busy).
        return runtime.database.retry_busy(
            lambda: _run_once(params, headers, client_ip, log_ctx), within=_BUSY_RETRY_SECONDS
        )

    def _run_once(
        params: Params, headers: Headers, client_ip: str, log_ctx: dict[str, Any]
    ) -> Response:
        xml = wants_xml(params, headers.get("accept"))
        with runtime.database.session(immediate=endpoint.writes) as session:
            call = Call(params, session, runtime, client_ip, headers)
            try:
                key: str | None = None
                if endpoint.access is not Access.ANONYMOUS:
                    call.principal = authenticate(session, runtime, params, headers)
                    log_ctx["account_uid"] = call.principal.uid
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
                        session.commit()
                        log_ctx["return_code"] = "0"
                        log_ctx["idempotent_replay"] = True
                        return Response(stored.body, media_type=stored.content_type)
                body, media_type = encode(ok(endpoint.handler(call)), xml=xml)
                if key is not None and call.principal is not None:
                    idempotency.store(
                        session,
                        account_uid=call.principal.uid,
                        key=key,
                        reply=idempotency.StoredReply(200, media_type, body),
                    )
                session.commit()
                log_ctx["return_code"] = "0"
                return Response(body, media_type=media_type)
            except MobipError as error:
                # Keep the work behind an error only when the error says so (a counted failure).
                if error.keep_changes:
                    session.commit()
                else:
                    session.rollback()
                raise

    async def asgi_endpoint(request: Request) -> Response:
        params: Params | None = None
        log_ctx = log_context(request)
        try:
            if request.method != endpoint.method and not (
                endpoint.method == "GET" and request.method == "HEAD"
            ):
                raise MethodNotAllowed(
                    f"{endpoint.name} is called with {endpoint.method}, not {request.method}",
                    headers={"Allow": endpoint.method},
                )
            body = await read_body(request, settings.max_body_bytes)
            params = parse_params(
                request.headers.get("content-type", ""),
                body,
                request.scope.get("query_string", b""),
                settings.max_field_chars,
            )
            # Before authentication and every path: nothing downstream sees a field the
            # endpoint does not declare, a control character or an over-long value.
            input_rules.check(params)
            if fast_read is not None:
                reply = fast_path(params, request.headers, log_ctx)
                if reply is not None:
                    return reply
            if endpoint.fast_write is not None and idempotency.HEADER not in request.headers:
                reply = await write_path(params, request.headers, log_ctx)
                if reply is not None:
                    return reply
            client_ip = request.client.host if request.client else "unknown"
            return await anyio.to_thread.run_sync(
                unit_of_work, params, request.headers, client_ip, log_ctx, limiter=limiter
            )
        except MobipError as error:
            return error_response(error, request, params)
        except Exception:
            log.exception("unhandled error in %s", endpoint.name)
            return error_response(InternalError(), request, params)

    # Every method reaches the handler, so a wrong one gets the envelope's 405, not Starlette's.
    return Route(endpoint.full_path, asgi_endpoint, methods=_ALL_METHODS, name=endpoint.name)


def error_response(error: MobipError, request: Request, params: Params | None = None) -> Response:
    log_context(request)["return_code"] = error.return_code
    return render(
        error_payload(error),
        xml=wants_xml(params, request.headers.get("accept")),
        status=error.http_status,
        headers=error.headers,
    )
