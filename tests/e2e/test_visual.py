"""The visual harness itself (e2e/visual.py): each check fails on a page that breaks its rule and
passes on one that keeps it, so a page test that passes means something."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from e2e.visual import (
    DESKTOP,
    PHONE,
    artifacts_dir,
    assert_accessible,
    assert_bottom_within,
    assert_no_horizontal_overflow,
    axe_core,
    axe_violations,
    overflow_report,
    screenshot,
    screenshot_path,
    viewport_context,
)

CLEAN = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Clean</title></head>
<body><main><h1>Hello</h1><p>Short words.</p>
<pre tabindex="0" style="overflow-x:auto">{wide}</pre>
<button type="button">Pay €59.88</button></main></body></html>"""


def html(body: str, head: str = '<meta name="viewport" content="width=device-width">') -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{head}<title>T</title>'
        f"</head><body><main>{body}</main></body></html>"
    )


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    with viewport_context(browser, PHONE) as context:
        yield context.new_page()


def test_a_clean_page_passes_every_check_and_a_scrolling_block_is_not_an_overflow(
    phone: Page,
) -> None:
    phone.set_content(CLEAN.format(wide="x" * 400))
    assert overflow_report(phone) == []
    assert_no_horizontal_overflow(phone)
    assert_accessible(phone)
    assert_bottom_within(phone, phone.get_by_role("button"), 900)


def test_a_wide_element_is_an_overflow_named_in_the_failure(phone: Page) -> None:
    phone.set_content(html('<table id="wide" style="width:560px"><tr><td>Total</td></tr></table>'))
    with pytest.raises(AssertionError) as failure:
        assert_no_horizontal_overflow(phone)
    assert "the document is 568 px wide in a 412 px window" in str(failure.value)
    assert 'table#wide "Total": right edge at 5' in str(failure.value)


def test_an_unbroken_url_overflows(phone: Page) -> None:
    phone.set_content(html("<p>https://example.com/" + "a" * 120 + "</p>"))
    assert any(
        problem.startswith('p "https://example.com/aaa') and "its text reaches" in problem
        for problem in overflow_report(phone)
    )


def test_a_page_without_a_meta_viewport_fails_on_a_phone(phone: Page) -> None:
    phone.set_content(html("<p>Hi</p>", head=""))
    [problem] = [p for p in overflow_report(phone) if "laid out" in p]
    assert re.match(r"the page is laid out 98\d px wide in a 412 px window", problem)


def test_an_element_below_the_limit_fails(phone: Page) -> None:
    phone.set_content(html('<div style="height:1000px"></div><button type="button">Pay</button>'))
    with pytest.raises(AssertionError, match=r"Pay button ends at 10\d\d px, below the first 900"):
        assert_bottom_within(phone, phone.get_by_role("button"), 900, "the Pay button")


def test_axe_reports_serious_and_critical_violations_readably(phone: Page) -> None:
    phone.set_content(
        html(
            '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="20" height="20">'
            '<p style="color:#9aa5b1;background:#f4f5f7">Low contrast</p>'
        )
    )
    found = {v["id"]: v["impact"] for v in axe_violations(phone)}
    assert found == {"image-alt": "critical", "color-contrast": "serious"}
    with pytest.raises(AssertionError) as failure:
        assert_accessible(phone)
    message = str(failure.value)
    assert "- image-alt (critical): Images must have alternative text" in message
    assert "- color-contrast (serious)" in message
    assert (
        "    p: Fix any of the following: Element has insufficient color contrast of 2.29"
        in message
    )


def test_axe_runs_under_a_page_csp_that_forbids_inline_scripts(browser: Browser) -> None:
    csp = '<meta http-equiv="Content-Security-Policy" content="script-src \'none\'">'
    with viewport_context(browser, DESKTOP) as context:
        page = context.new_page()
        page.set_content(html("<img src='data:,' width=4 height=4>", head=csp))
        assert [v["id"] for v in axe_violations(page)] == ["image-alt"]


def test_the_vendored_axe_is_the_one_its_readme_describes(tmp_path: Path) -> None:
    axe = axe_core()
    assert axe.version.startswith("4.")
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    readme = (Path(__file__).parent / "vendor" / "README.md").read_text()
    (vendor / "README.md").write_text(readme)
    (vendor / "axe.min.js").write_text(axe.source + "\n// changed")
    with pytest.raises(AssertionError, match=r"is not the file its README\.md describes"):
        axe_core.__wrapped__(vendor)


def test_screenshots_go_to_the_artifacts_folder_named_after_the_test_and_width(
    phone: Page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert artifacts_dir({}) == Path(__file__).resolve().parents[2] / "artifacts"
    assert artifacts_dir({"MOBIP_ARTIFACTS_DIR": "/x/y"}) == Path("/x/y")
    assert screenshot_path("test_pay[EN-sqlite]", 412, {"MOBIP_ARTIFACTS_DIR": "/a"}) == Path(
        "/a/screenshots/test_pay-EN-sqlite-412.png"
    )
    monkeypatch.setenv("MOBIP_ARTIFACTS_DIR", str(tmp_path))
    phone.set_content(html('<div style="height:2000px">tall</div>'))
    path = screenshot(phone, "test_tall")
    assert path == tmp_path / "screenshots" / "test_tall-412.png"
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (412, 2000 + 16)  # the whole page, not the first 900 px


def test_axe_runs_on_a_page_opened_with_javascript_off_without_running_its_scripts(
    browser: Browser,
) -> None:
    script = "<script>document.title = 'changed by a script'</script>"
    with viewport_context(browser, PHONE, java_script_enabled=False) as context:
        page = context.new_page()
        page.set_content(html(f"<img src='data:,' width=4 height=4>{script}"))
        assert [v["id"] for v in axe_violations(page)] == ["image-alt"]
        assert page.title() == "T"  # the page's own script never ran
        # and scripts are off again afterwards
        page.set_content(html(script))
        assert page.title() == "T"
