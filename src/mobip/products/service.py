"""Reusable QR codes: creation (with the photo's upload), reading, listing, disabling, and the
payments their product page starts (ordinary transactions, through transactions.service)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mobip.accounts.models import Account, Language, Role
from mobip.accounts.service import require_role
from mobip.config import Settings
from mobip.kit.clock import Clock
from mobip.kit.errors import InvalidField
from mobip.kit.security import new_id
from mobip.kit.validation import email_address, http_url
from mobip.outbound import client as outbound
from mobip.products import photos, repository
from mobip.products.errors import ReusableQrDisabled, ReusableQrNotFound
from mobip.products.models import QrStatus, ReusableQr
from mobip.products.photos import StoredPhoto
from mobip.products.storage import PhotoStore
from mobip.transactions import service as transactions

QR_ID_PREFIX = "qr"
MAX_QUANTITY = 99
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100


@dataclass(frozen=True)
class NewReusableQr:
    """create_reusable_qr's values, typed by the endpoint."""

    item_amount: int
    tax_amount: int
    item_name: str
    item_photo: str
    item_video: str | None
    item_message: str | None
    item_reference: str | None
    item_category: str | None
    item_brand: str | None
    call_back_url: str | None
    redirect_url: str | None
    language: str | None


def page_url(settings: Settings, qr_id: str) -> str:
    """The product page (``url_checkout``)."""
    return f"{settings.resolved_base_url}/p/{qr_id}"


def qr_image_url(settings: Settings, qr_id: str) -> str:
    """The QR code's image (``url_qr``): the one-use QR codes' route and options."""
    return f"{settings.resolved_base_url}/qr/{qr_id}"


def photo_path(key: str) -> str:
    """Where a stored photo is served (by its content hash: never changes)."""
    return f"/p/photos/{key}"


def is_qr_id(value: str) -> bool:
    """Whether ``value`` has a QR id's form (new_id("qr", 16)); others are not looked up."""
    return (
        value.startswith("qr_")
        and len(value) == 25
        and all(c.isascii() and (c.isalnum() or c in "-_") for c in value[3:])
    )


# --- creating --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedQr:
    """A create request whose fields passed every check, its photo not yet downloaded."""

    merchant: Account
    values: dict[str, Any]


def check_new(merchant: Account, data: NewReusableQr, settings: Settings) -> CheckedQr:
    """Every field checked, in the order errors are reported; no network, no database."""
    require_role(merchant, Role.MERCHANT)
    return CheckedQr(merchant, _validated(data, settings))


def download_photo(checked: CheckedQr, settings: Settings, store: PhotoStore) -> StoredPhoto:
    """The photo downloaded, checked, re-encoded and stored (InvalidField naming item_photo
    otherwise). Up to 10 s of network: api/routing runs it outside any database transaction
    (CallOutside), so no lock is held meanwhile; last, for a request otherwise valid."""
    return photos.fetch_and_store(checked.values["item_photo"], settings, store)


def record(
    session: Session, checked: CheckedQr, photo: StoredPhoto, settings: Settings, clock: Clock
) -> dict[str, str]:
    """The QR code recorded with its stored photo; the reply."""
    now = clock.now()
    qr_id = new_id(QR_ID_PREFIX, 16)
    repository.add(
        session,
        {
            **checked.values,
            "qr_id": qr_id,
            "account_id": checked.merchant.id,
            "status": QrStatus.ACTIVE.value,
            "currency": checked.merchant.currency,
            "photo_key": photo.photo_key,
            "thumbnail_key": photo.thumbnail_key,
            "photo_width": photo.width,
            "photo_height": photo.height,
            "created_at": now,
            "updated_at": now,
        },
    )
    return {
        "qr_id": qr_id,
        "url_qr": qr_image_url(settings, qr_id),
        "url_checkout": page_url(settings, qr_id),
    }


def _validated(data: NewReusableQr, settings: Settings) -> dict[str, Any]:
    """The checks of create_one_use_qr's same fields, in the order errors are reported."""
    if data.item_amount <= 0:
        raise InvalidField("item_amount", "must be greater than 0")
    if data.tax_amount < 0:
        raise InvalidField("tax_amount", "must be 0 or more")
    if data.item_amount + data.tax_amount > settings.max_total_amount:
        raise InvalidField(
            "item_amount", f"the total (item + tax) must be at most {settings.max_total_amount}"
        )
    photo_url = http_url(photos.FIELD, data.item_photo, https_only=False)
    reason = outbound.refusal_before_sending(photo_url, settings)
    if reason is not None:
        raise photos.PhotoRefused(f"the address is not allowed ({reason})")
    return {
        "item_amount": data.item_amount,
        "tax_amount": data.tax_amount,
        "item_name": data.item_name,
        "item_photo": photo_url,
        # Never fetched: shown as a link, https only (the page is https).
        "item_video": http_url("item_video", data.item_video, https_only=True)
        if data.item_video
        else None,
        "item_message": data.item_message,
        "item_reference": data.item_reference,
        "item_category": data.item_category,
        "item_brand": data.item_brand,
        "call_back_url": transactions.callback_url(data.call_back_url, settings)
        if data.call_back_url
        else None,
        "redirect_url": http_url(
            "redirect_url", data.redirect_url, https_only=settings.is_production
        )
        if data.redirect_url
        else None,
        "language": _language(data.language),
    }


def _language(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return Language(value.strip().upper()).value
    except ValueError:
        raise InvalidField("language", "must be EN or FR") from None


# --- reading and managing --------------------------------------------------------------------


def _visible(session: Session, caller: Account, qr_id: str) -> tuple[ReusableQr, Account]:
    found = repository.get_visible(session, caller, qr_id) if is_qr_id(qr_id) else None
    if found is None:
        raise ReusableQrNotFound()
    return found


def get(session: Session, caller: Account, qr_id: str, settings: Settings) -> dict[str, Any]:
    """Every field of a QR code the caller owns or is above, with its payments' totals."""
    qr, merchant = _visible(session, caller, qr_id)
    totals = transactions.paid_totals_by_qr(session, [merchant.id], [qr.qr_id])
    return _data(qr, merchant, totals.get(qr.qr_id, (0, 0)), settings)


def list_of(
    session: Session,
    caller: Account,
    settings: Settings,
    *,
    limit: int,
    starting_after: str | None,
) -> dict[str, Any]:
    """The caller's visible QR codes, newest first, ``limit`` at a time after ``starting_after``."""
    before_id = None
    if starting_after:
        cursor = repository.get_visible(session, caller, starting_after)
        if cursor is None or not is_qr_id(starting_after):
            # As get_reusable_qr's for an unknown qr_id: nothing tells another's from none.
            raise ReusableQrNotFound("starting_after: no such QR code among yours")
        before_id = cursor[0].id
    rows = repository.list_visible(session, caller, limit=limit + 1, before_id=before_id)
    page = rows[:limit]
    totals = transactions.paid_totals_by_qr(
        session, sorted({m.id for _, m in page}), [qr.qr_id for qr, _ in page]
    )
    return {
        "reusable_qrs": [
            _data(qr, merchant, totals.get(qr.qr_id, (0, 0)), settings) for qr, merchant in page
        ],
        "has_more": "true" if len(rows) > limit else "false",
    }


def set_enabled(
    session: Session, caller: Account, qr_id: str, enabled: bool, clock: Clock
) -> dict[str, str]:
    """ACTIVE ↔ DISABLED (the owner only; setting the status it has already changes nothing)."""
    require_role(caller, Role.MERCHANT)
    qr, _ = _visible(session, caller, qr_id)
    status = QrStatus.ACTIVE if enabled else QrStatus.DISABLED
    if qr.status != status:
        repository.set_status(session, qr, status.value, clock.now())
    return {"qr_id": qr.qr_id, "status": qr.status}


def _iso(moment: datetime) -> str:
    return transactions.iso(moment)


def _data(
    qr: ReusableQr, merchant: Account, totals: tuple[int, int], settings: Settings
) -> dict[str, Any]:
    base = settings.resolved_base_url
    return {
        "qr_id": qr.qr_id,
        "status": qr.status,
        "item_amount": str(qr.item_amount),
        "tax_amount": str(qr.tax_amount),
        "total_amount": str(qr.total_amount),
        "currency": qr.currency,
        "item_name": qr.item_name,
        "item_message": qr.item_message or "",
        "item_reference": qr.item_reference or "",
        "item_category": qr.item_category or "",
        "item_brand": qr.item_brand or "",
        "item_photo": qr.item_photo,
        "item_video": qr.item_video or "",
        "photo_url": base + photo_path(qr.photo_key),
        "thumbnail_url": base + photo_path(qr.thumbnail_key),
        "photo_width": str(qr.photo_width),
        "photo_height": str(qr.photo_height),
        "call_back_url": qr.call_back_url or "",
        "redirect_url": qr.redirect_url or "",
        "language": qr.language or "",
        "url_qr": qr_image_url(settings, qr.qr_id),
        "url_checkout": page_url(settings, qr.qr_id),
        "payments_count": str(totals[0]),
        "payments_amount": str(totals[1]),
        "merchant_uid": merchant.uid,
        "created_at": _iso(qr.created_at),
        "updated_at": _iso(qr.updated_at),
    }


# --- the product page ------------------------------------------------------------------------


def open_product(session: Session, qr_id: str) -> tuple[ReusableQr, Account]:
    """The QR code behind a product page and its merchant (disabled ones too: the page says so)."""
    found = repository.get_with_merchant(session, qr_id) if is_qr_id(qr_id) else None
    if found is None:
        raise ReusableQrNotFound()
    return found


def max_quantity(qr: ReusableQr, settings: Settings) -> int:
    """The most one payment may buy: 99, or fewer when the total would pass the server's cap."""
    return max(1, min(MAX_QUANTITY, settings.max_total_amount // qr.total_amount))


@dataclass(frozen=True)
class Purchase:
    """What the product page's form asks: the quantity and, optionally, who pays."""

    quantity: int
    customer_name: str | None
    customer_email: str | None
    language: str


def check_purchase(
    qr: ReusableQr, quantity_text: str, name: str, email: str, settings: Settings
) -> tuple[int, str | None, str | None, dict[str, str]]:
    """The form's values, and its errors by field (quantity, customer_email), for the page."""
    errors: dict[str, str] = {}
    quantity = 0
    text = quantity_text.strip()
    if text.isascii() and text.isdigit() and len(text) <= 3:
        quantity = int(text)
    if not 1 <= quantity <= max_quantity(qr, settings):
        errors["quantity"] = "quantity_range"
    address = None
    if email.strip():
        try:
            address = email_address(
                "customer_email", email.strip(), smtputf8=settings.smtp_smtputf8
            )
        except InvalidField:
            errors["customer_email"] = "email_invalid"
    return quantity, name.strip()[:255] or None, address, errors


def start_payment(
    session: Session, qr_id: str, purchase: Purchase, settings: Settings, clock: Clock
) -> str:
    """A new transaction of the QR's merchant for ``purchase`` (see transactions'
    start_product_payment); returns its checkout token. ReusableQrDisabled when disabled."""
    qr, merchant = open_product(session, qr_id)
    if qr.status != QrStatus.ACTIVE:
        raise ReusableQrDisabled()
    prepared = transactions.start_product_payment(
        session,
        merchant,
        transactions.ProductPayment(
            qr_id=qr.qr_id,
            unit_item_amount=qr.item_amount,
            unit_tax_amount=qr.tax_amount,
            quantity=purchase.quantity,
            item_name=qr.item_name,
            track_id=qr.item_reference,
            call_back_url=qr.call_back_url,
            # Without one of its own, the customer continues back to the product page.
            redirect_url=qr.redirect_url or page_url(settings, qr.qr_id),
            language=purchase.language,
            customer_name=purchase.customer_name,
            customer_email=purchase.customer_email,
        ),
        settings,
        clock,
    )
    return str(prepared.transaction["checkout_token"])
