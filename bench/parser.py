"""Time parsing a 10-field send_payment_request multipart body: Starlette, ours, `multipart`.

Run: python bench/parser.py  (prints µs per parse and speed-ups against python-multipart)
"""

from __future__ import annotations

import importlib
import sys
import timeit
import warnings
from collections.abc import Callable, Coroutine
from io import BytesIO
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from starlette.requests import Request

from mobip.api import formdata
from mobip.api.formdata import _parse_fallback, boundary_from_content_type, parse_multipart

BOUNDARY = "------------------------d74496d66958873e"  # the shape curl uses
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
FIELDS = [
    ("item_amount_in_cents", "12500"),
    ("tax_amount", "1875"),
    ("redirect_url", "https://shop.example.com/orders/8841/thanks"),
    ("call_back_url", "https://shop.example.com/mobip/callback.php?resp_code=PROCESSED"),
    ("track_id", "ORD-2024-0008841"),
    ("item_name", "Abonnement annuel — édition numérique"),
    ("access_token", "tok_3kTMd9mZqW0xYbP4vLr8sN2cHfJ6aE1uQ7gD5oK"),
    ("language", "FR"),
    ("customer_email", "marie.dupont@example.fr"),
    ("media", "EMAIL"),
]


def build_body() -> bytes:
    """The body curl sends for `-F name=value` per field."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in FIELDS
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (an in-memory request) without an event loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("the coroutine suspended")


def starlette_form(body: bytes) -> list[tuple[str, str]]:
    """Starlette's Request.form(): python-multipart driven by Starlette's callbacks."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/2.0/mobip/send_payment_request",
        "headers": [
            (b"content-type", CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }

    async def form() -> list[tuple[str, str]]:
        data = await Request(scope, receive).form()
        return [(name, str(value)) for name, value in data.multi_items()]

    result: list[tuple[str, str]] = run_sync(form())
    return result


def ours(body: bytes) -> list[tuple[str, str]]:
    """mobip.api.formdata, Content-Type parsing included."""
    return parse_multipart(body, boundary_from_content_type(CONTENT_TYPE))


def ours_cold(body: bytes) -> list[tuple[str, str]]:
    """Ours when no part head was seen before (e.g. a first call, or unique file names)."""
    formdata._HEAD_NAMES.clear()
    return parse_multipart(body, boundary_from_content_type(CONTENT_TYPE))


def ours_fallback(body: bytes) -> list[tuple[str, str]]:
    """Our python-multipart fallback alone, for comparison."""
    return _parse_fallback(body, boundary_from_content_type(CONTENT_TYPE))


def load_multipart() -> Callable[[bytes], list[tuple[str, str]]] | None:
    """The `multipart` package's parser, or None when only python-multipart's shim is there."""
    with warnings.catch_warnings():
        # python-multipart ships a `multipart` shim that warns on import.
        warnings.simplefilter("ignore")
        try:
            module = importlib.import_module("multipart")
        except ImportError:
            return None
    if not hasattr(module, "PushMultipartParser"):
        return None

    def parse(body: bytes) -> list[tuple[str, str]]:
        parser = module.MultipartParser(BytesIO(body), BOUNDARY, content_length=len(body))
        return [(part.name, part.value) for part in parser]

    return parse


def time_per_call(func: Callable[[bytes], object], body: bytes) -> float:
    """Best-of-5 µs per call, each round running for at least 0.2 s."""
    timer = timeit.Timer(lambda: func(body))
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def main() -> None:
    body = build_body()
    candidates: list[tuple[str, Callable[[bytes], list[tuple[str, str]]]]] = [
        ("python-multipart via Starlette Request.form()", starlette_form),
        ("mobip parse_multipart (fast path)", ours),
        ("mobip parse_multipart, cold head cache", ours_cold),
        ("mobip fallback alone (python-multipart)", ours_fallback),
    ]
    defnull = load_multipart()
    if defnull is None:
        print("skipped: the `multipart` package is not installed (pip install multipart)")
    else:
        candidates.append(("multipart package (MultipartParser)", defnull))

    for label, func in candidates:
        if func(body) != FIELDS:
            raise SystemExit(f"{label} parsed the body differently: {func(body)!r}")

    print(f"body: {len(FIELDS)} fields, {len(body)} bytes; Python {sys.version.split()[0]}")
    timings = [(label, time_per_call(func, body)) for label, func in candidates]
    reference = timings[0][1]
    for label, micros in timings:
        print(f"{label:<48} {micros:9.1f} µs   x{reference / micros:5.1f} vs python-multipart")


if __name__ == "__main__":
    main()
