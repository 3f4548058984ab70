"""Merchant branding: storage, reads, the accent colour's contrast rule and the logo checks."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from typing import Any
from xml.etree.ElementTree import Element, fromstring, tostring

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from factories import make_account
from mobip.accounts import service
from mobip.accounts.branding import (
    SVG_NS,
    accent_colour,
    contrast_with_white,
    sanitised_logo,
    sanitised_svg,
)
from mobip.accounts.errors import InvalidAccentColour, InvalidLogo
from mobip.accounts.models import Account, AccountBranding
from mobip.accounts.service import Branding
from mobip.kit.errors import InvalidField
from mobip.kit.runtime import Runtime


def _store(runtime: Runtime, account_id: int, **values: object) -> None:
    with runtime.database.transaction() as session:
        session.add(
            AccountBranding(account_id=account_id, updated_at=runtime.clock.now(), **values)
        )


def test_an_account_without_branding_has_none(runtime: Runtime) -> None:
    merchant = make_account(runtime).account
    with runtime.database.session() as session:
        assert service.get_branding(session, merchant.id) == Branding(None, None, None)
        assert service.get_branding(session, merchant.id).logo_version is None
        assert service.get_logo(session, merchant.id) is None


def test_branding_and_logo_are_read_for_their_account_only(runtime: Runtime) -> None:
    mine = make_account(runtime, name="Mine").account
    other = make_account(runtime, name="Other").account
    logo = b"\x89PNG fake bytes"
    digest = hashlib.sha256(logo).hexdigest()
    _store(
        runtime,
        mine.id,
        accent_colour="#1a7f37",
        logo=logo,
        logo_content_type="image/png",
        logo_sha256=digest,
    )
    _store(runtime, other.id, accent_colour="#3b5bdb")
    with runtime.database.session() as session:
        branding = service.get_branding(session, mine.id)
        assert branding == Branding("#1a7f37", digest, "image/png")
        assert branding.logo_version == digest[:16]
        assert service.get_logo(session, mine.id) == ("image/png", logo)
        assert service.get_branding(session, other.id) == Branding("#3b5bdb", None, None)
        assert service.get_logo(session, other.id) is None


# --- setting the branding ------------------------------------------------------------------------


def _png(size: tuple[int, int] = (64, 32), **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (26, 127, 55, 200)).save(out, "PNG", **save)
    return out.getvalue()


def _jpeg_with_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Industries"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    out = io.BytesIO()
    Image.new("RGB", (64, 32), (200, 30, 30)).save(
        out, "JPEG", exif=exif.tobytes(), comment=b"secret comment"
    )
    return out.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and holds none (a bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


SVG_HEAD = (
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
    'viewBox="0 0 100 40"'
)
GOOD_SVG = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<!-- made by hand -->\n'
    f'{SVG_HEAD} xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" '
    'inkscape:version="1.3">'
    "<metadata><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'/></metadata>"
    '<defs><linearGradient id="g"><stop offset="0" stop-color="#1a7f37"/></linearGradient></defs>'
    "<style>.word { fill: url(#g); font-family: sans-serif }</style>"
    '<rect width="100" height="40" fill="url(#g)" style="stroke: #000"/>'
    '<use xlink:href="#g"/><text class="word" x="5" y="25">Shop &amp; Co</text></svg>'
).encode()


def _set(runtime: Runtime, account: Account, **changes: Any) -> Branding:
    with runtime.database.transaction() as session:
        row = session.get(Account, account.id)
        assert row is not None
        return service.set_branding(session, row, clock=runtime.clock, **changes)


def _branding(runtime: Runtime, account: Account) -> tuple[Branding, tuple[str, bytes] | None]:
    with runtime.database.session() as session:
        return service.get_branding(session, account.id), service.get_logo(session, account.id)


def test_a_png_is_stored_re_encoded_without_its_text_chunks_and_trailing_bytes(
    runtime: Runtime,
) -> None:
    merchant = make_account(runtime).account
    text = PngInfo()
    text.add_text("Comment", "GPS 48.8566 2.3522")
    uploaded = _png(pnginfo=text) + b"TRAILING-PAYLOAD"
    branding = _set(runtime, merchant, logo=uploaded)
    stored, logo = _branding(runtime, merchant)
    assert stored == branding
    assert logo is not None
    content_type, content = logo
    assert content_type == "image/png"
    assert stored.logo_sha256 == hashlib.sha256(content).hexdigest()
    assert b"GPS" not in content
    assert b"TRAILING" not in content
    assert content.endswith(b"IEND\xaeB`\x82")
    with Image.open(io.BytesIO(content)) as image:
        assert image.format == "PNG"
        assert image.size == (64, 32)
        assert image.getpixel((3, 3)) == (26, 127, 55, 200)
        assert "Comment" not in image.info


def test_a_jpeg_loses_its_exif_and_comment_and_is_turned_upright(runtime: Runtime) -> None:
    merchant = make_account(runtime).account
    uploaded = _jpeg_with_exif()
    assert b"SpyCam" in uploaded
    _set(runtime, merchant, logo=uploaded)
    _, logo = _branding(runtime, merchant)
    assert logo is not None
    assert logo[0] == "image/jpeg"
    assert b"SpyCam" not in logo[1]
    assert b"secret comment" not in logo[1]
    with Image.open(io.BytesIO(logo[1])) as image:
        assert image.format == "JPEG"
        assert dict(image.getexif()) == {}
        assert image.size == (32, 64)  # the orientation applied to the pixels


def test_an_svg_is_written_again_from_the_allowlist(runtime: Runtime) -> None:
    merchant = make_account(runtime).account
    branding = _set(runtime, merchant, logo=GOOD_SVG)
    assert branding.logo_content_type == "image/svg+xml"
    _, logo = _branding(runtime, merchant)
    assert logo is not None
    svg = logo[1].decode()
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink=')
    assert 'viewBox="0 0 100 40"' in svg
    assert '<use xlink:href="#g"></use>' in svg
    assert "Shop &amp; Co" in svg
    assert "fill: url(#g)" in svg
    # The editor's data, the comment and the XML declaration are gone.
    for gone in ("inkscape", "metadata", "rdf", "made by hand", "<?xml"):
        assert gone not in svg
    # What we store is itself a valid SVG that the sanitiser accepts unchanged.
    assert sanitised_svg(logo[1]) == logo[1]


def _svg(body: str, head: str = SVG_HEAD + ">") -> bytes:
    return f"{head}{body}</svg>".encode()


REFUSED_LOGOS = {
    "oversize": (b"\x89PNG\r\n\x1a\n" + b"\0" * (256 * 1024), "at most 262,144 bytes"),
    "too wide": (_png((1100, 20)), "1100x20 pixels; at most 1024x1024"),
    "too small": (_png((8, 8)), "8x8 pixels; at least 16x16"),
    "bomb": (_png_header_only(20000, 20000), "decompression bomb"),
    "damaged png": (_png()[:60], "not a readable PNG image"),
    "gif": (b"GIF89a" + b"\0" * 40, "unsupported file type (GIF)"),
    "text": (b"hello", "unsupported file type"),
    "empty": (b"", "the file is empty"),
    "script": (_svg("<script>alert(1)</script>"), "element <script> is not allowed"),
    "onload": (
        _svg("<rect/>", SVG_HEAD + ' onload="alert(1)">'),
        "event handler attribute onload on <svg>",
    ),
    "onclick deep": (_svg('<g><rect onclick="x()"/></g>'), "event handler attribute onclick"),
    "external href": (
        _svg('<use xlink:href="https://evil.example/a.svg#x"/>'),
        "reference outside itself",
    ),
    "data href": (_svg('<use href="data:image/svg+xml,&lt;svg/&gt;"/>'), "outside itself"),
    "image": (_svg('<image href="#x"/>'), "element <image> is not allowed"),
    "foreignObject": (
        _svg('<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>'),
        "element <foreignObject> is not allowed",
    ),
    "xhtml element": (
        _svg('<div xmlns="http://www.w3.org/1999/xhtml">x</div>'),
        "element <div> outside the SVG namespace",
    ),
    "entities": (
        b'<!DOCTYPE svg [<!ENTITY lol "lol">]>' + _svg("<text>&lol;</text>"),
        "has a DTD",
    ),
    "doctype": (
        b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">' + _svg("<rect/>"),
        "DTD",
    ),
    "style import": (_svg('<style>@import "https://evil.example/x.css";</style>'), "@import"),
    "style url": (
        _svg("<style>rect { fill: url(https://evil.example/p.svg#x) }</style>"),
        "url(https://evil.example/p.svg#x) in <style>",
    ),
    "attribute url": (
        _svg("<rect fill=\"url('http://evil.example/#g')\"/>"),
        "only url(#fragment) is allowed",
    ),
    "style with elements": (
        _svg("<style><g/>@import url(https://evil.example/x.css);</style>"),
        "elements inside <style>",
    ),
    "image-set": (
        _svg("<rect style=\"fill: image-set('https://evil.example/p.png' 1x)\"/>"),
        "image-set(...) in the style attribute of <rect>",
    ),
    "css escape": (_svg("<style>rect { fill: u\\72l(x) }</style>"), "CSS escape"),
    "unknown attribute": (_svg('<rect data-x="1"/>'), "attribute data-x on <rect>"),
    "no size": (
        _svg("<rect/>", '<svg xmlns="http://www.w3.org/2000/svg">'),
        "needs a viewBox or a width and a height",
    ),
    "html": (b"<html><body>hi</body></html>", "root element is not <svg>"),
    "deep": (_svg("<g>" * 5000 + "</g>" * 5000), "nested more than 64 levels deep"),
    "not xml": (b"<svg <<", "not well-formed XML"),
}


@pytest.mark.parametrize("case", REFUSED_LOGOS)
def test_a_refused_logo_names_what_is_wrong(case: str) -> None:
    data, reason = REFUSED_LOGOS[case]
    with pytest.raises(InvalidLogo) as refused:
        sanitised_logo(data)
    assert refused.value.return_code == "1011"
    assert refused.value.http_status == 400
    assert refused.value.message.startswith("Invalid value for field 'logo': ")
    assert reason in refused.value.message


# One of each kind of check, through set_branding and the database.
@pytest.mark.parametrize("case", ["oversize", "too wide", "bomb", "gif", "script", "entities"])
def test_a_refused_logo_changes_nothing(runtime: Runtime, case: str) -> None:
    merchant = make_account(runtime).account
    before = _set(runtime, merchant, logo=_png(), accent_colour="#1a7f37")
    data, reason = REFUSED_LOGOS[case]
    with pytest.raises(InvalidLogo, match=re.escape(reason)):
        _set(runtime, merchant, logo=data, accent_colour="#000000")
    stored, logo = _branding(runtime, merchant)
    assert stored == before
    assert logo is not None
    assert logo[0] == "image/png"


@pytest.mark.parametrize(
    ("given", "stored"),
    [("#1a7f37", "#1a7f37"), ("#1A7F37", "#1a7f37"), ("#000", "#000000"), (" #767676 ", "#767676")],
)
def test_a_readable_accent_colour_is_stored_normalised(
    runtime: Runtime, given: str, stored: str
) -> None:
    merchant = make_account(runtime).account
    assert _set(runtime, merchant, accent_colour=given).accent_colour == stored
    assert _branding(runtime, merchant)[0] == Branding(stored, None, None)


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("#ffff00", "white text on #ffff00 has a contrast ratio of 1.07:1, below the 4.5:1"),
        ("#777777", "contrast ratio of 4.47:1"),  # 4.478: just too light, never shown as 4.5
        ("#fff", "#ffffff has a contrast ratio of 1.00:1"),
        ("1a7f37", "write it as #rgb or #rrggbb"),
        ("#12345", "write it as #rgb or #rrggbb"),
        ("#ggg", "write it as #rgb or #rrggbb"),
        ("red", "write it as #rgb or #rrggbb"),
        ("", "write it as #rgb or #rrggbb"),
    ],
)
def test_an_unreadable_or_malformed_accent_colour_is_refused(
    runtime: Runtime, given: str, reason: str
) -> None:
    merchant = make_account(runtime).account
    _set(runtime, merchant, accent_colour="#1a7f37")
    with pytest.raises(InvalidAccentColour) as refused:
        _set(runtime, merchant, accent_colour=given, logo=_png())
    assert refused.value.return_code == "1012"
    assert refused.value.message.startswith("Invalid value for field 'accent_colour': ")
    assert reason in refused.value.message
    assert _branding(runtime, merchant) == (Branding("#1a7f37", None, None), None)


def test_contrast_follows_wcag_relative_luminance() -> None:
    # Reference values of WCAG 2's formula: black on white 21:1, #767676 the lightest grey
    # that passes AA on white (4.54:1), #3b5bdb the checkout's default accent.
    assert contrast_with_white("#000000") == pytest.approx(21.0)
    assert contrast_with_white("#ffffff") == pytest.approx(1.0)
    assert contrast_with_white("#767676") == pytest.approx(4.54, abs=0.005)
    assert contrast_with_white("#3b5bdb") >= 4.5
    assert accent_colour("#3b5bdb") == "#3b5bdb"


def test_clearing_the_logo_and_the_colour(runtime: Runtime) -> None:
    merchant = make_account(runtime).account
    _set(runtime, merchant, logo=_png(), accent_colour="#1a7f37")
    assert _set(runtime, merchant, clear_logo=True) == Branding("#1a7f37", None, None)
    assert _branding(runtime, merchant)[1] is None
    assert _set(runtime, merchant, clear_accent=True) == Branding(None, None, None)
    # Changing one keeps the other.
    _set(runtime, merchant, logo=_png())
    kept = _set(runtime, merchant, accent_colour="#3b5bdb")
    assert kept.accent_colour == "#3b5bdb"
    assert kept.logo_content_type == "image/png"


def test_a_logo_and_clearing_it_at_once_is_refused(runtime: Runtime) -> None:
    merchant = make_account(runtime).account
    with pytest.raises(InvalidField, match="'logo': give a new logo or clear it, not both"):
        _set(runtime, merchant, logo=_png(), clear_logo=True)
    with pytest.raises(InvalidField, match="'accent_colour': give a new accent colour"):
        _set(runtime, merchant, accent_colour="#000", clear_accent=True)


def test_nothing_to_change_stores_no_row(runtime: Runtime) -> None:
    merchant = make_account(runtime).account
    assert _set(runtime, merchant) == Branding(None, None, None)
    assert _set(runtime, merchant, clear_logo=True, clear_accent=True) == Branding(None, None, None)
    with runtime.database.session() as session:
        assert session.get(AccountBranding, merchant.id) is None


# --- the sanitiser against generated input -------------------------------------------------------

MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"<svg ", b"GIF89a"]


@given(prefix=st.sampled_from(MAGIC), rest=st.binary(max_size=2048))
def test_any_bytes_give_a_logo_or_invalid_logo(prefix: bytes, rest: bytes) -> None:
    """Damaged or arbitrary files: never another exception (which would be a 500)."""
    try:
        logo = sanitised_logo(prefix + rest)
    except InvalidLogo:
        return
    assert logo.content_type in ("image/png", "image/jpeg", "image/svg+xml")


# Mostly allowed names and values, so that many documents pass and their output is checked.
ELEMENT_NAMES = ["g", "rect", "path", "text", "use", "style"] * 4 + [
    "script",
    "foreignObject",
    "image",
]
ATTRIBUTE_VALUES = {
    "fill": ["#fff", "url(#g)", "url(https://evil.example/x)", "URL( 'http://e.example' )"],
    "style": ["stroke: red", "fill: url(#a)", "background: url(//e.example/p)", "@import 'x'"],
    "href": ["#a", "https://evil.example/", "#b", "javascript:alert(1)", "data:,x"],
    "onload": ["alert(1)"],
    "onmouseover": ["x()"],
    "width": ["10"],
    "class": ["a"],
    "d": ["M0 0h10"],
    "data-x": ["1"],
}
SAFE_KEYS = ["width", "class", "d", "fill", "style", "href"] * 3
_attributes = st.dictionaries(
    st.sampled_from(sorted(ATTRIBUTE_VALUES) + SAFE_KEYS),
    st.integers(0, 4),
    max_size=3,
).map(
    lambda picks: {k: ATTRIBUTE_VALUES[k][i % len(ATTRIBUTE_VALUES[k])] for k, i in picks.items()}
)


def _element(children: st.SearchStrategy[list[Element]]) -> st.SearchStrategy[Element]:
    def build(name: str, attributes: dict[str, str], text: str, kids: list[Element]) -> Element:
        element = Element(f"{{{SVG_NS}}}{name}", attributes)
        element.text = text or None
        element.extend(kids)
        return element

    return st.builds(
        build, st.sampled_from(ELEMENT_NAMES), _attributes, st.text(max_size=8), children
    )


# Trees three levels deep (the sanitiser's recursion is tested to 64 levels by "deep" above).
_trees = _element(st.lists(_element(st.lists(_element(st.just([])), max_size=2)), max_size=3))


@given(body=st.lists(_trees, max_size=3))
def test_a_generated_svg_is_refused_or_written_safe_and_stable(body: list[Element]) -> None:
    root = Element(f"{{{SVG_NS}}}svg", {"viewBox": "0 0 10 10"})
    root.extend(body)
    data = tostring(root)
    try:
        stored = sanitised_svg(data)
    except InvalidLogo:
        event("refused")
        return
    event("accepted")
    assert sanitised_svg(stored) == stored  # what is stored is accepted again, unchanged
    parsed = fromstring(stored)
    for element in parsed.iter():
        assert element.tag.split("}")[1] not in ("script", "foreignObject", "image")
        for key, value in element.attrib.items():
            assert not key.split("}")[-1].startswith("on")
            if key.split("}")[-1] == "href":
                assert value.startswith("#")
        for value in [*element.attrib.values(), element.text or ""]:
            for target in re.findall(r"url\s*\(\s*['\"]?([^)'\"]*)", value, flags=re.I):
                assert target.strip().startswith("#")
            assert "@import" not in value
