"""LSPS5 webhook POSTs against real local HTTP servers: the destination rules (scheme, loopback
and private addresses, names resolving to them, checked at send time), redirects not followed,
and the outbox's webhook rows (queued once per signature, posted, given up when refused)."""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from lsp_node.cli import tables
from lsp_node.notify import NotificationStore, Notifier, NotifierSettings, WebhookPolicy, post_webhook, redact_url
from lsp_node.notify.ids import client_tag
from lsp_node.notify.webhook import address_allowed

CLIENT = "02" + "11" * 32
BODY = '{"jsonrpc":"2.0","method":"lsps5.payment_incoming","params":{}}'
HEADERS = [
    ("Content-Type", "application/json"),
    ("x-lsps5-timestamp", "2030-01-01T00:00:00.000Z"),
    ("x-lsps5-signature", "sig-one"),
]
OPEN = WebhookPolicy(allow_http=True, allow_private_destinations=True, request_timeout_secs=5)
HTTP_ONLY = WebhookPolicy(allow_http=True, request_timeout_secs=5)


@dataclass
class Hook:
    """A webhook receiver on 127.0.0.1: /hook answers 200, /moved redirects to /hook."""

    port: int = 0
    posts: list[tuple[str, dict[str, str], str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.posts.append((request.path, dict(request.headers), await request.text()))
        if request.path == "/moved":
            raise web.HTTPFound("/hook")
        return web.Response(text="ok")

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}?secret=token"


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    h = Hook()
    app = web.Application()
    app.router.add_post("/{tail:.*}", h.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    h.port = runner.addresses[0][1]
    yield h
    await runner.cleanup()


async def test_loopback_is_refused_by_default_and_allowed_when_the_operator_says_so(hook: Hook) -> None:
    refused = await post_webhook(hook.url(), HEADERS, BODY, HTTP_ONLY)
    assert not refused.ok and refused.permanent and "non-public" in refused.error
    assert hook.posts == []

    sent = await post_webhook(hook.url(), HEADERS, BODY, OPEN)
    assert sent.ok and sent.status == 200
    [(path, headers, body)] = hook.posts
    assert path == "/hook" and body == BODY
    assert headers["x-lsps5-signature"] == "sig-one" and headers["Content-Type"] == "application/json"


async def test_http_is_refused_unless_allowed(hook: Hook) -> None:
    strict = WebhookPolicy(allow_private_destinations=True, request_timeout_secs=5)
    r = await post_webhook(hook.url(), HEADERS, BODY, strict)
    assert not r.ok and r.permanent and "http scheme" in r.error
    assert hook.posts == []


async def test_a_redirect_is_not_followed(hook: Hook) -> None:
    r = await post_webhook(hook.url("/moved"), HEADERS, BODY, OPEN)
    assert not r.ok and r.status == 302
    # Only the first request: the POST was not repeated at the redirect's target.
    assert [p for p, _, _ in hook.posts] == ["/moved"]


async def test_a_name_resolving_to_a_private_address_is_refused_at_send_time(hook: Hook) -> None:
    # "localhost" passes every check made on the URL's text; only its resolution shows loopback.
    r = await post_webhook(hook.url(host="localhost"), HEADERS, BODY, HTTP_ONLY)
    assert not r.ok and r.permanent and "resolves to a non-public address" in r.error
    assert hook.posts == []
    # With private destinations allowed, the same name reaches the receiver.
    assert (await post_webhook(hook.url(host="localhost"), HEADERS, BODY, OPEN)).ok
    assert len(hook.posts) == 1


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:127.0.0.1", False),
        ("64:ff9b::a00:1", False),
        ("2002:a00:1::", False),
        ("fec0::1", False),
        ("feff::1", False),
    ],
)
def test_address_rules(address: str, allowed: bool) -> None:
    assert address_allowed(ipaddress.ip_address(address)) is allowed


def test_the_operator_sees_scheme_and_host_only() -> None:
    assert redact_url("https://user:pw@hooks.example.com:8443/p/SECRET?t=1") == "https://hooks.example.com"


async def test_the_outbox_posts_a_webhook_once_and_gives_up_a_refused_one(tmp_path: Path, hook: Hook) -> None:
    store = NotificationStore(tmp_path / "notify.sqlite", {})
    try:
        notifier = Notifier(store, {}, NotifierSettings(max_attempts=3), OPEN)
        url = hook.url()
        assert await notifier.enqueue_webhook(CLIENT, "wallet", url, "lsps5.payment_incoming", HEADERS, BODY)
        # The same engine event again (replayed after a crash): its signature is queued already.
        assert not await notifier.enqueue_webhook(CLIENT, "wallet", url, "lsps5.payment_incoming", HEADERS, BODY)
        assert await notifier.deliver_due() == 1
        assert [(p, b) for p, _, b in hook.posts] == [("/hook", BODY)]
        [row] = store.webhook_deliveries()
        assert (row["status"], row["last_status"], row["app_name"]) == ("sent", 200, "wallet")
        [registered] = store.lsps5_webhooks()
        assert (registered["client_id"], registered["app_name"]) == (CLIENT, "wallet")

        # Two webhooks of one client for one method are two rows (the one-pending rule is apprise's).
        other = [*HEADERS[:2], ("x-lsps5-signature", "sig-two")]
        third = [*HEADERS[:2], ("x-lsps5-signature", "sig-three")]
        assert await notifier.enqueue_webhook(CLIENT, "a", url, "lsps5.payment_incoming", other, BODY)
        assert await notifier.enqueue_webhook(CLIENT, "b", url, "lsps5.payment_incoming", third, BODY)
        assert await notifier.deliver_due() == 2
        assert len(hook.posts) == 3

        # A refused destination is given up at once: retrying cannot make loopback public.
        strict = Notifier(store, {}, NotifierSettings(max_attempts=3), HTTP_ONLY)
        fourth = [*HEADERS[:2], ("x-lsps5-signature", "sig-four")]
        assert await strict.enqueue_webhook(CLIENT, "wallet", url, "lsps5.payment_incoming", fourth, BODY)
        assert await strict.deliver_due() == 0
        newest = store.webhook_deliveries()[0]
        assert newest["status"] == "dead" and "non-public" in newest["last_error"]
        assert len(hook.posts) == 3
        # Nothing in the outbox's listing leaks the URL's secret path to a log-like repr.
        payload = store.webhook_payload(newest["id"])
        assert payload is not None and "secret" not in repr(payload)
        assert json.loads(payload.body)["method"] == "lsps5.payment_incoming"
    finally:
        store.close()


@dataclass
class Answers:
    """A receiver on 127.0.0.1 whose /status/{code} answers that status (and /big a 200 with a
    header larger than aiohttp's default field limit)."""

    port: int = 0
    posts: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.posts.append(request.path)
        if request.path == "/big":
            return web.Response(text="ok", headers={"X-Big": "a" * 12_000})
        return web.Response(status=int(request.match_info["code"]), text="answer")


@pytest.fixture
async def answers() -> AsyncIterator[Answers]:
    a = Answers()
    app = web.Application()
    app.router.add_post("/status/{code}", a.handle)
    app.router.add_post("/big", a.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    a.port = runner.addresses[0][1]
    yield a
    await runner.cleanup()


@pytest.mark.parametrize(
    "host", ["127.1", "2130706433", "0", "127.000.000.001", "0x7f.1", "0x7f000001", "127.0.0.1.", "0177.0.0.1"]
)
async def test_numeric_hosts_are_refused_whatever_they_mean(answers: Answers, host: str) -> None:
    url = f"http://{host}:{answers.port}/status/200"
    for policy in (HTTP_ONLY, OPEN):
        r = await post_webhook(url, HEADERS, BODY, policy)
        assert not r.ok and r.permanent and "not a dotted-quad" in r.error, (policy, r)
    assert answers.posts == []


# IDNA turns these into 127.0.0.1, an IP literal aiohttp connects to without asking a resolver.
@pytest.mark.parametrize("host", ["127\u30020\u30020\u30021", "127.0.0.\uff11", "\uff11\uff12\uff17.0.0.1"])
async def test_hosts_that_normalise_to_loopback_are_refused(answers: Answers, host: str) -> None:
    url = f"http://{host}:{answers.port}/status/200"
    r = await post_webhook(url, HEADERS, BODY, HTTP_ONLY)
    assert not r.ok and r.permanent and "non-public" in r.error
    assert answers.posts == []


async def test_an_url_aiohttp_refuses_is_given_up_at_once(answers: Answers, monkeypatch: pytest.MonkeyPatch) -> None:
    # Our own URL check is the first wall; aiohttp's numeric-host refusal (>= 3.14) the second.
    # With the first out of the way, aiohttp's refusal must still be permanent, not retried.
    from lsp_node.notify import webhook

    monkeypatch.setattr(webhook, "check_url", lambda url, policy: webhook.URL(url))
    r = await post_webhook(f"http://127.1:{answers.port}/status/200", HEADERS, BODY, HTTP_ONLY)
    assert not r.ok and r.permanent and "refused by the HTTP client" in r.error
    assert answers.posts == []


async def test_a_name_the_idna_codec_refuses_is_given_up_not_raised() -> None:
    r = await post_webhook("http://a..b/x", HEADERS, BODY, HTTP_ONLY)
    assert not r.ok and r.permanent and "not a valid name" in r.error


@pytest.mark.parametrize(
    ("code", "ok", "permanent"),
    [
        (200, True, False),
        (201, False, True),
        (204, False, True),
        (301, False, True),
        (404, False, True),
        (429, False, True),
        (500, False, False),
        (503, False, False),
    ],
)
async def test_only_a_200_is_a_delivery(answers: Answers, code: int, ok: bool, permanent: bool) -> None:
    r = await post_webhook(f"http://127.0.0.1:{answers.port}/status/{code}", HEADERS, BODY, OPEN)
    assert (r.ok, r.permanent, r.status) == (ok, permanent, code)


async def test_an_oversized_answer_header_is_not_a_delivery(answers: Answers) -> None:
    # aiohttp's default header field limit (8190 bytes) applies; we do not raise it.
    r = await post_webhook(f"http://127.0.0.1:{answers.port}/big", HEADERS, BODY, OPEN)
    assert not r.ok and "http" not in r.error.lower().replace("http client", "")
    assert answers.posts == ["/big"]


async def test_delivery_logs_name_the_client_not_the_host(
    tmp_path: Path, hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    store = NotificationStore(tmp_path / "notify.sqlite", {})
    try:
        notifier = Notifier(store, {}, NotifierSettings(max_attempts=3), OPEN)
        # A client may put a secret in the host itself (a per-user subdomain).
        url = hook.url(host="localhost")
        with caplog.at_level(logging.DEBUG, logger="lsp_node"):
            assert await notifier.enqueue_webhook(CLIENT, "wallet", url, "lsps5.payment_incoming", HEADERS, BODY)
            assert await notifier.deliver_due() == 1
            refused = Notifier(store, {}, NotifierSettings(max_attempts=3), HTTP_ONLY)
            other = [*HEADERS[:2], ("x-lsps5-signature", "sig-other")]
            assert await refused.enqueue_webhook(CLIENT, "wallet", url, "lsps5.payment_incoming", other, BODY)
            assert await refused.deliver_due() == 0
        assert "posted to a webhook of client" in caplog.text and "given up" in caplog.text
        assert "localhost" not in caplog.text and "http://" not in caplog.text
        assert client_tag(CLIENT) in caplog.text
    finally:
        store.close()


def test_operator_tables_show_no_control_characters() -> None:
    rows = [{"client_id": CLIENT, "app_name": "wallet\x1b[2J\x1b[31m\r\nfake row\u202e", "url": "https://h"}]
    out = tables.table(rows, ["client_id", "app_name", "url"])
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
    assert len(out.splitlines()) == 2
    assert "wallet?[2J?[31m??fake row?" in out
