"""receivables.service: the import (spec example, clean JSON, per-field errors, all or nothing,
BatchId replay, re-import and its history), the status mapping and its rules, reading, tenants,
and the portal's token."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from factories import make_account
from mobip.accounts import service as accounts
from mobip.accounts.models import Account, Role
from mobip.kit.clock import ManualClock
from mobip.kit.errors import InvalidField, MobipError
from mobip.kit.runtime import Runtime
from mobip.receivables import service
from mobip.receivables.errors import (
    ExternalSourceNotFound,
    InvalidInvoiceData,
    InvalidStatusMapping,
    MalformedInvoicesLists,
    TooManyInvoices,
)
from mobip.receivables.models import (
    ExternalBatch,
    ExternalCustomer,
    ExternalInvoice,
    ExternalInvoiceChange,
    ExternalSource,
)
from receivables.support import (
    SPEC_EXAMPLE,
    customer,
    import_lists,
    invoice,
    map_statuses,
    read,
)

MARCH = datetime(2023, 3, 15, 12, tzinfo=UTC)


@pytest.fixture
def merchant(runtime: Runtime, clock: ManualClock) -> Account:
    clock.set(MARCH)
    return make_account(runtime, name="Bakery Dupont").account


def counts(runtime: Runtime) -> dict[str, int]:
    with runtime.database.session() as session:
        return {
            model.__tablename__: session.execute(
                select(func.count()).select_from(model)
            ).scalar_one()
            for model in (
                ExternalSource,
                ExternalCustomer,
                ExternalInvoice,
                ExternalInvoiceChange,
                ExternalBatch,
            )
        }


def test_the_spec_example_imports_two_customers_of_two_invoices(
    runtime: Runtime, merchant: Account
) -> None:
    reply = import_lists(runtime, merchant, SPEC_EXAMPLE)
    assert reply["customers"] == "2"
    assert reply["invoices_created"] == "4"
    invoices = read(runtime, merchant)
    assert sorted(invoices) == ["inv_000", "inv_002", "inv_003", "inv_004"]
    first = invoices["inv_000"]
    assert {k: first[k] for k in ("CustomerId", "InvDate", "InvDueDate", "InvLbl")} == {
        "CustomerId": "custom_1",
        "InvDate": "2023-01-01",
        "InvDueDate": "2023-02-01",
        "InvLbl": "Facture de ABC",
    }
    assert first["Amount_in_cents"] == "35000"
    assert first["InvStatus"] == "status_1"
    # No mapping yet: due once the due date is past (today is 2023-03-15), else pending.
    assert first["mobip_status"] == "due"
    assert invoices["inv_004"]["InvDueDate"] == "2023-03-01"
    assert invoices["inv_004"]["mobip_status"] == "due"
    assert first["remaining_amount_in_cents"] == "35000"
    with runtime.database.session() as session:
        phones = session.execute(select(ExternalCustomer.phone)).scalars().all()
    assert set(phones) == {"+33607922222"}  # national, read in France


def test_a_national_phone_number_is_read_in_the_merchants_country(
    runtime: Runtime, merchant: Account
) -> None:
    """The same national number: French for a merchant in France (the default), German for
    one in Germany; an international number is the same for both."""
    berlin = make_account(runtime, name="Bäckerei Schulz")
    with runtime.database.transaction() as session:
        accounts.set_country(session, berlin.account.uid, "DE", MARCH)
    for shop in (merchant, berlin.account):
        lists = [
            customer("c1", {"InvId": "i1", "Amount_in_cents": 1200}, CustomerPhone="030 1234567"),
            customer("c2", {"InvId": "i2", "Amount_in_cents": 1200}, CustomerPhone="+33607922222"),
        ]
        import_lists(runtime, shop, lists)
    with runtime.database.session() as session:
        c = ExternalCustomer
        phones = session.execute(select(c.account_id, c.customer_id, c.phone)).all()
    assert sorted(phones) == [
        (merchant.id, "c1", "+33301234567"),
        (merchant.id, "c2", "+33607922222"),
        (berlin.account.id, "c1", "+49301234567"),  # Berlin
        (berlin.account.id, "c2", "+33607922222"),
    ]


def test_clean_json_with_numbers_imports_too(runtime: Runtime, merchant: Account) -> None:
    lists = [
        customer("c1", {"InvId": "i1", "Amount_in_cents": 1200}, CustomerPhone="+1 650 253 0000")
    ]
    assert import_lists(runtime, merchant, lists)["invoices_created"] == "1"
    assert read(runtime, merchant)["i1"]["Amount_in_cents"] == "1200"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"Amount_in_cents": "0"}, "customer 'c1', invoice 'i2', Amount_in_cents: must be"),
        ({"Amount_in_cents": "12.5"}, "invoice 'i2', Amount_in_cents: '12.5' is not an integer"),
        ({"Amount_in_cents": None}, "invoice 'i2', Amount_in_cents: is missing"),
        ({"InvDueDate": "2023-02-30"}, "invoice 'i2', InvDueDate: '2023-02-30' is not a date"),
        ({"InvDate": "01/02/2023"}, "invoice 'i2', InvDate: '01/02/2023' is not a date"),
        ({"InvLbl": "x" * 256}, "invoice 'i2', InvLbl: longer than 255"),
        ({"InvStatus": ["a"]}, "invoice 'i2', InvStatus: must be a string"),
        ({"Colour": "red"}, "invoice 'i2': unknown field 'Colour'"),
    ],
)
def test_a_bad_invoice_value_is_named_and_nothing_is_stored(
    runtime: Runtime, merchant: Account, bad: dict[str, object], message: str
) -> None:
    good = invoice("i2", 500)
    good.update(bad)
    if bad.get("Amount_in_cents", "") is None:
        del good["Amount_in_cents"]
    lists = [customer("c0", invoice("i0", 100)), customer("c1", invoice("i1", 100), good)]
    before = counts(runtime)
    with pytest.raises(InvalidInvoiceData) as refused:
        import_lists(runtime, merchant, lists)
    assert message in refused.value.message
    assert refused.value.http_status == 400
    assert counts(runtime) == before


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"CustomerPhone": "12"}, "customer 'c1', CustomerPhone: '12' is not a valid phone"),
        ({"CustomerEmail": "not-an-address"}, "customer 'c1', CustomerEmail:"),
        ({"CustomerBalance_in_cents": "ten"}, "CustomerBalance_in_cents: 'ten' is not an integer"),
        (
            {"CustomerBalance_Date": "2023-13-01"},
            "CustomerBalance_Date: '2023-13-01' is not a date",
        ),
    ],
)
def test_a_bad_customer_value_is_named(
    runtime: Runtime, merchant: Account, values: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidInvoiceData) as refused:
        import_lists(runtime, merchant, [customer("c1", invoice("i1", 100), **values)])
    assert message in refused.value.message


def test_ids_missing_or_given_twice_are_refused(runtime: Runtime, merchant: Account) -> None:
    cases = [
        ([{"Invoices": []}], "customer #1, CustomerId: is missing"),
        (
            [customer("c1", {"Amount_in_cents": "5"})],
            "customer 'c1', invoice #1, InvId: is missing",
        ),
        ([customer("c1"), customer("c1")], "customer 'c1', CustomerId: given twice"),
        (
            [customer("c1", invoice("i1", 5)), customer("c2", invoice("i1", 5))],
            "customer 'c2', invoice 'i1', InvId: given twice",
        ),
        (["c1"], "customer #1: must be an object"),
        ([customer("c1", "i1")], "customer 'c1', invoice #1: must be an object"),
    ]
    for lists, message in cases:
        with pytest.raises(InvalidInvoiceData) as refused:
            import_lists(runtime, merchant, lists)  # type: ignore[arg-type]
        assert message in refused.value.message, message
    assert counts(runtime)["external_sources"] == 0


def test_every_bad_value_is_named_up_to_ten(runtime: Runtime, merchant: Account) -> None:
    lists = [customer("c1", *(invoice(f"i{n}", 0) for n in range(12)))]
    with pytest.raises(InvalidInvoiceData) as refused:
        import_lists(runtime, merchant, lists)
    assert "invoice 'i9'" in refused.value.message
    assert "invoice 'i10'" not in refused.value.message
    assert refused.value.message.endswith("; and 2 more")


def test_malformed_text_is_refused_with_its_position_and_nothing_stored(
    runtime: Runtime, merchant: Account
) -> None:
    broken = SPEC_EXAMPLE.replace('"InvLbl": "Facture de XYZ",', '"InvLbl" "Facture de XYZ",', 1)
    with pytest.raises(MalformedInvoicesLists) as refused:
        import_lists(runtime, merchant, broken)
    assert refused.value.message.endswith("after the key 'InvLbl' at line 10, column 87")
    assert counts(runtime)["external_invoices"] == 0


def test_more_than_ten_thousand_invoices_are_refused(
    runtime: Runtime, merchant: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MAX_INVOICES_PER_CALL", 3)
    lists = [customer("c1", *(invoice(f"i{n}", 10) for n in range(4)))]
    with pytest.raises(TooManyInvoices, match="4 invoices; at most 3"):
        import_lists(runtime, merchant, lists)
    lists = [customer("c1", *(invoice(f"i{n}", 10) for n in range(3)))]
    assert import_lists(runtime, merchant, lists)["invoices_created"] == "3"


def test_lists_longer_than_an_in_list_are_read_whole(runtime: Runtime, merchant: Account) -> None:
    """1,200 customers and invoices: more than one statement's short IN list (kit/db.among
    takes them as one parameter), on the re-import's lookups and on a read by InvId."""
    lists = [customer(f"c{n}", invoice(f"i{n}", 100)) for n in range(1200)]
    assert import_lists(runtime, merchant, lists)["invoices_created"] == "1200"
    lists[-1] = customer("c1199", invoice("i1199", 250))
    again = import_lists(runtime, merchant, lists)
    assert (again["invoices_updated"], again["invoices_unchanged"]) == ("1", "1199")
    asked = [f"i{n}" for n in range(0, 1200, 2)] + ["i_none"]
    found = read(runtime, merchant, "|".join(asked))
    assert sorted(found) == sorted(asked[:-1])
    assert found["i1198"]["Amount_in_cents"] == "100"
    assert counts(runtime)["external_customers"] == 1200


def test_the_same_batch_id_is_a_replay_that_changes_nothing(
    runtime: Runtime, merchant: Account
) -> None:
    first = import_lists(runtime, merchant, [customer("c1", invoice("i1", 100))], batch="B-1")
    before = counts(runtime)
    again = import_lists(runtime, merchant, [customer("c1", invoice("i1", 999))], batch="B-1")
    assert again == first
    assert counts(runtime) == before
    assert read(runtime, merchant)["i1"]["Amount_in_cents"] == "100"
    # Another source's B-1 is another batch.
    other = import_lists(
        runtime, merchant, [customer("c1", invoice("i1", 999))], batch="B-1", source="crm"
    )
    assert other["invoices_created"] == "1"


def test_a_reimport_updates_and_keeps_the_history(
    runtime: Runtime, merchant: Account, clock: ManualClock
) -> None:
    import_lists(
        runtime,
        merchant,
        [customer("c1", invoice("i1", 100, InvLbl="First"), invoice("i2", 200))],
    )
    clock.advance(days=1)
    reply = import_lists(
        runtime,
        merchant,
        [customer("c1", invoice("i1", 150, InvLbl="First", InvStatus="s9"), invoice("i3", 5))],
        batch="B-2",
    )
    assert (reply["invoices_created"], reply["invoices_updated"], reply["invoices_unchanged"]) == (
        "1",
        "1",
        "0",
    )
    invoices = read(runtime, merchant)
    assert sorted(invoices) == ["i1", "i2", "i3"]  # i2, missing from the import, stays
    assert invoices["i1"]["Amount_in_cents"] == "150"
    assert invoices["i1"]["InvStatus"] == "s9"
    with runtime.database.session() as session:
        changes = session.execute(select(ExternalInvoiceChange)).scalars().all()
    assert [(c.amount, c.label, c.external_status, c.batch_id) for c in changes] == [
        (100, "First", None, "B-2")
    ]
    again = import_lists(runtime, merchant, [customer("c1", invoice("i2", 200))])
    assert again["invoices_unchanged"] == "1"
    assert counts(runtime)["external_invoice_changes"] == 1


def test_the_mapping_needs_all_four_and_a_code_means_one_status(
    runtime: Runtime, merchant: Account
) -> None:
    with pytest.raises(InvalidField, match="due"):
        map_statuses(runtime, merchant, due=" | ")
    with pytest.raises(InvalidStatusMapping, match="'status_1' is given for both due and"):
        map_statuses(runtime, merchant, fully_paid="status_1")
    map_statuses(runtime, merchant, pending="a|b|a")  # a repeat within one status is once
    with runtime.database.session() as session:
        owner = session.get(Account, merchant.id)
        assert owner is not None
        mapping = service.get_external_invoices_status(session, owner, "erp")
    assert mapping["InvoiceStatusesList"] == [
        {"mobip_status": "pending", "external_statuses": "a|b"},
        {"mobip_status": "due", "external_statuses": "status_1"},
        {"mobip_status": "fully_paid", "external_statuses": "status_2|paid"},
        {"mobip_status": "partially_paid", "external_statuses": "status_3"},
    ]
    map_statuses(runtime, merchant, due="late")  # replaces the whole mapping
    with runtime.database.session() as session:
        owner = session.get(Account, merchant.id)
        assert owner is not None
        again = service.get_external_invoices_status(session, owner, "erp")
    assert again["InvoiceStatusesList"][1] == {"mobip_status": "due", "external_statuses": "late"}
    assert again["InvoiceStatusesList"][0]["external_statuses"] == "status_0"


def test_the_mobip_status_comes_from_the_mapping_else_from_the_due_date(
    runtime: Runtime, merchant: Account
) -> None:
    import_lists(
        runtime,
        merchant,
        [
            customer(
                "c1",
                invoice("mapped_paid", 100, InvStatus="paid"),
                invoice("mapped_pending", 100, InvStatus="status_0"),  # past due, says pending
                invoice("unmapped_past", 100, InvStatus="other"),
                invoice("unmapped_future", 100, due="2023-04-01", InvStatus="other"),
                invoice("due_today", 100, due="2023-03-15"),
                invoice("no_due_date", 100, due=None),
            )
        ],
    )
    map_statuses(runtime, merchant)
    invoices = read(runtime, merchant)
    assert {k: v["mobip_status"] for k, v in invoices.items()} == {
        "mapped_paid": "fully_paid",
        "mapped_pending": "pending",
        "unmapped_past": "due",
        "unmapped_future": "pending",
        "due_today": "pending",
        "no_due_date": "pending",
    }
    assert invoices["mapped_paid"]["remaining_amount_in_cents"] == "0"


def test_reading_some_ids_lists_the_unknown_ones(runtime: Runtime, merchant: Account) -> None:
    import_lists(runtime, merchant, SPEC_EXAMPLE)
    with runtime.database.session() as session:
        owner = session.get(Account, merchant.id)
        assert owner is not None
        reply = service.get_external_invoices(
            session, owner, "erp", "inv_002| nope |inv_002", runtime.settings, runtime.clock
        )
    assert [i["InvId"] for i in reply["InvoicesList"]] == ["inv_002"]
    assert reply["not_found"] == "nope"


def test_one_merchant_never_sees_another_ones_sources(runtime: Runtime, merchant: Account) -> None:
    other = make_account(runtime, name="Other shop").account
    import_lists(runtime, merchant, SPEC_EXAMPLE)
    map_statuses(runtime, merchant)
    with runtime.database.session() as session:
        stranger = session.get(Account, other.id)
        assert stranger is not None
        with pytest.raises(ExternalSourceNotFound):
            service.get_external_invoices(
                session, stranger, "erp", None, runtime.settings, runtime.clock
            )
        with pytest.raises(ExternalSourceNotFound):
            service.get_external_invoices_status(session, stranger, "erp")
    # The same source id and InvIds for the other merchant: its own, apart.
    import_lists(runtime, other, [customer("custom_1", invoice("inv_000", 1))])
    assert read(runtime, other)["inv_000"]["Amount_in_cents"] == "1"
    assert read(runtime, merchant)["inv_000"]["Amount_in_cents"] == "35000"


def test_only_merchants_import(runtime: Runtime) -> None:
    partner = make_account(runtime, role=Role.PARTNER).account
    with pytest.raises(MobipError) as refused:
        import_lists(runtime, partner, SPEC_EXAMPLE)
    assert refused.value.return_code == "3001"


def test_the_portal_token_is_stable_signed_and_not_stored(
    runtime: Runtime, merchant: Account
) -> None:
    import_lists(runtime, merchant, SPEC_EXAMPLE)
    url = read(runtime, merchant)["inv_000"]["url_portal"]
    assert url == read(runtime, merchant)["inv_002"]["url_portal"]  # one per customer
    assert url != read(runtime, merchant)["inv_003"]["url_portal"]
    token = url.rsplit("/", 1)[1]
    assert url == service.portal_url(runtime.settings, token)
    with runtime.database.session() as session:
        stored = json.dumps(
            [list(map(str, row)) for row in session.execute(select(ExternalCustomer)).all()]
        )
        assert token not in stored
        view = service.portal_view(session, token, runtime.settings, runtime.clock)
        assert view is not None
        assert (view.customer_id, view.merchant_name, view.language) == (
            "custom_1",
            "Bakery Dupont",
            "en",
        )
        assert [i.inv_id for i in view.invoices] == ["inv_000", "inv_002"]
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        for bad in (forged, "cp_x_y", "", token + "x", "zz" + token[2:]):
            assert service.portal_view(session, bad, runtime.settings, runtime.clock) is None


def test_the_same_new_source_and_batch_imported_twice_at_once_import_once(
    runtime: Runtime, merchant: Account
) -> None:
    """The source's row is locked first: the second import waits, then replays the first's
    reply (PostgreSQL's row lock; SQLite's write lock) instead of failing on a unique key."""
    text = json.dumps({"InvoicesLists": [customer("c1", invoice("i1", 100))]})
    start = threading.Barrier(2)
    replies: list[dict[str, object]] = []

    def import_once() -> None:
        start.wait()

        def work() -> dict[str, object]:
            with runtime.database.transaction(immediate=True) as session:
                owner = session.get(Account, merchant.id)
                assert owner is not None
                return service.set_external_invoices(
                    session, owner, "new", "B-9", text, runtime.settings, runtime.clock
                )

        replies.append(runtime.database.retry_busy(work))

    threads = [threading.Thread(target=import_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(replies) == 2
    assert replies[0] == replies[1]
    assert counts(runtime)["external_invoices"] == 1
    assert counts(runtime)["external_sources"] == 1
