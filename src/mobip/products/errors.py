"""Reusable QR code errors."""

from __future__ import annotations

from mobip.kit.errors import MobipError, NotFound


class ReusableQrNotFound(NotFound):
    return_code = "4020"
    default_message = "Reusable QR code not found"


class ReusableQrDisabled(MobipError):
    """The product page of a disabled QR code: no payment can start (payments already started
    finish as usual)."""

    return_code = "5050"
    http_status = 410
    default_message = "This QR code is disabled: no new payment can start"
