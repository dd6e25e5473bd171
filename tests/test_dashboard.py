"""The dashboard over real HTTP: sessions (cookie attributes, idle and absolute lifetime, bound,
sign-out), the CSRF token and Origin check of every POST, unreadable forms and non-ASCII numbers
(400, never a 500), the sign-in throttle (concurrent guesses, per address), security headers,
the live fragments (`?partial=1`) and the redirects and 401s without a session.

One real LDK node with the LSP role and a push outbox (a module-scoped fixture on the module's
loop); each test builds its own admin app on it (`create_app`, as `lsp-node run` does) and serves
it on a real loopback socket, so each test has its own sessions and throttle."""

from __future__ import annotations

import asyncio
import html
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from yarl import URL

from lsp_node import admin
from lsp_node.app import LspRole
from lsp_node.config import AdminSettings, LspSettings, NotificationSettings, Settings
from lsp_node.dashboard.render import msat, sat
from lsp_node.dashboard.state import COOKIE, DASHBOARD
from lsp_node.engine import LightningNode
from lsp_node.monitor.samples import SampleStore
from lsp_node.monitor.summary import summary

from .lightningrod_net import own_chain

pytestmark = pytest.mark.asyncio(loop_scope="module")

PAGES = ["/", "/channels", "/holds", "/holds?state=held", "/mailbox", "/devices", "/payments"]
NODE = "02" + "ab" * 32


@dataclass
class World:
    node: LightningNode
    role: LspRole
    samples: SampleStore
    tmp: Path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tmp = tmp_path_factory.mktemp("dashboard")
    async with own_chain(tmp) as (chain, make_node):
        node = await make_node("lsp", accept_intercept_htlcs=True)
        await chain.fund(node, 1_000_000)
        notifications = NotificationSettings(templates={"webhook": "json://127.0.0.1:9/push/{device}"})
        role = await LspRole.start(node, tmp / "lsp", LspSettings(), notifications)
        samples = SampleStore(tmp / "monitor.sqlite")
        now = time.time()
        for i, ts in enumerate((now - 120, now - 60, now)):
            samples.record(ts, {"onchain_sat": 1_000_000.0 - i * 1000, "held_htlcs": float(i)})
        try:
            yield World(node, role, samples, tmp)
        finally:
            samples.close()
            await role.stop()


@dataclass
class Dash:
    url: str
    token: str
    app: web.Application
    http: aiohttp.ClientSession

    async def get(self, path: str, **kw: Any) -> tuple[int, dict[str, str], str]:
        async with self.http.get(self.url + path, allow_redirects=False, **kw) as r:
            return r.status, dict(r.headers), await r.text()

    async def post(
        self, path: str, data: Any = None, *, origin: str | None = "own", **kw: Any
    ) -> tuple[int, dict[str, str], str]:
        headers = dict(kw.pop("headers", {}))
        if origin == "own":
            headers["Origin"] = self.url
        elif origin is not None:
            headers["Origin"] = origin
        async with self.http.post(self.url + path, data=data, headers=headers, allow_redirects=False, **kw) as r:
            return r.status, dict(r.headers), await r.text()

    async def sign_in(self) -> str:
        status, headers, _ = await self.post("/login", {"token": self.token})
        assert status == 303 and headers["Location"] == "/", status
        return await self.csrf()

    async def csrf(self) -> str:
        status, _, body = await self.get("/channels")
        assert status == 200
        m = re.search(r'name="csrf" value="([^"]+)"', body)
        assert m is not None
        return m.group(1)

    def session_count(self) -> int:
        return len(self.app[DASHBOARD].sessions)


DashFactory = Callable[..., Awaitable[Dash]]


@pytest_asyncio.fixture(loop_scope="module")
async def make_dash(world: World) -> AsyncIterator[DashFactory]:
    runners: list[web.AppRunner] = []
    sessions: list[aiohttp.ClientSession] = []

    async def make(**admin_settings: Any) -> Dash:
        token = secrets.token_urlsafe(32)
        settings = Settings(admin=AdminSettings(**admin_settings))
        ops = admin.Ops(world.node, world.role.service, world.role.notifier, settings, world.samples)
        app = admin.create_app(ops, token)
        runner, url = await admin.serve(app, "127.0.0.1:0")
        runners.append(runner)
        # unsafe=True: aiohttp's client keeps no cookies of a bare IP address otherwise.
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        sessions.append(http)
        return Dash(url, token, app, http)

    yield make
    for s in sessions:
        await s.close()
    for r in runners:
        await r.cleanup()


def assert_hardened(headers: dict[str, str], *, data: bool = True) -> None:
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    if data:
        assert headers["Cache-Control"] == "no-store"


async def test_without_a_session_pages_redirect_to_login_and_fragments_answer_401(make_dash: DashFactory) -> None:
    d = await make_dash()
    for path in [*PAGES, "/holds/" + "ab" * 16]:
        status, headers, _ = await d.get(path)
        assert (status, headers.get("Location")) == (303, "/login"), path
        assert_hardened(headers)
        sep = "&" if "?" in path else "?"
        status, headers, body = await d.get(path + sep + "partial=1")
        assert status == 401 and "sign in" in body, path
    # A forged cookie is no session.
    status, headers, _ = await d.get("/", cookies={COOKIE: "x" * 43})
    assert (status, headers.get("Location")) == (303, "/login")
    # The login page and the static files need no session.
    status, headers, body = await d.get("/login")
    assert status == 200 and 'name="token"' in body and 'type="password"' in body
    assert_hardened(headers)
    for f in ("/static/dashboard.css", "/static/live.js"):
        status, headers, _ = await d.get(f)
        assert status == 200
        assert_hardened(headers, data=False)
    # A page that does not exist is a 404 page, session or not.
    status, headers, body = await d.get("/nope")
    assert status == 404 and "<h1>404 Not Found</h1>" in body


async def test_sign_in_sets_a_strict_httponly_session_cookie_and_never_the_token(
    make_dash: DashFactory, world: World
) -> None:
    d = await make_dash()
    status, headers, body = await d.post("/login", {"token": d.token[:-1] + "x"})
    assert status == 401 and "Wrong admin token." in body and "Set-Cookie" not in headers
    status, headers, body = await d.post("/login", {"token": ""})
    assert status == 401
    status, headers, _ = await d.post("/login", {"token": d.token})
    assert (status, headers["Location"]) == (303, "/")
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert attr in cookie, cookie
    assert "Secure" not in cookie  # served over plain http here; Secure only over https
    sid = cookie.split(";")[0].split("=", 1)[1]
    assert len(sid) >= 40 and sid != d.token and d.token not in cookie
    # Signed in, every page renders, says no-store, and never shows the token.
    for path in PAGES:
        status, headers, body = await d.get(path)
        assert status == 200, (path, body[:300])
        assert_hardened(headers)
        assert d.token not in body
        assert 'id="live"' in body and "/static/live.js" in body
    status, _, body = await d.get("/")
    assert world.node.node_id in body
    # The login page sends a signed-in person to the overview.
    status, headers, _ = await d.get("/login")
    assert (status, headers["Location"]) == (303, "/")


async def test_partial_answers_the_live_region_alone(make_dash: DashFactory, world: World) -> None:
    d = await make_dash()
    await d.sign_in()
    for path in PAGES:
        sep = "&" if "?" in path else "?"
        status, headers, body = await d.get(path + sep + "partial=1")
        assert status == 200, path
        assert headers["Content-Type"].startswith("text/html")
        assert_hardened(headers)
        assert "<html" not in body and "<head" not in body and 'id="live"' not in body, path
    _, _, body = await d.get("/?partial=1")
    assert 'id="onchain-balance"' in body and "1,000,000 sat" in body
    assert body.count('<svg class="chart"') == 6
    # The recorded samples are drawn: the balance line (three points) and the held HTLCs' line.
    assert body.count("<polyline") == 2 and "on-chain 998k" in body
    _, _, body = await d.get("/holds?partial=1")
    assert 'id="no-holds"' in body


async def test_every_post_needs_the_csrf_token_and_this_origin(make_dash: DashFactory) -> None:
    d = await make_dash()
    csrf = await d.sign_in()
    form = {"node_id": NODE, "amount_sat": "100000", "csrf": csrf}
    cases: list[tuple[dict[str, str], dict[str, Any], str]] = [
        ({k: v for k, v in form.items() if k != "csrf"}, {}, "CSRF token is missing"),
        ({**form, "csrf": ""}, {}, "CSRF token is missing"),
        ({**form, "csrf": csrf[:-1] + ("a" if csrf[-1] != "a" else "b")}, {}, "CSRF token is wrong"),
        (form, {"origin": "http://evil.example"}, "another origin"),
        (form, {"origin": "null"}, "another origin"),
        (form, {"origin": d.url.replace("127.0.0.1", "localhost")}, "another origin"),
        (form, {"origin": None}, "needs an Origin or Referer"),
        (form, {"origin": None, "headers": {"Referer": "http://evil.example/channels"}}, "another origin"),
        (form, {"origin": None, "headers": {"Referer": d.url + ".evil.example/"}}, "another origin"),
    ]
    for data, kw, reason in cases:
        status, headers, body = await d.post("/channels/open", data, **kw)
        assert status == 403 and reason in body, (kw, body)
        assert_hardened(headers)
    # A JSON body is no form, whatever it carries.
    status, _, body = await d.post("/channels/open", json=form)
    assert status == 403 and "form post" in body
    # The same form with the token and a same-origin Referer (no Origin) passes the guard; the
    # node refuses the channel (no such peer) and the page says why.
    status, headers, _ = await d.post("/channels/open", form, origin=None, headers={"Referer": d.url + "/channels"})
    assert (status, headers["Location"]) == (303, "/channels")
    _, _, body = await d.get("/channels")
    assert 'class="flash error"' in body and "Open channel:" in body
    # Sign-in is checked for its Origin too (no session exists yet to carry a CSRF token).
    status, _, body = await d.post("/login", {"token": d.token}, origin="http://evil.example")
    assert status == 403 and "another origin" in body


async def test_a_post_without_a_session_is_refused_and_get_changes_nothing(make_dash: DashFactory) -> None:
    d = await make_dash()
    for path in ("/channels/open", "/channels/close", "/mailbox/purge", "/logout", "/holds/" + "ab" * 16 + "/fail"):
        status, _, body = await d.post(path, {"csrf": "x"})
        assert status == 403 and "not signed in" in body, path
    csrf = await d.sign_in()
    # Actions answer POST only; a GET (a link, an <img>) cannot trigger one.
    for path in ("/channels/open", "/logout", "/mailbox/purge", "/outbox/1/retry"):
        status, _, _ = await d.get(path)
        assert status == 405, path
    assert (await d.get("/"))[0] == 200  # still signed in after GET /logout
    assert csrf


async def test_sign_out_ends_the_session(make_dash: DashFactory) -> None:
    d = await make_dash()
    csrf = await d.sign_in()
    old_cookie = {COOKIE: d.http.cookie_jar.filter_cookies(URL(d.url))[COOKIE].value}
    status, _, _ = await d.post("/logout", {})
    assert status == 403  # no CSRF token
    assert d.session_count() == 1
    status, headers, _ = await d.post("/logout", {"csrf": csrf})
    assert (status, headers["Location"]) == (303, "/login")
    assert d.session_count() == 0
    # The old cookie, replayed, is no session.
    status, headers, _ = await d.get("/", cookies=old_cookie)
    assert (status, headers["Location"]) == (303, "/login")


async def test_sessions_expire_when_idle_or_old_and_are_bounded(make_dash: DashFactory) -> None:
    d = await make_dash(session_idle_secs=60, session_ttl_secs=600, max_sessions=2)
    sessions = d.app[DASHBOARD].sessions
    now = [1000.0]
    sessions.clock = lambda: now[0]
    await d.sign_in()
    now[0] += 59
    assert (await d.get("/"))[0] == 200
    now[0] += 61
    status, headers, _ = await d.get("/")
    assert (status, headers["Location"]) == (303, "/login")
    await d.sign_in()
    for _ in range(10):
        now[0] += 55
        assert (await d.get("/"))[0] == 200
    now[0] += 55  # 605 s after sign-in: past the absolute lifetime though never idle
    assert (await d.get("/"))[0] == 303
    # Two sessions at most: a third sign-in ends the least recently used.
    others = []
    for _ in range(2):
        jar = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        others.append(jar)
        async with jar.post(d.url + "/login", data={"token": d.token}, headers={"Origin": d.url}) as r:
            assert r.status == 200  # followed the redirect to the overview
    try:
        async with others[0].get(d.url + "/", allow_redirects=False) as r:
            assert r.status == 200
        await d.sign_in()  # the third: others[1] was used least recently
        assert d.session_count() == 2
        async with others[1].get(d.url + "/", allow_redirects=False) as r:
            assert r.status == 303
    finally:
        for jar in others:
            await jar.close()


async def test_failed_sign_ins_are_throttled_per_address(make_dash: DashFactory) -> None:
    d = await make_dash(login_max_failures=3)
    for _ in range(3):
        status, _, _ = await d.post("/login", {"token": "wrong-" + "x" * 40})
        assert status == 401
    # Even the right token waits now: guessing is bounded, not just slowed.
    status, headers, body = await d.post("/login", {"token": d.token})
    assert status == 429 and "Too many failed sign-ins" in body
    assert 0 < int(headers["Retry-After"]) <= 60
    assert "Set-Cookie" not in headers
    # The throttle counts per address and refills: a minute later one more try is allowed.
    limiter = d.app[DASHBOARD].limiter
    limiter.clock = (lambda base: lambda: base + 61)(limiter.clock())
    await d.sign_in()


async def test_the_api_ignores_the_dashboard_cookie(make_dash: DashFactory) -> None:
    d = await make_dash()
    await d.sign_in()
    async with d.http.get(d.url + "/api/info") as r:
        assert r.status == 401  # a session cookie is not the bearer token
    async with d.http.post(d.url + "/api/newaddress", headers={"Origin": d.url}) as r:
        assert r.status == 401
    async with d.http.get(d.url + "/api/info", headers={"Authorization": f"Bearer {d.token}"}) as r:
        assert r.status == 200 and "Content-Security-Policy" not in r.headers


async def test_bad_input_gets_a_clear_4xx_and_is_escaped(make_dash: DashFactory) -> None:
    d = await make_dash()
    csrf = await d.sign_in()
    for path, want, reason in [
        ("/holds?state=bogus", 400, "state must be one of"),
        ("/devices?state=<x>", 400, "state must be one of"),
        ("/payments?offset=-1", 400, "offset must be a whole number"),
        ("/payments?offset=99999999999", 400, "offset must be a whole number"),
        ("/payments?direction=sideways", 400, "direction must be one of"),
        ("/?window=1y", 400, "window must be one of"),
        ("/holds/" + "ab" * 16, 404, "no such hold"),
        ("/holds/<script>", 404, "no such hold"),
    ]:
        status, headers, body = await d.get(path)
        assert status == want and reason in body, (path, body[:300])
        assert "<x>" not in body and "<script>" not in body and "Traceback" not in body
    # A malformed form field is a message on the next page, escaped.
    for data, reason in [
        ({"node_id": "<script>alert(1)</script>", "amount_sat": "100000"}, "node id must be a 33-byte public key"),
        ({"node_id": NODE, "amount_sat": "12abc"}, "amount sat must be a whole number from 1,000 to 16,777,215"),
        ({"node_id": NODE, "amount_sat": "999"}, "amount sat must be a whole number"),
        ({"node_id": NODE, "amount_sat": "1" * 40}, "amount sat must be a whole number"),
        ({"node_id": NODE}, "amount sat is missing"),
        ({"node_id": NODE, "amount_sat": "100000", "address": "h:1/x?y"}, "address must be host:port"),
    ]:
        status, headers, _ = await d.post("/channels/open", {**data, "csrf": csrf})
        assert (status, headers["Location"]) == (303, "/channels")
        _, _, body = await d.get("/channels")
        assert reason in body, body[:2000]
        assert "<script>alert" not in body
    for path, data, reason in [
        ("/channels/close", {"channel_id": "zz"}, "channel id must be a channel id"),
        ("/channels/force-close", {}, "channel id is missing"),
        ("/mailbox/purge", {"client": "nobody"}, "client must be a client's node id"),
    ]:
        status, _, _ = await d.post(path, {**data, "csrf": csrf})
        assert status == 303
        _, _, body = await d.get("/channels" if "channel" in path else "/mailbox")
        assert reason in html.unescape(body), (path, body[:2000])
    # An oversized form is refused before it is read into the session's checks.
    status, _, body = await d.post("/channels/open", {"csrf": csrf, "pad": "x" * 100_000})
    assert status == 413
    # Unknown push and hold ids.
    status, _, _ = await d.post("/outbox/abc/retry", {"csrf": csrf})
    assert status == 404
    status, _, _ = await d.post("/holds/xyz/fail", {"csrf": csrf})
    assert status == 404


#: Bodies aiohttp's form parser cannot read, by content type.
UNREADABLE = [
    ("multipart/form-data", b"token=x"),  # no boundary
    ("multipart/form-data; boundary=zz", b"garbage"),
    ("multipart/form-data; boundary=zz", b"--zz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--zz--\r\n"),
    ("multipart/form-data; boundary=zz", b"--zz\r\nContent-Disposition: form-data; name=a\r\n\r\nx"),
    (
        "multipart/form-data; boundary=zz",
        b"--zz\r\nContent-Disposition: form-data; name=a\r\nContent-Transfer-Encoding: bogus\r\n\r\nx\r\n--zz--\r\n",
    ),
    ("multipart/form-data; boundary=zz", b"--zz\r\nContent-Disposition: form-data; name=a\r\n\r\n\xff\r\n--zz--\r\n"),
    ("application/x-www-form-urlencoded", b"token=\xff\xfe"),
    ("application/x-www-form-urlencoded; charset=bogus", b"token=a"),
]


async def test_an_unreadable_form_is_a_400_signed_in_or_not(
    make_dash: DashFactory, caplog: pytest.LogCaptureFixture
) -> None:
    d = await make_dash()
    for path in ("/login", "/channels/open"):
        if path != "/login":
            await d.sign_in()
        for content_type, body in UNREADABLE:
            status, headers, text = await d.post(path, body, headers={"Content-Type": content_type})
            assert status == 400 and text == "400 Bad Request: the form could not be read\n", (path, content_type)
            assert_hardened(headers)
    # None of them reached a handler's generic failure or aiohttp's 500 (a traceback in the log).
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.records
    # The form is bounded in size whatever its encoding: 413, before any field is looked at.
    for path, field in (("/channels/open", "csrf"), ("/login", "token")):
        big = aiohttp.FormData({field: "x", "pad": "x" * 100_000})
        big.add_field("file", b"y", filename="f.txt")  # a file field makes it multipart
        status, _, text = await d.post(path, big)
        assert status == 413 and "the form is too large" in text, path
    assert (await d.get("/"))[0] == 200  # still signed in; nothing broke


async def test_numbers_in_queries_paths_and_forms_are_ascii_digits(make_dash: DashFactory) -> None:
    d = await make_dash()
    csrf = await d.sign_in()
    # "²".isdigit() and "٣".isdigit() are true; int() refuses the first and reads the second as 3.
    for v in ("\u00b2", "\u0663", "\uff11", "1_0", " 1", "+1"):
        for page in ("/payments", "/holds", "/devices"):
            status, _, body = await d.get(page, params={"offset": v})
            assert status == 400 and "offset must be a whole number" in body, (page, v)
        status, _, _ = await d.post(f"/outbox/{v}/retry", {"csrf": csrf})
        assert status == 404, v
    # A form's amount may group its digits ("100,000", "100_000"), in ASCII digits only.
    for v in ("\u00b2", "\u0663", "\uff11"):
        status, _, _ = await d.post("/channels/open", {"node_id": NODE, "amount_sat": v + "00000", "csrf": csrf})
        assert status == 303
        _, _, body = await d.get("/channels")
        assert "amount sat must be a whole number from 1,000 to 16,777,215" in body, (v, body[:2000])
    assert (await d.get("/payments?offset=50"))[0] == 200


async def test_concurrent_guesses_cannot_outrun_the_throttle(make_dash: DashFactory) -> None:
    d = await make_dash(login_max_failures=5)

    async def slow_body(i: int) -> AsyncIterator[bytes]:
        # The headers go first, the form a moment later (chunked): every request is in the
        # server, waiting for its form, before any of them has been answered.
        yield b"token=wrong-"  # aiohttp's client sends the headers with the first chunk
        await asyncio.sleep(0.2)
        yield f"{i:02d}{'x' * 40}".encode()

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    results = await asyncio.gather(*(d.post("/login", slow_body(i), headers=form) for i in range(40)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses.count(401) == 5 and statuses.count(429) == 35, statuses


async def sign_in_from(d: Dash, ip: str, token: str) -> int:
    """POST /login over a connection from `ip` (any 127.x address reaches the loopback listener)."""
    connector = aiohttp.TCPConnector(local_addr=(ip, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        data = {"token": token}
        async with http.post(d.url + "/login", data=data, headers={"Origin": d.url}, allow_redirects=False) as r:
            return r.status


async def test_a_guesser_cannot_lock_out_the_operator_at_another_address(make_dash: DashFactory) -> None:
    d = await make_dash(login_max_failures=2)
    # Guesses from eleven addresses: more failures in all than ten times one address's tries.
    for i in range(2, 13):
        got = [await sign_in_from(d, f"127.0.0.{i}", "wrong-" + "x" * 40) for _ in range(3)]
        assert got == [401, 401, 429], (i, got)
    # Each guessing address waits, even with the right token ...
    assert await sign_in_from(d, "127.0.0.2", d.token) == 429
    # ... and the operator's address does not.
    assert await sign_in_from(d, "127.0.0.1", d.token) == 303


async def test_the_overview_shows_the_summarys_numbers(make_dash: DashFactory, world: World) -> None:
    d = await make_dash()
    await d.sign_in()
    numbers = await summary(d.app[DASHBOARD].ops)
    _, _, body = await d.get("/?partial=1")
    for tile, want in [
        ("onchain-balance", sat(numbers["onchain_sat"])),
        ("outbound", msat(numbers["outbound_msat"])),
        ("inbound", msat(numbers["inbound_msat"])),
    ]:
        m = re.search(rf'id="{tile}">([^<]*)<', body)
        assert m is not None and m.group(1) == want, tile
    usable = sum(c.is_usable for c in world.node.channels())
    assert f"{usable} of {numbers['channels']} channel" in body
