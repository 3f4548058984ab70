"""Merchant branding: storage, reads, the accent colour's contrast rule and the logo checks."""

from __future__ import annotations

import hashlib

from factories import make_account
from mobip.accounts import service
from mobip.accounts.models import AccountBranding
from mobip.accounts.service import Branding
from mobip.kit.runtime import Runtime


def _store(runtime: Runtime, account_id: int, **values: object) -> None:
    with runtime.database.transaction() as session:
        session.add(
            AccountBranding(account_id=account_id, updated_at=runtime.clock.now(), **values)
        )


def test_an_account_without_branding_has_none(runtime: Runtime) -> None:
    merchant = make_account(runtime).account
    with runtime.database.session() as session:
        assert service.get_branding(session, merchant.id) == Branding(None, None, None)
        assert service.get_branding(session, merchant.id).logo_version is None
        assert service.get_logo(session, merchant.id) is None


def test_branding_and_logo_are_read_for_their_account_only(runtime: Runtime) -> None:
    mine = make_account(runtime, name="Mine").account
    other = make_account(runtime, name="Other").account
    logo = b"\x89PNG fake bytes"
    digest = hashlib.sha256(logo).hexdigest()
    _store(
        runtime,
        mine.id,
        accent_colour="#1a7f37",
        logo=logo,
        logo_content_type="image/png",
        logo_sha256=digest,
    )
    _store(runtime, other.id, accent_colour="#3b5bdb")
    with runtime.database.session() as session:
        branding = service.get_branding(session, mine.id)
        assert branding == Branding("#1a7f37", digest, "image/png")
        assert branding.logo_version == digest[:16]
        assert service.get_logo(session, mine.id) == ("image/png", logo)
        assert service.get_branding(session, other.id) == Branding("#3b5bdb", None, None)
        assert service.get_logo(session, other.id) is None
