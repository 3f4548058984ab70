"""docs/architecture.md's "Where things are" table says where every endpoint and page is handled;
this keeps it true: every route the app serves has its row, and every row names the function
that really handles it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route

from mobip.app import ENDPOINTS, create_app
from mobip.kit.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(
    r"^\| `(GET|POST) ([^`]+)`(?: \([^)]*\))? \| `([\w/.]+)` \| `(\w+)`(?: → `(\w+)`)?"
)
_NOT_HANDLERS = {"HEAD"}


def table() -> dict[tuple[str, str], tuple[str, str]]:
    """(method, path) → (module, function) from the table; nested functions as 'outer.inner'."""
    text = (ROOT / "docs/architecture.md").read_text()
    section = text.split("### Where things are", 1)[1].split("\n## ", 1)[0]
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    for line in section.splitlines():
        found = ROW.match(line)
        if found:
            method, path, file, outer, inner = found.groups()
            module = "mobip." + file.removesuffix(".py").replace("/", ".")
            function = f"{outer}.<locals>.{inner}" if inner else outer
            rows[(method, path)] = (module, function)
    return rows


def served(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str, Route]]:
    for route in routes:
        if isinstance(route, Mount) and route.path != "/pay/static" and route.routes:
            yield from served(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            for method in sorted((route.methods or set()) - _NOT_HANDLERS):
                yield method, prefix + route.path, route


def test_every_api_endpoint_is_in_the_table_with_its_handler() -> None:
    rows = table()
    for endpoint in ENDPOINTS:
        handler = endpoint.handler
        assert rows[(endpoint.method, endpoint.full_path)] == (
            handler.__module__,
            handler.__qualname__,
        )


def test_every_page_and_route_is_in_the_table_with_its_handler(runtime: Runtime) -> None:
    rows = table()
    api_paths = {endpoint.full_path for endpoint in ENDPOINTS}
    seen = set()
    for method, path, route in served(create_app(runtime).routes):
        if path in api_paths:
            continue  # every method reaches the API route (for the envelope's 405): checked above
        key = (method, path)
        assert key in rows, f"{method} {path} is not in docs/architecture.md's table"
        assert rows[key] == (route.endpoint.__module__, route.endpoint.__qualname__), key
        seen.add(key)
    pages = {key for key in rows if key[1] not in api_paths}
    assert pages == seen, "rows in the table that the app does not serve"
