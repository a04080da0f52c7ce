"""The customer journey in a real browser against the whole local platform.

``mvno-local up`` runs every service, the simulators and the development issuer as processes; a
headless Chromium (Debian's, driven by Playwright) signs a demo customer in, orders an eSIM,
watches its provisioning progress arrive live until completed, opens the QR code, buys a data
bundle for the new line and suspends the line, on a desktop and on a phone-sized screen. Screenshots land in tests/e2e/artifacts/.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from mvno.devstack.components import ALL
from mvno.devstack.infrastructure import free_port, port_in_use

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 860}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
}


def _free_offset() -> int:
    for _ in range(50):
        offset = free_port() % 14000 + 10000
        if all(not port_in_use(port + offset) for port in (4566, *(c.default_port for c in ALL))):
            return offset
    raise RuntimeError("no free port range")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The whole platform as processes; yields portal-api's base URL."""
    data_dir = tmp_path_factory.mktemp("portal-platform")
    offset = _free_offset()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "AWS_ENDPOINT_URL"}}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("mvno-local")), "up", "--data-dir", str(data_dir),
         "--port-offset", str(offset)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        assert process.stdout is not None
        while True:
            line = process.stdout.readline()
            lines.append(line)
            if "Press Ctrl-C to stop" in line:
                break
            if (not line and process.poll() is not None) or time.monotonic() > deadline:
                raise AssertionError("the platform did not come up:\n" + "".join(lines))
        yield f"http://127.0.0.1:{8000 + offset}"
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=90)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    if not HAVE_CHROMIUM:
        pytest.fail("Debian's chromium is needed: apt-get install -y chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        await launched.close()


@pytest.mark.parametrize("screen", ["desktop", "phone"])
async def test_order_an_esim_watch_it_live_see_the_qr_code_and_suspend_the_line(
    platform: str, browser: object, screen: str
) -> None:
    from playwright.async_api import Browser, expect

    assert isinstance(browser, Browser)
    shots = ARTIFACTS / screen
    shots.mkdir(parents=True, exist_ok=True)
    customer = f"e2e-{screen}-{uuid.uuid4().hex[:8]}"
    context = await browser.new_context(**VIEWPORTS[screen])  # type: ignore[arg-type]
    page = await context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    try:
        await page.goto(platform + "/")
        await page.get_by_label("Customer id").fill(customer)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="My lines")).to_be_visible()
        await expect(page.get_by_text("You have no lines yet")).to_be_visible()
        await page.screenshot(path=shots / "01-signed-in.png", full_page=True)

        await page.get_by_role("navigation").get_by_role("button", name="Buy").click()
        await expect(page.get_by_label("Starter pack")).to_contain_text("eSIM")
        await page.get_by_label("Starter pack").select_option("starter-esim")
        await page.get_by_label("Full name").fill("Thandi Nkosi")
        await page.get_by_label("South African ID number").fill("8001015009087")
        await page.get_by_label("Street address").fill("1 Main Road")
        await page.get_by_label("City").fill("Cape Town")
        await page.get_by_label("Postal code").fill("8001")
        await page.locator("#bank-account").fill("1234567890")
        await page.screenshot(path=shots / "02-order-form.png", full_page=True)
        await page.get_by_role("button", name="Order", exact=True).click()

        state = page.locator("#progress-state")
        await expect(state).to_have_attribute("data-state", "completed", timeout=90_000)
        await expect(state).to_contain_text("Done")
        steps = await page.locator("#progress-steps li").all_text_contents()
        assert steps[0] == "Received", steps
        assert steps[-1] == "Done", steps
        await page.screenshot(path=shots / "03-progress-completed.png", full_page=True)

        await page.get_by_role("button", name="Show the eSIM QR code").click()
        qr = page.get_by_role("img", name="QR code of your eSIM activation code")
        await expect(qr).to_be_visible()
        assert (await qr.get_attribute("src") or "").startswith("data:image/svg+xml")
        # The browser decoded and drew the SVG (a broken image has no natural width).
        await page.wait_for_function(
            "() => { const i = document.getElementById('esim-qr'); "
            "return i.complete && i.naturalWidth > 0; }"
        )
        code = await page.locator("#esim-code").text_content()
        assert code is not None
        assert code.startswith("LPA:1$")
        await page.screenshot(path=shots / "04-esim-qr.png", full_page=True)
        await page.get_by_role("button", name="Done").click()

        # A data bundle for the new line, followed live too.
        await page.get_by_role("navigation").get_by_role("button", name="Buy").click()
        await expect(page.get_by_label("Line", exact=True)).to_contain_text("+27")
        await page.get_by_label("What to buy").select_option("data-1gb-30d")
        await page.locator("#bundle-account").fill("1234567890")
        await page.get_by_role("button", name="Buy for this line").click()
        await expect(state).to_contain_text("Bundle", timeout=30_000)
        await expect(state).to_have_attribute("data-state", "completed", timeout=60_000)
        await page.screenshot(path=shots / "05-bundle-completed.png", full_page=True)

        # The new line, then suspend it as lost (the browser's confirm dialog accepted).
        await page.get_by_role("navigation").get_by_role("button", name="My lines").click()
        card = page.locator("#lines > li")
        await expect(card).to_have_count(1)
        await expect(card).to_contain_text("active")
        # billing-sync opened the bundle's bucket; the line shows it (a balance copy is asked
        # for again at most 30 s later, so look again until then).
        deadline = time.monotonic() + 45
        while "1024 MB" not in (await card.text_content() or ""):
            assert time.monotonic() < deadline, await card.text_content()
            await asyncio.sleep(2)
            await page.get_by_role("navigation").get_by_role("button", name="My lines").click()
        page.once("dialog", lambda dialog: dialog.accept())
        await card.get_by_role("button", name="Suspend").click()
        await expect(state).to_have_attribute("data-state", "completed", timeout=60_000)
        await page.get_by_role("navigation").get_by_role("button", name="My lines").click()
        await expect(card).to_contain_text("suspended")
        await page.screenshot(path=shots / "06-line-suspended.png", full_page=True)

        # The code is the owner's only: another customer gets 404 for that very line.
        line_id = await card.get_attribute("data-line")
        async with httpx.AsyncClient(base_url=platform, timeout=10) as api:
            other = await api.post("/portal/v1/demo/session", json={"customerId": customer + "-x"})
            headers = {"Authorization": f"Bearer {other.json()['accessToken']}"}
            assert (
                await api.get(f"/portal/v1/lines/{line_id}/esim", headers=headers)
            ).status_code == 404
        assert console_errors == []
    finally:
        await context.close()
