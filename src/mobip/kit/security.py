"""Opaque ids, secret hashing and encryption at rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def new_id(prefix: str, nbytes: int = 16) -> str:
    """An unguessable identifier with a type prefix, e.g. ``tr_…`` (``nbytes`` of randomness)."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret (API secret keys, access tokens), as hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def secrets_equal(a: str, b: str) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a.encode(), b.encode())


def mask_secret(value: str) -> str:
    """Show only the last 4 characters of a long secret; short ones are masked whole."""
    if len(value) >= 16:
        return "****" + value[-4:]
    return "****"


class DecryptionError(Exception):
    """Stored ciphertext cannot be read with the configured keys."""


class Encryptor:
    """Fernet encryption keyed from MOBIP_SECRET_KEY (old keys may follow, for rotation)."""

    def __init__(self, secret_key: str, *old_keys: str) -> None:
        self._fernet = MultiFernet([Fernet(_derive(k)) for k in (secret_key, *old_keys)])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken as exc:
            raise DecryptionError("cannot decrypt with the configured MOBIP_SECRET_KEY") from exc


def _derive(secret_key: str) -> bytes:
    digest = hmac.new(secret_key.encode(), b"mobip/encryption-at-rest/v1", hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest())
