"""The photo of a reusable QR code: downloaded during create_reusable_qr through the outbound
guard, checked, re-encoded without metadata, resized, and stored by content hash.

Download: every hop through ``outbound.client`` (each connection's addresses checked, so a
redirect to a private address is refused like a first URL), at most 3 redirects, 10 s in all,
at most 5 MiB read (reading stops past it). Decoding: the header is read first and the declared
size checked (40 megapixels) before any pixel is decoded, so a decompression bomb costs nothing.
Stored: JPEG (PNG when the image has transparency), largest side 1600 px, and a 400 px
thumbnail; nothing of the original file but its pixels is kept (no EXIF, GPS, ICC, comments).
"""

from __future__ import annotations

import asyncio
import io
import struct
from dataclasses import dataclass
from urllib.parse import urljoin

from PIL import Image, ImageOps, UnidentifiedImageError

from mobip.config import Settings
from mobip.kit.errors import InvalidField
from mobip.outbound import client as outbound
from mobip.products.storage import PhotoStore

FIELD = "item_photo"
MAX_DOWNLOAD_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 3
DOWNLOAD_SECONDS = 10.0
MAX_PIXELS = 40_000_000
PHOTO_SIDE = 1600
THUMBNAIL_SIDE = 400
FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
_REDIRECTS = (301, 302, 303, 307, 308)
JPEG_QUALITY = 85


class PhotoRefused(InvalidField):
    """item_photo could not be used: the reason is in the message (return code 1002)."""

    def __init__(self, reason: str) -> None:
        super().__init__(FIELD, reason)


@dataclass(frozen=True)
class StoredPhoto:
    """The keys of the stored photo and thumbnail, and the photo's size in pixels."""

    photo_key: str
    thumbnail_key: str
    width: int
    height: int


def fetch_and_store(url: str, settings: Settings, store: PhotoStore) -> StoredPhoto:
    """Download ``url``, re-encode it and store both sizes; PhotoRefused names the reason.

    Called from a request's thread (it runs its own event loop for the download)."""
    client = outbound.client_for(
        settings, timeout=DOWNLOAD_SECONDS, max_response_bytes=MAX_DOWNLOAD_BYTES
    )
    data = asyncio.run(download(url, client))
    return store_photo(data, store)


async def download(url: str, client: outbound.OutboundClient) -> bytes:
    """The bytes at ``url`` (following at most 3 redirects, each hop checked), 10 s in all."""
    try:
        async with asyncio.timeout(DOWNLOAD_SECONDS):
            return await _follow(url, client)
    except TimeoutError as exc:
        raise PhotoRefused(f"the download took longer than {DOWNLOAD_SECONDS:g} s") from exc
    except outbound.OutboundRefused as exc:
        raise PhotoRefused(f"the address is not allowed ({exc})") from exc
    except outbound.OutboundError as exc:
        raise PhotoRefused(f"the photo could not be downloaded ({exc})") from exc
    finally:
        await client.aclose()


async def _follow(url: str, client: outbound.OutboundClient) -> bytes:
    for _ in range(MAX_REDIRECTS + 1):
        response = await client.request("GET", url, headers={"Accept": "image/*"})
        if response.status in _REDIRECTS:
            location = response.headers.get("location")
            if not location:
                raise PhotoRefused(f"HTTP {response.status} without a Location")
            url = urljoin(url, location)
            continue
        if response.status != 200:
            raise PhotoRefused(f"the server answered HTTP {response.status}")
        if response.truncated:
            raise PhotoRefused(f"the photo is larger than {MAX_DOWNLOAD_BYTES // 2**20} MiB")
        return response.body
    raise PhotoRefused(f"more than {MAX_REDIRECTS} redirects")


def store_photo(data: bytes, store: PhotoStore) -> StoredPhoto:
    """Decode ``data`` (JPEG, PNG, WebP or GIF's first frame), re-encode it at two sizes and
    store both; PhotoRefused when it is not such an image or is too large."""
    image = decode(data)
    photo, extension = encode(_fitted(image, PHOTO_SIDE))
    thumbnail, thumb_extension = encode(_fitted(image, THUMBNAIL_SIDE))
    return StoredPhoto(
        store.put(photo, extension),
        store.put(thumbnail, thumb_extension),
        *_fitted_size(image.size, PHOTO_SIDE),
    )


def decode(data: bytes) -> Image.Image:
    """The pixels of an image file, upright; the declared size is checked before decoding."""
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as opened:
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise PhotoRefused(
                    f"the image declares {width}x{height} pixels, more than "
                    f"{MAX_PIXELS // 1_000_000} megapixels"
                )
            opened.seek(0)  # a GIF's (or an animated WebP's) first frame
            opened.load()
            # A phone's photo is upright through its EXIF orientation, which is not kept.
            upright = ImageOps.exif_transpose(opened)
            return upright.copy() if upright is opened else upright
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoRefused("the image is too large when decoded (a decompression bomb)") from exc
    except UnidentifiedImageError as exc:
        raise PhotoRefused("not a JPEG, PNG, WebP or GIF image") from exc
    # What Pillow's decoders raise on a damaged or crafted file.
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        raise PhotoRefused(f"the image could not be decoded ({exc})") from exc


def _fitted_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _fitted(image: Image.Image, side: int) -> Image.Image:
    size = _fitted_size(image.size, side)
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def _has_alpha(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA", "PA"):
        return image.getextrema()[-1][0] < 255  # type: ignore[index]
    return image.mode == "P" and "transparency" in image.info


def encode(image: Image.Image) -> tuple[bytes, str]:
    """The pixels of ``image`` in a new file without any metadata: JPEG, or PNG when the image
    has transparency (a product cut out on a transparent background)."""
    transparent = _has_alpha(image)
    mode = "RGBA" if transparent else "RGB"
    converted = image if image.mode == mode else image.convert(mode)
    # A new image of the pixels alone: savers copy ``info`` (EXIF, ICC, text chunks) otherwise.
    pixels = Image.frombytes(mode, converted.size, converted.tobytes())
    out = io.BytesIO()
    if transparent:
        pixels.save(out, "PNG", optimize=True)
        return out.getvalue(), "png"
    pixels.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return out.getvalue(), "jpg"
