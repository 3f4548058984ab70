"""Which characters a text input may hold: no controls, no bidi overrides, no lone surrogates.

A NUL is refused by PostgreSQL (a 500 if it gets that far) and stored by SQLite, where it later
breaks an e-mail subject or an XML reply; escape, bell and C1 controls have no place in a name
or a reference; bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) make a
payment page show text in another order than it was written; a lone surrogate cannot be written
as UTF-8 at all. Tab, line feed and carriage return are kept for multi-line fields only.
"""

from __future__ import annotations

import re

from mobip.kit.errors import InvalidField

__all__ = ["check_text", "described", "refused_character", "shown"]

_ALWAYS_REFUSED = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_MULTILINE = re.compile(f"[{_ALWAYS_REFUSED}]")
_SINGLE_LINE = re.compile(f"[{_ALWAYS_REFUSED}\t\n\r]")


def refused_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character of ``value`` that a text input may not hold, or None."""
    if value.isascii() and value.isprintable():
        return None  # the usual value, settled by two C-level scans
    found = (_MULTILINE if multiline else _SINGLE_LINE).search(value)
    return found[0] if found else None


def check_text(field: str, value: str, *, multiline: bool = False) -> None:
    """Raise InvalidField naming ``field`` when ``value`` holds a refused character."""
    char = refused_character(value, multiline=multiline)
    if char is not None:
        raise InvalidField(field, f"must not contain {described(char)}")


def shown(text: str, max_chars: int = 64) -> str:
    """``text`` fit to quote in a message: refused characters escaped (\\x00), cut short."""
    cut = text if len(text) <= max_chars else text[:max_chars] + "…"
    return _SINGLE_LINE.sub(lambda found: ascii(found[0])[1:-1], cut)


def described(char: str) -> str:
    """What a refused character is, for a message: "a control character (U+001B)"."""
    code = f"U+{ord(char):04X}"
    if char in "\t\n\r":
        return f"a tab or line break ({code}): it is a single-line field"
    if "\u202a" <= char <= "\u2069":
        return f"a bidirectional control character ({code})"
    if "\ud800" <= char <= "\udfff":
        return f"a lone surrogate ({code})"
    return f"a control character ({code})"
