"""QR rendering: what we emit decodes (Pillow + zxing-cpp's reader) to exactly the input text."""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import FrozenInstanceError
from xml.etree import ElementTree

import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from mobip.qr import MAX_SCALE, MIN_SCALE, QUIET_ZONE, QrMatrix, qr_matrix, render_png, render_svg
from mobip.qr.service import FIXED_MASK

CHECKOUT = "http://127.0.0.1:8000/pay/ck_" + "AbC3dEf9GhJ2kLm8NpQ4rSt7VwX5yZ" * 3 + "a1B2c3"
URLS = [
    "http://a.io/p",
    CHECKOUT,
    CHECKOUT[:100] + "?lang=fr&ret=https%3A%2F%2Fshop.example.com%2Fmerci%3Fid%3D42",
    "https://shop.example.com/orders/8841?item=caf%C3%A9%20cr%C3%A8me&qty=2#top",
    "HTTP://EXAMPLE.COM/PAY/0123456789",  # all alphanumeric-mode characters
    "https://example.com/é?q=naïve",  # non-ASCII: UTF-8 must come back unchanged
]
SCALES = [1, 3, 8]
QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
SVG_NS = "{http://www.w3.org/2000/svg}"
URL_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"


def decode(image: Image.Image) -> list[zxingcpp.Barcode]:
    """All QR codes zxing-cpp's reader finds in an 8-bit greyscale copy of ``image``."""
    return zxingcpp.read_barcodes(image.convert("L"), formats=QR_ONLY)


def open_png(data: bytes) -> Image.Image:
    """Decode PNG bytes with Pillow (which checks chunk CRCs as it reads)."""
    image = Image.open(io.BytesIO(data), formats=["PNG"])
    image.load()
    return image


def assert_decodes_to(image: Image.Image, text: str) -> None:
    """The image holds exactly one QR code, level M, whose text is ``text``."""
    found = decode(image)
    assert [b.text for b in found] == [text]
    assert found[0].ec_level == "M"


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Split a PNG into (type, data) chunks, checking the signature and every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: list[tuple[bytes, bytes]] = []
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(data)
    return chunks


def svg_to_image(svg: str) -> tuple[Image.Image, int]:
    """Rasterise our SVG (white square + one stroked path of M/m/h runs); return image, modules."""
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("shape-rendering") == "crispEdges"
    modules = int(root.get("viewBox", "").removeprefix("0 0 ").split()[0])
    assert root.get("viewBox") == f"0 0 {modules} {modules}"
    width, height = int(root.get("width", "")), int(root.get("height", ""))
    assert width == height
    assert width % modules == 0
    scale = width // modules
    background, modules_path = root.findall(f"{SVG_NS}path")
    assert background.get("fill") == "#fff"
    assert background.get("d") == f"M0 0h{modules}v{modules}H0z"
    assert modules_path.get("stroke") == "#000"
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for x, y, length in path_runs(modules_path.get("d", "")):
        assert x >= 0 and x + length <= modules and 0 <= y < modules
        box = (x * scale, y * scale, (x + length) * scale - 1, (y + 1) * scale - 1)
        draw.rectangle(box, fill=0)
    return image, modules


def path_runs(d: str) -> list[tuple[int, int, int]]:
    """Interpret path data made of ``Mx y.5``, ``mdx 0`` and ``hN``: runs as (x, y, length)."""
    runs: list[tuple[int, int, int]] = []
    x, y = 0.0, 0.0
    commands = re.findall(r"([MmHh])([^MmHh]*)", d)
    assert "".join(c + a for c, a in commands) == d, "unexpected path commands"
    for command, args in commands:
        if command == "M":
            x, y = (float(v) for v in args.split())
        elif command == "m":
            dx, dy = (float(v) for v in args.split())
            assert dy == 0
            x += dx
        else:
            length = float(args)
            assert length > 0 and command == "h"
            assert y % 1 == 0.5 and x % 1 == 0 and length % 1 == 0  # whole modules, stroke centred
            runs.append((int(x), int(y), int(length)))
            x += length
    return runs


def image_matrix(image: Image.Image, modules: int, scale: int) -> list[list[bool]]:
    """Sample the centre pixel of every module: True where dark."""
    grey = image.convert("L")
    half = scale // 2
    return [
        [grey.getpixel((x * scale + half, y * scale + half)) == 0 for x in range(modules)]
        for y in range(modules)
    ]


def padded_matrix(matrix: QrMatrix) -> list[list[bool]]:
    """The matrix with its light quiet zone, as booleans."""
    modules = matrix.size + 2 * QUIET_ZONE
    grid = [[False] * modules for _ in range(modules)]
    for y in range(matrix.size):
        for x in range(matrix.size):
            grid[y + QUIET_ZONE][x + QUIET_ZONE] = matrix.is_dark(x, y)
    return grid


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("url", URLS)
def test_png_decodes_to_the_url(url: str, scale: int) -> None:
    assert_decodes_to(open_png(render_png(url, scale=scale)), url)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("url", URLS)
def test_svg_decodes_to_the_url(url: str, scale: int) -> None:
    image, modules = svg_to_image(render_svg(url, scale=scale))
    assert modules == qr_matrix(url).size + 2 * QUIET_ZONE
    assert image.size == (modules * scale, modules * scale)
    assert_decodes_to(image, url)


@pytest.mark.parametrize("scale", [1, 2, 5, 8, 16, 24])
@pytest.mark.parametrize("url", [URLS[0], CHECKOUT])
def test_png_is_a_1_bit_greyscale_png_of_the_matrix(url: str, scale: int) -> None:
    data = render_png(url, scale=scale)
    chunks = png_chunks(data)
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert set(kinds) == {b"IHDR", b"IDAT", b"IEND"}
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1]
    )
    matrix = qr_matrix(url)
    modules = matrix.size + 2 * QUIET_ZONE
    assert (width, height) == (modules * scale, modules * scale)
    assert (depth, colour, compression, filtering, interlace) == (1, 0, 0, 0, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = 1 + (width + 7) // 8
    assert len(raw) == height * stride
    filters = [raw[i] for i in range(0, len(raw), stride)]
    # Each module row: one scanline with filter None, then scale - 1 with filter Up and all
    # zero bytes (the same pixels as the line above).
    assert filters == ([0] + [2] * (scale - 1)) * modules
    image = open_png(data)
    assert image.mode == "1"
    grid = padded_matrix(matrix)
    expected = [
        0 if grid[y // scale][x // scale] else 255 for y in range(height) for x in range(width)
    ]
    assert image.convert("L").tobytes() == bytes(expected)  # every pixel, margins included


def test_svg_runs_match_the_matrix() -> None:
    image, modules = svg_to_image(render_svg(CHECKOUT, scale=4))
    assert image_matrix(image, modules, 4) == padded_matrix(qr_matrix(CHECKOUT))


def test_svg_is_compact() -> None:
    svg = render_svg(CHECKOUT)
    assert svg.count("<path") == 2  # background + all modules in one path
    assert len(svg) < 3 * qr_matrix(CHECKOUT).size ** 2


def test_matrix_is_level_m_with_a_valid_size() -> None:
    matrix = qr_matrix(CHECKOUT)
    assert (matrix.size - 17) % 4 == 0 and 21 <= matrix.size <= 177
    assert len(matrix.rows) == matrix.size
    assert all(len(row) == matrix.size and set(row) <= {0, 1} for row in matrix.rows)
    # A finder pattern's corner and its light separator.
    assert matrix.is_dark(0, 0) and not matrix.is_dark(7, 0)
    # 105 bytes: version 5 (37) at L, 6 (41) at M, 7 or more (45+) at Q and H.
    assert qr_matrix("h" * 105).size == 41


@pytest.mark.parametrize("text", [*URLS, "x" * 2331])
def test_every_symbol_takes_mask_3_and_the_encoders_own_version(text: str) -> None:
    """The fixed mask (no penalty search), per the reader; the version the search would pick."""
    (found,) = decode(open_png(render_png(text, scale=2)))
    assert found.text == text
    assert found.extra["DataMask"] == FIXED_MASK == 3
    assert found.extra["ECLevel"] == "M"
    options = {} if text.isascii() else {"eci": "UTF8"}
    searched = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M", **options)
    assert qr_matrix(text).size == searched.to_image(scale=1, add_quiet_zones=False).shape[1]


@pytest.mark.parametrize("text", ["https://example.com/é?q=naïve", "héllo €", "http://x/日本"])
def test_non_ascii_text_is_sent_as_utf_8(text: str) -> None:
    (found,) = decode(open_png(render_png(text)))
    assert found.text == text
    assert found.bytes == text.encode("utf-8")


def test_matrix_is_frozen_and_cached() -> None:
    matrix = qr_matrix(CHECKOUT)
    assert qr_matrix(CHECKOUT) is matrix
    with pytest.raises(FrozenInstanceError):
        matrix.size = 1  # type: ignore[misc]


@pytest.mark.parametrize("scale", [MIN_SCALE - 1, -3, MAX_SCALE + 1, 1000])
def test_scale_out_of_range_is_refused(scale: int) -> None:
    with pytest.raises(ValueError, match="scale"):
        render_png(CHECKOUT, scale=scale)
    with pytest.raises(ValueError, match="scale"):
        render_svg(CHECKOUT, scale=scale)


@pytest.mark.parametrize("scale", [MIN_SCALE, MAX_SCALE])
def test_scale_bounds_are_accepted(scale: int) -> None:
    modules = qr_matrix(URLS[0]).size + 2 * QUIET_ZONE
    assert open_png(render_png(URLS[0], scale=scale)).size == (modules * scale,) * 2
    assert f'width="{modules * scale}"' in render_svg(URLS[0], scale=scale)


@pytest.mark.parametrize("text", ["", "x" * 2332, "bad \ud800 surrogate"])
def test_text_that_cannot_be_encoded_is_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        qr_matrix(text)


def test_longest_text_at_level_m_still_decodes() -> None:
    text = "x" * 2331
    assert qr_matrix(text).size == 177
    assert_decodes_to(open_png(render_png(text, scale=2)), text)


@settings(max_examples=60, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https"]),
    host=st.from_regex(r"[a-z0-9]{1,20}(\.[a-z]{2,6}){1,2}", fullmatch=True),
    rest=st.text(alphabet=URL_CHARS, max_size=200),
    scale=st.integers(min_value=1, max_value=6),
)
def test_random_urls_round_trip_through_the_png(
    scheme: str, host: str, rest: str, scale: int
) -> None:
    url = f"{scheme}://{host}/{rest}"
    assert_decodes_to(open_png(render_png(url, scale=scale)), url)
