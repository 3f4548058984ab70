"""The request envelope: parameters in (multipart, urlencoded, query string), replies out.

Every reply carries ``return_code`` as a string ("0" = OK) and, on error, ``return_message``;
JSON by default, XML when ``format=xml`` is passed or ``Accept`` asks for application/xml.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast
from xml.sax.saxutils import escape

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from mobip.api.formdata import boundary_from_content_type, parse_multipart, parse_urlencoded
from mobip.config import Settings
from mobip.kit.errors import (
    BodyTooLarge,
    DuplicateField,
    FieldTooLong,
    InvalidField,
    MalformedBody,
    MissingField,
    MobipError,
    RequestTimeout,
    UnsupportedMediaType,
)

JSON = "application/json"
# One encoder for every reply: json.dumps with options builds a new JSONEncoder on each call.
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_TRUE = frozenset({"1", "true", "on", "yes"})
_FALSE = frozenset({"0", "false", "off", "no"})


class Params:
    """The request's parameters, one value per name, with typed and bounded accessors."""

    __slots__ = ("_shadowed", "_values", "max_field_chars")

    def __init__(
        self,
        values: Mapping[str, str],
        max_field_chars: int = 65536,
        shadowed: Mapping[str, str] | None = None,
    ) -> None:
        self._values = dict(values)
        self.max_field_chars = max_field_chars
        self._shadowed = dict(shadowed) if shadowed else None

    @classmethod
    def from_pairs(
        cls, body: Iterable[tuple[str, str]], query: Iterable[tuple[str, str]], max_field_chars: int
    ) -> Params:
        """Merge body and query parameters; a name repeated within one source is an error.

        The body wins over the query string, so a client can keep a fixed query and post values;
        a query value that a different body value replaced stays readable (``shadowed``).
        """
        values: dict[str, str] = {}
        shadowed: dict[str, str] | None = None
        for source in (query, body):
            seen: set[str] = set()
            for name, value in source:
                if name in seen:
                    raise DuplicateField(name)
                seen.add(name)
                previous = values.get(name)
                if previous is not None and previous != value:
                    shadowed = shadowed or {}
                    shadowed[name] = previous
                values[name] = value
        return cls(values, max_field_chars, shadowed)

    def shadowed(self, name: str) -> str | None:
        """The query-string value of ``name`` that a different body value replaced, if any.

        For fields where two values must not be silently reduced to one (a credential).
        """
        return self._shadowed.get(name) if self._shadowed else None

    def raw(self, name: str) -> str | None:
        return self._values.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def names(self) -> list[str]:
        return list(self._values)

    def items(self) -> list[tuple[str, str]]:
        return list(self._values.items())

    def text(
        self, name: str, *, required: bool = False, max_chars: int | None = None
    ) -> str | None:
        """A string parameter; an empty value counts as absent."""
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise MissingField(name)
            return None
        limit = max_chars if max_chars is not None else self.max_field_chars
        if len(value) > limit:
            raise FieldTooLong(name, limit)
        return value

    def required_text(self, name: str, *, max_chars: int | None = None) -> str:
        value = self.text(name, required=True, max_chars=max_chars)
        assert value is not None
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        """A whole number written in decimal digits ("12.50", "1e3", " 7" are refused)."""
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise MissingField(name)
            return default
        if not _INTEGER.fullmatch(value):
            raise InvalidField(name, "must be a whole number written in digits")
        number = int(value)
        if minimum is not None and number < minimum:
            raise InvalidField(name, f"must be at least {minimum}")
        if maximum is not None and number > maximum:
            raise InvalidField(name, f"must be at most {maximum}")
        return number

    def boolean(self, name: str, *, default: bool = False) -> bool:
        """A flag: 1/0, true/false, on/off, yes/no (any case)."""
        value = self._values.get(name)
        if value is None or value == "":
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise InvalidField(name, "must be one of 1/0, true/false, on/off, yes/no")


# How often the body-read deadlines are checked: a slow body is stopped between its deadline and
# this much later.
DEADLINE_SWEEP_SECONDS = 0.25


class BodyDeadlines:
    """The deadlines of the body reads in progress, enforced by one sweeper task per event loop.

    A timer per request (``asyncio.timeout``) cost more than reading a small body (about a fifth
    of is_valid's server time in bench/api.py); here a read only registers its task, and a task
    that wakes every DEADLINE_SWEEP_SECONDS while reads are in progress cancels the late ones.
    Per runtime (``Runtime.state``).
    """

    def __init__(self) -> None:
        self._reads: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._sweepers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    def start(self, task: asyncio.Task[Any], timeout: float) -> None:
        loop = task.get_loop()
        self._reads[task] = loop.time() + timeout
        sweeper = self._sweepers.get(loop)
        if sweeper is None or sweeper.done():
            self._sweepers[loop] = loop.create_task(self._sweep(loop))

    def finish(self, task: asyncio.Task[Any]) -> bool:
        """Forget ``task``'s read; True when the sweeper stopped it for its deadline."""
        self._reads.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    async def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        while any(task.get_loop() is loop for task in self._reads):
            await asyncio.sleep(DEADLINE_SWEEP_SECONDS)
            now = loop.time()
            for task, deadline in list(self._reads.items()):
                if deadline <= now and task.get_loop() is loop and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()
        self._sweepers.pop(loop, None)


def client_ip(request: Request) -> str:
    """The address the request came from (per-client limits and logs are keyed by it; behind a
    trusted proxy uvicorn has already put X-Forwarded-For's address there)."""
    return request.client.host if request.client else "unknown"


async def read_body(request: Request, max_bytes: int, *, timeout: float | None = None) -> bytes:
    """The request body, refused with 413 past ``max_bytes`` (declared or streamed), and with
    408 when it has not arrived in full within ``timeout`` seconds (by default the app's
    MOBIP_BODY_READ_TIMEOUT_SECONDS).

    uvicorn bounds no body read: a client that sends its headers and then trickles its body, or
    stops, would hold the connection and a task for good. The 408 closes the connection.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise MalformedBody("Content-Length is not a number")
        if int(declared) > max_bytes:
            raise BodyTooLarge(f"Request body larger than {max_bytes} bytes")
    runtime = _runtime_of(request)
    if timeout is None:
        timeout = _body_read_timeout(runtime)
    task = asyncio.current_task()
    if runtime is None or task is None:
        return await _read_with_timer(request, max_bytes, timeout)
    deadlines: BodyDeadlines = runtime.state(BodyDeadlines)
    deadlines.start(task, timeout)
    try:
        return await _read(request, max_bytes)
    except asyncio.CancelledError:
        if not deadlines.finish(task):
            raise  # not ours: the client went away, or the server is stopping
        task.uncancel()
        raise _timed_out(timeout) from None
    finally:
        deadlines.finish(task)


async def _read(request: Request, max_bytes: int) -> bytes:
    # Request.stream() without its async generator (a small body is one message); the body is
    # kept on the request as Request.body() keeps it, so a later reader gets it too.
    if (kept := getattr(request, "_body", None)) is not None:
        return cast(bytes, kept)
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        if message["type"] != "http.request":
            continue
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"Request body larger than {max_bytes} bytes")
        if not message.get("more_body", False):
            body = b"".join((*chunks, chunk)) if chunks else chunk
            request._body = body
            return body
        chunks.append(chunk)


async def _read_with_timer(request: Request, max_bytes: int, timeout: float) -> bytes:
    # An app without a runtime (a test's bare Starlette app): one timer for this read.
    try:
        async with asyncio.timeout(timeout):
            return await _read(request, max_bytes)
    except TimeoutError as exc:
        raise _timed_out(timeout) from exc


def _timed_out(timeout: float) -> RequestTimeout:
    return RequestTimeout(
        f"Request body not received within {timeout:g} seconds",
        headers={"Connection": "close"},
    )


def _runtime_of(request: Request) -> Any:
    # Every caller (api/routing, the hosted checkout's forms and webhooks) reads through the
    # app's runtime without passing it.
    return getattr(getattr(request.scope.get("app"), "state", None), "runtime", None)


def _body_read_timeout(runtime: Any) -> float:
    if runtime is None:
        return float(Settings.model_fields["body_read_timeout_seconds"].default)
    return float(runtime.settings.body_read_timeout_seconds)


def parse_params(
    content_type: str, body: bytes, query_string: bytes, max_field_chars: int
) -> Params:
    """Parse the body by its Content-Type and merge in the query string."""
    query = parse_urlencoded(query_string) if query_string else []
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        pairs = parse_multipart(body, boundary_from_content_type(content_type))
    elif media_type == "application/x-www-form-urlencoded":
        pairs = parse_urlencoded(body)
    elif not body:
        pairs = []
    else:
        raise UnsupportedMediaType()
    return Params.from_pairs(pairs, query, max_field_chars)


def wants_xml(params: Params | None, accept: str | None) -> bool:
    if params is not None:
        fmt = params.raw("format")
        if fmt:
            return fmt.strip().lower() == "xml"
    return accept is not None and "application/xml" in accept and "application/json" not in accept


def ok(payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A successful reply: ``return_code`` "0" first, then the payload."""
    reply: dict[str, Any] = {"return_code": "0"}
    if payload:
        reply.update(payload)
    return reply


def error_payload(error: MobipError) -> dict[str, Any]:
    return {"return_code": error.return_code, "return_message": error.message}


def render(
    payload: Mapping[str, Any],
    *,
    xml: bool,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Render a reply as JSON or XML."""
    body, media_type = encode(payload, xml=xml)
    return Response(body, status_code=status, media_type=media_type, headers=dict(headers or {}))


def encode(payload: Mapping[str, Any], *, xml: bool) -> tuple[bytes, str]:
    """The reply's bytes and media type."""
    if xml:
        return to_xml(payload).encode(), "application/xml; charset=utf-8"
    text = _JSON_ENCODER.encode(payload)
    try:
        return text.encode(), JSON
    except UnicodeEncodeError:
        # Only a lone surrogate cannot be UTF-8 (inputs holding one are refused, so this is
        # defence in depth): it goes out as U+FFFD, and the reply still parses everywhere.
        return _without_lone_surrogates(text).encode(), JSON


def encode_stream(
    payload: Mapping[str, Any],
    name: str,
    pages: Iterable[Sequence[Mapping[str, Any]]],
    *,
    xml: bool,
) -> tuple[Iterator[bytes], str]:
    """A reply with one long list, encoded as its pages come: the bytes are those ``encode``
    gives for ``payload`` with ``name`` holding every page's items, in pieces (one per page),
    so that however long the list, only one page is held at a time."""
    if xml:
        return _xml_stream(payload, name, pages), "application/xml; charset=utf-8"
    return _json_stream(payload, name, pages), JSON


def _json_stream(
    payload: Mapping[str, Any], name: str, pages: Iterable[Sequence[Mapping[str, Any]]]
) -> Iterator[bytes]:
    head = _JSON_ENCODER.encode({**payload, name: []})
    assert head.endswith("[]}")
    yield _utf8(head[:-2])
    separator = ""
    for items in pages:
        if items:
            yield _utf8(separator + ",".join(_JSON_ENCODER.encode(item) for item in items))
            separator = ","
    yield b"]}"


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _without_lone_surrogates(text).encode()  # see encode


def _xml_stream(
    payload: Mapping[str, Any], name: str, pages: Iterable[Sequence[Mapping[str, Any]]]
) -> Iterator[bytes]:
    parts: list[str] = ['<?xml version="1.0" encoding="UTF-8"?><mobip>']
    for key, value in payload.items():
        _xml_value(_xml_tag(str(key)), value, parts)
    tag = _xml_tag(name)
    parts.append(f"<{tag}>")
    yield _XML_ILLEGAL.sub("\ufffd", "".join(parts)).encode()
    for items in pages:
        parts = []
        for item in items:
            _xml_value("item", item, parts)
        yield _XML_ILLEGAL.sub("\ufffd", "".join(parts)).encode()
    yield f"</{tag}></mobip>".encode()


def _without_lone_surrogates(text: str) -> str:
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def to_xml(payload: Mapping[str, Any], root: str = "mobip") -> str:
    """XML form of a reply: dict keys become elements, list items become ``<item>`` elements.

    A character XML 1.0 cannot hold (§2.2: C0 controls but tab and line breaks, lone
    surrogates, U+FFFE, U+FFFF) becomes U+FFFD, so the reply always parses.
    """
    parts: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>']
    _xml_value(root, payload, parts)
    return _XML_ILLEGAL.sub("\ufffd", "".join(parts))


def _xml_value(tag: str, value: Any, out: list[str]) -> None:
    if isinstance(value, Mapping):
        out.append(f"<{tag}>")
        for key, item in value.items():
            _xml_value(_xml_tag(str(key)), item, out)
        out.append(f"</{tag}>")
    elif isinstance(value, list | tuple):
        out.append(f"<{tag}>")
        for item in value:
            _xml_value("item", item, out)
        out.append(f"</{tag}>")
    elif value is None:
        out.append(f"<{tag}/>")
    else:
        out.append(f"<{tag}>{escape(_scalar(value), _XML_ENTITIES)}</{tag}>")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# A parser turns a raw carriage return into a line feed (XML 1.0 §2.11); a reference keeps it.
_XML_ENTITIES = {"\r": "&#13;"}


def _xml_tag(key: str) -> str:
    return key if _XML_NAME.fullmatch(key) else "field"
