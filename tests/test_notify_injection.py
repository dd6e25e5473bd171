"""Device-id injection and template checks (SPEC.md §7.1): with real apprise deliveries to two local
HTTP receivers on 127.0.0.1 ("push", the configured one, and "evil", another port), no request may
ever leave for another host, port or path than the template's."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from lsp_node.config import load_settings
from lsp_node.errors import ConfigError, InvalidArgumentError
from lsp_node.notify import NotificationStore, Notifier, NotifierSettings
from lsp_node.notify.ids import DEVICE_FORMATS, device_format
from lsp_node.notify.urls import check_template, render_url

CLIENT = "02" + "33" * 32
T0 = 1_700_000_000.0
LEGIT = "legit-device_01"
FCM_TOKEN = "dGVzdF9pbnN0YW5jZQ:APA91b" + "x" * 134
APNS_TOKEN = "0f" * 32


@dataclass
class Recorder:
    """Every request that reaches one port, whatever its method and path."""

    port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, raw path with query)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.requests.append((request.method, request.raw_path))
        return web.Response(text="ok")

    def paths(self) -> list[str]:
        return [p.split("?")[0] for _, p in self.requests]


@pytest.fixture
async def recorders() -> AsyncIterator[tuple[Recorder, Recorder]]:
    runners = []
    recs = (Recorder(), Recorder())
    for rec in recs:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", rec.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        rec.port = runner.addresses[0][1]
        runners.append(runner)
    try:
        yield recs
    finally:
        for r in runners:
            await r.cleanup()


def templates(port: int) -> dict[str, str]:
    # "fcm" and "apns" by name get their platform's id format; json:// keeps the traffic local.
    return {
        "webhook": f"json://127.0.0.1:{port}/push/{{device}}",
        "fcm": f"json://127.0.0.1:{port}/fcm/{{device}}",
        "apns": f"json://127.0.0.1:{port}/apns/{{device}}",
        "query": f"json://127.0.0.1:{port}/q?to={{device}}",
    }


@pytest.fixture
def store(tmp_path: Path, recorders: tuple[Recorder, Recorder]) -> Iterator[NotificationStore]:
    s = NotificationStore(tmp_path / "notify.sqlite", templates(recorders[0].port), cooldown_secs=0.0)
    yield s
    s.close()


INJECTIONS = {
    "fcm topic": "#topic",
    "fcm fan-out": "t1,t2,t3,t4",
    "semicolon list": "t1;t2",
    "path traversal": "../../x",
    "dot-dot": "..",
    "dot": ".",
    "slash": "a/b",
    "quoted slash": "%2Fadmin",
    "quoted traversal": "..%2F..%2Fadmin",
    "userinfo": "@evil",
    "host switch": "x@127.0.0.1:1",
    "query": "?to=victim",
    "extra param": "&to=victim",
    "fragment": "a#b",
    "leading space": " lead",
    "trailing newline": "tok\n",
    "header injection": "a\r\nX-Injected: 1",
    "tab": "a\tb",
    "fullwidth letters": "\uff41\uff42\uff43",
    "cyrillic a": "\u0430pple-token",
    "zero width": "a\u200bb",
    "fraction slash": "a\u2044b",
    "fullwidth solidus": "a\uff0fb",
    "very long": "a" * 5000,
    "empty": "",
    "nul": "a\x00b",
    "placeholder": "{device}",
    "backslash": "a\\b",
    "percent": "100%",
    "equals": "a=b",
    "html": "<script>",
    "quote": "a'b\"c",
}


#: A valid id per platform and the path (query left out) its push must arrive at (templates() above).
GOOD_DEVICE = {
    "webhook": (LEGIT, f"/push/{LEGIT}"),
    "fcm": (FCM_TOKEN, f"/fcm/{FCM_TOKEN}"),
    "apns": (APNS_TOKEN, f"/apns/{APNS_TOKEN}"),
    "query": (LEGIT, "/q"),
}


@pytest.mark.parametrize("platform", ["webhook", "fcm", "apns", "query"])
@pytest.mark.parametrize("name", list(INJECTIONS))
async def test_injected_device_id_is_refused_at_registration(
    store: NotificationStore, recorders: tuple[Recorder, Recorder], platform: str, name: str
) -> None:
    bad = INJECTIONS[name]
    with pytest.raises(InvalidArgumentError) as e:
        store.register_device(CLIENT, platform, bad, now=T0)
    # The reason names the rule, never the id.
    assert "device id" in str(e.value)
    if len(bad.strip()) > 3:
        assert bad not in str(e.value)
    assert store.devices(CLIENT, now=T0) == []
    # The refusal leaves the store working: a valid device registers and gets exactly one push.
    push, evil = recorders
    good, path = GOOD_DEVICE[platform]
    store.register_device(CLIENT, platform, good, now=T0)
    notifier = Notifier(store, templates(push.port), NotifierSettings(request_timeout_secs=5.0, max_attempts=1))
    assert notifier.notify(CLIENT, "message_waiting", now=T0)
    await notifier.deliver_due(now=T0)
    assert push.paths() == [path] and evil.requests == []


@pytest.mark.parametrize("name", list(INJECTIONS))
async def test_injected_row_sends_nothing_and_the_legit_device_gets_exactly_one_push(
    store: NotificationStore, recorders: tuple[Recorder, Recorder], name: str
) -> None:
    push, evil = recorders
    store.register_device(CLIENT, "webhook", LEGIT, now=T0)
    # A row that bypassed registration (an older version, a hand edit): the send-time checks stop it.
    store.call(
        lambda: store.db.table("notify_devices").insert(
            {
                "client_id": CLIENT,
                "platform": "webhook",
                "device_id": INJECTIONS[name],
                "registered_at": T0,
                "expires_at": T0 + 3600,
            }
        )
    )
    notifier = Notifier(store, templates(push.port), NotifierSettings(request_timeout_secs=5.0, max_attempts=1))
    assert notifier.notify(CLIENT, "message_waiting", now=T0)
    await notifier.deliver_due(now=T0)
    assert push.paths() == [f"/push/{LEGIT}"]
    assert [m for m, _ in push.requests] == ["POST"]
    assert evil.requests == []
    assert notifier.deliveries_ok == 1 and notifier.deliveries_failed == 1


@pytest.mark.parametrize("name", list(INJECTIONS))
async def test_rendering_alone_keeps_host_and_path_prefix(recorders: tuple[Recorder, Recorder], name: str) -> None:
    """Even without the id format check, the URL re-parse keeps every request under /push/ on the
    configured port: sent through apprise for real."""
    push, evil = recorders
    template = templates(push.port)["webhook"]
    try:
        url = render_url(template, INJECTIONS[name])
    except InvalidArgumentError as e:
        assert "not sent" in str(e)
        assert push.requests == []
    else:
        # In a thread: the receivers answer on this loop.
        sent = await asyncio.to_thread(Notifier._send_blocking, url, [], "message_waiting: test")
        # apprise itself refuses some (a quoted newline); whatever it sends arrives here.
        assert len(push.requests) == (1 if sent else 0)
        for path in push.paths():
            assert path.startswith("/push/") and path.count("/") == 2, path
    assert evil.requests == []


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("json://{device}/push", "never in the scheme, host, port or credentials"),
        ("json://{device}.example.com/push", "never in the scheme, host"),
        ("json://user:{device}@127.0.0.1/push", "credentials"),
        ("json://{device}@127.0.0.1/push", "credentials"),
        ("json://127.0.0.1:{device}/push", "not a URL"),
        ("{device}://127.0.0.1/push", "never in the scheme"),
        ("json://127.0.0.1/push#{device}", "after '#'"),
        ("json://127.0.0.1/push", "exactly once (found 0)"),
        ("json://127.0.0.1/{device}/{device}", "exactly once (found 2)"),
        ("json://127.0.0.1/push{device}", "whole path segment"),
        ("json:///push/{device}", "not a URL"),
        ("json://127.0.0.1/p ush/{device}", "whitespace"),
        ("no-scheme/{device}", "not a URL"),
    ],
)
def test_bad_templates_are_refused_when_the_config_is_loaded(tmp_path: Path, template: str, reason: str) -> None:
    cfg = tmp_path / "lsp.toml"
    cfg.write_text(f'[notifications.templates]\nwebhook = "{template}"\n')
    with pytest.raises(ConfigError, match=r"notifications\.templates") as e:
        load_settings(cfg)
    assert reason in str(e.value)
    with pytest.raises(ConfigError):
        check_template("webhook", template)


def test_bad_platform_names_are_refused() -> None:
    for name in ("Webhook", "web hook", "", "x" * 40, "../x"):
        with pytest.raises(ConfigError, match="invalid platform name"):
            check_template(name, "json://127.0.0.1/p/{device}")


@pytest.mark.parametrize(
    "template",
    [
        "json://127.0.0.1:8080/push/{device}",
        "json://user:pass@127.0.0.1/push/{device}?x=1",
        "json://127.0.0.1/q?to={device}",
        "ntfy://127.0.0.1/{device}",
        "fcm://project/{device}?keyfile=/etc/lsp/sa.json",
    ],
)
def test_good_templates_are_accepted(template: str) -> None:
    assert check_template("p", template) == template


def test_device_formats_per_platform() -> None:
    fcm, apns, token = DEVICE_FORMATS["fcm"], DEVICE_FORMATS["apns"], DEVICE_FORMATS["token"]
    assert device_format("fcm") is fcm and device_format("apns") is apns
    assert device_format("android", "fcm://proj/{device}") is fcm
    assert device_format("webhook", "json://h/{device}") is token
    assert fcm.check(FCM_TOKEN) == FCM_TOKEN
    assert fcm.check("APA91b" + "y" * 140)  # a legacy token without the instance id
    assert apns.check(APNS_TOKEN) == APNS_TOKEN
    assert token.check(LEGIT) == LEGIT
    for fmt, bad in [
        (fcm, "short"),
        (fcm, "a:b:c" * 10),
        (fcm, FCM_TOKEN + ":extra_part"),
        (fcm, "x" * 4097),
        (apns, "0f" * 31),
        (apns, "0f" * 31 + "0"),
        (apns, "zz" * 32),
        (token, ".hidden"),
        (token, "a" * 513),
        (token, "tok\n"),  # `$` would let this through; fullmatch does not
    ]:
        with pytest.raises(InvalidArgumentError, match=f"{fmt.name} device id"):
            fmt.check(bad)


def test_disabled_apprise_plugin_refuses_to_start(tmp_path: Path) -> None:
    """apprise disables fcm:// without `cryptography` and would drop every push silently."""
    with NotificationStore(tmp_path / "n.sqlite", {"fcm": "fcm://project/{device}?keyfile=/x.json"}) as s:
        if importlib.util.find_spec("cryptography") is None:
            with pytest.raises(ConfigError, match="cryptography"):
                Notifier(s, {"fcm": "fcm://project/{device}?keyfile=/x.json"})
        else:
            assert Notifier(s, {"fcm": "fcm://project/{device}?keyfile=/x.json"}).store is s
