"""accounts.service's scope rule (sees): an account sees itself and the accounts below it; an admin
sees every account."""

from __future__ import annotations

from factories import make_account
from mobip.accounts import service
from mobip.accounts.models import Role
from mobip.kit.runtime import Runtime


def test_an_account_sees_itself_and_its_subtree_only(runtime: Runtime) -> None:
    admin = make_account(runtime, role=Role.ADMIN).account
    partner = make_account(runtime, role=Role.PARTNER)
    shop = make_account(runtime, parent=partner).account
    sibling = make_account(runtime, parent=partner).account
    stranger = make_account(runtime).account
    accounts = [admin, partner.account, shop, sibling, stranger]
    assert [[service.sees(scope, other) for other in accounts] for scope in accounts] == [
        [True, True, True, True, True],  # the admin: everyone
        [False, True, True, True, False],  # the partner: itself and its two shops
        [False, False, True, False, False],  # a merchant: itself only
        [False, False, False, True, False],
        [False, False, False, False, True],
    ]
