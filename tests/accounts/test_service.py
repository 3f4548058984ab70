"""accounts.service's scope rule (sees): an account sees itself and the accounts below it; an admin
sees every account; by_ids and labels_by_ids read any number of ids."""

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


def test_by_ids_and_labels_read_any_number_of_ids_in_one_statement(runtime: Runtime) -> None:
    """A partner's day can name more merchants than a statement takes parameters (65,535 on
    PostgreSQL): 70,000 ids, three of them accounts."""
    made = [make_account(runtime).account for _ in range(3)]
    ids = [account.id for account in made] + list(range(10**6, 10**6 + 70_000))
    with runtime.database.session() as session:
        found = service.by_ids(session, ids)
        labels = service.labels_by_ids(session, ids)
    assert {key: account.uid for key, account in found.items()} == {a.id: a.uid for a in made}
    assert labels == {a.id: service.Label(a.uid, a.name, a.external_account_id) for a in made}
