"""Browser fixtures: Chromium from the Debian package driven by Playwright (`playwright install`
cannot download browsers here), the axe-core accessibility check, and screenshots kept under the
git-ignored tests/browser/artifacts/.

Chromium is installed when missing: as root with `apt-get install -y chromium`; otherwise the test
stops and says to run `sudo apt-get install -y chromium` (or to point MAILSTIFY_CHROMIUM at one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from mailstify_devstack.frontend import FRONTEND

ARTIFACTS = Path(__file__).parent / "artifacts"
AXE_SOURCE = FRONTEND / "node_modules" / "axe-core" / "axe.min.js"
AXE_ROUTE = "/__test__/axe.min.js"  # served by the test itself, same origin: the pages' CSP allows it
# What MACHINE-NOTES says Chromium needs here (as root: no sandbox).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
FAILING_IMPACTS = ("serious", "critical")


def chromium_executable() -> str:
    configured = os.environ.get("MAILSTIFY_CHROMIUM")
    found = configured or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.fail(
            "the browser tests need Chromium from the Debian package: run `sudo apt-get install -y chromium`"
            " (or set MAILSTIFY_CHROMIUM to a Chromium binary), then run the tests again",
            pytrace=False,
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, capture_output=True)
    return shutil.which("chromium") or pytest.fail("apt-get installed chromium, but it is not on PATH", pytrace=False)


@pytest.fixture(scope="session")
async def chromium(web_frontend: Path) -> AsyncIterator[Browser]:
    executable = chromium_executable()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def new_context(chromium: Browser, mailstify_stack):
    """Makes fresh browser contexts (one per person) on the stack's gateway; closed after the test."""
    contexts: list[BrowserContext] = []

    async def make() -> BrowserContext:
        context = await chromium.new_context(
            base_url=mailstify_stack.gateway_url, viewport={"width": 1200, "height": 900}
        )
        await context.route(
            f"**{AXE_ROUTE}", lambda route: route.fulfill(path=AXE_SOURCE, content_type="text/javascript")
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


@dataclass
class Checker:
    """Screenshots each step and runs axe on every page it is shown."""

    directory: Path
    checked: list[str]

    async def step(self, page: Page, name: str) -> None:
        await self.accessible(page, name)
        await self._save(page, name, len(self.checked))

    async def snapshot(self, page: Page, name: str) -> None:
        """The screenshot alone, for a moment too short to run axe in first (`accessible` after)."""
        await self._save(page, name, len(self.checked) + 1)

    async def _save(self, page: Page, name: str, number: int) -> None:
        await page.screenshot(path=self.directory / f"{number:02d}-{name}.png", full_page=True)

    async def accessible(self, page: Page, name: str) -> None:
        self.checked.append(name)
        if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
            await page.add_script_tag(url=AXE_ROUTE)
        results = await page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        bad = [v for v in results["violations"] if v.get("impact") in FAILING_IMPACTS]
        described = "; ".join(
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}" for v in bad
        )
        assert not bad, f"axe found serious/critical problems on {name} ({page.url}): {described}"


@pytest.fixture
def checker(request: pytest.FixtureRequest) -> Checker:
    directory = ARTIFACTS / request.node.name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return Checker(directory, [])
