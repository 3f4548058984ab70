"""The e-mails of a transaction as the worker composes them (transactions.messages' composers on
the outbox rows the transaction queued), for the tests that read them: the message tests and the
browser's visual tests."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any

from PIL import Image

from mobip.accounts.models import Account, AccountBranding, Provider
from mobip.delivery import service as delivery
from mobip.delivery.composing import Composing, MailContent
from mobip.delivery.email import mail_domain
from mobip.delivery.service import PAYMENT_REQUEST, RECEIPT
from mobip.kit.runtime import Runtime
from mobip.transactions import messages
from mobip.transactions import service as transactions
from mobip.transactions.models import Transaction


def _compose(runtime: Runtime, transaction: Transaction, kind: str) -> MailContent:
    with runtime.database.session() as session:
        queued = delivery.messages_about(
            session, account_id=transaction.account_id, subject=transaction.trid
        )
        [message] = [m for m in queued if m.kind == kind][-1:]
        composing = Composing(
            session, runtime.clock, runtime.settings, mail_domain(runtime.settings)
        )
        composer = messages.payment_request if kind == PAYMENT_REQUEST else messages.receipt
        content = composer(message, composing)
    assert isinstance(content, MailContent)
    return content


def payment_request(runtime: Runtime, transaction: Transaction) -> MailContent:
    """The payment request e-mail ``transaction`` queued when it was created."""
    return _compose(runtime, transaction, PAYMENT_REQUEST)


def receipt(
    runtime: Runtime,
    transaction: Transaction,
    payment_method: str = "card visa ****4242",
    language: str | None = None,
    test: bool | None = None,
) -> MailContent:
    """``transaction`` paid with ``payment_method`` (stored as the checkout stores it), and the
    receipt it then queues."""
    with runtime.database.transaction() as session:
        merchant = session.get(Account, transaction.account_id)
        assert merchant is not None
        paid = transactions.get_of_account(session, merchant, transaction.trid)
        assert paid is not None
        now = runtime.clock.now()
        assert transactions.mark_paid(session, paid, now=now, settings=runtime.settings)
        transactions.set_payment_method(session, paid, payment_method, now)
        delivery.queue_receipt(
            session,
            target="zoe@example.com",
            trid=paid.trid,
            language=language or paid.language,
            account_id=paid.account_id,
            clock=runtime.clock,
            test=test,
        )
    return _compose(runtime, transaction, RECEIPT)


def png(width: int = 240, height: int = 80, colour: str = "#1a7f37") -> bytes:
    """A logo: a plain PNG of ``width`` x ``height``."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def brand(
    runtime: Runtime,
    merchant: Account,
    *,
    accent: str | None = None,
    logo: bytes | None = None,
    logo_type: str = "image/png",
) -> None:
    """Give ``merchant`` an accent colour and a logo, stored as accounts stores them."""
    values: dict[str, Any] = {"accent_colour": accent}
    if logo is not None:
        digest = hashlib.sha256(logo).hexdigest()
        values |= {"logo": logo, "logo_content_type": logo_type, "logo_sha256": digest}
    with runtime.database.transaction() as session:
        session.add(
            AccountBranding(account_id=merchant.id, updated_at=runtime.clock.now(), **values)
        )


def use_provider(runtime: Runtime, merchant: Account, provider: Provider) -> None:
    """Switch ``merchant`` to ``provider`` (no keys: composing an e-mail needs none)."""
    with runtime.database.transaction() as session:
        account = session.get(Account, merchant.id)
        assert account is not None
        account.provider = provider.value


def html_as_shown(mail: MailContent) -> str:
    """The HTML part as a mail client shows it: the inline image (cid:) as its bytes."""
    if mail.inline_png is None or mail.inline_cid is None:
        return mail.html
    data = base64.b64encode(mail.inline_png).decode("ascii")
    return mail.html.replace(f"cid:{mail.inline_cid}", f"data:image/png;base64,{data}")
