"""Account tables."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from mobip.kit.db import Base, UTCDateTime


class Role(StrEnum):
    ADMIN = "admin"
    PARTNER = "partner"
    MERCHANT = "merchant"


class Language(StrEnum):
    EN = "EN"
    FR = "FR"


class Provider(StrEnum):
    SANDBOX = "sandbox"
    STRIPE = "stripe"


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("parent_id", "external_account_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)
    api_account_id: Mapped[str] = mapped_column(String(40), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    # Materialised path of uids from the root, "/root/partner/merchant/": descendants by prefix.
    path: Mapped[str] = mapped_column(String(400), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    language: Mapped[str] = mapped_column(String(2))
    # ISO 3166-1 alpha-2: where the merchant is, so that a national phone number it gives
    # (an imported customer's) is read in its country. FR for accounts made before it existed.
    country: Mapped[str] = mapped_column(String(2), default="FR", server_default="FR")
    external_account_id: Mapped[str | None] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(16), default=Provider.SANDBOX.value)
    provider_public_key: Mapped[str | None] = mapped_column(Text)
    provider_login: Mapped[str | None] = mapped_column(String(255))
    provider_private_key_encrypted: Mapped[str | None] = mapped_column(Text)
    # A test account may use the sandbox provider in production (real merchants may not).
    is_test: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The account's own fee schedule (issue 13, docs/fees.md): basis points (140 = 1.40 %) and
    # a fixed amount in minor units per PAID transaction. Both None: inherited from the nearest
    # ancestor that has one, else the settings' default (service.fee_schedule_in_force).
    fee_bp: Mapped[int | None] = mapped_column(Integer)
    fee_fixed: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccountDocument(Base):
    __tablename__ = "account_documents"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccountBranding(Base):
    """A merchant's logo and accent colour, shown on its checkout pages and in its e-mails.

    One row per account that has any branding; the logo is stored sanitised (re-encoded PNG or
    JPEG, or filtered SVG), never as uploaded.
    """

    __tablename__ = "account_branding"

    account_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )
    # "#rrggbb", lower case, checked for contrast with white text.
    accent_colour: Mapped[str | None] = mapped_column(String(7))
    logo_content_type: Mapped[str | None] = mapped_column(String(32))
    logo_sha256: Mapped[str | None] = mapped_column(String(64))
    logo: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
