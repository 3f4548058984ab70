"""GET /pay/{checkout_token}/logo: the merchant's logo (checkout/logo.py)."""

from __future__ import annotations

import io

from PIL import Image
from starlette.testclient import TestClient

from factories import make_account, make_transaction
from mobip.accounts import service as accounts_service
from mobip.accounts.models import Account
from mobip.accounts.service import Branding
from mobip.checkout.logo import CACHE_CONTROL, SVG_CSP
from mobip.kit.runtime import Runtime

SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
    b'<circle cx="5" cy="5" r="4" fill="#1a7f37"/></svg>'
)


def _png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(out, "PNG")
    return out.getvalue()


def _brand(runtime: Runtime, account: Account, logo: bytes) -> Branding:
    with runtime.database.transaction() as session:
        row = session.get(Account, account.id)
        assert row is not None
        return accounts_service.set_branding(session, row, logo=logo, clock=runtime.clock)


def _logo_path(runtime: Runtime, account: Account, version: str | None) -> str:
    transaction = make_transaction(runtime, account)
    return f"/pay/{transaction.checkout_token}/logo?v={version}"


def test_a_png_logo_is_served_with_long_cache_and_nosniff(
    runtime: Runtime, client: TestClient
) -> None:
    merchant = make_account(runtime).account
    branding = _brand(runtime, merchant, _png((26, 127, 55)))
    path = _logo_path(runtime, merchant, branding.logo_version)
    reply = client.get(path)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "image/png"
    assert reply.headers.get_list("cache-control") == [CACHE_CONTROL]
    assert reply.headers.get_list("x-content-type-options") == ["nosniff"]
    with runtime.database.session() as session:
        assert accounts_service.get_logo(session, merchant.id) == ("image/png", reply.content)
    with Image.open(io.BytesIO(reply.content)) as image:
        assert image.getpixel((0, 0)) == (26, 127, 55)
    assert client.head(path).status_code == 200


def test_an_svg_logo_is_served_under_a_csp_that_forbids_everything_but_styles(
    runtime: Runtime, client: TestClient
) -> None:
    merchant = make_account(runtime).account
    branding = _brand(runtime, merchant, SVG)
    reply = client.get(_logo_path(runtime, merchant, branding.logo_version))
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "image/svg+xml"
    assert reply.headers.get_list("content-security-policy") == [SVG_CSP]
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.content.startswith(b'<svg xmlns="http://www.w3.org/2000/svg"')


def test_an_old_version_gets_the_current_logo_but_is_not_kept(
    runtime: Runtime, client: TestClient
) -> None:
    merchant = make_account(runtime).account
    old = _brand(runtime, merchant, _png((0, 0, 0)))
    new = _brand(runtime, merchant, _png((26, 127, 55)))
    assert old.logo_version != new.logo_version
    transaction = make_transaction(runtime, merchant)
    stale = client.get(f"/pay/{transaction.checkout_token}/logo?v={old.logo_version}")
    assert stale.status_code == 200
    assert stale.headers["cache-control"] == "no-cache"
    with Image.open(io.BytesIO(stale.content)) as image:
        assert image.getpixel((0, 0)) == (26, 127, 55)
    bare = client.get(f"/pay/{transaction.checkout_token}/logo")
    assert bare.headers["cache-control"] == "no-cache"


def test_each_token_shows_only_its_own_merchants_logo(runtime: Runtime, client: TestClient) -> None:
    shop_a = make_account(runtime, name="A").account
    shop_b = make_account(runtime, name="B").account
    version_a = _brand(runtime, shop_a, _png((255, 0, 0))).logo_version
    version_b = _brand(runtime, shop_b, _png((0, 0, 255))).logo_version
    for account, version, colour in (
        (shop_a, version_a, (255, 0, 0)),
        (shop_b, version_b, (0, 0, 255)),
    ):
        reply = client.get(_logo_path(runtime, account, version))
        with Image.open(io.BytesIO(reply.content)) as image:
            assert image.getpixel((0, 0)) == colour


def test_unknown_token_or_no_logo_is_404(runtime: Runtime, client: TestClient) -> None:
    plain = make_account(runtime).account
    with runtime.database.transaction() as session:
        row = session.get(Account, plain.id)
        assert row is not None
        accounts_service.set_branding(session, row, accent_colour="#1a7f37", clock=runtime.clock)
    no_logo = client.get(_logo_path(runtime, plain, None))
    assert no_logo.status_code == 404
    assert no_logo.headers["content-type"].startswith("text/plain")
    assert client.get("/pay/ck_unknown/logo").status_code == 404
    # A token of the right form that names no transaction: looked up, not found.
    assert client.get(f"/pay/ck_{'A' * 32}/logo").status_code == 404
    assert client.get("/pay/not%00a-token/logo").status_code == 404
    assert client.post(_logo_path(runtime, plain, None)).status_code == 405
