"""Where the photos of reusable QR codes are kept: one small interface, files by default.

A stored photo is named by the SHA-256 of its bytes (``<hex>.<ext>``): the same photo uploaded
twice is kept once, a name never changes meaning, so it is served with long cache headers.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Protocol

from mobip.kit.runtime import Runtime, make_private_folder

# <sha256 hex>.<extension>: what put() returns and get() accepts (anything else is not looked up).
_KEY = re.compile(r"[0-9a-f]{64}\.(jpg|png)")
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png"}


class PhotoStore(Protocol):
    """Stored photos by content hash."""

    def put(self, data: bytes, extension: str) -> str:
        """Store ``data`` (idempotent) and return its key, ``<sha256>.<extension>``."""
        ...

    def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None."""
        ...


def is_key(value: str) -> bool:
    """Whether ``value`` has the form of a photo key (a hash and a known extension)."""
    return _KEY.fullmatch(value) is not None


def content_type(key: str) -> str:
    return CONTENT_TYPES[key.rsplit(".", 1)[1]]


class FilePhotoStore:
    """Photos as files under ``root`` (``root/ab/ab…64.jpg``), written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def put(self, data: bytes, extension: str) -> str:
        if extension not in CONTENT_TYPES:
            raise ValueError(f"unknown photo extension {extension!r}")
        key = f"{hashlib.sha256(data).hexdigest()}.{extension}"
        path = self._path(key)
        if path.exists():
            return key
        make_private_folder(path.parent)
        # A temporary file renamed into place: a reader never sees half a photo.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes | None:
        if not is_key(key):
            return None
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None


class _Stores:
    """The runtime's photo store (per runtime: two apps in a test keep their own)."""

    def __init__(self) -> None:
        self.store: PhotoStore | None = None
        self.lock = threading.Lock()


def photo_store(runtime: Runtime) -> PhotoStore:
    """The runtime's photo store: files under the data folder's ``photos`` unless one was set."""
    stores = runtime.state(_Stores)
    with stores.lock:
        if stores.store is None:
            stores.store = FilePhotoStore(runtime.settings.data_dir / "photos")
        return stores.store


def use_photo_store(runtime: Runtime, store: PhotoStore) -> None:
    """Make ``store`` the runtime's photo store (another backend, or a test's)."""
    stores = runtime.state(_Stores)
    with stores.lock:
        stores.store = store
