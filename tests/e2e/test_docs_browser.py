"""/docs in Debian's Chromium (driven by Playwright), against the whole app served by uvicorn on
loopback: Swagger UI renders our OpenAPI 3.1 document, lists every endpoint, loads nothing from
another host, and "Try it out" works for multipart: a token by get_token's POST form, then a one-use
QR code with that token given through Authorize. On SQLite and on PostgreSQL.

Without /usr/bin/chromium the tests are skipped on a developer's machine, but FAIL when the
environment variable CI is set: CI must never pass by silently skipping the browser.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, Request, expect

from checkout.support import serve_app
from factories import make_account
from mobip.accounts.service import NewCredentials
from mobip.app import ENDPOINTS
from mobip.kit.runtime import Runtime

SCREENSHOT = Path("/tmp/mobip-docs.png")


@pytest.fixture
def merchant(runtime: Runtime) -> NewCredentials:
    return make_account(runtime, name="Café Lumière")


@pytest.fixture
def base(runtime: Runtime, merchant: NewCredentials) -> Iterator[str]:
    with serve_app(runtime) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def operation(page: Page, operation_id: str, tag: str = "mobip") -> Locator:
    """Swagger UI's block of an operation, under its tag (the path's first part: ``mobip``,
    ``neosystems``)."""
    return page.locator(f"#operations-{tag}-{operation_id}")


def try_it_out(
    page: Page, operation_id: str, fields: dict[str, str]
) -> tuple[Request, dict[str, str]]:
    """Open an operation, fill its form (the other fields keep what the form starts from) and
    execute it; the request the page sent and the reply it shows."""
    block = operation(page, operation_id)
    block.locator(".opblock-summary").click()
    block.get_by_role("button", name="Try it out").click()
    body = block.locator(".opblock-section-request-body")
    for name, value in fields.items():
        body.locator(f'tr[data-property-name="{name}"] input[type="text"]').fill(value)
    with page.expect_request(lambda r: "/api/2.0/mobip/" in r.url) as sent:
        block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table .response .response-col_status")
    expect(status).to_have_text("200")
    shown = block.locator(".live-responses-table .response-col_description pre").first
    reply: dict[str, str] = json.loads(shown.inner_text())
    return sent.value, reply


def test_docs_list_every_endpoint_and_try_it_out_works_for_multipart(
    page: Page, base: str, merchant: NewCredentials
) -> None:
    elsewhere: list[str] = []
    problems: list[str] = []
    page.on(
        "request",
        lambda r: (
            elsewhere.append(r.url)
            if urlsplit(r.url).netloc != urlsplit(base).netloc and not r.url.startswith("data:")
            else None
        ),
    )
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{base}/docs")

    # Every endpoint, with its method and path; a read's POST form beside its GET one. Only the
    # POST operations offer "Try it out" (a browser cannot send a GET with a body).
    for endpoint in ENDPOINTS:
        forms = [endpoint.name, f"{endpoint.name}_post"] if endpoint.reads else [endpoint.name]
        for operation_id in forms:
            block = operation(page, operation_id, endpoint.path.split("/")[1])
            expect(block).to_be_visible()
            method = "GET" if operation_id == endpoint.name and endpoint.reads else "POST"
            expect(block.locator(".opblock-summary-method")).to_have_text(method)
            expect(block.locator(".opblock-summary-path")).to_have_attribute(
                "data-path", endpoint.full_path
            )
    expect(page.get_by_text("Unable to render this definition")).to_have_count(0)
    read = next(endpoint for endpoint in ENDPOINTS if endpoint.reads)
    block = operation(page, read.name)
    block.locator(".opblock-summary").click()
    expect(block.get_by_role("button", name="Try it out")).to_have_count(0)
    block.locator(".opblock-summary").click()

    # A token through get_token's POST form, sent as multipart (the spec's form).
    sent, reply = try_it_out(
        page,
        "get_token_post",
        {
            "api_account_id": merchant.account.api_account_id,
            "api_secret_key": merchant.api_secret_key,
        },
    )
    assert sent.method == "POST"
    assert (sent.headers.get("content-type") or "").startswith("multipart/form-data")
    assert reply["return_code"] == "0", reply
    token = reply["access_token"]

    # The token through Authorize, then a write: a one-use QR code from the form's examples.
    page.get_by_role("button", name="Authorize").first.click()
    page.locator("#auth-bearer-value").fill(token)
    page.get_by_role("button", name="Apply credentials").click()
    page.get_by_role("button", name="Close").click()
    sent, reply = try_it_out(page, "create_one_use_qr", {})
    assert sent.headers.get("authorization") == f"Bearer {token}"
    assert (sent.headers.get("content-type") or "").startswith("multipart/form-data")
    assert reply["return_code"] == "0", reply
    assert reply["trid"].startswith("tr_")
    page.screenshot(path=str(SCREENSHOT), full_page=False)

    assert elsewhere == []  # nothing from another host (the page's CSP would refuse it too)
    assert problems == []  # no script error, no CSP violation
