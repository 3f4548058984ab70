"""Checks of values that come from outside: URLs, e-mail addresses, phone numbers.

What is stored is ASCII, so that no header, e-mail or page ever carries a non-ASCII host: a URL's
host in IDNA 2008 A-labels (after the UTS #46 mapping browsers apply), its path, query and
fragment with non-ASCII characters percent-encoded as UTF-8; an e-mail address's domain in
A-labels too. A host IDNA 2008 does not admit is refused, not guessed at.
"""

from __future__ import annotations

import ipaddress
import re
import string
from urllib.parse import quote, urlsplit

import idna
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from mobip.kit.errors import InvalidField

MAX_URL_CHARS = 2048
MAX_HOST_CHARS = 253  # RFC 1035, without the trailing dot
MAX_LABEL_CHARS = 63
MAX_EMAIL_CHARS = 254  # RFC 5321: a path is 256 octets, its angle brackets included
# \s is str.isspace()'s set: every Unicode space, not only ASCII ones.
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
# Letters, digits, '-' and '_': an ASCII label is kept as written ('_' is not valid in a host
# name, but real hosts use it and browsers reach them).
_ASCII_LABEL_CHARS = frozenset(string.ascii_letters + string.digits + "-_")
# One or more such labels, each 1-63 characters, not starting or ending with '-' and not an
# A-label ("xn--", checked by IDNA), with an optional trailing dot.
_PLAIN_LABEL = r"(?![Xx][Nn]--)(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_PLAIN_ASCII_HOST = re.compile(rf"(?:{_PLAIN_LABEL}\.)*{_PLAIN_LABEL}\.?")
# Every printable ASCII character stays as typed in a path, query or fragment.
_PRINTABLE_ASCII = "".join(chr(code) for code in range(0x21, 0x7F))


class Refused(ValueError):
    """Why a value is not accepted; the caller names the field (InvalidField) or the message."""


class NeedsSmtpUtf8(Refused):
    """An e-mail address with non-ASCII characters before the @, while SMTPUTF8 is not allowed."""


def http_url(field: str, value: str, *, https_only: bool) -> str:
    """An absolute http(s) URL with a host, no credentials, no spaces or control characters,
    returned in ASCII (see the module's docstring): store the value returned."""
    try:
        return _ascii_url(value, ("https",) if https_only else ("http", "https"))
    except Refused as exc:
        raise InvalidField(field, str(exc)) from None


def stored_http_url(value: str) -> str | None:
    """A stored URL as ``http_url`` returns it, or None when it could not be stored today.

    For code that puts a stored URL in a header or a page: a row written before URLs were
    normalised (a non-ASCII host) must not break a page.
    """
    try:
        return _ascii_url(value, ("http", "https"))
    except Refused:
        return None


def ascii_host(host: str) -> str:
    """A host name in ASCII: IDNA 2008 A-labels; Refused (a ValueError) when not valid.

    Labels already ASCII are kept as written (an A-label is checked and lower-cased); a name
    with other characters is first mapped as UTS #46 says (lower case, full-width forms,
    ideographic full stops), as browsers do, then each label is encoded.
    """
    # The usual host (ASCII labels, none an A-label) is settled by one regular expression; it
    # gives what the label-by-label path gives (a hypothesis test compares them).
    if _PLAIN_ASCII_HOST.fullmatch(host) and len(host) - host.endswith(".") <= MAX_HOST_CHARS:
        return host
    return _labelled_host(host)


def _labelled_host(host: str) -> str:
    if not host.isascii():
        try:
            host = idna.uts46_remap(host, std3_rules=False)
        except idna.IDNAError as exc:
            raise Refused(f"{host!r} is not a valid host name ({exc})") from None
    labels = host.split(".")
    trailing_dot = len(labels) > 1 and labels[-1] == ""
    if trailing_dot:
        labels.pop()
    result = ".".join(_ascii_label(label, host) for label in labels)
    if len(result) > MAX_HOST_CHARS:
        raise Refused(f"the host name is longer than {MAX_HOST_CHARS} characters")
    return result + "." if trailing_dot else result


def _ascii_label(label: str, host: str) -> str:
    if not label:
        raise Refused(f"{host!r} is not a valid host name (an empty label)")
    if label.isascii() and label[:4].lower() != "xn--":
        if not set(label) <= _ASCII_LABEL_CHARS or label[0] == "-" or label[-1] == "-":
            raise Refused(f"{host!r} is not a valid host name")
        if len(label) > MAX_LABEL_CHARS:
            raise Refused(f"a label of the host is longer than {MAX_LABEL_CHARS} characters")
        return label
    try:
        # An A-label is decoded and checked; a U-label is checked (IDNA 2008 code points,
        # contexts, the bidi rule) and encoded.
        return idna.alabel(label.lower() if label.isascii() else label).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise Refused(f"{host!r} is not a valid IDNA 2008 host name ({exc})") from None


def _ascii_url(value: str, schemes: tuple[str, ...]) -> str:
    if len(value) > MAX_URL_CHARS:
        raise Refused(f"longer than {MAX_URL_CHARS} characters")
    if _SPACE_OR_CONTROL.search(value):
        raise Refused("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"not a valid URL ({exc})") from None
    if parts.scheme.lower() not in schemes:
        raise Refused("must be an absolute " + " or ".join(schemes) + " URL")
    if not parts.hostname:
        raise Refused("must include a host name")
    if parts.username is not None or parts.password is not None:
        raise Refused("must not include a user name or password")
    if port == 0:
        raise Refused("has an invalid port")
    # urlsplit reads scheme "://" netloc and the rest, in that order and without changes (the
    # characters it would drop are refused above), so the pieces are cut from the value itself.
    netloc = parts.netloc
    host_text, port_text = _split_netloc(netloc)
    rest = value[len(parts.scheme) + 3 + len(netloc) :]
    if not rest.isascii():  # printable ASCII stays as typed (controls are refused above)
        try:
            rest = quote(rest, safe=_PRINTABLE_ASCII)
        except UnicodeEncodeError:
            raise Refused("contains characters that are not text (lone surrogates)") from None
    return f"{value[: len(parts.scheme)]}://{_url_host(host_text)}{port_text}{rest}"


def _split_netloc(netloc: str) -> tuple[str, str]:
    """(host as written, ":port" as written or "") of a netloc without credentials."""
    if netloc.startswith("["):
        end = netloc.find("]") + 1
        host, port = netloc[:end], netloc[end:]
    else:
        host, colon, port = netloc.partition(":")
        port = colon + port
    if not port.isascii():
        raise Refused("has an invalid port")
    return host, port


def _url_host(host: str) -> str:
    if not host.startswith("["):
        return ascii_host(host)
    inner = host[1:-1]
    if "%" in inner:
        raise Refused("IPv6 zone identifiers are not allowed")
    try:
        ipaddress.IPv6Address(inner)
    except ValueError:
        raise Refused(f"{host!r} is not an IPv6 address") from None
    return host


def sendable_email(value: str, *, smtputf8: bool) -> str:
    """``local@domain`` as it is stored and sent, the domain in IDNA A-labels; Refused otherwise.

    One rule at creation and at sending: the syntax of RFC 5321 (no display name, quoted local
    part or address literal; no DNS lookup), 64 characters before the @ and 254 in all (the
    ASCII form: what the SMTP server sees). A non-ASCII local part needs the SMTPUTF8 extension,
    so it is accepted only with ``smtputf8`` (the SMTP server is said to support it).
    """
    local = value.rpartition("@")[0]
    if not smtputf8 and not local.isascii():
        raise NeedsSmtpUtf8(
            "non-ASCII characters before the @ need SMTPUTF8, which our mail server is not "
            "set up for"
        )
    try:
        found = validate_email(
            value, check_deliverability=False, allow_smtputf8=smtputf8, strict=True
        )
    except EmailNotValidError as exc:
        raise Refused(str(exc)) from None
    address = f"{found.local_part}@{found.ascii_domain}"
    if len(address) > MAX_EMAIL_CHARS:
        raise Refused(
            f"longer than {MAX_EMAIL_CHARS} characters with its domain in ASCII (punycode)"
        )
    return address


def email_address(field: str, value: str, *, smtputf8: bool = False) -> str:
    """An address we can send to (``sendable_email``), as it is to be stored."""
    try:
        return sendable_email(value, smtputf8=smtputf8)
    except Refused as exc:
        raise InvalidField(field, str(exc)) from None


def international_phone(field: str, value: str) -> str:
    """A phone number written with its international prefix, returned as E.164 (+33612345678)."""
    if not value.strip().startswith("+"):
        raise InvalidField(field, "must start with the international prefix, e.g. +33 or +1")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidField(field, "not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidField(field, "not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
