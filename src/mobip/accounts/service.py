"""The accounts tree, what callers may see and change, provider keys and documents."""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import phonenumbers
from babel.core import get_global
from babel.numbers import get_territory_currencies
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from mobip.accounts import branding, repository
from mobip.accounts.errors import (
    AccountNotFound,
    AmbiguousExternalAccountId,
    DocumentNotFound,
    DuplicateExternalAccountId,
    InvalidAccountSetting,
    RoleNotAllowed,
)
from mobip.accounts.models import (
    Account,
    AccountBranding,
    AccountDocument,
    Language,
    Provider,
    Role,
)
from mobip.config import Settings
from mobip.kit.characters import described, refused_character, shown
from mobip.kit.clock import Clock
from mobip.kit.errors import InvalidField, MissingField
from mobip.kit.security import Encryptor, hash_secret, mask_secret, new_id

SECRET_PREFIX = "mbs"  # noqa: S105 (a prefix, not a secret)
UPDATABLE = {
    "External_AccountID": "external_account_id",
    "Public_Payment_Provider_key": "provider_public_key",
    "Private_Payment_Provider_key": "provider_private_key_encrypted",
    "Payment_Provider_login": "provider_login",
}
MAX_ATTRIBUTE_CHARS = {
    "External_AccountID": 255,
    "Public_Payment_Provider_key": 4096,
    "Private_Payment_Provider_key": 4096,
    "Payment_Provider_login": 255,
}
ALLOWED_PARENTS = {
    Role.ADMIN: (None,),
    Role.PARTNER: (Role.ADMIN,),
    Role.MERCHANT: (Role.PARTNER, Role.ADMIN),
}


def _payable_currencies(today: date) -> frozenset[str]:
    """The ISO 4217 currencies that are legal tender somewhere today (CLDR, through Babel).

    What a payment provider can take: this leaves out the X-codes that are no money (XXX, XTS),
    precious metals (XAU, XAG...), units of account (XDR, XSU, XUA...), funds codes (CHE, BOV,
    USN...) and withdrawn currencies (DEM, HRK), and keeps the currencies shared by several
    countries (XOF, XAF, XPF, XCD), each with its ISO minor units.
    """
    return frozenset(
        code
        for territory in get_global("territory_currencies")
        for code in get_territory_currencies(territory, today, tender=True, non_tender=False)
    )


PAYABLE_CURRENCIES = _payable_currencies(date.today())

# An account's country when none is given (and of the accounts made before it was kept).
DEFAULT_COUNTRY = "FR"


def checked_country(value: str) -> str:
    """An ISO 3166-1 alpha-2 code that has a telephone numbering plan, upper-cased; else
    InvalidAccountSetting naming the field."""
    country = value.strip().upper()
    if country not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidAccountSetting(
            f"Invalid value for field 'country': {value!r} is not an ISO 3166-1 alpha-2 country "
            "code (e.g. FR, DE, US)"
        )
    return country


@dataclass(frozen=True, slots=True)
class Branding:
    """A merchant's branding as pages and e-mails show it (the logo's bytes through get_logo)."""

    accent_colour: str | None  # "#rrggbb", lower case; white text on it has >= 4.5:1 contrast
    logo_sha256: str | None  # hex digest of the stored, sanitised logo
    logo_content_type: str | None  # "image/png" | "image/jpeg" | "image/svg+xml"

    @property
    def logo_version(self) -> str | None:
        """What a logo URL carries (``?v=``) so that a new logo is a new URL to caches."""
        return self.logo_sha256[:16] if self.logo_sha256 else None


@dataclass(frozen=True)
class NewCredentials:
    account: Account
    api_secret_key: str


# --- API: reading and updating accounts --------------------------------------------------------


def get_account(
    session: Session,
    caller: Account,
    uid: str,
    *,
    document_list: str | None,
    document_only: bool,
    encryptor: Encryptor,
    settings: Settings,
) -> dict[str, Any]:
    """get_account: admins see any account, partners themselves and their descendants (the
    endpoint admits no other role: api/routing refuses a merchant with 3001)."""
    account = repository.get_visible_by_uid(session, caller, uid)
    if account is None:
        raise AccountNotFound()
    return account_reply(session, account, document_list, document_only, encryptor, settings)


def get_account_by_external_id(
    session: Session,
    caller: Account,
    external_account_id: str,
    *,
    document_list: str | None,
    document_only: bool,
    encryptor: Encryptor,
    settings: Settings,
) -> dict[str, Any]:
    """Any caller finds itself or a descendant by External_AccountID; others are not found."""
    matches = repository.find_visible_by_external_id(session, caller, external_account_id)
    if not matches:
        raise AccountNotFound()
    if len(matches) > 1:
        raise AmbiguousExternalAccountId()
    return account_reply(session, matches[0], document_list, document_only, encryptor, settings)


def account_reply(
    session: Session,
    account: Account,
    document_list: str | None,
    document_only: bool,
    encryptor: Encryptor,
    settings: Settings,
) -> dict[str, Any]:
    names = _document_names(document_list)
    if document_only and not names:
        raise MissingField("document_list")
    reply: dict[str, Any] = {}
    if not document_only:
        reply["account_data"] = account_data(session, account, encryptor, settings)
    if names:
        reply["documents"] = [_document_dict(doc) for doc in _documents(session, account, names)]
    return reply


def _document_names(document_list: str | None) -> list[str]:
    if not document_list:
        return []
    names = [name.strip() for name in document_list.split("|")]
    return list(dict.fromkeys(name for name in names if name))


def _documents(session: Session, account: Account, names: list[str]) -> list[AccountDocument]:
    found = {doc.name: doc for doc in repository.documents_named(session, account, names)}
    missing = [name for name in names if name not in found]
    if missing:
        raise DocumentNotFound(missing)
    return [found[name] for name in names]


def _document_dict(doc: AccountDocument) -> dict[str, Any]:
    return {
        "name": doc.name,
        "content_type": doc.content_type,
        "size": str(doc.size),
        "sha256": doc.sha256,
        "content": base64.b64encode(doc.content).decode("ascii"),
    }


def account_data(
    session: Session, account: Account, encryptor: Encryptor, settings: Settings
) -> list[dict[str, str]]:
    """The spec's attribute list: name, type, value and whether update_account may change it;
    our extensions add the country (set by the operator) and the fee schedule in force
    (fee_percent, fee_fixed_in_cents, and fee_schedule_from: the uid whose schedule it is, or
    ``settings``)."""
    fees = fee_schedule_in_force(session, account, settings)
    private_key = (
        mask_secret(encryptor.decrypt(account.provider_private_key_encrypted))
        if account.provider_private_key_encrypted
        else ""
    )
    rows: list[tuple[str, str, str | None, bool]] = [
        ("uid", "string", account.uid, False),
        ("api_account_id", "string", account.api_account_id, False),
        ("name", "string", account.name, False),
        ("role", "string", account.role, False),
        ("parent_uid", "string", repository.get_parent_uid(session, account), False),
        ("currency", "string", account.currency, False),
        ("language", "string", account.language, False),
        ("country", "string", account.country, False),
        ("External_AccountID", "string", account.external_account_id, True),
        ("Payment_Provider", "string", account.provider, False),
        ("Public_Payment_Provider_key", "string", account.provider_public_key, True),
        ("Private_Payment_Provider_key", "string", private_key, True),
        ("Payment_Provider_login", "string", account.provider_login, True),
        ("document_names", "string", "|".join(repository.document_names(session, account)), False),
        ("fee_percent", "decimal", fees.percent, False),
        ("fee_fixed_in_cents", "integer", str(fees.fixed), False),
        ("fee_schedule_from", "string", fees.source, False),
        ("created_at", "datetime", _iso(account.created_at), False),
        ("updated_at", "datetime", _iso(account.updated_at), False),
    ]
    return [
        {
            "attribute_name": name,
            "attribute_type": kind,
            "attribute_value": value or "",
            "is_updatable": "true" if updatable else "false",
        }
        for name, kind, value, updatable in rows
    ]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def update_account(
    session: Session,
    caller: Account,
    uid: str,
    raw_account_data: str,
    *,
    encryptor: Encryptor,
    now: datetime,
) -> None:
    """Apply the given attributes all together, or none of them (admins and partners: the
    endpoint's declared roles)."""
    account = repository.get_visible_by_uid(session, caller, uid)
    if account is None:
        raise AccountNotFound()
    changes = _parse_account_data(raw_account_data)
    external_id = changes.get("External_AccountID")
    if external_id and repository.external_id_taken(
        session, account.parent_id, external_id, account.id
    ):
        raise DuplicateExternalAccountId()
    for attribute, value in changes.items():
        if attribute == "Private_Payment_Provider_key" and value:
            value = encryptor.encrypt(value)
        setattr(account, UPDATABLE[attribute], value or None)
    account.updated_at = now
    session.flush()


def _parse_account_data(raw: str) -> dict[str, str | None]:
    try:
        data = json.loads(raw, object_pairs_hook=_json_object)
    except ValueError as exc:
        raise InvalidField("account_data", f"not valid JSON ({exc.args[0]})") from exc
    if not isinstance(data, dict) or not data:
        raise InvalidField("account_data", "must be a non-empty JSON object")
    unknown = [key for key in data if key not in UPDATABLE]
    if unknown:
        raise InvalidField(
            "account_data",
            f"unknown or non-updatable attribute(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(UPDATABLE)}",
        )
    changes: dict[str, str | None] = {}
    for key, value in data.items():
        if value is not None and not isinstance(value, str):
            raise InvalidField("account_data", f"{key} must be a string or null")
        if value is not None and (char := refused_character(value)) is not None:
            raise InvalidField("account_data", f"{key} must not contain {described(char)}")
        if value is not None and len(value) > MAX_ATTRIBUTE_CHARS[key]:
            raise InvalidField(
                "account_data", f"{key} is longer than {MAX_ATTRIBUTE_CHARS[key]} characters"
            )
        changes[key] = value.strip() if value is not None else None
    return changes


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object without repeated keys (which copy a client meant is a guess) or keys that
    could not be quoted back in a reply (a lone surrogate: "\\ud800")."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if refused_character(key) is not None:
            raise InvalidField("account_data", f"the key '{shown(key)}' is not a valid name")
        if key in data:
            raise InvalidField("account_data", f"{key} is given more than once")
        data[key] = value
    return data


# --- operator actions (CLI) --------------------------------------------------------------------


def create_account(
    session: Session,
    *,
    name: str,
    role: Role,
    parent_uid: str | None,
    currency: str,
    language: Language,
    external_id: str | None,
    now: datetime,
    is_test: bool = False,
    country: str = DEFAULT_COUNTRY,
) -> NewCredentials:
    """Create an account under ``parent_uid`` (default: the platform admin); secret shown once."""
    country = checked_country(country)
    currency = currency.upper()
    if currency not in PAYABLE_CURRENCIES:
        raise InvalidAccountSetting(
            f"Invalid value for field 'currency': {currency!r} is not an ISO 4217 currency in "
            "use that a payment provider can take (e.g. EUR, USD, JPY)"
        )
    if not name.strip() or len(name) > 255:
        raise InvalidAccountSetting("The name must be 1 to 255 characters")
    parent = _parent_for(session, role, parent_uid, now)
    allowed = ALLOWED_PARENTS[role]
    if (parent.role if parent else None) not in allowed:
        raise InvalidAccountSetting(
            f"A {role.value} account's parent must be "
            + " or ".join("none" if r is None else r.value for r in allowed)
        )
    if external_id and repository.external_id_taken(
        session, parent.id if parent else None, external_id, except_id=-1
    ):
        raise DuplicateExternalAccountId()
    uid = new_id("acct", 12)
    secret = new_id(SECRET_PREFIX, 32)
    account = Account(
        uid=uid,
        api_account_id=new_id("api", 12),
        secret_hash=hash_secret(secret),
        name=name.strip(),
        role=role.value,
        parent_id=parent.id if parent else None,
        path=(parent.path if parent else "/") + uid + "/",
        currency=currency,
        language=language.value,
        country=country,
        external_account_id=external_id or None,
        provider=Provider.SANDBOX.value,
        is_test=is_test,
        created_at=now,
        updated_at=now,
    )
    return NewCredentials(repository.add(session, account), secret)


def _parent_for(
    session: Session, role: Role, parent_uid: str | None, now: datetime
) -> Account | None:
    if parent_uid:
        parent = repository.get_by_uid(session, parent_uid)
        if parent is None:
            raise InvalidAccountSetting(f"No account with uid {parent_uid!r}")
        return parent
    if role == Role.ADMIN:
        return None
    return ensure_platform_admin(session, now)[0]


def ensure_platform_admin(session: Session, now: datetime) -> tuple[Account, str | None]:
    """The root admin account, created on first need (then with its new secret)."""
    admin = repository.first_admin(session)
    if admin is not None:
        return admin, None
    created = create_account(
        session,
        name="Platform",
        role=Role.ADMIN,
        parent_uid=None,
        currency="EUR",
        language=Language.EN,
        external_id=None,
        now=now,
    )
    return created.account, created.api_secret_key


def operator_get(session: Session, uid: str) -> Account:
    account = repository.get_by_uid(session, uid)
    if account is None:
        raise AccountNotFound(f"No account with uid {uid!r}")
    return account


def rotate_secret(session: Session, uid: str, now: datetime) -> NewCredentials:
    """A new API secret; the old one stops working (auth.service.rotate_secret, the operator's
    command, also revokes the account's tokens)."""
    account = operator_get(session, uid)
    secret = new_id(SECRET_PREFIX, 32)
    account.secret_hash = hash_secret(secret)
    account.updated_at = now
    session.flush()
    return NewCredentials(account, secret)


# --- fee schedules (issue 13, docs/fees.md) -------------------------------------------------------

PLATFORM_DEFAULT = "settings"
MAX_FEE_BASIS_POINTS = 10_000


@dataclass(frozen=True)
class FeeSchedule:
    """A fee schedule: basis points (140 = 1.40 %) plus a fixed amount in minor units, and
    where it comes from (the uid of the account that set it, or ``settings``)."""

    basis_points: int
    fixed: int
    source: str

    @property
    def percent(self) -> str:
        """The percentage as text, exactly: 140 → "1.40", 5 → "0.05"."""
        return f"{self.basis_points // 100}.{self.basis_points % 100:02d}"


def fee_schedule_in_force(session: Session, account: Account, settings: Settings) -> FeeSchedule:
    """The account's own schedule, else its nearest ancestor's, else the settings' default."""
    for owner in repository.own_fee_schedules_on_path(session, account):
        assert owner.fee_bp is not None and owner.fee_fixed is not None
        return FeeSchedule(owner.fee_bp, owner.fee_fixed, owner.uid)
    return FeeSchedule(
        settings.default_fee_basis_points, settings.default_fee_fixed, PLATFORM_DEFAULT
    )


def fee_schedule_of_account_id(
    session: Session, account_id: int, settings: Settings
) -> FeeSchedule:
    """fee_schedule_in_force of the account with this id (transactions know their owner's id)."""
    account = repository.get_by_id(session, account_id)
    if account is None:
        raise AccountNotFound()
    return fee_schedule_in_force(session, account, settings)


def parse_fee_percent(text: str) -> int:
    """ "1.4" → 140 basis points, exactly (Decimal from the text; at most 2 decimals, 0..100)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidField("percent", "must be a number such as 1.4") from None
    if not value.is_finite() or value < 0 or value > 100:
        raise InvalidField("percent", "must be from 0 to 100")
    basis_points = value * 100
    if basis_points != basis_points.to_integral_value():
        raise InvalidField("percent", "must have at most 2 decimals (basis points)")
    return int(basis_points)


def set_fees(
    session: Session,
    uid: str,
    *,
    percent: str | None,
    fixed: int | None,
    clear: bool,
    now: datetime,
) -> Account:
    """The operator sets an account's own fee schedule (a missing part counts as 0), or clears
    it (the account inherits again). Changes only fees computed from now on."""
    if clear and (percent is not None or fixed is not None):
        raise InvalidField("clear", "cannot be combined with --percent or --fixed")
    if not clear and percent is None and fixed is None:
        raise MissingField("percent")
    if fixed is not None and fixed < 0:
        raise InvalidField("fixed", "must be 0 or more (minor units)")
    basis_points = parse_fee_percent(percent) if percent is not None else 0
    account = operator_get(session, uid)
    account.fee_bp = None if clear else basis_points
    account.fee_fixed = None if clear else (fixed or 0)
    account.updated_at = now
    session.flush()
    return account


def require_role(account: Account, *roles: Role) -> None:
    """RoleNotAllowed (403, 3001) unless ``account`` has one of ``roles``."""
    if account.role not in roles:
        raise RoleNotAllowed()


def by_uid(session: Session, uid: str) -> Account | None:
    """The account ``uid``, or None (for callers that answer their own not-found)."""
    return repository.get_by_uid(session, uid)


def subtree_ids(session: Session, scope: Account) -> list[int]:
    """The ids of ``scope`` and of its descendants (an admin's: every account), ascending: the
    scope of the reports (stats, feed) read by account id without the accounts table."""
    return repository.subtree_ids(session, scope)


def lineages(executor: Session | Connection, ids: Sequence[int]) -> dict[int, list[int]]:
    """Each of ``ids`` with its own id and its ancestors' (on a session or on the connection of
    an observer, in its transaction): one small query per account, compiled once. Read each
    time, not cached: exact even where ids are reused (a rolled-back create on SQLite, tests
    that empty their tables)."""
    conn = executor if isinstance(executor, Connection) else executor.connection()
    return {account_id: repository.lineage(conn, account_id) for account_id in ids}


def root_ids(session: Session) -> list[int]:
    """The top-level accounts (no parent): disjoint subtrees that hold every account."""
    return repository.root_ids(session)


class Label(NamedTuple):
    """What a report line says of an account."""

    uid: str
    name: str
    external_account_id: str | None


def labels_by_ids(session: Session, ids: Sequence[int]) -> dict[int, Label]:
    """The uid, name and External_AccountID of the accounts of ``ids`` that exist, by id: one
    query reading those columns only (the feed and the stats file name thousands of merchants
    a page; the caller decided what it may see)."""
    return {row[0]: Label(row[1], row[2], row[3]) for row in repository.labels_by_ids(session, ids)}


def by_ids(session: Session, ids: Sequence[int]) -> dict[int, Account]:
    """The accounts of ``ids`` that exist, by id (one query; the caller decided what it may see)."""
    return {account.id: account for account in repository.by_ids(session, ids)}


def sees(scope: Account, account: Account) -> bool:
    """Whether ``scope`` may see ``account``: itself or an account below it (an admin sees every
    account). The rule of every scoped read, on two loaded accounts."""
    return scope.role == Role.ADMIN or account.path.startswith(scope.path)


def visible_by_uid(session: Session, scope: Account, uid: str) -> Account | None:
    """The account ``uid`` if it is ``scope`` or below it (an admin sees every account)."""
    return repository.get_visible_by_uid(session, scope, uid)


def by_api_account_id(session: Session, api_account_id: str) -> Account | None:
    """The account of an API account id (get_token's lookup), or None."""
    return repository.get_by_api_account_id(session, api_account_id)


def set_provider(
    session: Session,
    uid: str,
    *,
    provider: Provider,
    public_key: str | None,
    private_key: str | None,
    login: str | None,
    encryptor: Encryptor,
    now: datetime,
) -> Account:
    account = operator_get(session, uid)
    account.provider = provider.value
    if public_key is not None:
        account.provider_public_key = public_key or None
    if private_key is not None:
        account.provider_private_key_encrypted = (
            encryptor.encrypt(private_key) if private_key else None
        )
    if login is not None:
        account.provider_login = login or None
    account.updated_at = now
    session.flush()
    return account


def set_country(session: Session, uid: str, country: str, now: datetime) -> Account:
    """The operator sets where the account is (ISO 3166-1 alpha-2)."""
    account = operator_get(session, uid)
    account.country = checked_country(country)
    account.updated_at = now
    session.flush()
    return account


def add_document(
    session: Session,
    uid: str,
    *,
    name: str,
    content: bytes,
    content_type: str | None,
    now: datetime,
) -> AccountDocument:
    """Store a document on an account, replacing one of the same name."""
    account = operator_get(session, uid)
    if not name.strip() or len(name) > 255 or "|" in name:
        raise InvalidAccountSetting("A document name is 1 to 255 characters, without '|'")
    guessed = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    document = repository.get_document(session, account, name) or AccountDocument(
        account_id=account.id, name=name
    )
    document.content_type = guessed
    document.content = content
    document.size = len(content)
    document.sha256 = hashlib.sha256(content).hexdigest()
    document.created_at = now
    session.add(document)
    session.flush()
    return document


def all_accounts(session: Session) -> Sequence[Account]:
    """Every account, in tree order (the operator's list)."""
    return repository.list_all(session)


def any_account_exists(session: Session) -> bool:
    """Whether any account exists yet (the first start creates the demo data)."""
    return repository.any_exists(session)


# --- branding (logo and accent colour) ---------------------------------------------------------


def get_branding(session: Session, account_id: int) -> Branding:
    """The branding of ``account_id``: Branding(None, None, None) when it has none."""
    return Branding(*repository.branding_of(session, account_id))


def get_logo(session: Session, account_id: int) -> tuple[str, bytes] | None:
    """(content type, bytes) of the sanitised logo of ``account_id``, or None."""
    return repository.logo_of(session, account_id)


def set_branding(
    session: Session,
    account: Account,
    *,
    logo: bytes | None = None,
    accent_colour: str | None = None,
    clear_logo: bool = False,
    clear_accent: bool = False,
    clock: Clock,
) -> Branding:
    """Change the logo and/or the accent colour of ``account`` (None: unchanged).

    Everything is checked before anything changes: a logo that is refused leaves the colour as it
    was, and the reverse (InvalidLogo 1011, InvalidAccentColour 1012). The logo is stored
    sanitised (accounts.branding); the colour as lower-case "#rrggbb".
    """
    if logo is not None and clear_logo:
        raise InvalidField("logo", "give a new logo or clear it, not both")
    if accent_colour is not None and clear_accent:
        raise InvalidField("accent_colour", "give a new accent colour or clear it, not both")
    colour = branding.accent_colour(accent_colour) if accent_colour is not None else None
    new_logo = branding.sanitised_logo(logo) if logo is not None else None
    row = repository.branding_row(session, account)
    if row is None:
        if not (colour or new_logo):
            return get_branding(session, account.id)
        row = AccountBranding(account_id=account.id)
    if colour is not None or clear_accent:
        row.accent_colour = colour
    if new_logo is not None or clear_logo:
        row.logo = new_logo.content if new_logo else None
        row.logo_content_type = new_logo.content_type if new_logo else None
        row.logo_sha256 = hashlib.sha256(new_logo.content).hexdigest() if new_logo else None
    row.updated_at = clock.now()
    repository.add_branding(session, row)
    return Branding(row.accent_colour, row.logo_sha256, row.logo_content_type)
