"""GET /qr/{checkout_token}: the QR image of a checkout link (checkout/qr_images.py)."""

from __future__ import annotations

from io import BytesIO

from PIL import Image
from starlette.testclient import TestClient

from factories import make_account, make_transaction
from mobip.checkout.qr_images import CACHE_CONTROL
from mobip.kit.runtime import Runtime
from mobip.transactions import service as transactions_service
from transactions.support import decode_png


def test_served_qr_png_and_svg_decode_to_the_checkout_url(
    runtime: Runtime, client: TestClient
) -> None:
    transaction = make_transaction(runtime, make_account(runtime).account)
    url_qr = transactions_service.qr_url(runtime.settings, transaction)
    path = url_qr.removeprefix(runtime.settings.resolved_base_url)
    assert path == f"/qr/{transaction.checkout_token}"
    png = client.get(path)
    assert png.headers["content-type"] == "image/png"
    assert png.headers.get_list("cache-control") == [CACHE_CONTROL]
    assert "immutable" in png.headers["cache-control"]
    assert decode_png(png.content) == [
        transactions_service.checkout_url(runtime.settings, transaction)
    ]
    big = client.get(path, params={"size": 12})
    assert Image.open(BytesIO(big.content)).size[0] > Image.open(BytesIO(png.content)).size[0]
    svg = client.get(path, params={"format": "svg"})
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.lstrip().startswith("<svg") or svg.text.startswith("<?xml")
    assert client.get(path, params={"size": 1000}).status_code == 400
    assert client.get(path, params={"format": "gif"}).status_code == 400
    assert client.get("/qr/ck_unknown").status_code == 404
