"""The dashboard in a real browser: Debian's Chromium, headless, driven through chromedriver by
selenium, against LSP_a of a real LightningRod network (A -> LSP_a -> LSP_b -> B, the LSPs
`main.py` processes). A person signs in, sees the node id and balances, watches a held payment
appear and then settle without reloading, sees charts drawn from recorded samples, opens and
closes a channel with the page's form and buttons, and is refused without a session or from
another origin. Every page is saved as a PNG under the directory the test prints
($LSP_ARTIFACTS, default tests/artifacts/).

The tests share one network and one browser (module-scoped, on the module's event loop) and run
in file order. Selenium's calls block, so they run in a thread while the loop keeps serving the
in-process phones."""

from __future__ import annotations

import asyncio
import base64
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from lsp_node.dashboard.render import msat, sat

from .lightningrod_net import Net, build_net, own_chain, until

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parent.parent
WAIT = 30.0
T = TypeVar("T")


def artifacts_dir() -> Path:
    d = Path(os.environ.get("LSP_ARTIFACTS") or ROOT / "tests" / "artifacts") / "dashboard"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def shots() -> Path:
    d = artifacts_dir()
    print(f"\ndashboard screenshots: {d}")
    return d


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"the browser tests need Debian's chromium and chromium-driver ({', '.join(missing)} missing): "
            "`make browser` installs them (apt-get, as root); `make test` runs it first"
        )
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1360,900",
        "--force-device-scale-factor=1",
        "--lang=en-US",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, for failures
    # The driver's path is given, so selenium-manager has nothing to find or download.
    os.environ["SE_OFFLINE"] = "true"
    d = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    d.set_page_load_timeout(60)
    try:
        yield d
    finally:
        d.quit()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Net]:
    tmp = tmp_path_factory.mktemp("browser")
    # The LSPs (separate processes) record a sample every second, so the charts fill quickly.
    old = os.environ.get("LSP_MONITOR__SAMPLE_INTERVAL_SECS")
    os.environ["LSP_MONITOR__SAMPLE_INTERVAL_SECS"] = "1"
    try:
        async with own_chain(tmp) as (chain, make_node), build_net(chain, make_node, tmp) as n:
            yield n
    finally:
        if old is None:
            os.environ.pop("LSP_MONITOR__SAMPLE_INTERVAL_SECS", None)
        else:
            os.environ["LSP_MONITOR__SAMPLE_INTERVAL_SECS"] = old


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


def wait_for(d: WebDriver, cond: Callable[[WebDriver], Any], what: str, timeout: float = WAIT) -> Any:
    def safe(drv: WebDriver) -> Any:
        try:
            return cond(drv)
        except StaleElementReferenceException:
            return False  # the live region was swapped under us: look again

    try:
        return WebDriverWait(d, timeout, poll_frequency=0.2).until(safe)
    except WebDriverException as e:
        console = [entry.get("message") for entry in d.get_log("browser")][-10:]
        raise AssertionError(f"timed out waiting for {what} on {d.current_url}; the console said: {console}") from e


def text_of(d: WebDriver, css: str) -> str:
    """The text of the element, once it is there (a click's page may still be loading)."""
    el = wait_for(d, lambda x: (x.find_elements(By.CSS_SELECTOR, css) or [None])[0], css, 15)
    return str(el.text)


def flash_starting(d: WebDriver, start: str) -> str:
    """The message the page shows after a form post, once the new page is there."""

    def found(x: WebDriver) -> str | None:
        texts = [str(el.text) for el in x.find_elements(By.CSS_SELECTOR, ".flash")]
        return next((t for t in texts if t.startswith(start)), None)

    return str(wait_for(d, found, f"the message '{start}...'", 15))


def shot(d: WebDriver, directory: Path, name: str) -> Path:
    """A PNG of the whole page, beyond the window's height (Chrome's DevTools capture)."""
    size = d.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}
    data = d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    path = directory / f"{name}.png"
    path.write_bytes(base64.b64decode(data["data"]))
    return path


def mark_page(d: WebDriver) -> None:
    """A mark that a reload or navigation would wipe: seeing it later proves the page stayed."""
    d.execute_script("window.__dashboardMark = 'unchanged';")


def page_unchanged(d: WebDriver) -> bool:
    return bool(d.execute_script("return window.__dashboardMark === 'unchanged';"))


def sign_in(d: WebDriver, url: str, token: str) -> None:
    """Sign in (or stay signed in: each test starts from the session the one before left)."""
    d.get(url + "/")
    if d.current_url == url + "/":
        return
    wait_for(d, lambda x: x.current_url == url + "/login", "the redirect to /login")
    d.find_element(By.ID, "token").send_keys(token)
    d.find_element(By.ID, "sign-in").click()
    wait_for(d, lambda x: x.current_url == url + "/", "the overview after sign-in")


def dash_url(net: Net) -> str:
    return net.lsp_a.admin.rstrip("/")


async def test_sign_in_and_see_the_node_id_and_balances(driver: WebDriver, net: Net, shots: Path) -> None:
    url, lsp = dash_url(net), net.lsp_a
    d = driver
    await in_thread(d.get, url + "/")
    assert d.current_url == url + "/login"  # no session: the sign-in page
    await in_thread(shot, d, shots, "login")
    d.find_element(By.ID, "token").send_keys("not-the-token-" + "x" * 40)
    await in_thread(d.find_element(By.ID, "sign-in").click)
    assert "Wrong admin token." in text_of(d, "#login-error")
    await in_thread(sign_in, d, url, lsp.token)
    info = await lsp.api("GET", "/api/info")
    assert text_of(d, "#node-id") == lsp.node_id == info["node_id"]
    assert text_of(d, "#onchain-balance") == sat(info["balance"]["total_sat"])
    channels = await lsp.api("GET", "/api/channels")
    assert text_of(d, "#outbound") == msat(sum(c["outbound_capacity_msat"] for c in channels))
    assert text_of(d, "#inbound") == msat(sum(c["inbound_capacity_msat"] for c in channels))
    # The session cookie is HttpOnly: the page's scripts cannot read it.
    assert d.execute_script("return document.cookie") == ""
    await in_thread(d.get, url + "/channels")
    rows = d.find_elements(By.CSS_SELECTOR, "#channels tbody tr")
    assert len(rows) == len(channels) == 2
    await in_thread(shot, d, shots, "channels")


async def test_a_held_payment_appears_and_settles_without_a_reload(driver: WebDriver, net: Net, shots: Path) -> None:
    url, d = dash_url(net), driver
    await in_thread(d.get, url + "/holds")
    assert d.find_elements(By.ID, "no-holds")
    mark_page(d)

    request = await net.b.create_payment_request(25_000_000, "seen in the dashboard")
    await net.phone_offline("bob")
    held = await net.a.pay_with_hold(request)

    async def is_held() -> bool:
        return [h["state"] for h in await net.holds()] == ["held"]

    await until(is_held, "HTLC held at LSP_a")
    [hold] = await net.holds()
    row = f'#holds tr[data-hold-id="{hold["hold_id"]}"]'
    # The live region brings the hold in; the page itself was not reloaded.
    await in_thread(
        wait_for, d, lambda x: x.find_elements(By.CSS_SELECTOR, row + '[data-state="held"]'), "the held hold"
    )
    assert page_unchanged(d)
    assert "25,000 sat" in text_of(d, row)
    await in_thread(shot, d, shots, "holds")

    # Its page: the HTLC, the hop and the blocks left before fail-back.
    await in_thread(d.get, f"{url}/holds/{hold['hold_id']}")
    assert "held" in text_of(d, "#hold-state")
    blocks_left = int(text_of(d, "#blocks-left").replace(",", ""))
    assert 0 < blocks_left <= 1008
    assert len(d.find_elements(By.CSS_SELECTOR, "#hold-htlcs tbody tr")) == 1
    # The timeline gives the HTLC's amount as the rest of the page does (sat, digits grouped).
    timeline = text_of(d, "#timeline")
    assert "msat" not in timeline and re.search(r"\b25,[0-9]{3}(\.[0-9]{3})? sat in\b", timeline), timeline
    await in_thread(shot, d, shots, "hold")

    # The overview counts it while it is held.
    await in_thread(d.get, url + "/")
    assert text_of(d, "#held-htlcs") == "1"
    await in_thread(shot, d, shots, "overview-held")

    # Watch the held filter: B comes back, unblocks, the payment settles, the hold leaves the list.
    await in_thread(d.get, url + "/holds?state=held")
    assert d.find_elements(By.CSS_SELECTOR, row)
    mark_page(d)
    b = await net.restart_phone("bob")
    await b.wait_for("payment_received", payment_hash=held.payment_hash)
    await net.a.wait_for("payment_sent", payment_hash=held.payment_hash)

    async def is_settled() -> bool:
        return [h["state"] for h in await net.holds()] == ["settled"]

    await until(is_settled, "hold settled")
    await in_thread(wait_for, d, lambda x: not x.find_elements(By.CSS_SELECTOR, row), "the hold to leave the held list")
    assert d.find_elements(By.ID, "no-holds") and page_unchanged(d)
    await in_thread(d.get, url + "/holds")
    assert "settled" in text_of(d, row)


async def test_fail_back_a_held_payment_by_hand(driver: WebDriver, net: Net, shots: Path) -> None:
    url, d = dash_url(net), driver
    request = await net.b.create_payment_request(15_000_000, "failed back from the dashboard")
    await net.phone_offline("bob")
    held = await net.a.pay_with_hold(request)

    async def held_now() -> list[dict[str, Any]]:
        return [h for h in await net.holds() if h["state"] == "held"]

    await until(held_now, "the second payment held at LSP_a")
    [hold] = await held_now()
    await in_thread(d.get, f"{url}/holds/{hold['hold_id']}")
    assert "held" in text_of(d, "#hold-state")
    await in_thread(d.find_element(By.ID, "fail-hold").click)
    message = await in_thread(flash_starting, d, f"Hold {hold['hold_id'][:8]}")
    assert "1 HTLC returned to the payer; the hold is failed." in message, message
    assert "failed" in text_of(d, "#hold-state")
    assert not d.find_elements(By.ID, "fail-hold")  # an ended hold has no button
    failed = await net.a.wait_for("payment_failed", payment_hash=held.payment_hash)
    assert failed is not None
    assert {h["hold_id"]: h["state"] for h in await net.holds()}[hold["hold_id"]] == "failed"
    await net.restart_phone("bob")


async def test_charts_show_recorded_samples(driver: WebDriver, net: Net, shots: Path) -> None:
    url, d = dash_url(net), driver
    await in_thread(d.get, url + "/?window=15m")
    charts = d.find_elements(By.CSS_SELECTOR, "#charts svg.chart")
    assert len(charts) == 6

    def balance_line(x: WebDriver) -> Any:
        lines = x.find_elements(By.CSS_SELECTOR, "#charts figure:first-child svg polyline.series")
        return [pl for pl in lines if len((pl.get_attribute("points") or "").split()) >= 3]

    # Samples every second: the balances chart has lines of several points, redrawn live.
    await in_thread(wait_for, d, balance_line, "a balances line with samples")
    title = d.find_element(By.CSS_SELECTOR, "#charts figure:first-child svg title")
    assert title.get_attribute("textContent") == "Balances (sat)"
    # The held HTLC of the previous test is in the held-HTLCs chart: its peak is 1.
    held_chart = d.find_elements(By.CSS_SELECTOR, "#charts figure")[1]
    assert "no samples yet" not in held_chart.text
    await in_thread(shot, d, shots, "overview")


async def test_open_and_close_a_channel_from_the_page(driver: WebDriver, net: Net, shots: Path) -> None:
    url, d, lsp = dash_url(net), driver, net.lsp_a
    before = {c["channel_id"] for c in await lsp.api("GET", "/api/channels")}
    await in_thread(d.get, url + "/channels")
    d.find_element(By.ID, "open-node-id").send_keys(net.lsp_b.node_id)
    d.find_element(By.ID, "open-amount").send_keys("400,000")
    await in_thread(d.find_element(By.ID, "open-submit").click)
    await in_thread(flash_starting, d, "Opening a channel of 400,000 sat")

    async def opened() -> bool:
        return len(await lsp.api("GET", "/api/channels")) == len(before) + 1

    await until(opened, "the new channel")
    [new] = [c for c in await lsp.api("GET", "/api/channels") if c["channel_id"] not in before]
    row = f'#channels tr[data-channel-id="{new["channel_id"]}"]'
    await in_thread(wait_for, d, lambda x: x.find_elements(By.CSS_SELECTOR, row), "the new channel's row")
    mark_page(d)
    await until(lambda: len(net.chain.raw.mempool_txids()) > 0, "funding broadcast")
    net.chain.mine(6)
    for x in (net.lsp_a, net.lsp_b):
        await x.api("POST", "/api/sync")
    # Funding confirmed, then channel_ready both ways: slow on a loaded machine.
    await in_thread(
        wait_for, d, lambda x: x.find_elements(By.CSS_SELECTOR, row + '[data-state="usable"]'), "usable", 120
    )
    assert page_unchanged(d)
    assert "400,000 sat" in text_of(d, row)
    await in_thread(shot, d, shots, "channels-new")

    button = d.find_element(By.CSS_SELECTOR, row + " button.close-channel")
    await in_thread(button.click)
    await in_thread(flash_starting, d, "Closing channel")

    async def closed() -> bool:
        chans = await lsp.api("GET", "/api/channels")
        return all(c["channel_id"] != new["channel_id"] or c["state"] == "closing" for c in chans)

    await until(closed, "the channel closing")
    # The closing transaction confirms; the channel leaves the page.
    await until(lambda: len(net.chain.raw.mempool_txids()) > 0, "closing transaction broadcast")
    net.chain.mine(1)
    for x in (net.lsp_a, net.lsp_b):
        await x.api("POST", "/api/sync")
    await in_thread(wait_for, d, lambda x: not x.find_elements(By.CSS_SELECTOR, row), "the closed channel to go")
    assert {c["channel_id"] for c in await lsp.api("GET", "/api/channels")} == before


async def test_refused_without_a_session_or_from_another_origin(driver: WebDriver, net: Net, shots: Path) -> None:
    url, d = dash_url(net), driver
    await in_thread(d.get, url + "/channels")
    csrf = d.find_element(By.CSS_SELECTOR, '#open-channel input[name="csrf"]').get_attribute("value")
    assert csrf

    # A page of another origin (another port on this host) posts a form to the dashboard, even
    # with a leaked CSRF token: the browser sends the session cookie (same site) and its Origin,
    # and the dashboard refuses it.
    async def evil(request: web.Request) -> web.Response:
        form = (
            f'<form id="f" method="post" action="{url}/channels/open">'
            f'<input type="hidden" name="csrf" value="{csrf}">'
            f'<input type="hidden" name="node_id" value="{net.lsp_b.node_id}">'
            '<input type="hidden" name="amount_sat" value="100000">'
            '<button id="go" type="submit">go</button></form>'
        )
        return web.Response(text=f"<!doctype html><html><body>{form}</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", evil)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        evil_url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
        channels_before = len(await net.lsp_a.api("GET", "/api/channels"))
        await in_thread(d.get, evil_url)
        await in_thread(d.find_element(By.ID, "go").click)
        # The click only starts the navigation: wait for the dashboard's answer to replace the form.
        await in_thread(wait_for, d, lambda x: x.current_url.startswith(url + "/"), "the dashboard's answer")
        body = text_of(d, "body")
        assert "403 Forbidden" in body and "another origin" in body, body
        await in_thread(shot, d, shots, "refused-origin")
        assert len(await net.lsp_a.api("GET", "/api/channels")) == channels_before
    finally:
        await runner.cleanup()

    # A POST without the CSRF token, with the session's cookie and this origin, is refused too.
    cookie = {c["name"]: c["value"] for c in d.get_cookies()}
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        http.post(url + "/logout", data={}, headers={"Origin": url}, cookies=cookie, allow_redirects=False) as r,
    ):
        assert r.status == 403 and "CSRF token is missing" in await r.text()

    # Sign out from the page; then every page sends the browser to /login, and the live fragment
    # answers 401 (the page's script would go to /login).
    await in_thread(d.get, url + "/")
    await in_thread(d.find_element(By.ID, "sign-out").click)
    await in_thread(wait_for, d, lambda x: x.current_url == url + "/login", "the sign-in page")
    for path in ("/", "/channels", "/holds", "/mailbox", "/devices", "/payments"):
        await in_thread(d.get, url + path)
        assert d.current_url == url + "/login", path
    async with (
        aiohttp.ClientSession() as http,
        http.get(url + "/holds?partial=1", cookies=cookie, allow_redirects=False) as r,
    ):
        assert r.status == 401


async def test_every_page_renders_for_the_screenshots(driver: WebDriver, net: Net, shots: Path) -> None:
    url, d = dash_url(net), driver
    await in_thread(sign_in, d, url, net.lsp_a.token)
    for name, path in [
        ("mailbox", "/mailbox"),
        ("devices", "/devices"),
        ("payments", "/payments"),
        ("services", "/services"),
    ]:
        await in_thread(d.get, url + path)
        assert d.current_url == url + path
        assert "Traceback" not in d.page_source
        await in_thread(shot, d, shots, name)
    # The registered phones appear with their pushes.
    await in_thread(d.get, url + "/devices")
    assert len(d.find_elements(By.CSS_SELECTOR, "#devices tbody tr")) >= 1
