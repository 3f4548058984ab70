"""A merchant's branding checked before it is stored: the accent colour's contrast and the logo.

The logo is shown on the hosted checkout and in e-mails, to customers, so what is stored is never
the uploaded file itself: a PNG or JPEG is decoded and encoded again (no metadata, no EXIF, nothing
after the image), an SVG is parsed without DTD or entities and written again from an allowlist of
elements and attributes, with no script, no event handler and no reference outside itself.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape, quoteattr

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden
from defusedxml.ElementTree import fromstring
from PIL import Image, ImageOps, UnidentifiedImageError

from mobip.accounts.errors import InvalidAccentColour, InvalidLogo

MAX_LOGO_BYTES = 256 * 1024
MAX_LOGO_PIXELS = 1024  # width and height, each
MIN_LOGO_PIXELS = 16
MAX_SVG_DEPTH = 64
MIN_CONTRAST = 4.5  # WCAG 2 AA for normal text: white text on the accent colour
PNG, JPEG, SVG = "image/png", "image/jpeg", "image/svg+xml"

_HEX_COLOUR = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


# --- accent colour ---------------------------------------------------------------------------


def relative_luminance(colour: str) -> float:
    """WCAG 2's relative luminance of a "#rrggbb" colour (sRGB channels linearised)."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_with_white(colour: str) -> float:
    """The WCAG contrast ratio of white text on ``colour`` (1 to 21)."""
    return 1.05 / (relative_luminance(colour) + 0.05)


def accent_colour(raw: str) -> str:
    """``raw`` ("#rgb" or "#rrggbb") as lower-case "#rrggbb", if white text on it is readable."""
    value = raw.strip()
    if not _HEX_COLOUR.fullmatch(value):
        raise InvalidAccentColour(f"{raw!r} is not a colour: write it as #rgb or #rrggbb")
    digits = value[1:].lower()
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    colour = "#" + digits
    ratio = contrast_with_white(colour)
    if ratio < MIN_CONTRAST:
        # Shown rounded down, so a refused ratio never reads as 4.50.
        shown = int(ratio * 100) / 100
        raise InvalidAccentColour(
            f"white text on {colour} has a contrast ratio of {shown:.2f}:1, below the "
            f"{MIN_CONTRAST}:1 minimum (WCAG AA): choose a darker colour"
        )
    return colour


# --- logo --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Logo:
    content_type: str
    content: bytes


def sanitised_logo(data: bytes) -> Logo:
    """The logo to store for the uploaded ``data`` (PNG, JPEG or SVG), or InvalidLogo."""
    if not data:
        raise InvalidLogo("the file is empty")
    if len(data) > MAX_LOGO_BYTES:
        raise logo_size_error(len(data))
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Logo(PNG, _raster(data, "PNG"))
    if data.startswith(b"\xff\xd8\xff"):
        return Logo(JPEG, _raster(data, "JPEG"))
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return Logo(SVG, sanitised_svg(data))
    raise InvalidLogo(f"unsupported file type ({_kind(data)}): send a PNG, JPEG or SVG image")


def logo_size_error(size: int) -> InvalidLogo:
    """The error for a logo file of ``size`` bytes, past MAX_LOGO_BYTES."""
    return InvalidLogo(
        f"the file is {size:,} bytes; a logo may be at most {MAX_LOGO_BYTES:,} bytes "
        f"({MAX_LOGO_BYTES // 1024} KiB)"
    )


def _kind(data: bytes) -> str:
    for magic, name in ((b"GIF8", "GIF"), (b"RIFF", "WebP or another RIFF file"), (b"%PDF", "PDF")):
        if data.startswith(magic):
            return name
    return "not an image we recognise"


def _raster(data: bytes, expected: str) -> bytes:
    """``data`` decoded and encoded again in its own format: the pixels only."""
    try:
        with Image.open(io.BytesIO(data), formats=[expected]) as image:
            _check_dimensions(image.size)
            image.load()
            # A phone's photo is upright through its EXIF orientation, which is not kept.
            upright = ImageOps.exif_transpose(image)
            return _encode(upright, expected)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidLogo(
            f"the {expected} image is too large when decoded (a decompression bomb)"
        ) from exc
    # What Pillow's decoders raise on a damaged or crafted file.
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error) as exc:
        raise InvalidLogo(f"the file is not a readable {expected} image ({exc})") from exc


def _check_dimensions(size: tuple[int, int]) -> None:
    width, height = size
    if width > MAX_LOGO_PIXELS or height > MAX_LOGO_PIXELS:
        raise InvalidLogo(
            f"the image is {width}x{height} pixels; at most {MAX_LOGO_PIXELS}x{MAX_LOGO_PIXELS}"
        )
    if width < MIN_LOGO_PIXELS or height < MIN_LOGO_PIXELS:
        raise InvalidLogo(
            f"the image is {width}x{height} pixels; at least {MIN_LOGO_PIXELS}x{MIN_LOGO_PIXELS}"
        )


def _encode(image: Image.Image, fmt: str) -> bytes:
    """The pixels of ``image`` in a new image (no ``info``: no ICC profile, EXIF, text chunks,
    comments, which savers copy from it) encoded as ``fmt``."""
    if fmt == "JPEG":
        mode = "L" if image.mode == "L" else "RGB"
    else:
        transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        mode = "RGBA" if transparent else "RGB"
    converted = image if image.mode == mode else image.convert(mode)
    pixels = Image.frombytes(mode, converted.size, converted.tobytes())
    out = io.BytesIO()
    if fmt == "JPEG":
        pixels.save(out, "JPEG", quality=90)
    else:
        pixels.save(out, "PNG")
    return out.getvalue()


# --- SVG ---------------------------------------------------------------------------------------


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
# Editors' own data (Inkscape, Sodipodi, RDF metadata): dropped, not refused.
DROPPED_NAMESPACES = frozenset(
    {
        "http://www.inkscape.org/namespaces/inkscape",
        "http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd",
        "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
        "http://purl.org/dc/elements/1.1/",
        "http://creativecommons.org/ns#",
        "http://ns.adobe.com/AdobeIllustrator/10.0/",
        "http://ns.adobe.com/Graphs/1.0/",
        "http://ns.adobe.com/SaveForWeb/1.0/",
        "http://ns.adobe.com/Extensibility/1.0/",
    }
)
DROPPED_ELEMENTS = frozenset({"metadata"})
ELEMENTS = _names(
    """svg g defs symbol use title desc path rect circle ellipse line polyline polygon text tspan
    textPath linearGradient radialGradient stop clipPath mask pattern marker style filter
    feGaussianBlur feOffset feBlend feColorMatrix feFlood feComposite feMerge feMergeNode
    feDropShadow"""
)
ATTRIBUTES = _names(
    """id class style x y x1 y1 x2 y2 cx cy r rx ry fx fy fr width height d points transform
    viewBox preserveAspectRatio version baseProfile fill fill-opacity fill-rule stroke
    stroke-width stroke-linecap stroke-linejoin stroke-miterlimit stroke-dasharray
    stroke-dashoffset stroke-opacity opacity clip-path clip-rule mask filter display visibility
    color overflow vector-effect shape-rendering paint-order font-family font-size font-weight
    font-style font-variant text-anchor dominant-baseline alignment-baseline baseline-shift
    letter-spacing word-spacing text-decoration writing-mode dx dy rotate textLength
    lengthAdjust startOffset offset stop-color stop-opacity gradientUnits gradientTransform
    spreadMethod patternUnits patternContentUnits patternTransform clipPathUnits maskUnits
    maskContentUnits marker-start marker-mid marker-end markerWidth markerHeight markerUnits
    refX refY orient filterUnits primitiveUnits stdDeviation in in2 result mode type values
    operator k1 k2 k3 k4 flood-color flood-opacity media"""
)
HREFS = frozenset({"href", f"{{{XLINK_NS}}}href"})
_URL = re.compile(r"url\s*\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE | re.DOTALL)
_URL_START = re.compile(r"url\s*\(", re.IGNORECASE)
_CSS_ESCAPE = re.compile(r"\\")


def sanitised_svg(data: bytes) -> bytes:
    """``data`` parsed safely and written again from the allowlist, or InvalidLogo naming what
    is not allowed."""
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden as exc:
        raise InvalidLogo("the SVG has a DTD (<!DOCTYPE ...>), which is not allowed") from exc
    except EntitiesForbidden as exc:
        raise InvalidLogo("the SVG declares entities, which are not allowed") from exc
    except DefusedXmlException as exc:
        raise InvalidLogo("the SVG refers to external resources, which is not allowed") from exc
    except (ParseError, ValueError) as exc:
        raise InvalidLogo(f"the file is not well-formed XML ({exc})") from exc
    if root.tag != f"{{{SVG_NS}}}svg":
        raise InvalidLogo(
            "the file is not an SVG image (its root element is not <svg> in the SVG namespace)"
        )
    if not root.get("viewBox") and not (root.get("width") and root.get("height")):
        raise InvalidLogo("the SVG needs a viewBox or a width and a height")
    out: list[str] = []
    _write(root, out)
    svg = "".join(out)
    if " xlink:href=" in svg:
        # Declared on the root only when written (a dropped element's use does not count), so
        # that sanitising the stored logo again gives the same bytes.
        svg = svg.replace(f' xmlns="{SVG_NS}"', f' xmlns="{SVG_NS}" xmlns:xlink="{XLINK_NS}"', 1)
    return svg.encode("utf-8")


def _write(element: Element, out: list[str], *, depth: int = 0) -> None:
    if depth > MAX_SVG_DEPTH:
        # Written recursively: a deeper document would exhaust Python's stack (a 500).
        raise InvalidLogo(f"the SVG's elements are nested more than {MAX_SVG_DEPTH} levels deep")
    is_root = depth == 0
    name = _element_name(element.tag)
    attributes = [_attribute(name, key, value) for key, value in element.attrib.items()]
    if is_root:
        attributes.insert(0, f' xmlns="{SVG_NS}"')
    out.append(f"<{name}{''.join(a for a in attributes if a)}>")
    if name == "style" and len(element):
        # A style sheet is the text of all its children: text after an element inside <style>
        # would be CSS that the check below does not see.
        raise InvalidLogo("the SVG has elements inside <style>")
    if element.text:
        if name == "style":
            _check_css(element.text, "<style>")
        out.append(escape(element.text))
    for child in element:
        if not _dropped(child.tag):
            _write(child, out, depth=depth + 1)
        if child.tail:
            out.append(escape(child.tail))
    out.append(f"</{name}>")


def _dropped(tag: str) -> bool:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return namespace in DROPPED_NAMESPACES or (namespace == SVG_NS and local in DROPPED_ELEMENTS)


def _element_name(tag: str) -> str:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    if namespace != SVG_NS:
        raise InvalidLogo(f"the SVG has an element <{local}> outside the SVG namespace")
    if local not in ELEMENTS:
        raise InvalidLogo(f"the SVG element <{local}> is not allowed in a logo")
    return local


def _attribute(element: str, key: str, value: str) -> str:
    """The attribute written back (' name="value"'), '' when dropped, or InvalidLogo."""
    namespace, _, local = key[1:].partition("}") if key.startswith("{") else ("", "", key)
    if namespace in DROPPED_NAMESPACES:
        return ""
    if local.lower().startswith("on"):
        raise InvalidLogo(f"the SVG has an event handler attribute {local} on <{element}>")
    if key in HREFS:
        if not value.strip().startswith("#"):
            raise InvalidLogo(
                f"the SVG has a reference outside itself ({local}={value!r} on <{element}>): "
                "only #fragment references are allowed"
            )
        written = "xlink:href" if namespace == XLINK_NS else "href"
        return f" {written}={quoteattr(value.strip())}"
    if namespace == XML_NS and local in ("space", "lang"):
        return f" xml:{local}={quoteattr(value)}"
    if namespace or local not in ATTRIBUTES:
        raise InvalidLogo(f"the SVG attribute {local} on <{element}> is not allowed in a logo")
    _check_css(value, f"the {local} attribute of <{element}>")
    return f" {local}={quoteattr(value)}"


def _check_css(text: str, where: str) -> None:
    """No @import, image-set() or src(), and no url() to anything but a #fragment, in a style
    sheet or an attribute."""
    if _CSS_ESCAPE.search(text):
        # CSS escapes could spell url( or @import past these checks.
        raise InvalidLogo(f"the SVG has a backslash (a CSS escape) in {where}")
    lowered = text.lower()
    if "@import" in lowered:
        raise InvalidLogo(f"the SVG has an @import in {where}")
    # CSS functions that load a resource from a plain string, without url().
    for loader in ("image-set(", "src("):
        if loader in lowered:
            raise InvalidLogo(f"the SVG has {loader}...) in {where}: it could load from elsewhere")
    for match in _URL.finditer(text):
        if not match.group(2).strip().startswith("#"):
            raise InvalidLogo(
                f"the SVG has url({match.group(2).strip()}) in {where}: "
                "only url(#fragment) is allowed"
            )
    # A "url(" that the pattern above did not read as a whole (unclosed) is refused too.
    if len(_URL_START.findall(text)) != len(_URL.findall(text)) or "expression(" in lowered:
        raise InvalidLogo(f"the SVG has a url( or expression( in {where} that cannot be checked")
