"""Photos served by a real loopback HTTP server, and helpers shared by the products tests."""

from __future__ import annotations

import io
import socket
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image
from sqlalchemy import func, select
from starlette.testclient import TestClient

from callback_receiver import Receiver, Reply
from factories import form
from mobip.accounts.service import NewCredentials
from mobip.kit.runtime import Runtime
from mobip.kit.security import new_id
from mobip.products import repository as products_repository
from mobip.products.models import QrStatus, ReusableQr
from mobip.products.photos import store_photo
from mobip.products.storage import photo_store
from mobip.transactions.models import Transaction

CREATE = "/api/2.0/mobip/create_reusable_qr"
GPS_IFD = 0x8825


def png(width: int = 800, height: int = 600, colour: tuple[int, ...] = (200, 60, 40)) -> bytes:
    image = Image.new("RGB", (width, height), colour)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    """A JPEG whose EXIF holds a GPS position (and a camera model)."""
    image = Image.new("RGB", (2400, 1200), (30, 120, 200))
    exif = image.getexif()
    exif[0x0110] = "Secret Camera 3000"  # Model
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 24.0)
    gps[3] = "E"
    gps[4] = (2.0, 21.0, 3.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    data = out.getvalue()
    assert b"Secret Camera" in data
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD)
    return data


def gif() -> bytes:
    """An animated GIF: a red first frame, a blue second one."""
    frames = [Image.new("P", (120, 80), 0), Image.new("P", (120, 80), 1)]
    for frame in frames:
        frame.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def serve_photos(receiver: Receiver) -> None:
    """Every path the photo tests use."""
    image = {"Content-Type": "image/png"}
    receiver.reply("/photo.png", Reply(200, png(), image))
    receiver.reply("/gps.jpg", Reply(200, jpeg_with_gps(), {"Content-Type": "image/jpeg"}))
    receiver.reply("/anim.gif", Reply(200, gif(), {"Content-Type": "image/gif"}))
    receiver.reply("/huge.png", Reply(200, b"\x89PNG" + b"\x00" * (6 * 2**20), image))
    receiver.reply(
        "/page.html", Reply(200, b"<html><body>hi</body></html>", {"Content-Type": "text/html"})
    )
    receiver.reply("/missing.png", Reply(404, b"not found"))
    receiver.reply("/bomb.png", Reply(200, png_declaring(20000, 20000), image))
    for hop in range(1, 5):
        target = f"/r{hop + 1}" if hop < 4 else "/photo.png"
        receiver.reply(f"/r{hop}", Reply(302, b"", {"Location": target}))


@contextmanager
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers: its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/slow.png"
    finally:
        stop.set()
        thread.join()
        for sock in accepted:
            sock.close()
        listener.close()


def reusable_qr(photo_url: str, **overrides: Any) -> dict[str, Any]:
    """create_reusable_qr's fields; an override of None leaves the field out."""
    fields: dict[str, Any] = {
        "item_amount": 1250,
        "tax_amount": 250,
        "item_name": "Blue mug",
        "item_photo": photo_url,
        "item_message": "Hand-made in Lyon.\nDishwasher safe.",
        "item_reference": "MUG-BLUE",
        "item_category": "Kitchen",
        "item_brand": "Maison Dupré",
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def create(client: TestClient, token: str, **fields: Any) -> Any:
    return client.post(CREATE, files=form(access_token=token, **fields))


def count_qrs(runtime: Runtime) -> int:
    with runtime.database.transaction() as session:
        return session.scalar(select(func.count()).select_from(ReusableQr)) or 0


def count_transactions(runtime: Runtime) -> int:
    with runtime.database.transaction() as session:
        return session.scalar(select(func.count()).select_from(Transaction)) or 0


def stored_files(runtime: Runtime) -> list[str]:
    root = runtime.settings.data_dir / "photos"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def make_reusable_qr(runtime: Runtime, merchant: NewCredentials, **overrides: Any) -> str:
    """An ACTIVE reusable QR code of ``merchant`` with a stored photo, made without a download
    (the photo goes through the same re-encoding and store); its qr_id."""
    stored = store_photo(png(), photo_store(runtime))
    now = runtime.clock.now()
    qr_id = new_id("qr", 16)
    values: dict[str, Any] = {
        "qr_id": qr_id,
        "account_id": merchant.account.id,
        "status": QrStatus.ACTIVE.value,
        "item_amount": 1250,
        "tax_amount": 250,
        "currency": merchant.account.currency,
        "item_name": "Blue mug",
        "item_message": None,
        "item_reference": "MUG-BLUE",
        "item_category": None,
        "item_brand": None,
        "item_photo": "https://shop.example/mug.png",
        "photo_key": stored.photo_key,
        "thumbnail_key": stored.thumbnail_key,
        "photo_width": stored.width,
        "photo_height": stored.height,
        "item_video": None,
        "call_back_url": None,
        "redirect_url": None,
        "language": None,
        "created_at": now,
        "updated_at": now,
        **overrides,
    }
    with runtime.database.transaction() as session:
        products_repository.add(session, values)
    return qr_id
