"""QR codes for payment links: the module matrix (zxing-cpp) and PNG/SVG rendering."""

from __future__ import annotations

from mobip.qr.service import (
    EC_LEVEL,
    MAX_SCALE,
    MIN_SCALE,
    QUIET_ZONE,
    QrMatrix,
    qr_matrix,
    render_png,
    render_svg,
)

__all__ = [
    "EC_LEVEL",
    "MAX_SCALE",
    "MIN_SCALE",
    "QUIET_ZONE",
    "QrMatrix",
    "qr_matrix",
    "render_png",
    "render_svg",
]
