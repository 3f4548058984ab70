"""create_reusable_qr: the fields, the photo's download through the outbound guard, and the
stored copies (re-encoded, no metadata, by content hash)."""

from __future__ import annotations

import io
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import text
from starlette.testclient import TestClient

from callback_receiver import Receiver
from factories import form, make_account, token_for
from mobip.accounts.models import Role
from mobip.accounts.service import NewCredentials
from mobip.config import Environment, Settings
from mobip.kit.runtime import Runtime
from mobip.products import photos as product_photos
from mobip.products.storage import FilePhotoStore
from products.support import (
    CREATE,
    GPS_IFD,
    count_qrs,
    create,
    reusable_qr,
    silent_server,
    stored_files,
)
from qr.test_service import svg_to_image
from transactions.support import decode_png


def _served(client: TestClient, url: str) -> bytes:
    reply = client.get(url.removeprefix("http://testserver"))
    assert reply.status_code == 200, reply.text
    return reply.content


def test_create_downloads_the_photo_and_answers_the_spec_fields(
    client: TestClient, token: str, photos: Receiver, runtime: Runtime
) -> None:
    reply = create(client, token, **reusable_qr(photos.url("/photo.png")))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["return_code"] == "0"
    assert set(body) == {"return_code", "qr_id", "url_qr", "url_checkout"}
    assert body["qr_id"].startswith("qr_") and len(body["qr_id"]) == 25
    assert body["url_checkout"].endswith(f"/p/{body['qr_id']}")
    assert body["url_qr"].endswith(f"/qr/{body['qr_id']}")
    assert [r.path for r in photos.requests] == ["/photo.png"]
    # The QR image (PNG and SVG) decodes to the product page.
    png = _served(client, body["url_qr"])
    assert decode_png(png) == [body["url_checkout"]]
    svg = client.get(body["url_qr"].removeprefix("http://testserver") + "?format=svg&size=4")
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    rendered, _ = svg_to_image(svg.text)
    assert decode_png(_as_png(rendered)) == [body["url_checkout"]]
    assert count_qrs(runtime) == 1


def _as_png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_the_stored_photo_has_no_exif_and_is_at_most_1600_px(
    client: TestClient, token: str, photos: Receiver, runtime: Runtime
) -> None:
    reply = create(client, token, **reusable_qr(photos.url("/gps.jpg")))
    assert reply.status_code == 200, reply.text
    data = client.get(
        "/api/2.0/mobip/get_reusable_qr",
        params={"access_token": token, "qr_id": reply.json()["qr_id"]},
    ).json()["reusable_qr"]
    photo = client.get(data["photo_url"].removeprefix("http://testserver"))
    assert photo.status_code == 200
    assert photo.headers["content-type"] == "image/jpeg"
    assert photo.headers["x-content-type-options"] == "nosniff"
    assert "immutable" in photo.headers["cache-control"]
    assert b"Secret Camera" not in photo.content
    assert b"Exif" not in photo.content
    stored = Image.open(io.BytesIO(photo.content))
    assert stored.size == (1600, 800)
    assert not stored.getexif().get_ifd(GPS_IFD)
    assert len(stored.getexif()) == 0
    thumb = Image.open(
        io.BytesIO(client.get(data["thumbnail_url"].removeprefix("http://testserver")).content)
    )
    assert thumb.size == (400, 200)
    assert (data["photo_width"], data["photo_height"]) == ("1600", "800")
    # Stored by content hash under the data folder.
    assert len(stored_files(runtime)) == 2
    assert all(len(name) == 64 + 4 for name in stored_files(runtime))


def test_a_gif_keeps_its_first_frame(client: TestClient, token: str, photos: Receiver) -> None:
    reply = create(client, token, **reusable_qr(photos.url("/anim.gif")))
    assert reply.status_code == 200, reply.text
    data = client.get(
        "/api/2.0/mobip/get_reusable_qr",
        params={"access_token": token, "qr_id": reply.json()["qr_id"]},
    ).json()["reusable_qr"]
    image = Image.open(
        io.BytesIO(client.get(data["photo_url"].removeprefix("http://testserver")).content)
    )
    assert image.format == "JPEG"
    red, _, blue = image.convert("RGB").getpixel((60, 40))  # type: ignore[misc]
    assert red > 200 and blue < 60  # the red first frame, not the blue second one


def test_a_chain_of_three_redirects_is_followed(
    client: TestClient, token: str, photos: Receiver
) -> None:
    reply = create(client, token, **reusable_qr(photos.url("/r2")))
    assert reply.status_code == 200, reply.text
    assert [r.path for r in photos.requests] == ["/r2", "/r3", "/r4", "/photo.png"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/huge.png", "larger than 5 MiB"),
        ("/page.html", "not a JPEG, PNG, WebP or GIF image"),
        ("/missing.png", "HTTP 404"),
        ("/r1", "more than 3 redirects"),
        ("/bomb.png", "decompression bomb"),
    ],
)
def test_a_refused_photo_names_item_photo_and_stores_nothing(
    client: TestClient,
    token: str,
    photos: Receiver,
    runtime: Runtime,
    path: str,
    reason: str,
) -> None:
    reply = create(client, token, **reusable_qr(photos.url(path)))
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["return_code"] == "1002"
    assert "item_photo" in body["return_message"]
    assert reason in body["return_message"]
    assert count_qrs(runtime) == 0
    assert stored_files(runtime) == []


def test_the_declared_size_is_refused_before_decoding() -> None:
    from products.support import png_declaring

    with pytest.raises(product_photos.PhotoRefused, match="declares 8000x6000 pixels"):
        product_photos.decode(png_declaring(8000, 6000))


def test_a_server_that_never_answers_times_out(
    client: TestClient, token: str, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(product_photos, "DOWNLOAD_SECONDS", 0.5)
    with silent_server() as url:
        reply = create(client, token, **reusable_qr(url))
    assert reply.status_code == 400
    assert "item_photo" in reply.json()["return_message"]
    assert "longer than 0.5 s" in reply.json()["return_message"]
    assert count_qrs(runtime) == 0


def test_production_refuses_a_loopback_photo_without_connecting(
    tmp_path: Path, photos: Receiver
) -> None:
    production = Settings(data_dir=tmp_path, env=Environment.PRODUCTION)
    store = FilePhotoStore(tmp_path / "photos")
    with pytest.raises(product_photos.PhotoRefused, match=r"item_photo.*loopback"):
        product_photos.fetch_and_store(photos.url("/photo.png"), production, store)
    assert photos.requests == []
    assert not (tmp_path / "photos").exists()


def test_a_private_address_literal_is_refused_before_any_download(
    client: TestClient, token: str, runtime: Runtime
) -> None:
    reply = create(client, token, **reusable_qr("http://169.254.169.254/latest/meta-data"))
    assert reply.status_code == 400
    assert "item_photo" in reply.json()["return_message"]
    assert "link-local" in reply.json()["return_message"]
    assert count_qrs(runtime) == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"item_amount": "0"}, "item_amount"),
        ({"item_amount": None}, "item_amount"),
        ({"tax_amount": "-1"}, "tax_amount"),
        ({"item_amount": "99999999", "tax_amount": "99999999"}, "item_amount"),
        ({"item_name": None}, "item_name"),
        ({"item_name": "x" * 256}, "item_name"),
        ({"item_photo": None}, "item_photo"),
        ({"item_photo": "ftp://example.com/a.png"}, "item_photo"),
        ({"item_video": "http://video.example/v"}, "item_video"),
        ({"item_message": "m" * 501}, "item_message"),
        ({"item_brand": "b" * 256}, "item_brand"),
        ({"call_back_url": "not a url"}, "call_back_url"),
        ({"redirect_url": "javascript:alert(1)"}, "redirect_url"),
        ({"language": "DE"}, "language"),
    ],
)
def test_every_rule_names_its_field_and_creates_nothing(
    client: TestClient,
    token: str,
    photos: Receiver,
    runtime: Runtime,
    overrides: dict[str, str | None],
    field: str,
) -> None:
    reply = create(client, token, **reusable_qr(photos.url("/photo.png"), **overrides))
    assert reply.status_code == 400, reply.text
    assert field in reply.json()["return_message"]
    assert count_qrs(runtime) == 0
    assert photos.requests == []  # nothing downloaded for a request refused on its fields


def test_partners_and_admins_may_not_create(
    client: TestClient, runtime: Runtime, photos: Receiver
) -> None:
    partner = make_account(runtime, role=Role.PARTNER)
    reply = create(client, token_for(client, partner), **reusable_qr(photos.url("/photo.png")))
    assert reply.status_code == 403
    assert reply.json()["return_code"] == "3001"
    assert count_qrs(runtime) == 0


def test_idempotency_key_replays_the_first_reply(
    client: TestClient, token: str, photos: Receiver, runtime: Runtime
) -> None:
    fields = form(access_token=token, **reusable_qr(photos.url("/photo.png")))
    first = client.post(CREATE, files=fields, headers={"Idempotency-Key": "k-1"})
    second = client.post(CREATE, files=fields, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert count_qrs(runtime) == 1


def test_xml_reply(client: TestClient, token: str, photos: Receiver) -> None:
    reply = client.post(
        CREATE,
        files=form(access_token=token, format="xml", **reusable_qr(photos.url("/photo.png"))),
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/xml")
    assert "<qr_id>qr_" in reply.text


def test_the_same_photo_is_stored_once(
    client: TestClient, merchant: NewCredentials, token: str, photos: Receiver, runtime: Runtime
) -> None:
    for _ in range(2):
        assert create(client, token, **reusable_qr(photos.url("/photo.png"))).status_code == 200
    assert count_qrs(runtime) == 2
    assert len(stored_files(runtime)) == 2  # one photo, one thumbnail


def _open_transactions(runtime: Runtime) -> int:
    """PostgreSQL sessions of this database idle inside a transaction (ours: none but a test's)."""
    with runtime.database.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'idle in transaction'"
                )
            ).scalar_one()
        )


def test_the_photo_is_downloaded_with_no_database_transaction_open_and_a_failure_frees_the_key(
    client: TestClient, token: str, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the photo's server takes its time, no lock or transaction of the request is held
    (SQLite: another writer gets the write lock at once; PostgreSQL: no session idle in a
    transaction), even with an Idempotency-Key claimed; the failed download gives the key back."""
    monkeypatch.setattr(product_photos, "DOWNLOAD_SECONDS", 1.5)
    replies: list[Any] = []
    with silent_server() as url:
        fields = form(access_token=token, **reusable_qr(url))
        request = threading.Thread(
            target=lambda: replies.append(
                client.post(CREATE, files=fields, headers={"Idempotency-Key": "slow-1"})
            )
        )
        request.start()
        time.sleep(0.7)  # the request is waiting for the photo by now
        assert request.is_alive()
        if runtime.database.is_sqlite:
            path = runtime.database.engine.url.database
            assert path is not None
            other = sqlite3.connect(path, timeout=0.2, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # "database is locked" if a writer held it
                other.execute("ROLLBACK")
            finally:
                other.close()
        else:
            assert _open_transactions(runtime) == 0
        request.join()
    [failed] = replies
    assert failed.status_code == 400 and "item_photo" in failed.json()["return_message"]
    assert count_qrs(runtime) == 0
    # The same key again is a new attempt (not "in progress", 5054), refused the same way.
    with silent_server() as url:
        again = client.post(
            CREATE,
            files=form(access_token=token, **reusable_qr(url)),
            headers={"Idempotency-Key": "slow-1"},
        )
    assert again.status_code == 400 and again.json()["return_code"] == failed.json()["return_code"]
