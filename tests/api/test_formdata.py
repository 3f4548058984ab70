"""Form parsing: the multipart fast path against python-multipart, and urlencoded bodies."""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from mobip.api import formdata
from mobip.api.formdata import (
    _head_name,
    _name_from_disposition,
    _parse_fallback,
    _parse_fast,
    boundary_from_content_type,
    parse_multipart,
    parse_urlencoded,
)
from mobip.kit.errors import InvalidField, MalformedBody

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

Fields = list[tuple[str, str]]
# What a parse gives: the fields, or the error class name and the field it names.
Outcome = Fields | tuple[str, str | None]

BOUNDARY = b"------------------------d74496d66958873e"
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_body(
    parts: list[tuple[list[bytes], bytes]], boundary: bytes = BOUNDARY, epilogue: bytes = b"\r\n"
) -> bytes:
    """A multipart body from (header lines, value) parts."""
    dash = b"--" + boundary
    out = b"".join(
        dash + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + value + b"\r\n"
        for headers, value in parts
    )
    return out + dash + b"--" + epilogue


def field(name: str, value: str) -> tuple[list[bytes], bytes]:
    """A part as curl -F name=value sends it."""
    return [f'Content-Disposition: form-data; name="{name}"'.encode()], value.encode()


# --- reference: python-multipart, driven as Starlette drives it ---------------------------------


def reference_parse(body: bytes, boundary: bytes) -> Fields:
    """python-multipart's reading of a body that starts at its opening delimiter."""
    parts: list[tuple[list[tuple[bytes, bytes]], bytes]] = []
    headers: list[tuple[bytes, bytes]] = []
    header = [b"", b""]
    data = bytearray()
    ended = False

    def on_part_begin() -> None:
        nonlocal headers, data
        headers, data = [], bytearray()

    def on_header_field(chunk: bytes, start: int, end: int) -> None:
        header[0] += chunk[start:end]

    def on_header_value(chunk: bytes, start: int, end: int) -> None:
        header[1] += chunk[start:end]

    def on_header_end() -> None:
        headers.append((header[0].lower(), header[1]))
        header[:] = [b"", b""]

    def on_part_data(chunk: bytes, start: int, end: int) -> None:
        data.extend(chunk[start:end])

    def on_part_end() -> None:
        parts.append((headers, bytes(data)))

    def on_end() -> None:
        nonlocal ended
        ended = True

    callbacks: MultipartCallbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
        "on_end": on_end,
    }
    parser = MultipartParser(boundary, callbacks)
    try:
        parser.write(body)
    except FormParserError:
        raise MalformedBody("python-multipart refused it") from None
    if not ended:
        raise MalformedBody("no closing delimiter")
    names: list[bytes] = []
    for part_headers, _ in parts:
        dispositions = [v for k, v in part_headers if k == b"content-disposition"]
        if not dispositions:
            raise MalformedBody("no Content-Disposition")
        kind, params = parse_options_header(dispositions[-1])
        if kind != b"form-data" or not params.get(b"name"):
            raise MalformedBody("not form-data with a name")
        names.append(params[b"name"])
    fields: Fields = []
    for name, (_, value) in zip(names, parts, strict=True):
        try:
            text_name = name.decode()
        except UnicodeDecodeError:
            raise MalformedBody("name not UTF-8") from None
        try:
            fields.append((text_name, value.decode()))
        except UnicodeDecodeError:
            raise InvalidField(text_name, "not valid UTF-8 text") from None
    return fields


def outcome(parse: Callable[[], Fields]) -> Outcome:
    try:
        return parse()
    except InvalidField as exc:
        return ("InvalidField", exc.field)
    except MalformedBody:
        return ("MalformedBody", None)


# --- generated bodies ---------------------------------------------------------------------------

# RFC 2046 bchars; a boundary may not end with a space.
BCHARS = string.ascii_letters + string.digits + "'()+_,-./:=? "
boundaries = st.one_of(
    st.text(BCHARS, min_size=1, max_size=70).filter(lambda b: not b.endswith(" ")),
    st.text(string.ascii_letters + string.digits, min_size=16, max_size=16).map(
        lambda s: "----WebKitFormBoundary" + s
    ),
    st.text("0123456789abcdef", min_size=16, max_size=16).map(lambda s: "-" * 24 + s),
).map(str.encode)

NAMES = ["item_amount_in_cents", "access_token", "track_id", "item name", "a;b", "x=y"]
ODD_NAMES = ["a\\\\b", "a\\b", 'say "hi"', "é\r\n"]
names = st.one_of(st.sampled_from(NAMES + ODD_NAMES), st.text(max_size=12))


def browser_quoted(name: str) -> bytes:
    """A quoted name escaped as the HTML standard says: percent-encode CR, LF and quote."""
    return ('"' + name.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22") + '"').encode()


def curl_quoted(name: str) -> bytes:
    """A quoted name with backslash escapes, as curl and RFC 2616 quoted-strings do."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return ('"' + escaped.replace("\r", " ").replace("\n", " ") + '"').encode()


@st.composite
def name_params(draw: st.DrawFn, messy: bool) -> list[bytes]:
    """The name parameter(s) of a Content-Disposition, in one of the ways clients write it."""
    name = draw(names)
    styles = ["browser"] * 12 + ["curl", "rfc2231+plain"]
    if messy:
        styles += ["unquoted", "rfc2231", "none"]
    style = draw(st.sampled_from(styles))
    if style == "browser":
        return [b"name=" + browser_quoted(name)]
    if style == "curl":
        return [b"name=" + curl_quoted(name)]
    if style == "unquoted":
        return [b"name=" + name.replace("\r", "").replace("\n", "").encode()]
    encoded = b"name*=utf-8''" + quote(name).encode()
    if style == "rfc2231+plain":
        return [encoded, b"name=" + browser_quoted(name)]
    return [encoded] if style == "rfc2231" else []


@st.composite
def part_heads(draw: st.DrawFn, messy: bool) -> list[bytes]:
    """A part's header lines: Content-Disposition, maybe Content-Type and odd extras."""
    params = draw(name_params(messy))
    has_file = draw(st.integers(0, 4)) == 0
    if has_file:
        filename = draw(st.sampled_from(["data.json", "my file.txt", "", "a;b.json", "é.json"]))
        params.append(b"filename=" + browser_quoted(filename))
    params = draw(st.permutations(params))
    kinds = [b"form-data"] * 8 + [b"Form-Data"] + ([b"attachment"] if messy else [])
    separator = draw(st.sampled_from([b"; "] * 6 + [b";", b" ; ", b";\t", b";  "]))
    disposition = draw(st.sampled_from(kinds)) + b"".join(separator + p for p in params)
    header_name = draw(
        st.sampled_from(
            [b"Content-Disposition"] * 6
            + [b"content-disposition", b"CONTENT-DISPOSITION", b"Content-disposition"]
        )
    )
    colon = draw(st.sampled_from([b": "] * 6 + [b":", b":  "]))
    lines = [header_name + colon + disposition]
    if has_file or draw(st.integers(0, 5)) == 0:
        content_type = draw(
            st.sampled_from([b"application/json", b"text/plain; charset=utf-8", b"image/png"])
        )
        lines.append(draw(st.sampled_from([b"Content-Type: ", b"content-type:"])) + content_type)
    extras = [b"Content-Transfer-Encoding: 8bit", b"X-Extra: 1"]
    if messy:
        extras += [b"X-Folded: a\r\n b", b"No colon here", b"Bad Name: x", b"X-Lone-LF: a\nb"]
    if draw(st.integers(0, 9)) == 0:
        lines.append(draw(st.sampled_from(extras)))
    if messy and draw(st.integers(0, 9)) == 0:
        lines = lines[1:]  # no Content-Disposition at all
    return list(draw(st.permutations(lines)))


@st.composite
def values(draw: st.DrawFn, boundary: bytes, messy: bool) -> bytes:
    """A value: text, line breaks, "--", near-misses of the delimiter, sometimes not UTF-8."""
    dash = b"--" + boundary
    # Text that looks like the delimiter but is not one (RFC 2046 delimiters end the line).
    tricky = [b"", b"\r", b"\n", b"\r\n", b"--", b"-", b" ", b"\t", b'"', b"\r\n\r\n", dash]
    tricky += [b"\r\n" + dash[:-1], b"\r\n" + dash + b"X", b"\r\n" + dash + b"-X"]
    if messy:
        # Real delimiters, padding without CRLF, and bytes that are not UTF-8.
        tricky += [b"\r\n" + dash + b"\r", b"\r\n" + dash + b" ", b"\r\n" + dash + b"\r\n"]
    if messy or draw(st.integers(0, 14)) == 0:
        tricky += [b"\xff", b"\xc3", b"\xed\xa0\x80"]  # the last is an encoded surrogate
    fragment = st.one_of(st.text(max_size=20).map(str.encode), st.sampled_from(tricky))
    short = st.lists(fragment, max_size=8).map(b"".join)
    long = st.text(min_size=200, max_size=2000).map(str.encode)
    return draw(st.one_of(short, short, short, long))


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[bytes, bytes, int]:
    """(body, boundary, offset of the opening delimiter) for a generated multipart body."""
    boundary = draw(boundaries)
    # About half the bodies are sound; the others mix in what a parser must refuse.
    messy = draw(st.integers(0, 5)) == 0
    dash = b"--" + boundary
    body = b""
    for index in range(draw(st.integers(0, 6))):
        # Transport padding (RFC 2046) only after the opening line: python-multipart refuses it
        # on the opening line, which our parser accepts (tested on its own below).
        padding = draw(st.sampled_from([b""] * 18 + [b" ", b"\t "])) if index else b""
        head = b"".join(line + b"\r\n" for line in draw(part_heads(messy)))
        value = draw(values(boundary, messy))
        body += dash + padding + b"\r\n" + head + b"\r\n" + value + b"\r\n"
    epilogue = draw(
        st.sampled_from([b"", b"\r\n", b"\r\nthe end\r\n", b"\r\n" + dash + b"\r\nignored"])
    )
    body += dash + b"--" + epilogue
    # A preamble cannot hold a delimiter line; without "-" it cannot even start one.
    preamble = draw(
        st.none() | st.text(st.characters(codec="utf-8", exclude_characters="-"), max_size=40)
    )
    start = 0
    if preamble is not None:
        prefix = preamble.encode() + b"\r\n"
        body, start = prefix + body, len(prefix)
    if messy and draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body) - 1))]
    return body, boundary, start


@PROPERTY
@given(multipart_bodies())
def test_parse_multipart_agrees_with_python_multipart(case: tuple[bytes, bytes, int]) -> None:
    body, boundary, start = case
    expected = outcome(lambda: reference_parse(body[start:], boundary))
    assert outcome(lambda: parse_multipart(body, boundary)) == expected
    fast = _parse_fast(body, boundary)
    if fast is not None:
        assert fast == expected


@PROPERTY
@given(
    boundaries,
    # python-multipart (so Starlette too) reads backslashes in a quoted name as escapes, which
    # browsers do not write: names with one do not come back as sent.
    st.lists(
        st.tuples(
            st.sampled_from(NAMES)
            | st.text(st.characters(codec="utf-8", exclude_characters="\\"), min_size=1),
            st.text(),
        )
    ),
)
def test_what_a_browser_sends_comes_back(boundary: bytes, pairs: Fields) -> None:
    delimiter = b"\r\n--" + boundary
    body = make_body(
        [
            ([b"Content-Disposition: form-data; name=" + browser_quoted(n)], v.encode())
            for n, v in pairs
        ],
        boundary,
    )
    # A value holding the delimiter would be a different body; the browser picks another boundary.
    if any(delimiter in b"\r\n" + v.encode() + b"\r\n" for _, v in pairs):
        return
    escaped = [(browser_quoted(n).decode()[1:-1], v) for n, v in pairs]
    assert parse_multipart(body, boundary) == escaped


# Content-Disposition values: the plain shape with awkward names, and free-form soup.
name_soup = st.text(st.sampled_from(["a", "é", " ", ";", "=", '"', "\\", "*", "\t"]), max_size=6)
plain_dispositions = st.builds(
    lambda name, filename: f'form-data; name="{name}"' + (filename or ""),
    name_soup,
    st.none() | name_soup.map(lambda f: f'; filename="{f}"'),
)
soup_dispositions = st.lists(
    st.sampled_from(["form-data", "Form-Data", "attachment", ";", " ", "\t", '"', "=", "*"])
    | st.sampled_from(["name", "NAME", "filename", "name*", "a;b", "x y", "\\", "é"])
    | st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=6),
    max_size=12,
).map("".join)


@PROPERTY
@given(plain_dispositions | soup_dispositions)
def test_disposition_fast_reading_agrees_with_parse_options_header(value: str) -> None:
    raw = value.encode()
    kind, params = parse_options_header(raw)
    expected = params.get(b"name") if kind == b"form-data" else None
    for fast in (_name_from_disposition(raw), _head_name(b"\r\nContent-Disposition: " + raw)):
        if fast is not None:
            assert expected
            assert fast == (expected if isinstance(fast, bytes) else expected.decode())


@PROPERTY
@given(
    st.lists(
        st.sampled_from(["multipart/form-data", ";", " ", "\t", '"', "=", "boundary", "BOUNDARY"])
        | st.sampled_from(["charset=utf-8", "boundary*", "\\", "abc", "x;y"])
        | st.text(st.characters(max_codepoint=0xFF), max_size=6),
        max_size=10,
    ).map("".join)
)
def test_boundary_reading_agrees_with_parse_options_header(content_type: str) -> None:
    expected = parse_options_header(content_type)[1].get(b"boundary")
    valid = (
        expected is not None
        and 0 < len(expected) <= 70
        and all(0x20 <= c < 0x7F for c in expected)
        and not expected.endswith(b" ")
    )
    if valid:
        assert boundary_from_content_type(content_type) == expected
    else:
        with pytest.raises(MalformedBody):
            boundary_from_content_type(content_type)


# --- boundary -----------------------------------------------------------------------------------


def test_boundary_unquoted_and_any_case() -> None:
    ct = "multipart/form-data; charset=utf-8; BOUNDARY=----WebKitFormBoundaryAbC123"
    assert boundary_from_content_type(ct) == b"----WebKitFormBoundaryAbC123"


def test_boundary_quoted() -> None:
    ct = 'multipart/form-data; boundary="simple boundary=:,"'
    assert boundary_from_content_type(ct) == b"simple boundary=:,"


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; charset=utf-8",
        "multipart/form-data; boundary=",
        'multipart/form-data; boundary=""',
        "multipart/form-data; boundary=" + "a" * 71,
        "multipart/form-data; boundary=ab\x01c",
    ],
)
def test_boundary_missing_empty_too_long_or_bad(content_type: str) -> None:
    with pytest.raises(MalformedBody, match="boundary"):
        boundary_from_content_type(content_type)


def test_boundary_of_70_characters_is_fine() -> None:
    assert boundary_from_content_type("multipart/form-data; boundary=" + "a" * 70) == b"a" * 70


def test_parse_multipart_checks_the_boundary_too() -> None:
    with pytest.raises(MalformedBody, match="longer than 70"):
        parse_multipart(make_body([field("a", "1")], b"b" * 71), b"b" * 71)


# --- multipart ----------------------------------------------------------------------------------


def test_send_payment_request_body() -> None:
    pairs = [("item_amount_in_cents", "12500"), ("item_name", "Café crème"), ("media", "EMAIL")]
    body = make_body([field(n, v) for n, v in pairs])
    assert parse_multipart(body, BOUNDARY) == pairs


def test_order_and_repeated_names_are_kept() -> None:
    body = make_body([field("b", "2"), field("a", "1"), field("b", "3")])
    assert parse_multipart(body, BOUNDARY) == [("b", "2"), ("a", "1"), ("b", "3")]


def test_empty_values_and_line_breaks_in_values() -> None:
    body = make_body([field("a", ""), field("b", "x\r\ny\n--\r\n"), field("c", "\r\n")])
    assert parse_multipart(body, BOUNDARY) == [("a", ""), ("b", "x\r\ny\n--\r\n"), ("c", "\r\n")]


def test_boundary_lookalike_in_a_value_is_text() -> None:
    value = "before\r\n--" + BOUNDARY.decode() + "X after"
    assert parse_multipart(make_body([field("a", value)]), BOUNDARY) == [("a", value)]


def test_file_part_is_read_as_text() -> None:
    head = [
        b'Content-Disposition: form-data; name="media"; filename="req.json"',
        b"Content-Type: application/json",
    ]
    body = make_body([field("a", "1"), (head, b'{"x": "\xc3\xa9"}')])
    assert parse_multipart(body, BOUNDARY) == [("a", "1"), ("media", '{"x": "é"}')]


def test_empty_form() -> None:
    assert parse_multipart(b"--" + BOUNDARY + b"--\r\n", BOUNDARY) == []


def test_preamble_epilogue_and_opening_padding_are_ignored() -> None:
    body = make_body([field("a", "1")], epilogue=b"\r\nepilogue\r\n--" + BOUNDARY + b"\r\n")
    body = b"This is the preamble.\r\n" + body.replace(b"\r\n", b" \t\r\n", 1)
    assert parse_multipart(body, BOUNDARY) == [("a", "1")]


@pytest.mark.parametrize(
    "body",
    [
        make_body([field("a", "1")], epilogue=b"")[: -len(b"--" + BOUNDARY + b"--")],
        make_body([field("a", "1")])[:-4],
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue',
        b"",
        b"no delimiter at all",
    ],
    ids=["no-closing-delimiter", "cut-in-closing", "cut-in-value", "empty", "no-delimiter"],
)
def test_truncated_body_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedBody):
        parse_multipart(body, BOUNDARY)


def test_truncated_body_message_says_what_is_wrong() -> None:
    body = make_body([field("a", "1")], epilogue=b"")[: -len(b"\r\n--" + BOUNDARY + b"--")]
    with pytest.raises(MalformedBody, match="no closing boundary"):
        parse_multipart(body, BOUNDARY)


@pytest.mark.parametrize(
    ("head", "message"),
    [
        ([b"Content-Disposition: form-data"], "has no name"),
        ([b'Content-Disposition: form-data; name=""'], "has no name"),
        ([b'Content-Disposition: form-data; filename="a.json"'], "has no name"),
        ([b'Content-Disposition: attachment; name="a"'], "not form-data"),
        ([b"Content-Type: text/plain"], "no Content-Disposition"),
        ([], "no Content-Disposition"),
    ],
)
def test_part_without_a_form_data_name_is_malformed(head: list[bytes], message: str) -> None:
    body = make_body([field("ok", "1"), (head, b"value")])
    with pytest.raises(MalformedBody, match=message):
        parse_multipart(body, BOUNDARY)


def test_bad_header_block_is_malformed() -> None:
    body = make_body([([b'Content-Disposition: form-data; name="a"', b"Bad Header: x"], b"1")])
    with pytest.raises(MalformedBody, match="Malformed multipart body"):
        parse_multipart(body, BOUNDARY)


def test_invalid_utf8_value_names_the_field() -> None:
    body = make_body(
        [field("a", "1"), ([b'Content-Disposition: form-data; name="item_name"'], b"\xff")]
    )
    with pytest.raises(InvalidField) as caught:
        parse_multipart(body, BOUNDARY)
    assert caught.value.field == "item_name"
    assert "not valid UTF-8 text" in caught.value.message


# Encoded surrogates (CESU-8, WTF-8), overlong forms (an overlong NUL) and code points past
# U+10FFFF are not UTF-8: a lenient decoder would turn them into lone surrogates or a NUL that
# no check downstream expects.
NOT_UTF8 = [b"\xed\xa0\x80", b"a\xed\xbf\xbfb", b"\xc0\x80", b"\xf4\x90\x80\x80", b"\x80"]


@pytest.mark.parametrize("value", NOT_UTF8)
def test_no_surrogate_or_overlong_form_gets_through_either_path(value: bytes) -> None:
    body = make_body([field("a", "1"), ([b'Content-Disposition: form-data; name="b"'], value)])
    assert _parse_fast(body, BOUNDARY) is None
    with pytest.raises(InvalidField, match="'b'"):
        parse_multipart(body, BOUNDARY)
    with pytest.raises(MalformedBody, match="UTF-8"):
        parse_urlencoded(b"b=" + quote(value).encode())


@PROPERTY
@given(st.binary(max_size=12))
def test_arbitrary_bytes_decode_strictly_or_are_refused(value: bytes) -> None:
    body = make_body([([b'Content-Disposition: form-data; name="b"'], value)])
    try:
        fields = parse_multipart(body, BOUNDARY)
    except InvalidField:
        fields = None
    try:
        strict = value.decode("utf-8")
    except UnicodeDecodeError:
        assert fields is None
    else:
        assert fields == [("b", strict)]


def test_invalid_utf8_name_is_malformed() -> None:
    body = make_body([([b'Content-Disposition: form-data; name="\xff"'], b"1")])
    with pytest.raises(MalformedBody, match="name is not valid UTF-8"):
        parse_multipart(body, BOUNDARY)


# --- the two paths ------------------------------------------------------------------------------


def test_fast_path_reads_the_common_shape() -> None:
    head = [
        b'Content-Disposition: form-data; name="media"; filename="m.json"',
        b"Content-Type: application/json",
    ]
    body = make_body([field("a", "1"), (head, b"{}")])
    assert _parse_fast(body, BOUNDARY) == [("a", "1"), ("media", "{}")]


def test_fast_path_reads_header_variants_without_the_regex() -> None:
    head = [b"content-type:text/plain", b"content-disposition:Form-Data;NAME=a ; filename=x"]
    assert _parse_fast(make_body([(head, b"1")]), BOUNDARY) == [("a", "1")]


@pytest.mark.parametrize(
    "head",
    [
        [b'Content-Disposition: form-data; name="a"', b"Content-Transfer-Encoding: base64"],
        [b"Content-Disposition: form-data; name*=utf-8''%C3%A9; name=\"e\""],
        [b'Content-Disposition: form-data; name="a\\"b"'],
        [b'Content-Disposition: form-data; name="a"', b"X-Custom: 1"],
    ],
    ids=["transfer-encoding", "rfc2231", "backslash-escape", "other-header"],
)
def test_fallback_reads_what_the_fast_path_declines(head: list[bytes]) -> None:
    body = make_body([(head, b"1")])
    assert _parse_fast(body, BOUNDARY) is None
    assert parse_multipart(body, BOUNDARY) == _parse_fallback(body, BOUNDARY)
    assert len(parse_multipart(body, BOUNDARY)) == 1


def test_fast_path_declines_repeated_headers() -> None:
    disposition = b'Content-Disposition: form-data; name="a"'
    for head in ([disposition, disposition], [disposition] + [b"Content-Type: text/plain"] * 2):
        body = make_body([(head, b"1")])
        assert _parse_fast(body, BOUNDARY) is None
        assert parse_multipart(body, BOUNDARY) == [("a", "1")]


def test_more_than_eight_part_headers_is_malformed() -> None:
    head = [b'Content-Disposition: form-data; name="a"'] + [b"Content-Type: text/plain"] * 8
    with pytest.raises(MalformedBody, match="header count"):
        parse_multipart(make_body([(head, b"1")]), BOUNDARY)


def test_transfer_encoding_is_not_interpreted() -> None:
    head = [b'Content-Disposition: form-data; name="a"', b"Content-Transfer-Encoding: base64"]
    assert parse_multipart(make_body([(head, b"aGk=")]), BOUNDARY) == [("a", "aGk=")]


def test_rfc2231_name_is_ignored_for_the_plain_one() -> None:
    # RFC 7578 §4.2 forbids the RFC 2231 form in multipart/form-data.
    head = [b"Content-Disposition: form-data; name*=utf-8''%C3%A9; name=\"e\""]
    assert parse_multipart(make_body([(head, b"1")]), BOUNDARY) == [("e", "1")]
    alone = [b"Content-Disposition: form-data; name*=utf-8''%C3%A9"]
    with pytest.raises(MalformedBody, match="has no name"):
        parse_multipart(make_body([(alone, b"1")]), BOUNDARY)


def test_fast_path_declines_transport_padding() -> None:
    body = make_body([field("a", "1"), field("b", "2")])
    padded = body.replace(b"\r\n--" + BOUNDARY + b"\r\n", b"\r\n--" + BOUNDARY + b"  \r\n")
    assert _parse_fast(padded, BOUNDARY) is None
    assert parse_multipart(padded, BOUNDARY) == [("a", "1"), ("b", "2")]


def test_head_cache_stays_bounded() -> None:
    for i in range(formdata._HEAD_NAMES_MAX + 10):
        assert parse_multipart(make_body([field(f"f{i}", "v")]), BOUNDARY) == [(f"f{i}", "v")]
    assert len(formdata._HEAD_NAMES) <= formdata._HEAD_NAMES_MAX


def test_a_cached_head_still_needs_its_blank_line() -> None:
    assert parse_multipart(make_body([field("a", "1")]), BOUNDARY) == [("a", "1")]
    assert b'\r\nContent-Disposition: form-data; name="a"' in formdata._HEAD_NAMES
    cut = b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="a"\r\n--' + BOUNDARY
    with pytest.raises(MalformedBody):
        parse_multipart(cut + b"--", BOUNDARY)


# --- urlencoded ---------------------------------------------------------------------------------


def test_urlencoded_basics() -> None:
    body = b"a=1&blank=&b=x+y&c=%C3%A9%26%3D&flag&a=2"
    assert parse_urlencoded(body) == [
        ("a", "1"),
        ("blank", ""),
        ("b", "x y"),
        ("c", "é&="),
        ("flag", ""),
        ("a", "2"),
    ]


def test_urlencoded_empty() -> None:
    assert parse_urlencoded(b"") == []


@pytest.mark.parametrize("body", [b"a=%FF", b"a=\xff", b"%C3=1"])
def test_urlencoded_invalid_utf8_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedBody, match="UTF-8"):
        parse_urlencoded(body)


@PROPERTY
@given(st.lists(st.tuples(st.text(), st.text())))
def test_urlencoded_round_trip(pairs: Fields) -> None:
    assert parse_urlencoded(urlencode(pairs).encode()) == pairs
