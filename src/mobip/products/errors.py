"""Reusable QR code errors."""

from __future__ import annotations

from mobip.kit.errors import NotFound


class ReusableQrNotFound(NotFound):
    return_code = "4020"
    default_message = "Reusable QR code not found"


class ReusableQrDisabled(Exception):
    """A payment asked of a disabled QR code: none can start (those started finish as usual).
    Only the product page meets it, and answers with its 410 page (not an API error)."""
