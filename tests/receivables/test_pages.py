"""The customer portal through the ASGI app (both databases): the page lists a customer's own
invoices with their amounts (EN and FR), ticked by default when due; a bad link is a 404 that
says nothing; Pay is CSRF-checked, refuses an empty choice and a paid invoice, and otherwise
makes one transaction for the ticked invoices and sends the customer to its checkout."""

from __future__ import annotations

import io
import re
from datetime import date

import httpx
import pytest
from PIL import Image
from sqlalchemy import select
from starlette.testclient import TestClient

from checkout.support import card, csrf_of
from factories import make_account, make_transaction
from mobip.accounts import service as accounts
from mobip.accounts.models import Account, Language
from mobip.accounts.service import NewCredentials
from mobip.checkout import csrf
from mobip.checkout.logo import CACHE_CONTROL
from mobip.kit.i18n import money
from mobip.kit.runtime import Runtime
from mobip.receivables import service
from mobip.receivables.pages import invoices_shown
from mobip.transactions.models import Transaction

SOURCE = "erp"
INVOICES = """{"InvoicesLists": [
 {"CustomerId": "C-ADA", "CustomerEmail": "ada@example.com", "Invoices": [
   {"InvId": "inv_a", "InvDueDate": "2025-12-01", "InvLbl": "Winter service",
    "Amount_in_cents": "12000", "InvStatus": "OPEN"},
   {"InvId": "inv_b", "InvDueDate": "2025-12-15", "InvLbl": "Spare parts",
    "Amount_in_cents": "3050", "InvStatus": "OPEN"},
   {"InvId": "inv_c", "InvDueDate": "2026-02-01", "InvLbl": "Spring service",
    "Amount_in_cents": "5000", "InvStatus": "NEW"},
   {"InvId": "inv_d", "InvDueDate": "2025-11-01", "InvLbl": "Autumn service",
    "Amount_in_cents": "9900", "InvStatus": "SETTLED"}]},
 {"CustomerId": "C-BOB", "CustomerEmail": "bob@example.com", "Invoices": [
   {"InvId": "inv_x", "InvDueDate": "2025-12-01", "InvLbl": "Bob's boiler",
    "Amount_in_cents": "7700", "InvStatus": "OPEN"}]}
]}"""
MAPPING = {"pending": "NEW", "due": "OPEN", "fully_paid": "SETTLED", "partially_paid": "PART"}


@pytest.fixture
def merchant(runtime: Runtime) -> NewCredentials:
    return make_account(runtime, name="Garage Dupré")


@pytest.fixture
def links(runtime: Runtime, merchant: NewCredentials) -> dict[str, str]:
    """The imported customers' portal paths by CustomerId (the clock's today: 2026-01-01)."""
    settings, clock = runtime.settings, runtime.clock
    with runtime.database.transaction() as session:
        caller = session.get(Account, merchant.account.id)
        assert caller is not None
        service.set_external_invoices(session, caller, SOURCE, None, INVOICES, settings, clock)
        service.set_external_invoice_status(session, caller, SOURCE, MAPPING, clock)
        listed = service.get_external_invoices(session, caller, SOURCE, None, settings, clock)
    urls = {row["CustomerId"]: row["url_portal"] for row in listed["InvoicesList"]}
    return {customer: httpx.URL(url).path for customer, url in urls.items()}


def speaks(runtime: Runtime, merchant: NewCredentials, language: Language) -> None:
    with runtime.database.transaction() as session:
        account = session.get(Account, merchant.account.id)
        assert account is not None
        account.language = language


def transactions(runtime: Runtime) -> list[Transaction]:
    with runtime.database.transaction() as session:
        return list(session.scalars(select(Transaction).order_by(Transaction.id)))


def ticked(html: str) -> dict[str, bool]:
    """Each open invoice's checkbox: InvId → ticked."""
    boxes = re.findall(r'<input type="checkbox"[^>]*name="invoices" value="([^"]+)"[^>]*>', html)
    return {inv_id: bool(re.search(rf'value="{inv_id}"[^>]*\schecked', html)) for inv_id in boxes}


def post(client: TestClient, path: str, *invoices: str, **fields: str) -> httpx.Response:
    page = client.get(path)
    data: dict[str, str | list[str]] = {"csrf_token": csrf_of(page.text), **fields}
    data["invoices"] = list(invoices)
    return client.post(path, data=data, follow_redirects=False)


def test_the_page_lists_the_customers_invoices_due_ones_ticked(
    client: TestClient, links: dict[str, str]
) -> None:
    page = client.get(links["C-ADA"])
    assert page.status_code == 200
    html = page.text
    assert '<html lang="en">' in html and "Garage Dupré" in html
    assert "<h1>Your invoices</h1>" in html and "Customer account C-ADA" in html
    # The open ones, oldest due first, with what is left to pay; the due ones ticked.
    assert ticked(html) == {"inv_a": True, "inv_b": True, "inv_c": False}
    assert html.index("inv_a") < html.index("inv_b") < html.index("inv_c")
    for label, amount in [("Winter service", "€120.00"), ("Spare parts", "€30.50")]:
        assert label in html and amount in html
    assert "Spring service" in html and "€50.00" in html and "Not yet due" in html
    assert "Invoice inv_a · Due Dec 1, 2025" in html
    # The total of the ticked ones (the page's script keeps it up to date).
    assert re.search(r'id="portal-total"[^>]*>€150.50</dd>', html)
    # The one paid in the merchant's system: under "Paid invoices", no checkbox.
    paid = html[html.index("Paid invoices") :]
    assert "Autumn service" in paid and "€99.00" in paid and 'value="inv_d"' not in html
    assert "Bob" not in html and "inv_x" not in html
    assert page.headers["cache-control"] == "no-store"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "form-action 'self'" in csp
    assert '<script src="/portal/static/portal.js" defer></script>' in html
    assert "mobip_csrf=" in page.headers["set-cookie"]
    assert "Path=/portal" in page.headers["set-cookie"]
    assert "TEST MODE" in html  # the sandbox merchant
    assert client.get("/portal/static/portal.js").status_code == 200


def test_the_page_speaks_the_merchants_language_and_switches(
    client: TestClient, runtime: Runtime, merchant: NewCredentials, links: dict[str, str]
) -> None:
    speaks(runtime, merchant, Language.FR)
    html = client.get(links["C-ADA"]).text
    assert '<html lang="fr">' in html
    assert "<h1>Vos factures</h1>" in html
    assert money(12000, "EUR", "FR") in html and "120,00" in html
    assert re.search(r'id="portal-total"[^>]*>150,50\xa0€</dd>', html)
    assert "Pas encore échue" in html
    assert "1 déc. 2025" in html
    assert 'href="?lang=EN"' in html
    english = client.get(links["C-ADA"] + "?lang=EN").text
    assert '<html lang="en">' in english and "€120.00" in english


def test_another_customers_link_shows_only_theirs(
    client: TestClient, links: dict[str, str]
) -> None:
    html = client.get(links["C-BOB"]).text
    assert ticked(html) == {"inv_x": True}
    assert "Customer account C-BOB" in html and "€77.00" in html
    assert "C-ADA" not in html and "Winter service" not in html and "inv_d" not in html


@pytest.mark.parametrize("mangle", ["unknown", "signature", "prefix"])
def test_a_bad_link_is_a_404_that_says_nothing(
    client: TestClient, runtime: Runtime, links: dict[str, str], mangle: str
) -> None:
    good = links["C-ADA"].rsplit("/", 1)[1]
    bad = {
        "unknown": "nothing-here",
        "signature": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "prefix": "cx" + good[2:],
    }[mangle]
    # A POST without the CSRF token is refused before the link is looked at.
    unchecked = client.post(f"/portal/{bad}", data={"invoices": "inv_a"}, follow_redirects=False)
    assert unchecked.status_code == 403
    page = client.get(f"/portal/{bad}")
    assert page.status_code == 404
    assert "Page not found" in page.text and "This link is not valid." in page.text
    assert "inv_" not in page.text and "Garage" not in page.text
    assert page.headers["cache-control"] == "no-store"
    # A well-formed POST (the CSRF token of that address) is a 404 too.
    client.get(links["C-ADA"])  # the CSRF cookie
    token = csrf.form_token(runtime.settings.resolved_secret_key, client.cookies[csrf.COOKIE], bad)
    posted = client.post(
        f"/portal/{bad}", data={"csrf_token": token, "invoices": "inv_a"}, follow_redirects=False
    )
    assert posted.status_code == 404
    assert transactions(runtime) == []


def test_pay_without_the_csrf_token_is_refused(
    client: TestClient, runtime: Runtime, links: dict[str, str]
) -> None:
    client.get(links["C-ADA"])
    reply = client.post(links["C-ADA"], data={"invoices": "inv_a"}, follow_redirects=False)
    assert reply.status_code == 403
    assert "Page expired" in reply.text
    # Nor with a token made for another customer's link.
    other = csrf_of(client.get(links["C-BOB"]).text)
    reply = client.post(
        links["C-ADA"], data={"invoices": "inv_a", "csrf_token": other}, follow_redirects=False
    )
    assert reply.status_code == 403
    assert transactions(runtime) == []


def test_nothing_ticked_shows_the_page_again_with_the_error(
    client: TestClient, runtime: Runtime, links: dict[str, str]
) -> None:
    reply = post(client, links["C-ADA"])
    assert reply.status_code == 400
    html = reply.text
    error = '<p class="field-error" id="invoices-error" role="alert">'
    assert error + "Tick at least one invoice to pay.</p>" in html
    assert html.index('name="invoices"') < html.index(error)  # under the list
    assert ticked(html) == {"inv_a": False, "inv_b": False, "inv_c": False}
    assert transactions(runtime) == []


def test_a_paid_or_anothers_invoice_cannot_be_paid(
    client: TestClient, runtime: Runtime, links: dict[str, str]
) -> None:
    for chosen in [("inv_a", "inv_d"), ("inv_x",), ("inv_zzz",)]:
        reply = post(client, links["C-ADA"], *chosen)
        assert reply.status_code == 400, chosen
        assert "cannot be paid together now" in reply.text
        # What the customer ticked stays ticked.
        assert ticked(reply.text)["inv_a"] is ("inv_a" in chosen)
    assert transactions(runtime) == []


def test_pay_makes_one_transaction_for_the_ticked_invoices_and_goes_to_its_checkout(
    client: TestClient, runtime: Runtime, links: dict[str, str]
) -> None:
    reply = post(client, links["C-ADA"], "inv_a", "inv_c", "inv_a", lang="EN")
    assert reply.status_code == 303
    [transaction] = transactions(runtime)
    assert reply.headers["location"] == f"/pay/{transaction.checkout_token}"
    assert transaction.kind == "invoice_portal"
    assert transaction.track_id == "inv_a|inv_c"
    assert (transaction.item_amount, transaction.tax_amount) == (17000, 0)
    assert transaction.status == "PENDING"
    checkout = client.get(reply.headers["location"])
    assert checkout.status_code == 200 and "€170.00" in checkout.text
    # Paid with the sandbox card: the portal shows both paid, with their date.
    paid = client.post(
        reply.headers["location"],
        data={"csrf_token": csrf_of(checkout.text), **card()},
        follow_redirects=False,
    )
    assert paid.status_code == 303
    html = client.get(links["C-ADA"]).text
    assert ticked(html) == {"inv_b": True}
    shown = html[html.index("Paid invoices") :]
    assert "Winter service" in shown and "Spring service" in shown
    assert shown.count("Paid on Jan 1, 2026") == 2
    assert re.search(r'id="portal-total"[^>]*>€30.50</dd>', html)


def test_pay_is_rate_limited_per_client(
    client: TestClient, runtime: Runtime, links: dict[str, str]
) -> None:
    limit = runtime.settings.checkout_max_attempts_per_client
    for _ in range(limit):
        assert post(client, links["C-BOB"], "inv_x").status_code == 303
    refused = post(client, links["C-BOB"], "inv_x")
    assert refused.status_code == 429
    assert "retry-after" in refused.headers
    assert len(transactions(runtime)) == limit


def test_the_page_needs_no_date_to_show_an_invoice(runtime: Runtime) -> None:
    """A dated invoice's due date is written out; none is not an error."""
    view = service.PortalView(
        merchant_name="M",
        merchant_uid="u",
        language="en",
        currency="EUR",
        customer_id="C",
        credit=250,
        invoices=[
            service.PortalInvoice(
                inv_id="i1",
                label="",
                inv_date=None,
                due_date=None,
                amount=100,
                paid_amount=40,
                remaining=60,
                mobip_status="partially_paid",
                paid_at=None,
            ),
            service.PortalInvoice(
                inv_id="i2",
                label="L",
                inv_date=date(2025, 1, 1),
                due_date=date(2025, 2, 1),
                amount=100,
                paid_amount=0,
                remaining=100,
                mobip_status="pending",
                paid_at=None,
            ),
        ],
    )
    open_lines, paid_lines = invoices_shown(view, runtime.settings, "EN")
    assert paid_lines == []
    assert [(line.inv_id, line.due, line.ticked) for line in open_lines] == [
        ("i1", None, True),
        ("i2", "Feb 1, 2025", False),
    ]
    assert (open_lines[0].paid_text, open_lines[0].status) == ("€0.40", "Partly paid")


def test_the_merchants_logo_and_accent_colour(
    client: TestClient, runtime: Runtime, merchant: NewCredentials, links: dict[str, str]
) -> None:
    image = io.BytesIO()
    Image.new("RGB", (32, 32), (26, 127, 55)).save(image, "PNG")
    with runtime.database.transaction() as session:
        account = session.get(Account, merchant.account.id)
        assert account is not None
        branding = accounts.set_branding(
            session, account, logo=image.getvalue(), accent_colour="#1a7f37", clock=runtime.clock
        )
    page = client.get(links["C-ADA"])
    logo = f"{links['C-ADA']}/logo?v={branding.logo_version}"
    assert f'<img class="logo" src="{logo}" alt="Garage Dupré">' in page.text
    assert "<style>:root{--accent:#1a7f37}</style>" in page.text
    assert "style-src 'self' 'sha256-" in page.headers["content-security-policy"]
    served = client.get(logo)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.headers["cache-control"] == CACHE_CONTROL
    # Another customer's link shows the same merchant's logo; a bad link none.
    assert client.get(f"{links['C-BOB']}/logo").status_code == 200
    assert client.get("/portal/cp_0000/logo").status_code == 404


def test_a_partial_payment_and_the_customers_credit_are_shown(
    client: TestClient, runtime: Runtime, merchant: NewCredentials, links: dict[str, str]
) -> None:
    """A request paid for two invoices that covers one and part of the other; then one that
    pays more than is left: the rest is the customer's credit."""
    for track_id, amount in (("inv_a|inv_b", 13000), ("inv_b", 5000)):
        transaction = make_transaction(
            runtime, merchant.account, track_id=track_id, item_amount=amount, tax_amount=0
        )
        path = f"/pay/{transaction.checkout_token}"
        checkout = client.get(path)
        paid = client.post(
            path, data={"csrf_token": csrf_of(checkout.text), **card()}, follow_redirects=False
        )
        assert paid.status_code == 303
        if track_id == "inv_a|inv_b":
            # inv_a (due first) in full; €10.00 of inv_b's €30.50.
            html = client.get(links["C-ADA"]).text
            assert ticked(html) == {"inv_b": True, "inv_c": False}
            assert "Partly paid" in html and "€10.00 of €30.50 already paid" in html
            assert re.search(r'id="portal-total"[^>]*>€20.50</dd>', html)
            assert "Your credit" not in html
    html = client.get(links["C-ADA"]).text
    assert ticked(html) == {"inv_c": False}
    assert "Your credit: €29.50" in html  # 5000 - 2050
