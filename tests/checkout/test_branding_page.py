"""The merchant's branding on the hosted pages: the logo (alt: the merchant's name) and the
accent colour, allowed by the page's CSP through its hash (no 'unsafe-inline')."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import re

from PIL import Image
from starlette.testclient import TestClient

from checkout.support import PAID, card, csrf_of, pay_path
from factories import make_account, make_transaction
from mobip.accounts import service as accounts_service
from mobip.accounts.models import Account
from mobip.accounts.service import Branding
from mobip.kit.runtime import Runtime

ACCENT = "#0b6e4f"  # white on it: 6.3:1


def brand(runtime: Runtime, account: Account, logo: bytes, accent_colour: str) -> Branding:
    with runtime.database.transaction() as session:
        row = session.get(Account, account.id)
        assert row is not None
        return accounts_service.set_branding(
            session, row, logo=logo, accent_colour=accent_colour, clock=runtime.clock
        )


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (48, 24), (11, 110, 79)).save(out, "PNG")
    return out.getvalue()


def styles(page: str) -> list[str]:
    return re.findall(r"<style>(.*?)</style>", page, re.S)


def test_the_accent_colour_and_the_logo_on_the_payment_and_confirmation_pages(
    runtime: Runtime, client: TestClient
) -> None:
    merchant = make_account(runtime, name="Café Lumière").account
    branding = brand(runtime, merchant, logo=png(), accent_colour=ACCENT.upper())
    assert branding.logo_version is not None
    transaction = make_transaction(runtime, merchant)
    for path in (pay_path(transaction), None):
        if path is None:  # after paying
            form = client.get(pay_path(transaction)).text
            paid = client.post(
                pay_path(transaction),
                data={"csrf_token": csrf_of(form), **card(PAID)},
                follow_redirects=False,
            )
            path = paid.headers["location"]
        reply = client.get(path)
        page = reply.text
        assert styles(page) == [f":root{{--accent:{ACCENT}}}"]
        digest = base64.b64encode(hashlib.sha256(styles(page)[0].encode()).digest()).decode()
        csp = reply.headers["content-security-policy"]
        assert f"style-src 'self' 'sha256-{digest}';" in csp and "unsafe" not in csp
        logo = re.search(r'<img class="logo" src="([^"]+)" alt="([^"]+)">', page)
        assert logo is not None
        src, alt = html.unescape(logo.group(1)), html.unescape(logo.group(2))
        assert alt == "Café Lumière"
        assert src == f"/pay/{transaction.checkout_token}/logo?v={branding.logo_version}"
        image = client.get(src)
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"


def test_without_branding_the_page_has_no_inline_style_and_names_the_merchant_in_words(
    runtime: Runtime, client: TestClient
) -> None:
    merchant = make_account(runtime, name="Café Lumière").account
    transaction = make_transaction(runtime, merchant)
    reply = client.get(pay_path(transaction))
    assert styles(reply.text) == [] and "<img" not in reply.text
    assert '<span class="merchant-name">Café Lumière</span>' in reply.text
    assert "style-src 'self';" in reply.headers["content-security-policy"]
    # One merchant's branding is not another's.
    other = make_account(runtime, name="Other").account
    brand(runtime, other, logo=png(), accent_colour=ACCENT)
    assert styles(client.get(pay_path(transaction)).text) == []
