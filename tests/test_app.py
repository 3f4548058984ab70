from __future__ import annotations

import ast
import re
from pathlib import Path

from starlette.testclient import TestClient

from mobip.app import ENDPOINTS
from mobip.kit.errors import all_error_classes
from mobip.kit.migrate import head_revision

ROOT = Path(__file__).resolve().parents[1]


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}


def test_readyz_reports_a_schema_that_is_behind(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    from sqlalchemy import text

    def set_version(version: str) -> None:
        with runtime.database.transaction() as session:
            session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": version})

    head = head_revision(runtime.database.url)
    assert head is not None
    set_version("20261125_0001")
    try:
        reply = client.get("/readyz")
    finally:
        set_version(head)  # the PostgreSQL database is shared by the session's tests
    assert reply.status_code == 503
    assert reply.json()["error"] == "schema not current"


def test_openapi_lists_every_endpoint_with_its_fields(client: TestClient) -> None:
    spec = client.get("/api/2.0/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    for endpoint in ENDPOINTS:
        operation = spec["paths"][endpoint.full_path][endpoint.method.lower()]
        # GET operations take a multipart body too (the spec's form); `format` is everyone's.
        schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert set(schema["properties"]) == {f.name for f in endpoint.inputs} | {"format"}
        reply = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert {f.name for f in endpoint.outputs} <= set(reply["properties"])
    codes = {row["return_code"] for row in spec["x-error-codes"]}
    assert codes == {cls.return_code for cls in all_error_classes()}


SPEC_ROW = re.compile(
    r"^\| (GET|POST) \| `(/api/2\.0/\S+)` \| (Public|Restricted) \| ([^|]*) \| "
    r"(yes|no \(404\)) \|$",
    flags=re.M,
)


def _spec_endpoints() -> dict[tuple[str, str], tuple[str, list[str], bool]]:
    """docs/api.md's table of the spec's endpoints: (method, path) → access, inputs, served.

    The table is the project's copy of the specification's paths, methods and fields, so the
    check needs nothing outside the repository.
    """
    table = (ROOT / "docs/api.md").read_text()
    rows = {
        (method, path): (access, [n.strip() for n in inputs.split(",") if n.strip()], here == "yes")
        for method, path, access, inputs, here in SPEC_ROW.findall(table)
    }
    assert len(rows) == 21
    return rows


def test_spec_paths_and_methods_are_kept() -> None:
    spec = _spec_endpoints()
    # Our extensions (issue 12's management endpoints and fields) say so first in OpenAPI.
    ours = [endpoint for endpoint in ENDPOINTS if not endpoint.summary.startswith("Extension.")]
    served = {(endpoint.method, endpoint.full_path) for endpoint in ours}
    assert served == {key for key, (_, _, here) in spec.items() if here}
    for endpoint in ours:
        access, inputs, _ = spec[(endpoint.method, endpoint.full_path)]
        assert (endpoint.access == "restricted") == (access == "Restricted"), endpoint.name
        # Every field the spec lists is declared (so none is refused as unknown), no more, and
        # the required ones are the spec's.
        declared = [f for f in endpoint.inputs if not f.description.startswith("Extension.")]
        assert {f.name for f in declared} == {n.rstrip("*") for n in inputs}, endpoint.name
        assert {f.name for f in declared if f.required} == {
            n.rstrip("*") for n in inputs if n.endswith("*")
        }, endpoint.name


def test_docs_page_is_served_without_third_party_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "http" not in page.text.replace("/api/2.0", "")
    # The browser may load nothing from another host, nor run an inline script.
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "connect-src 'self';" in policy
    for asset in re.findall(r'(?:src|href)="(/docs/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200, asset
    bundle = client.get("/docs/static/swagger-ui-bundle.js").text
    # Swagger UI 5 reads OpenAPI 3.1 (4.15.5 showed "Unable to render this definition").
    assert re.search(r'PACKAGE_VERSION:"5\.\d+\.\d+"', bundle)
    init = client.get("/docs/init.js").text
    assert "/api/2.0/openapi.json" in init
    assert "validatorUrl: null" in init  # the default sends the document to another host


def _documented_codes() -> dict[str, int]:
    table = (ROOT / "docs/api.md").read_text()
    rows = re.findall(r"^\| (\d{4}) \| (\d{3}) \| (\w+) \|", table, flags=re.M)
    return {code: int(status) for code, status, _ in rows}


def _used_names() -> set[str]:
    """Names read anywhere in src/ (a raise, a call, or a table of errors to raise)."""
    names: set[str] = set()
    for path in (ROOT / "src/mobip").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                names.add(node.id)
    return names


def test_error_table_and_code_agree() -> None:
    classes = all_error_classes()
    codes = [cls.return_code for cls in classes]
    assert len(codes) == len(set(codes)), "return codes must be unique"
    documented = _documented_codes()
    assert {cls.return_code: cls.http_status for cls in classes} == documented
    used = _used_names()
    unused = [cls.__name__ for cls in classes if cls.__name__ not in used]
    assert unused == [], f"error classes never raised: {unused}"
    for cls in classes:
        assert (
            cls.return_code[0]
            == {
                400: "1",
                415: "1",
                401: "2",
                403: "3",
                404: "4",
                405: "4",
                410: "4",
                409: "5",
                422: "5",
                408: "6",
                413: "6",
                429: "7",
                500: "9",
                503: "9",
            }[cls.http_status]
        )
