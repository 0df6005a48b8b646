"""A real browser for tests: Debian's Chromium driven by Playwright.

Playwright's own browser download cannot work offline, so the tests launch the system Chromium
(``apt-get install chromium``) through ``executable_path``. Where Chromium or Playwright is missing
the browser tests are skipped locally and fail under CI (``CI`` set), so CI cannot go green
without them.

    from tests.browser import chromium_page
    with chromium_page(screenshots=tmp_path) as page:
        page.goto("http://127.0.0.1:8888/")
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Without these flags Chromium keeps trying to reach Google's services, which a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """Path of the system Chromium, or None when it is not installed."""
    for candidate in (os.environ.get("CVKIT_CHROMIUM"), *CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def require_browser() -> str:
    """Chromium's path; skip the test when Chromium or Playwright is missing (fail under CI)."""
    missing = []
    path = chromium_path()
    if path is None:
        missing.append("Chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright (pip install playwright)")
    if missing:
        message = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must install it (ci/install.sh)")
        pytest.skip(message)
    return path


@contextlib.contextmanager
def chromium_page(screenshots: Path | None = None, width: int = 1280, height: int = 900) -> Iterator:
    """A Playwright page in headless Chromium; on an exception a screenshot goes to ``screenshots/failure.png``.

    Console errors are collected in ``page.console_errors`` (a list of strings).
    """
    path = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.console_errors = []
            page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
            page.on("pageerror", lambda e: page.console_errors.append(str(e)))
            try:
                yield page
            except BaseException:
                if screenshots is not None:
                    Path(screenshots).mkdir(parents=True, exist_ok=True)
                    with contextlib.suppress(Exception):
                        page.screenshot(path=str(Path(screenshots) / "failure.png"), full_page=True)
                raise
        finally:
            browser.close()
