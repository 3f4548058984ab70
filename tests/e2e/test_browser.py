"""e2e/browser.py: without Chromium the browser tests skip on a developer's machine, fail in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.browser import require_chromium


def test_missing_chromium_fails_under_ci_and_skips_elsewhere(tmp_path: Path) -> None:
    missing = tmp_path / "chromium"
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_chromium(missing, {"CI": "true"})
    with pytest.raises(pytest.skip.Exception):
        require_chromium(missing, {})
    require_chromium(Path(__file__), {"CI": "true"})  # present: nothing happens
