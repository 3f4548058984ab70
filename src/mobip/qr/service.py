"""QR matrices of payment links and their PNG/SVG renderings.

zxing-cpp builds the symbol (encoding, Reed-Solomon, a fixed mask: FIXED_MASK) in C++; Python packs
the pixels, with no per-module Python loop: at a scale that is a multiple of 8 (the default, 8) a
module is whole bytes, so a row is one ``bytes.translate``; at other scales the row becomes an
ASCII bit string, widened with ``bytes.replace`` and packed with ``int(..., 2)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import zxingcpp

from mobip.qr import png

EC_LEVEL = "M"
QUIET_ZONE = 4  # modules of light margin on each side, as ISO/IEC 18004 requires
MIN_SCALE = 1
MAX_SCALE = 40
MATRIX_CACHE_SIZE = 256
# Mask pattern 3, (row + column) mod 3 == 0, for every symbol, instead of the encoder's search
# over the 8 patterns by ISO/IEC 18004's penalty rules: the search costs about 0.17 ms of the
# create request's 0.8 ms (bench/qr.py), and every pattern makes a valid symbol that readers
# decode. On checkout links pattern 3 scores on average 5 % above the searched pattern's penalty
# (worst seen: 20 %; bench/qr.py prints both; docs/architecture.md).
FIXED_MASK = 3
# zxing-cpp 3.1 drops the first key of this string (seen: "dataMask=3" alone is ignored), so the
# level comes first; it says what ec_level= says. tests/qr checks the mask of what we emit.
_OPTIONS = f"ecLevel={EC_LEVEL},dataMask={FIXED_MASK}"

DARK = 1
LIGHT = 0
# zxing-cpp's image: 0 = black, 255 = white.
_FROM_ZXING = bytes.maketrans(b"\x00\xff", bytes([DARK, LIGHT]))
# PNG greyscale 1-bit: 0 = black, 1 = white; as ASCII for int(..., 2).
_TO_PNG_BITS = bytes.maketrans(bytes([DARK, LIGHT]), b"01")
_EDGE_BITS = b"1" * QUIET_ZONE
# The same as whole bytes (8 pixels per module), for scales that are multiples of 8.
_TO_PNG_BYTES = bytes.maketrans(bytes([DARK, LIGHT]), b"\x00\xff")
_EDGE_BYTES = b"\xff" * QUIET_ZONE
_DARK_RUN = re.compile(re.escape(bytes([DARK])) + b"+")


@dataclass(frozen=True, slots=True)
class QrMatrix:
    """A QR symbol without quiet zone: ``rows[y][x]`` is 1 for a dark module, 0 for light."""

    size: int
    rows: tuple[bytes, ...]

    def is_dark(self, x: int, y: int) -> bool:
        """Whether the module at column ``x``, row ``y`` is dark."""
        return self.rows[y][x] == DARK


@lru_cache(maxsize=MATRIX_CACHE_SIZE)
def qr_matrix(text: str) -> QrMatrix:
    """Encode ``text`` at error-correction level M; ValueError if empty or too long."""
    if not text:
        raise ValueError("QR text is empty")
    text.encode("utf-8")  # UnicodeEncodeError (a ValueError) on lone surrogates
    # Non-ASCII goes out as UTF-8 behind an ECI: left alone, zint picks ISO-8859-x or Shift JIS
    # without saying so, and a reader may guess wrong. ASCII needs no ECI (12 bits saved).
    options = {} if text.isascii() else {"eci": "UTF8"}
    barcode = zxingcpp.create_barcode(
        text, zxingcpp.BarcodeFormat.QRCode, ec_level=EC_LEVEL, options=_OPTIONS, **options
    )
    image = barcode.to_image(scale=1, add_quiet_zones=False)
    size: int = image.shape[1]
    # zxingcpp.Image exposes the buffer protocol, but its stub does not declare it.
    pixels = memoryview(image).tobytes()  # type: ignore[arg-type]
    flat = pixels.translate(_FROM_ZXING)
    return QrMatrix(size, tuple(flat[i : i + size] for i in range(0, size * size, size)))


def render_png(text: str, *, scale: int = 8) -> bytes:
    """A black-on-white 1-bit PNG of ``text``'s QR code, ``scale`` pixels per module."""
    _check_scale(scale)
    return matrix_png(qr_matrix(text), scale)


def render_svg(text: str, *, scale: int = 8) -> str:
    """A compact SVG of ``text``'s QR code, ``scale`` px per module, viewBox in modules."""
    _check_scale(scale)
    return matrix_svg(qr_matrix(text), scale)


def matrix_png(matrix: QrMatrix, scale: int) -> bytes:
    """Render ``matrix`` with its quiet zone as a 1-bit PNG.

    Each module row becomes one packed scanline, written once with filter None and repeated
    ``scale - 1`` times with filter Up (all zero bytes: "same as the line above"), which deflate
    compresses almost for free.
    """
    modules = matrix.size + 2 * QUIET_ZONE
    width = modules * scale
    nbytes = png.row_bytes(width)
    repeat = (png.FILTER_UP + bytes(nbytes)) * (scale - 1)
    margin = png.FILTER_NONE + b"\xff" * nbytes + repeat
    lines = [margin * QUIET_ZONE]
    pack = _pack_whole_bytes if scale % 8 == 0 else _pack_bits
    for row in matrix.rows:
        lines.append(png.FILTER_NONE + pack(row, scale, nbytes) + repeat)
    lines.append(margin * QUIET_ZONE)
    return png.encode_gray1(width, width, b"".join(lines))


def _pack_whole_bytes(row: bytes, scale: int, nbytes: int) -> bytes:
    """A row at a scale that is a multiple of 8: every module is ``scale // 8`` whole bytes."""
    per_module = scale // 8
    packed = _EDGE_BYTES + row.translate(_TO_PNG_BYTES) + _EDGE_BYTES
    if per_module > 1:
        packed = packed.replace(b"\x00", b"\x00" * per_module).replace(
            b"\xff", b"\xff" * per_module
        )
    return packed


def _pack_bits(row: bytes, scale: int, nbytes: int) -> bytes:
    """Any other scale: the row as an ASCII bit string, widened, then packed by ``int(..., 2)``."""
    bits = _EDGE_BITS + row.translate(_TO_PNG_BITS) + _EDGE_BITS
    if scale > 1:
        bits = bits.replace(b"0", b"0" * scale).replace(b"1", b"1" * scale)
    padding = b"1" * (nbytes * 8 - len(bits))  # the tail of the last byte: ignored by decoders
    return int(bits + padding, 2).to_bytes(nbytes, "big")


def matrix_svg(matrix: QrMatrix, scale: int) -> str:
    """Render ``matrix`` as SVG: a white square and one stroked path of horizontal runs."""
    modules = matrix.size + 2 * QUIET_ZONE
    px = modules * scale
    path = "".join(_svg_row(row, y + QUIET_ZONE) for y, row in enumerate(matrix.rows))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{px}" height="{px}"'
        f' viewBox="0 0 {modules} {modules}" shape-rendering="crispEdges">'
        f'<path fill="#fff" d="M0 0h{modules}v{modules}H0z"/>'
        f'<path stroke="#000" d="{path}"/></svg>'
    )


def _svg_row(row: bytes, y: int) -> str:
    """Path data for one module row: a move to the row's middle line, then dark runs."""
    parts: list[str] = []
    pen = 0
    for run in _DARK_RUN.finditer(row):
        start, end = run.span()
        move = f"M{start + QUIET_ZONE} {y}.5" if not parts else f"m{start - pen} 0"
        parts.append(f"{move}h{end - start}")
        pen = end
    return "".join(parts)


def _check_scale(scale: int) -> None:
    """Raise ValueError for a scale outside MIN_SCALE..MAX_SCALE."""
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be between {MIN_SCALE} and {MAX_SCALE}, got {scale}")
