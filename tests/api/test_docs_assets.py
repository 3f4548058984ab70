"""The Swagger UI that /docs serves is our own copy: its files are the ones SOURCE.txt names,
of the version pinned there, and the package data takes them (an installed server has them)."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

from mobip.api.docs import SWAGGER_UI_DIR, SWAGGER_UI_VERSION

ROOT = Path(__file__).resolve().parents[2]


def _listed() -> dict[str, str]:
    """SOURCE.txt's digests: file name → sha256."""
    text = (SWAGGER_UI_DIR / "SOURCE.txt").read_text()
    return dict(
        (name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", text, re.M)
    )


def test_the_vendored_files_are_the_ones_source_txt_names() -> None:
    listed = _listed()
    present = {path.name for path in SWAGGER_UI_DIR.iterdir()} - {"SOURCE.txt"}
    assert set(listed) == present
    for name, digest in listed.items():
        assert hashlib.sha256((SWAGGER_UI_DIR / name).read_bytes()).hexdigest() == digest, name


def test_the_bundle_is_the_pinned_version_of_swagger_ui_5() -> None:
    assert re.fullmatch(r"5\.\d+\.\d+", SWAGGER_UI_VERSION)  # 5.x reads OpenAPI 3.1
    bundle = (SWAGGER_UI_DIR / "swagger-ui-bundle.js").read_text()
    assert f'PACKAGE_VERSION:"{SWAGGER_UI_VERSION}"' in bundle
    assert "Apache License" in (SWAGGER_UI_DIR / "LICENSE.txt").read_text()


def test_the_package_data_takes_every_vendored_file() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["mobip"]
    package = ROOT / "src/mobip"
    for path in SWAGGER_UI_DIR.iterdir():
        relative = path.relative_to(package)
        assert any(relative.match(pattern) for pattern in patterns), relative
