"""The visual and accessibility checks every page and e-mail is held to, in Debian's Chromium
(Playwright; the browser comes from e2e/conftest.py's fixtures).

- ``viewport_context``: a browser context at a phone's 412x900 (``PHONE``) or a desktop's
  1280x800 (``DESKTOP``), with the pages' CSP bypassed so that axe-core can be injected;
- ``screenshot``: a full-page PNG kept as a test artifact, ``<test name>-<width>.png`` in
  ``artifacts_dir()`` (``artifacts/screenshots/`` at the repository's root, or
  ``$MOBIP_ARTIFACTS_DIR/screenshots/``);
- ``assert_no_horizontal_overflow``: the page is no wider than the viewport and no visible
  element's box reaches past its right edge (unless a scrolling or clipping box holds it);
- ``assert_bottom_within``: an element ends within the first N pixels of the page;
- ``assert_accessible``: axe-core (vendored in e2e/vendor/, see its README.md) finds no serious
  or critical violation; the failure lists each one with its elements.

``check_page`` runs them all; docs/testing.md says how to use them and where the artifacts go.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page

REPOSITORY = Path(__file__).resolve().parents[2]
ARTIFACTS_ENV = "MOBIP_ARTIFACTS_DIR"
VENDOR = Path(__file__).parent / "vendor"
SERIOUS = frozenset({"serious", "critical"})


@dataclass(frozen=True)
class Viewport:
    name: str
    width: int
    height: int
    mobile: bool


PHONE = Viewport("phone", 412, 900, mobile=True)
DESKTOP = Viewport("desktop", 1280, 800, mobile=False)
VIEWPORTS = (PHONE, DESKTOP)


@contextmanager
def viewport_context(
    browser: Browser, viewport: Viewport, **options: Any
) -> Iterator[BrowserContext]:
    """A context at ``viewport``'s size (a phone: touch, mobile layout rules and a meta viewport
    honoured as a phone's browser does), CSP bypassed for axe; ``options`` go to new_context."""
    context = browser.new_context(
        viewport={"width": viewport.width, "height": viewport.height},
        is_mobile=viewport.mobile,
        has_touch=viewport.mobile,
        bypass_csp=True,
        **({"locale": "en-GB"} | options),
    )
    try:
        yield context
    finally:
        context.close()


# --- screenshots ----------------------------------------------------------------------------------


def artifacts_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where test artifacts go: $MOBIP_ARTIFACTS_DIR, else artifacts/ at the repository's root."""
    configured = environ.get(ARTIFACTS_ENV, "")
    return Path(configured) if configured else REPOSITORY / "artifacts"


def screenshot_path(test_name: str, width: int, environ: Mapping[str, str] = os.environ) -> Path:
    """``screenshots/<test name>-<width>.png`` under the artifacts folder; a parametrized test's
    ids are kept (``test_x[EN-412]`` → ``test_x-EN-412``), anything unsafe in a file name is _."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name).strip("-.") or "page"
    return artifacts_dir(environ) / "screenshots" / f"{name}-{width}.png"


def screenshot(page: Page, test_name: str) -> Path:
    """A full-page screenshot of ``page`` kept as an artifact; its path."""
    path = screenshot_path(test_name, page_width(page))
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def page_width(page: Page) -> int:
    size = page.viewport_size
    assert size is not None, "the context has no fixed viewport"
    return int(size["width"])


# --- layout ---------------------------------------------------------------------------------------

# Every visible element whose box reaches past the window's right edge (``width``), unless an
# ancestor that scrolls or clips horizontally (overflow-x not visible) holds it inside: a
# scrolling code block is fine, a table wider than the phone is not. (A phone's browser zooms out
# to show a page wider than itself: its layout viewport, innerWidth, then grows past ``width``.)
_OVERFLOWING = """
(width) => {
  const limit = width + 0.5;
  const describe = (el) => {
    let text = el.tagName.toLowerCase();
    if (el.id) text += '#' + el.id;
    if (typeof el.className === 'string' && el.className.trim())
      text += '.' + el.className.trim().split(/\\s+/).join('.');
    const words = (el.innerText || el.getAttribute('alt') || '').trim().slice(0, 40);
    return words ? `${text} "${words}"` : text;
  };
  const held = (node) => {
    for (let up = node.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== 'visible')
        return up.getBoundingClientRect().right <= limit;
    }
    return false;
  };
  const found = [];
  for (const el of document.body.querySelectorAll('*')) {
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    if (box.right > limit && !held(el))
      found.push(`${describe(el)}: right edge at ${Math.round(box.right)} px`);
  }
  // Text spilling out of its element's box (an unbroken URL): the box stays narrow, the text not.
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el || !el.getClientRects().length) continue;
    range.selectNodeContents(node);
    const right = range.getBoundingClientRect().right;
    if (right > limit && el.getBoundingClientRect().right <= limit && !held(node))
      found.push(`${describe(el)}: its text reaches ${Math.round(right)} px`);
  }
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    scrollX: window.scrollX,
    elements: found,
  };
}
"""


def overflow_report(page: Page) -> list[str]:
    """What makes ``page`` wider than its viewport (empty when nothing does)."""
    width = page_width(page)
    seen = page.evaluate(_OVERFLOWING, width)
    problems: list[str] = []
    if seen["scrollWidth"] > width:
        problems.append(f"the document is {seen['scrollWidth']} px wide in a {width} px window")
    if seen["innerWidth"] != width:
        problems.append(
            f"the page is laid out {seen['innerWidth']} px wide in a {width} px window: "
            "something is wider than the window, or <meta name=viewport "
            "content='width=device-width'> is missing (a phone then lays it out at 980 px)"
        )
    problems.extend(seen["elements"])
    return problems


def assert_no_horizontal_overflow(page: Page) -> None:
    """Nothing on ``page`` reaches past the viewport's right edge."""
    problems = overflow_report(page)
    assert not problems, f"{page.url} overflows {page_width(page)} px:\n" + "\n".join(
        f"  - {problem}" for problem in problems[:20]
    )


def assert_bottom_within(page: Page, locator: Locator, limit: int, what: str = "") -> None:
    """``locator``'s element ends within the first ``limit`` px of the page (scrolled to top)."""
    page.evaluate("() => window.scrollTo(0, 0)")
    box = locator.bounding_box()
    assert box is not None, f"{what or locator} is not visible"
    bottom = box["y"] + box["height"]
    assert bottom <= limit, (
        f"{what or locator} ends at {bottom:.0f} px, below the first {limit} px "
        f"at {page_width(page)} px wide"
    )


# --- accessibility --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AxeCore:
    version: str
    source: str


@cache
def axe_core(vendor: Path = VENDOR) -> AxeCore:
    """The vendored axe.min.js, checked against the version and digest its README.md states."""
    readme = (vendor / "README.md").read_text()
    version = readme.splitlines()[0].removeprefix("axe-core ").strip()
    data = (vendor / "axe.min.js").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert re.search(rf"^{digest}  axe\.min\.js$", readme, re.M), (
        f"{vendor / 'axe.min.js'} is not the file its README.md describes (sha256 {digest})"
    )
    source = data.decode()
    assert source.startswith(f"/*! axe v{version}"), f"axe.min.js is not axe-core {version}"
    return AxeCore(version, source)


def axe_violations(page: Page, impacts: frozenset[str] = SERIOUS) -> list[dict[str, Any]]:
    """axe-core's violations on ``page`` of one of ``impacts`` (every WCAG A/AA rule and axe's
    best practices run). A page opened with JavaScript off is checked as a copy (its DOM as it
    is, at its URL and size, its own scripts removed) in a context where axe can run."""
    if page.evaluate(_SCRIPTS_RUN):
        return _run_axe(page, impacts)
    with _copy_with_scripts(page) as copy:
        return _run_axe(copy, impacts)


def _run_axe(page: Page, impacts: frozenset[str]) -> list[dict[str, Any]]:
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(content=axe_core().source)
    results = page.evaluate(
        "async () => await window.axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in results["violations"] if v["impact"] in impacts]


# page.evaluate works with JavaScript off (through DevTools); a script element the page adds runs
# only with it on. (Nor do timers fire with it off, which axe.run needs.)
_SCRIPTS_RUN = """
() => {
  const script = document.createElement('script');
  script.textContent = 'window.__mobipScriptsRun = true';
  document.head.append(script);
  script.remove();
  return window.__mobipScriptsRun === true;
}
"""
_SCRIPT_ELEMENT = re.compile(r"<script\b[^>]*>.*?</script>", re.S | re.I)


@contextmanager
def _copy_with_scripts(page: Page) -> Iterator[Page]:
    """``page``'s current DOM, without its scripts, at its URL and viewport, in a new context
    with JavaScript on (its images and styles loaded from where the original's come from)."""
    browser = page.context.browser
    assert browser is not None
    html = _SCRIPT_ELEMENT.sub("", page.content())
    url = page.url
    context = browser.new_context(viewport=page.viewport_size, bypass_csp=True)
    try:
        copy = context.new_page()
        if url.startswith(("http://", "https://")):
            copy.route(url, lambda route: route.fulfill(content_type="text/html", body=html))
            copy.goto(url)
        else:
            copy.set_content(html)
        yield copy
    finally:
        context.close()


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']} "
            f"[{violation['helpUrl']}]"
        )
        for node in violation["nodes"][:5]:
            target = " ".join(str(part) for part in node["target"])
            summary = " ".join(str(node.get("failureSummary") or "").split())
            lines.append(f"    {target}: {summary}")
        if len(violation["nodes"]) > 5:
            lines.append(f"    … and {len(violation['nodes']) - 5} more elements")
    return "\n".join(lines)


def assert_accessible(page: Page) -> None:
    """axe-core finds no serious or critical violation on ``page``."""
    violations = axe_violations(page)
    assert not violations, (
        f"axe-core {axe_core().version}: serious or critical violations on {page.url} "
        f"at {page_width(page)} px:\n{describe_violations(violations)}"
    )


# --- all of it ------------------------------------------------------------------------------------


def check_page(page: Page, test_name: str) -> Path:
    """Screenshot, then no horizontal overflow and no serious or critical axe violation; the
    screenshot's path. (The screenshot comes first: a failing page is kept for looking at.)"""
    path = screenshot(page, test_name)
    assert_no_horizontal_overflow(page)
    assert_accessible(page)
    return path


@pytest.fixture(params=VIEWPORTS, ids=lambda viewport: viewport.name)
def each_viewport(request: pytest.FixtureRequest) -> Viewport:
    """Each of VIEWPORTS in turn (a module takes it as ``viewport = each_viewport``)."""
    viewport: Viewport = request.param
    return viewport
