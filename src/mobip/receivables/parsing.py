"""The lenient reader of set_external_invoices' ``InvoicesLists``.

The spec's own example is not JSON, and clients built from that page send it as it is: an outer
``"InvoicesLists":`` prefix without the opening brace (and a closing one that matches nothing),
each customer's invoice array standing bare inside the customer object (no key), keys with
trailing spaces, trailing commas. Clean JSON (``{"InvoicesLists": [...]}``, a bare list of
customers, the invoices under ``"Invoices"``) is read by the standard library's C parser first;
anything it refuses goes through the small recursive-descent reader below, which accepts
exactly those deviations and reports anything else with its line and column.

What comes out is a list of customers, each a dict of trimmed keys with its invoices, a list of
dicts of trimmed keys, under ``"Invoices"``; the service checks the values.
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

from mobip.receivables.errors import MalformedInvoicesLists

ROOT_KEY = "InvoicesLists"
INVOICES_KEY = "Invoices"
# An invoice's keys as the spec names them: an invoice with only these needs no trimming.
INVOICE_KEYS = frozenset(
    {"InvId", "InvDate", "InvDueDate", "InvLbl", "Amount_in_cents", "InvStatus"}
)
# Deeper than the format ever goes (list → customer → invoices → invoice → value).
MAX_DEPTH = 16

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_LITERALS = {"true": True, "false": False, "null": None}


def position(text: str, index: int) -> tuple[int, int]:
    """The 1-based line and column of ``text[index]``."""
    line = text.count("\n", 0, index) + 1
    column = index - text.rfind("\n", 0, index)
    return line, column


def _error(text: str, index: int, what: str) -> MalformedInvoicesLists:
    line, column = position(text, index)
    return MalformedInvoicesLists(f"InvoicesLists: {what} at line {line}, column {column}")


def read_invoices_lists(text: str) -> list[Any]:
    """The customers of an InvoicesLists value (see the module's docstring); each element is
    what the text holds (the service checks that it is a customer object)."""
    try:
        document: Any = json.loads(text)
    except (ValueError, RecursionError):
        document = _Reader(text).document()
    return _customers(document, text)


def _customers(document: Any, text: str) -> list[Any]:
    if isinstance(document, dict):
        trimmed = {str(key).strip(): value for key, value in document.items()}
        if ROOT_KEY not in trimmed:
            raise MalformedInvoicesLists(f"InvoicesLists: the object has no {ROOT_KEY} key")
        document = trimmed[ROOT_KEY]
    if not isinstance(document, list):
        raise MalformedInvoicesLists("InvoicesLists: expected a list of customers")
    return [_customer(item) for item in document]


def _customer(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    customer: dict[str, Any] = {}
    for key, value in item.items():
        if isinstance(key, _Bare):
            customer.setdefault(INVOICES_KEY, [])
            if isinstance(customer[INVOICES_KEY], list):
                customer[INVOICES_KEY].extend(value)
            continue
        name = key.strip()
        if name == INVOICES_KEY and isinstance(value, list) and INVOICES_KEY in customer:
            customer[INVOICES_KEY].extend(value)
        else:
            customer[name] = value
    invoices = customer.get(INVOICES_KEY)
    if isinstance(invoices, list):
        customer[INVOICES_KEY] = [
            {str(k).strip(): v for k, v in inv.items()}
            if type(inv) is dict and not INVOICE_KEYS.issuperset(inv)
            else inv
            for inv in invoices
        ]
    return customer


class _Bare(str):
    """The key the reader gives an array standing bare in an object (one per array)."""

    __slots__ = ()


class _Reader:
    """JSON plus the spec example's deviations, with the position of the first error."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.bare = 0

    def document(self) -> Any:
        self._skip()
        text = self.text
        if self.i < len(text) and text[self.i] == '"':
            # Members without the opening brace ("InvoicesLists": [...]); the closing brace may
            # be there or not.
            value: Any = self._members(0, top=True)
        else:
            value = self._value(0)
        self._skip()
        if self.i < len(text):
            raise _error(text, self.i, f"unexpected {text[self.i]!r} after the end")
        return value

    def _skip(self) -> None:
        match = _WHITESPACE.match(self.text, self.i)
        assert match is not None
        self.i = match.end()

    def _value(self, depth: int) -> Any:
        text = self.text
        if depth > MAX_DEPTH:
            raise _error(text, self.i, "nested too deeply")
        if self.i >= len(text):
            raise _error(text, self.i, "unexpected end (a value is missing)")
        char = text[self.i]
        if char == "{":
            self.i += 1
            return self._members(depth + 1, top=False)
        if char == "[":
            self.i += 1
            return self._elements(depth + 1)
        if char == '"':
            return self._string()
        number = _NUMBER.match(text, self.i)
        if number is not None:
            self.i = number.end()
            literal = number.group()
            return float(literal) if any(c in literal for c in ".eE") else int(literal)
        for word, value in _LITERALS.items():
            if text.startswith(word, self.i):
                self.i += len(word)
                return value
        raise _error(text, self.i, f"unexpected {char!r} (a value is expected)")

    def _string(self) -> str:
        try:
            value, end = scanstring(self.text, self.i + 1, True)
        except json.JSONDecodeError as exc:
            raise _error(self.text, exc.pos, exc.msg.lower()) from None
        self.i = end
        return str(value)

    def _elements(self, depth: int) -> list[Any]:
        text = self.text
        items: list[Any] = []
        while True:
            self._skip()
            if self.i >= len(text):
                raise _error(text, self.i, "unexpected end (']' is missing)")
            if text[self.i] == "]":
                self.i += 1
                return items
            items.append(self._value(depth))
            self._skip()
            if self.i < len(text) and text[self.i] == ",":
                self.i += 1  # a trailing comma before ']' is accepted
            elif self.i < len(text) and text[self.i] != "]":
                raise _error(text, self.i, f"expected ',' or ']', not {text[self.i]!r}")

    def _members(self, depth: int, *, top: bool) -> dict[str, Any]:
        text = self.text
        members: dict[str, Any] = {}
        while True:
            self._skip()
            if self.i >= len(text):
                if top:
                    return members
                raise _error(text, self.i, "unexpected end ('}' is missing)")
            char = text[self.i]
            if char == "}":
                self.i += 1
                return members
            if char == "[":
                # An array standing bare in the object: the customer's invoices.
                self.i += 1
                self.bare += 1
                members[_Bare(f"[{self.bare}]")] = self._elements(depth + 1)
            elif char == '"':
                key = self._string()
                self._skip()
                if self.i >= len(text) or text[self.i] != ":":
                    raise _error(text, self.i, f"expected ':' after the key {key.strip()!r}")
                self.i += 1
                self._skip()
                members[key] = self._value(depth)
            else:
                raise _error(text, self.i, f"unexpected {char!r} (a key is expected)")
            self._skip()
            if self.i < len(text) and text[self.i] == ",":
                self.i += 1  # a trailing comma before '}' is accepted
            elif self.i < len(text) and text[self.i] != "}":
                raise _error(text, self.i, f"expected ',' or '}}', not {text[self.i]!r}")
