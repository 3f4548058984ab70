"""Time one QR PNG of a ~100-char checkout URL: segno (mask search, fixed mask) against ours.

Run: python bench/qr.py  (prints ms per code and speed-ups against segno's default)
Every call gets a different URL of the same length, so no cache helps anyone, as in production
where each payment request has its own checkout token. All at level M, 4-module quiet zone,
8 px per module.
"""

from __future__ import annotations

import io
import itertools
import secrets
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import zxingcpp

from mobip.qr import service

BASE = (
    "http://127.0.0.1:8000/pay/ck_3kTMd9mZqW0xYbP4vLr8sN2cHfJ6aE1uQ7gD5oK?lang=fr&ret=%2Forders%2F"
)
SCALE = 8
_counter = itertools.count()


def next_url() -> str:
    """A fresh URL of constant length (BASE + 6 digits)."""
    return f"{BASE}{next(_counter) % 1_000_000:06d}"


def load_segno() -> Any | None:
    """The segno module, or None when it is not installed."""
    try:
        import segno
    except ImportError:
        return None
    return segno


def segno_png(segno: Any, mask: int | None) -> Callable[[], bytes]:
    """segno's make_qr + PNG writer; ``mask=None`` is its default mask search."""

    def render() -> bytes:
        code = segno.make_qr(next_url(), error="m", boost_error=False, mask=mask)
        out = io.BytesIO()
        code.save(out, kind="png", scale=SCALE, border=4)
        return out.getvalue()

    return render


def ours_uncached() -> bytes:
    """mobip.qr.render_png on a URL never seen before (matrix cache miss)."""
    return service.render_png(next_url(), scale=SCALE)


def ours_cached() -> bytes:
    """mobip.qr.render_png on the same URL again (matrix from the LRU cache, PNG re-encoded)."""
    return service.render_png(BASE + "000000", scale=SCALE)


def ours_svg_uncached() -> str:
    """mobip.qr.render_svg on a URL never seen before."""
    return service.render_svg(next_url(), scale=SCALE)


def zxing_searched() -> object:
    """zxing-cpp's symbol with its own mask search (what render_png did before FIXED_MASK)."""
    return zxingcpp.create_barcode(next_url(), zxingcpp.BarcodeFormat.QRCode, ec_level="M")


def zxing_fixed() -> object:
    """zxing-cpp's symbol with mobip's fixed mask (qr_matrix's encoder call)."""
    return zxingcpp.create_barcode(
        next_url(), zxingcpp.BarcodeFormat.QRCode, ec_level="M", options=service._OPTIONS
    )


def penalties(segno: Any, samples: int = 300) -> None:
    """ISO/IEC 18004 penalty (segno's scorer) of the fixed mask against zxing-cpp's search.

    Random checkout links (a random 32-character token, as in production); lower is better.
    """
    from segno.encoder import evaluate_mask

    def score(rows: list[bytearray]) -> int:
        return int(evaluate_mask(rows, len(rows), len(rows)))

    def searched_rows(url: str) -> list[bytearray]:
        code = zxingcpp.create_barcode(url, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
        image = code.to_image(scale=1, add_quiet_zones=False)
        size = image.shape[1]
        flat = memoryview(image).tobytes().translate(bytes.maketrans(b"\x00\xff", b"\x01\x00"))
        return [bytearray(flat[i : i + size]) for i in range(0, size * size, size)]

    fixed, searched = [], []
    for _ in range(samples):
        url = "http://127.0.0.1:8000/pay/ck_" + secrets.token_urlsafe(24)
        fixed.append(score([bytearray(row) for row in service.qr_matrix(url).rows]))
        searched.append(score(searched_rows(url)))
    excess = [f - s for f, s in zip(fixed, searched, strict=True)]
    relative = statistics.mean(excess) / statistics.mean(searched)
    print(
        f"penalty over {samples} checkout links: mask {service.FIXED_MASK} mean "
        f"{statistics.mean(fixed):.0f} (max {max(fixed)}); zxing-cpp's search mean "
        f"{statistics.mean(searched):.0f} (max {max(searched)}); fixed minus searched: mean "
        f"{statistics.mean(excess):+.0f} ({relative:+.1%}),"
        f" worst {max(excess):+d}"
    )


def ms_per_call(func: Callable[[], object], budget: float) -> float:
    """Best-of-5 ms per call, each round lasting about ``budget`` seconds."""
    timer = timeit.Timer(func)
    single = min(timer.repeat(repeat=3, number=1))
    number = max(1, int(budget / max(single, 1e-6)))
    return min(timer.repeat(repeat=5, number=number)) / number * 1e3


def main() -> None:
    candidates: list[tuple[str, Callable[[], object], float]] = []
    segno = load_segno()
    if segno is None:
        print("skipped: segno is not installed (pip install segno)")
    else:
        version = getattr(segno, "__version__", "?")
        candidates.append((f"segno {version} default (mask search)", segno_png(segno, None), 1.0))
        candidates.append((f"segno {version} fixed mask 0", segno_png(segno, 0), 1.0))
    candidates += [
        ("zxing-cpp symbol, its mask search", zxing_searched, 0.5),
        (f"zxing-cpp symbol, mask {service.FIXED_MASK}", zxing_fixed, 0.5),
        ("mobip render_png, uncached", ours_uncached, 0.5),
        ("mobip render_png, cached matrix", ours_cached, 0.5),
        ("mobip render_svg, uncached", ours_svg_uncached, 0.5),
    ]
    print(f"URL: {len(next_url())} chars, level M, scale {SCALE}; Python {sys.version.split()[0]}")
    timings = [(label, ms_per_call(func, budget)) for label, func, budget in candidates]
    reference = timings[0][1]
    for label, ms in timings:
        print(f"{label:<40} {ms:8.3f} ms   x{reference / ms:6.1f} vs {timings[0][0]}")
    if segno is not None:
        penalties(segno)


if __name__ == "__main__":
    main()
