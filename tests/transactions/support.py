"""Request builders and row counts shared by the transactions tests."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import zxingcpp
from PIL import Image
from sqlalchemy import func, select

from mobip.delivery.models import OutboxMessage
from mobip.kit.runtime import Runtime
from mobip.transactions.models import Transaction

PAYMENT_REQUEST: dict[str, Any] = {
    "item_amount_in_cents": 1250,
    "tax_amount": 250,
    "redirect_url": "https://shop.example/thanks?order=7",
    "call_back_url": "https://shop.example/callback?x=1",
    "track_id": "order-7",
    "item_name": "Blue mug",
    "customer_name": "Ada Lovelace",
    "customer_email": "ada@example.com",
    "media": "EMAIL",
    "customer_phone": "+33 6 12 34 56 78",
    "language": "FR",
}
ONE_USE_QR: dict[str, Any] = {
    "item_amount_in_cents": 500,
    "tax_amount_in_cents": 100,
    "redirect_url": "https://shop.example/thanks",
    "call_back_url": "https://shop.example/callback",
    "item_name": "Coffee",
}


def valid_request(**overrides: Any) -> dict[str, Any]:
    """send_payment_request's fields; an override of None leaves the field out."""
    return _with(PAYMENT_REQUEST, overrides)


def one_use_qr(**overrides: Any) -> dict[str, Any]:
    """create_one_use_qr's fields; an override of None leaves the field out."""
    return _with(ONE_USE_QR, overrides)


def _with(fields: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in {**fields, **overrides}.items() if v is not None}


def counts(runtime: Runtime) -> tuple[int, int]:
    with runtime.database.transaction() as session:
        transactions = session.scalar(select(func.count()).select_from(Transaction)) or 0
        messages = session.scalar(select(func.count()).select_from(OutboxMessage)) or 0
    return transactions, messages


def decode_png(data: bytes) -> list[str]:
    """The texts of the QR codes zxing-cpp's reader finds in a PNG."""
    image = Image.open(BytesIO(data))
    return [result.text for result in zxingcpp.read_barcodes(image)]
