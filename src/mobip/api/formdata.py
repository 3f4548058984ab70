"""Request-body form parsing: multipart/form-data and application/x-www-form-urlencoded.

Every API call goes through here, so multipart bodies take a bytes-level fast path that only
accepts what it is sure of (the shape curl, browsers and HTTP libraries send) and hands
anything else to python-multipart, which the fast path is checked against by hypothesis
(tests/api/test_formdata.py). Both paths apply the same rules:

- the preamble before the first delimiter line and the epilogue after the closing one are
  ignored (RFC 2046 §5.1.1); a body without a closing delimiter is malformed;
- every part needs ``Content-Disposition: form-data`` with a non-empty ``name``;
- values, file contents included, are strict UTF-8 text; a part's own Content-Type and any
  Content-Transfer-Encoding are not interpreted (RFC 7578 §4.7 forbids the latter).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from mobip.kit.errors import InvalidField, MalformedBody

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

__all__ = ["boundary_from_content_type", "parse_multipart", "parse_urlencoded"]

# RFC 2046 §5.1.1: a boundary is 1 to 70 characters.
MAX_BOUNDARY_LENGTH = 70

# python-multipart's own limits: the fast path declines what the fallback would reject.
_MAX_HEADER_LINE = 4096 + 128

_CRLF = b"\r\n"
_LWSP = (b" ", b"\t")
# The only part headers the fast path understands; any other one sends the body to the fallback.
_CONTENT_DISPOSITION = b"content-disposition"
_CONTENT_TYPE = b"content-type"
# RFC 7230 token characters, the same set python-multipart accepts in header names.
_TOKEN_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~"
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))
_NOT_UTF8 = "not valid UTF-8 text"


def boundary_from_content_type(content_type: str) -> bytes:
    """Return the multipart boundary named in a Content-Type header value."""
    try:
        boundary = _boundary_param(content_type)
    except UnicodeEncodeError:
        # ASGI gives headers as latin-1 text; anything else cannot come from a real request.
        raise MalformedBody("The Content-Type header is not latin-1 text") from None
    if boundary is None:
        raise MalformedBody("The multipart Content-Type has no boundary parameter")
    _check_boundary(boundary)
    return boundary


def _boundary_param(content_type: str) -> bytes | None:
    if '"' in content_type:
        # A quoted string may hold ";" or backslash escapes: parse_options_header knows them.
        return parse_options_header(content_type)[1].get(b"boundary")
    # Without quotes, parse_options_header only splits on ";" and "=", as this does at a
    # quarter of the cost.
    boundary: str | None = None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip(" \t").lower() == "boundary":
            boundary = value.strip(" \t")
    return None if boundary is None else boundary.encode("latin-1")


def parse_multipart(body: bytes, boundary: bytes) -> list[tuple[str, str]]:
    """Parse a multipart/form-data body into (name, value) pairs in body order."""
    _check_boundary(boundary)
    fields = _parse_fast(body, boundary)
    if fields is None:
        fields = _parse_fallback(body, boundary)
    return fields


def parse_urlencoded(body: bytes) -> list[tuple[str, str]]:
    """Parse an application/x-www-form-urlencoded body or query string, keeping blank values."""
    try:
        text = body.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise MalformedBody("The form data is not valid UTF-8 once percent-decoded") from None


def _check_boundary(boundary: bytes) -> None:
    if not boundary:
        raise MalformedBody("The multipart boundary is empty")
    if len(boundary) > MAX_BOUNDARY_LENGTH:
        raise MalformedBody(
            f"The multipart boundary is longer than {MAX_BOUNDARY_LENGTH} characters (RFC 2046)"
        )
    # Printable ASCII keeps CR/LF out, which the delimiter search relies on; RFC 2046 also
    # forbids a trailing space.
    if boundary.translate(None, _PRINTABLE_ASCII) or boundary.endswith(b" "):
        raise MalformedBody(
            "The multipart boundary must be printable ASCII not ending in a space (RFC 2046)"
        )


def _ends_delimiter_line(body: bytes, i: int) -> bool:
    """Whether the bytes after a ``--boundary`` at ``i`` complete a delimiter line."""
    tail = body[i : i + 2]
    if tail == _CRLF or tail == b"--":
        return True
    while body[i : i + 1] in _LWSP:
        i += 1
    return body.startswith(_CRLF, i)


def _opening_end(body: bytes, dash_boundary: bytes) -> int:
    """Index just past the first ``--boundary`` that starts a delimiter line, or -1."""
    if body.startswith(dash_boundary) and _ends_delimiter_line(body, len(dash_boundary)):
        return len(dash_boundary)
    needle = _CRLF + dash_boundary
    at = body.find(needle)
    while at >= 0:
        end = at + len(needle)
        if _ends_delimiter_line(body, end):
            return end
        at = body.find(needle, at + 1)
    return -1


# --- fast path ---------------------------------------------------------------------------------

# The part head that browsers, curl and HTTP libraries send, matched in one C-level call. Each
# header line stays within python-multipart's line limit, and a name without quotes, backslashes
# or line breaks reads the same as parse_options_header reads it.
_PLAIN_HEAD = re.compile(
    rb'\r\nContent-Disposition: form-data; name="([^"\\\r\n]{1,2000})"'
    rb'(?:; filename="[^"\\\r\n]{0,2000}")?'
    rb"(?:\r\nContent-Type: [^\r\n]{0,4000})?"
)

# A client sends the same few part heads on every call (`name="access_token"`, ...), so the
# name read from a head is kept: a dict look-up costs a fifth of the regex match. Bounded, as
# heads come from the network.
_HEAD_NAMES: dict[bytes, str] = {}
_HEAD_NAMES_MAX = 1024
_HEAD_CACHED_MAX_BYTES = 256


def _parse_fast(body: bytes, boundary: bytes) -> list[tuple[str, str]] | None:
    """Parse the common shape of body, or return None for anything it is not sure of."""
    dash_boundary = b"--" + boundary
    start = _opening_end(body, dash_boundary)
    if start < 0:
        return None
    if not body.startswith(_CRLF, start):
        # An empty form, or transport padding on the opening line.
        return [] if body.startswith(b"--", start) else None
    delimiter = _CRLF + dash_boundary
    heads = _HEAD_NAMES
    fields: list[tuple[str, str]] = []
    name: str | None = None
    value = b""
    # Value text that "--boundary" lookalikes cut up, joined once: += would be quadratic.
    pieces: list[bytes] = []
    try:
        # One C-level split finds every delimiter; each chunk then starts with what follows
        # one: CRLF and a part, "--" and the epilogue, or anything else when not a delimiter.
        for chunk in body[start:].split(delimiter):
            head, blank_line, rest = chunk.partition(b"\r\n\r\n")
            new_name = heads.get(head) if blank_line else None
            if new_name is None:
                lead = chunk[:2]
                if lead == _CRLF:
                    new_name = _head_name(head) if blank_line else None
                    if new_name is None:
                        return None
                elif lead != b"--":
                    if not lead or lead[0] in b" \t":
                        return None  # two delimiters in a row, or transport padding
                    # "--boundary" followed by anything else is value text, as in python-multipart
                    # (a body that ends here has no closing delimiter: None after the loop).
                    pieces += (delimiter, chunk)
                    continue
            if name is not None:
                if pieces:
                    value = b"".join((value, *pieces))
                    pieces.clear()
                fields.append((name, value.decode()))
            if new_name is None:
                return fields  # the closing delimiter: the epilogue is ignored
            name, value = new_name, rest
    except UnicodeDecodeError:
        return None
    return None


def _head_name(head: bytes) -> str | None:
    """The field name from a part head (CRLF and header lines), or None when unsure."""
    match = _PLAIN_HEAD.fullmatch(head)
    raw = match[1] if match is not None else None
    if raw is None and head.startswith(_CRLF):
        raw = _name_from_headers(head[2:])
    if raw is None:
        return None
    try:
        name = raw.decode()
    except UnicodeDecodeError:
        return None
    if len(head) <= _HEAD_CACHED_MAX_BYTES:
        if len(_HEAD_NAMES) >= _HEAD_NAMES_MAX:
            _HEAD_NAMES.clear()
        _HEAD_NAMES[head] = name
    return name


def _name_from_headers(block: bytes) -> bytes | None:
    """The field name from a part's header lines, or None when the fast path is unsure."""
    lines = block.split(_CRLF)
    # One Content-Disposition and at most one Content-Type: duplicates are left to the fallback,
    # and so python-multipart's limit of 8 headers is never in question.
    if len(lines) > 2:
        return None
    name: bytes | None = None
    for line in lines:
        key, colon, value = line.partition(b":")
        if not key or not colon or len(line) > _MAX_HEADER_LINE or 13 in line or 10 in line:
            return None
        key = key.lower()
        if key == _CONTENT_DISPOSITION and name is None:
            # python-multipart skips spaces (not tabs) before a header value.
            name = _name_from_disposition(value.lstrip(b" "))
            if name is None:
                return None
        elif key != _CONTENT_TYPE:
            return None
    return name


def _name_from_disposition(value: bytes) -> bytes | None:
    """The ``name`` of a simple ``form-data`` value, or None when unsure."""
    # Backslash escapes and quotes outside quoted strings are left to parse_options_header.
    if 92 in value:
        return None
    kind, _, params = value.partition(b";")
    if kind.strip(b" \t").lower() != b"form-data":
        return None
    name: bytes | None = None
    while params := params.lstrip(b" \t"):
        equals = params.find(b"=")
        key = params[:equals].strip(b" \t").lower()
        # An RFC 2231 "name*=" parameter, an empty segment or a stray quote: fallback.
        if equals < 0 or not key or key.translate(None, _TOKEN_CHARS) or 42 in key:
            return None
        rest = params[equals + 1 :].lstrip(b" \t")
        if rest.startswith(b'"'):
            close = rest.find(b'"', 1)
            if close < 0:
                return None
            param = rest[1:close]
            rest = rest[close + 1 :].lstrip(b" \t")
            if rest and not rest.startswith(b";"):
                return None
            params = rest[1:]
        else:
            param, _, params = rest.partition(b";")
            param = param.rstrip(b" \t")
            if 34 in param:
                return None
        if key == b"name":
            if name is not None:
                return None
            name = param
    return name or None


# --- fallback: python-multipart ----------------------------------------------------------------


class _PartCollector:
    """python-multipart callbacks that collect raw (name, value) parts and check them."""

    def __init__(self) -> None:
        self.parts: list[tuple[bytes, bytes]] = []
        self.ended = False
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition: bytes | None = None
        self._name = b""
        self._data = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self._disposition = None
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        # The last Content-Disposition wins, as in Starlette.
        if self._header_name.lower() == _CONTENT_DISPOSITION:
            self._disposition = bytes(self._header_value)
        self._header_name = bytearray()
        self._header_value = bytearray()

    def on_headers_finished(self) -> None:
        number = len(self.parts) + 1
        if self._disposition is None:
            raise MalformedBody(f"Multipart part {number} has no Content-Disposition header")
        kind, params = parse_options_header(self._disposition)
        if kind != b"form-data":
            raise MalformedBody(f"Multipart part {number}'s Content-Disposition is not form-data")
        name = params.get(b"name")
        if not name:
            raise MalformedBody(f"Multipart part {number}'s Content-Disposition has no name")
        self._name = name

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]

    def on_part_end(self) -> None:
        self.parts.append((self._name, bytes(self._data)))

    def on_end(self) -> None:
        self.ended = True


def _parse_fallback(body: bytes, boundary: bytes) -> list[tuple[str, str]]:
    """Parse body with python-multipart; raise MalformedBody or InvalidField when it is bad."""
    dash_boundary = b"--" + boundary
    start = _opening_end(body, dash_boundary)
    if start < 0:
        raise MalformedBody("The multipart body has no delimiter line for its boundary")
    if body.startswith(b"--", start):
        return []
    # python-multipart rejects both a preamble and transport padding on the opening line,
    # which RFC 2046 allows, so it starts on a clean opening delimiter.
    while body[start : start + 1] in _LWSP:
        start += 1
    collector = _PartCollector()
    parser = MultipartParser(boundary, collector.callbacks())
    try:
        parser.write(dash_boundary + body[start:])
        parser.finalize()
    except FormParserError as exc:
        raise MalformedBody(f"Malformed multipart body: {exc}") from None
    if not collector.ended:
        raise MalformedBody("The multipart body is truncated: no closing boundary delimiter")
    return [_decode_part(name, value) for name, value in collector.parts]


def _decode_part(name: bytes, value: bytes) -> tuple[str, str]:
    try:
        text_name = name.decode()
    except UnicodeDecodeError:
        raise MalformedBody("A multipart field name is not valid UTF-8") from None
    try:
        return text_name, value.decode()
    except UnicodeDecodeError:
        raise InvalidField(text_name, _NOT_UTF8) from None
