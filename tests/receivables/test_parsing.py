"""receivables/parsing: the spec's example as it is printed, clean JSON, and every malformed input
named by its line and column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobip.receivables.errors import MalformedInvoicesLists
from mobip.receivables.parsing import read_invoices_lists

# Copied byte for byte from ../shared/spec/mobip-api-2.0.txt (set_external_invoices, lines
# 449-470), from the "InvoicesLists": prefix to the closing brace that matches nothing.
SPEC_EXAMPLE = (Path(__file__).parent / "spec_example.txt").read_text(encoding="utf-8")

CLEAN = [
    {
        "CustomerId": "c1",
        "Invoices": [{"InvId": "i1", "Amount_in_cents": "100"}],
    }
]


def test_the_spec_example_reads_as_two_customers_of_two_invoices() -> None:
    assert SPEC_EXAMPLE.startswith('"InvoicesLists":\n[{\n"CustomerId": "custom_1",')
    assert '"Amount_in_cents ": "35000"' in SPEC_EXAMPLE  # the trailing space is there
    customers = read_invoices_lists(SPEC_EXAMPLE)
    assert [c["CustomerId"] for c in customers] == ["custom_1", "custom_2"]
    assert [[i["InvId"] for i in c["Invoices"]] for c in customers] == [
        ["inv_000", "inv_002"],
        ["inv_003", "inv_004"],
    ]
    first = customers[0]
    assert first["CustomerBalance_in_cents"] == "3000"  # key trimmed
    assert first["Invoices"][0] == {
        "InvId": "inv_000",
        "InvDate": "2023-01-01",
        "InvDueDate": "2023-02-01",
        "InvLbl": "Facture de ABC",
        "Amount_in_cents": "35000",
        "InvStatus": "status_1",
    }


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"InvoicesLists": CLEAN}),
        json.dumps(CLEAN),
        json.dumps({" InvoicesLists ": CLEAN}),
        '"InvoicesLists": ' + json.dumps(CLEAN),  # prefix, no braces at all
        '{"InvoicesLists": ' + json.dumps(CLEAN) + ",}",  # trailing comma in the object
        '[{"CustomerId": "c1", [{"InvId": "i1", "Amount_in_cents": "100",},],},]',
    ],
)
def test_clean_json_and_each_tolerated_deviation_read_alike(text: str) -> None:
    assert read_invoices_lists(text) == CLEAN


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[{"CustomerId": "c1",,}]', "line 1, column 22"),
        ('[\n{"CustomerId" "c1"}]', "line 2, column 15"),
        ('[{"CustomerId": "c1"}', "line 1, column 22"),
        ('[{"CustomerId": c1}]', "line 1, column 17"),
        ('{"InvoicesLists": []}}', "line 1, column 22"),
        ('[{"CustomerId": "c1\n"}]', "line 1, column 20"),
        ("[" * 5000 + "]" * 5000, "line 1, column 18"),  # json.loads: RecursionError
        ('[{"a": 1} {"b": 2}]', "line 1, column 11"),
        ("", "line 1, column 1"),
    ],
)
def test_anything_else_is_refused_naming_line_and_column(text: str, where: str) -> None:
    with pytest.raises(MalformedInvoicesLists) as refused:
        read_invoices_lists(text)
    assert where in refused.value.message
    assert refused.value.return_code == "1050"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"Customers": []}', "no InvoicesLists key"),
        ('{"InvoicesLists": {"CustomerId": "c1"}}', "expected a list of customers"),
        ('"just a string"', "expected a list of customers"),
    ],
)
def test_a_document_of_another_shape_is_refused(text: str, message: str) -> None:
    with pytest.raises(MalformedInvoicesLists, match=message):
        read_invoices_lists(text)


_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_JSON: Any = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.lists(_JSON, max_size=4), st.integers(min_value=0, max_value=2))
def test_the_lenient_reader_agrees_with_json_on_json(items: list[Any], indent: int) -> None:
    """The fallback path (forced by a trailing comma) reads JSON as the standard library does."""
    text = json.dumps(items, indent=indent or None)
    if not items:
        return
    lenient = text[:-1].rstrip() + ",]"  # not JSON any more: the reader's own path
    expected = [
        {k.strip(): v for k, v in item.items()} if isinstance(item, dict) else item
        for item in items
    ]
    assert _normalised(read_invoices_lists(lenient)) == _normalised(expected)


def _normalised(value: Any) -> Any:
    # Invoices, when present as a list in a customer, have their own keys trimmed.
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "Invoices" and isinstance(v, list):
                v = [
                    {str(a).strip(): b for a, b in i.items()} if isinstance(i, dict) else i
                    for i in v
                ]
            out[k] = v
        return out
    return value
