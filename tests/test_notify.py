"""Push notifications through apprise to a real local HTTP receiver (aiohttp on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from lsp_node.errors import ConfigError, InvalidArgumentError
from lsp_node.notify import (
    PUSH_TITLE,
    NotificationStore,
    Notifier,
    NotifierSettings,
    push_body,
)

CLIENT = "02" + "11" * 32
OTHER = "03" + "22" * 32
DEV_A = "devA-fcm:APA91bSECRETtoken_1"
DEV_B = "devB-apns-0123456789abcdefSECRET"
T0 = 1_700_000_000.0


@dataclass
class Receiver:
    """Records every POST to /push/{device}; answers with the status set for that device."""

    port: int = 0
    posts: list[tuple[str, dict[str, object], str]] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)
    default_status: int = 200

    def template(self) -> str:
        return f"json://127.0.0.1:{self.port}/push/{{device}}"

    def url_prefix(self) -> str:
        return f"127.0.0.1:{self.port}/push"

    def to(self, device: str) -> list[dict[str, object]]:
        return [body for dev, body, _ in self.posts if dev == device]

    async def handle(self, request: web.Request) -> web.Response:
        device = request.match_info["device"]
        raw = await request.text()
        self.posts.append((device, json.loads(raw), raw))
        code = self.status.get(device, self.default_status)
        return web.Response(status=code, text="ok" if code == 200 else "boom")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/push/{device}", rec.handle)
    runner = web.AppRunner(app, access_log=None)  # its access log would show the device ids
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = runner.addresses[0][1]
    try:
        yield rec
    finally:
        await runner.cleanup()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "notify.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[NotificationStore]:
    s = NotificationStore(db_path, ["webhook", "fcm"], device_lifetime_secs=3600.0, cooldown_secs=60.0)
    yield s
    s.close()


def make_notifier(store: NotificationStore, rec: Receiver, **settings: Any) -> Notifier:
    templates = {"webhook": rec.template(), "fcm": rec.template()}
    return Notifier(store, templates, NotifierSettings(request_timeout_secs=5.0, **settings))


async def test_registered_device_receives_minimal_push(store: NotificationStore, receiver: Receiver) -> None:
    reg = store.register_device(CLIENT, "webhook", DEV_A, now=T0)
    assert not reg.refreshed and reg.expires_at == T0 + 3600.0 and reg.device_count == 1
    notifier = make_notifier(store, receiver)

    assert notifier.notify(CLIENT, "message_waiting", now=T0) is True
    assert await notifier.deliver_due(now=T0) == 1

    assert len(receiver.posts) == 1
    device, body, raw = receiver.posts[0]
    assert device == DEV_A
    assert body["title"] == PUSH_TITLE == "LSP"
    assert body["message"] == push_body("message_waiting")
    assert str(body["message"]).startswith("message_waiting: ")
    for secret in (CLIENT, CLIENT[:8], DEV_A, receiver.url_prefix()):
        assert secret not in raw
    [row] = store.outbox(CLIENT)
    assert row.status == "sent" and row.sent_at == T0 and row.attempts == 1
    assert store.status(now=T0).sent == 1
    # Nothing more is due.
    assert await notifier.deliver_due(now=T0 + 1000) == 0
    assert len(receiver.posts) == 1


async def test_two_devices_of_one_client_both_receive(store: NotificationStore, receiver: Receiver) -> None:
    store.register_device(CLIENT, "webhook", DEV_A, now=T0)
    store.register_device(CLIENT, "fcm", DEV_B, now=T0)
    store.register_device(OTHER, "webhook", "other-client-device", now=T0)
    notifier = make_notifier(store, receiver)

    assert notifier.notify(CLIENT, "preimage_waiting", now=T0)
    assert await notifier.deliver_due(now=T0) == 1

    assert sorted(d for d, _, _ in receiver.posts) == sorted([DEV_A, DEV_B])
    for dev in (DEV_A, DEV_B):
        assert [b["message"] for b in receiver.to(dev)] == [push_body("preimage_waiting")]


async def test_cooldown_coalesces_and_survives_reopen(db_path: Path, receiver: Receiver) -> None:
    with NotificationStore(db_path, ["webhook"], cooldown_secs=60.0) as store:
        store.register_device(CLIENT, "webhook", DEV_A, now=T0)
        notifier = make_notifier(store, receiver)
        assert store.enqueue(CLIENT, "message_waiting", now=T0) is True
        # Still pending: coalesced.
        assert store.enqueue(CLIENT, "message_waiting", now=T0 + 1) is False
        # Another kind is independent.
        assert store.enqueue(CLIENT, "hold_expiring", now=T0 + 1) is True
        assert await notifier.deliver_due(now=T0 + 2) == 2
        # Sent at T0+2: within 60 s of it, coalesced.
        assert store.enqueue(CLIENT, "message_waiting", now=T0 + 30) is False

    # A restart does not forget the cooldown.
    with NotificationStore(db_path, ["webhook"], cooldown_secs=60.0) as store:
        notifier = make_notifier(store, receiver)
        assert store.enqueue(CLIENT, "message_waiting", now=T0 + 61) is False
        assert await notifier.deliver_due(now=T0 + 61) == 0
        assert store.enqueue(CLIENT, "message_waiting", now=T0 + 62) is True
        assert await notifier.deliver_due(now=T0 + 62) == 1

    # The two kinds were sent concurrently: compare without order.
    assert sorted(str(b["message"]) for b in receiver.to(DEV_A)) == sorted(
        [push_body("message_waiting"), push_body("hold_expiring"), push_body("message_waiting")]
    )


async def test_pending_push_survives_reopen(db_path: Path, receiver: Receiver) -> None:
    with NotificationStore(db_path, ["webhook"]) as store:
        store.register_device(CLIENT, "webhook", DEV_A, now=T0)
        assert store.enqueue(CLIENT, "hold_expiring", now=T0)
    with NotificationStore(db_path, ["webhook"]) as store:
        assert store.enqueue(CLIENT, "hold_expiring", now=T0 + 1) is False
        assert await make_notifier(store, receiver).deliver_due(now=T0 + 1) == 1
    assert len(receiver.to(DEV_A)) == 1


async def test_server_error_retries_with_backoff_then_succeeds(store: NotificationStore, receiver: Receiver) -> None:
    store.register_device(CLIENT, "webhook", DEV_A, now=T0)
    notifier = make_notifier(store, receiver)
    receiver.status[DEV_A] = 500
    assert notifier.notify(CLIENT, "message_waiting", now=T0)

    t = T0
    assert await notifier.deliver_due(now=t) == 0
    [row] = store.outbox(CLIENT)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, t + 2)
    assert row.last_error is not None and DEV_A not in row.last_error

    # Not due before the backoff has elapsed.
    assert await notifier.deliver_due(now=t + 1.9) == 0
    assert len(receiver.posts) == 1

    t += 2
    assert await notifier.deliver_due(now=t) == 0
    [row] = store.outbox(CLIENT)
    assert (row.attempts, row.next_attempt_at) == (2, t + 4)

    t += 4
    assert await notifier.deliver_due(now=t) == 0
    [row] = store.outbox(CLIENT)
    assert (row.attempts, row.next_attempt_at) == (3, t + 8)
    assert store.devices(CLIENT, now=t)[0].failures == 3

    receiver.status[DEV_A] = 200
    t += 8
    assert await notifier.deliver_due(now=t) == 1
    [row] = store.outbox(CLIENT)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 4, t)
    assert len(receiver.posts) == 4
    assert store.devices(CLIENT, now=t)[0].failures == 0
    assert notifier.status(now=t)["deliveries_failed"] == 3


def test_backoff_doubles_and_is_capped() -> None:
    s = NotifierSettings()
    assert [s.backoff(n) for n in range(1, 12)] == [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]


async def test_dead_after_max_attempts(store: NotificationStore, receiver: Receiver) -> None:
    store.register_device(CLIENT, "webhook", DEV_A, now=T0)
    notifier = make_notifier(store, receiver, max_attempts=3)
    receiver.default_status = 500
    assert notifier.notify(CLIENT, "hold_expiring", now=T0)

    t = T0
    for _ in range(3):
        assert await notifier.deliver_due(now=t) == 0
        t += 10  # past the backoff (2 s, 4 s), well before the device expires
    [row] = store.outbox(CLIENT)
    assert (row.status, row.attempts) == ("dead", 3)
    assert len(receiver.posts) == 3
    assert await notifier.deliver_due(now=t + 100) == 0
    assert len(receiver.posts) == 3
    st = notifier.status(now=t)
    assert (st["pending"], st["sent"], st["dead"]) == (0, 0, 1)
    # A dead push does not hold back a new one.
    assert store.enqueue(CLIENT, "hold_expiring", now=t) is True


async def test_retry_goes_only_to_the_failed_device(store: NotificationStore, receiver: Receiver) -> None:
    store.register_device(CLIENT, "webhook", DEV_A, now=T0)
    store.register_device(CLIENT, "fcm", DEV_B, now=T0)
    notifier = make_notifier(store, receiver)
    receiver.status[DEV_B] = 500
    notifier.notify(CLIENT, "message_waiting", now=T0)
    assert await notifier.deliver_due(now=T0) == 0
    receiver.status[DEV_B] = 200
    assert await notifier.deliver_due(now=T0 + 2) == 1
    assert len(receiver.to(DEV_A)) == 1
    assert len(receiver.to(DEV_B)) == 2


async def test_expired_devices_get_nothing(store: NotificationStore, receiver: Receiver) -> None:
    store.register_device(CLIENT, "webhook", DEV_A, now=T0)  # lifetime 3600 s
    notifier = make_notifier(store, receiver)

    # Queued while the device was valid, due after it expired: dropped.
    assert store.enqueue(CLIENT, "message_waiting", now=T0 + 3500)
    assert await notifier.deliver_due(now=T0 + 3600) == 0
    [row] = store.outbox(CLIENT)
    assert row.status == "dead"

    # Enqueued after expiry: nothing to queue at all.
    assert store.devices(CLIENT, now=T0 + 3600) == []
    assert store.enqueue(CLIENT, "preimage_waiting", now=T0 + 3601) is False
    assert await notifier.deliver_due(now=T0 + 3602) == 0
    assert receiver.posts == []

    assert store.purge_expired(now=T0 + 3600) == 1
    assert store.status(now=T0).devices == 0


async def test_reregistering_refreshes_expiry(store: NotificationStore) -> None:
    store.register_device(CLIENT, "webhook", DEV_A, now=T0)
    reg = store.register_device(CLIENT, "webhook", DEV_A, now=T0 + 3000)
    assert reg.refreshed and reg.expires_at == T0 + 3000 + 3600 and reg.device_count == 1
    [dev] = store.devices(CLIENT, now=T0 + 5000)
    assert dev.expires_at == T0 + 6600
    assert DEV_A not in repr(dev)


def test_device_limit_per_client(db_path: Path) -> None:
    with NotificationStore(db_path, ["webhook"], max_devices_per_client=2) as store:
        store.register_device(CLIENT, "webhook", "d1", now=T0)
        store.register_device(CLIENT, "webhook", "d2", now=T0)
        with pytest.raises(InvalidArgumentError, match="maximum is 2"):
            store.register_device(CLIENT, "webhook", "d3", now=T0)
        # Refreshing an existing one is fine; so is another client.
        store.register_device(CLIENT, "webhook", "d2", now=T0 + 1)
        store.register_device(OTHER, "webhook", "d3", now=T0)
        assert store.remove_device(CLIENT, "webhook", "d1") is True
        store.register_device(CLIENT, "webhook", "d3", now=T0)


def test_unknown_platform_and_bad_device_ids_are_rejected(store: NotificationStore) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown notification platform"):
        store.register_device(CLIENT, "apns", DEV_A, now=T0)
    bad_ids = ["", "a" * 513, "has space", "tab\there", "new\nline", "caf\u00e9", "nul\x00", "\x7f"]
    for bad in bad_ids:
        with pytest.raises(InvalidArgumentError, match="token device id"):
            store.register_device(CLIENT, "webhook", bad, now=T0)
    store.register_device(CLIENT, "webhook", "a" * 512, now=T0)
    with pytest.raises(InvalidArgumentError):
        store.register_device("not-a-node-id", "webhook", DEV_A, now=T0)
    with pytest.raises(InvalidArgumentError):
        store.enqueue(CLIENT, "device_registered", now=T0)
    assert len(store.devices(CLIENT, now=T0)) == 1


async def test_removing_a_device_stops_delivery(store: NotificationStore, receiver: Receiver) -> None:
    store.register_device(CLIENT, "webhook", DEV_A, now=T0)
    store.register_device(CLIENT, "fcm", DEV_B, now=T0)
    notifier = make_notifier(store, receiver)
    assert store.remove_device(CLIENT, "fcm", DEV_B) is True
    assert store.remove_device(CLIENT, "fcm", DEV_B) is False
    notifier.notify(CLIENT, "message_waiting", now=T0)
    assert await notifier.deliver_due(now=T0) == 1
    assert [d for d, _, _ in receiver.posts] == [DEV_A]

    # A device that keeps failing and is removed no longer holds the push back.
    store.register_device(CLIENT, "fcm", DEV_B, now=T0)
    receiver.status[DEV_B] = 500
    notifier.notify(CLIENT, "preimage_waiting", now=T0)
    assert await notifier.deliver_due(now=T0) == 0
    store.remove_device(CLIENT, "fcm", DEV_B)
    assert await notifier.deliver_due(now=T0 + 2) == 1
    assert len(receiver.to(DEV_B)) == 1  # only the first, failed, attempt
    assert len(receiver.to(DEV_A)) == 2

    store.remove_device(CLIENT, "webhook", DEV_A)
    assert store.enqueue(CLIENT, "hold_expiring", now=T0) is False
    assert len(receiver.posts) == 3


async def test_logs_never_contain_device_id_or_url(
    store: NotificationStore, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, apprise's and urllib3's debug output included
    store.register_device(CLIENT, "webhook", DEV_A, now=T0)
    store.register_device(CLIENT, "fcm", DEV_B, now=T0)
    notifier = make_notifier(store, receiver, max_attempts=2)
    receiver.status[DEV_B] = 500
    notifier.notify(CLIENT, "message_waiting", now=T0)
    await notifier.deliver_due(now=T0)
    await notifier.deliver_due(now=T0 + 2)  # DEV_B dead-ends: the push ends 'sent' for DEV_A only
    store.remove_device(CLIENT, "webhook", DEV_A)
    store.enqueue(CLIENT, "preimage_waiting", now=T0 + 100)
    await notifier.deliver_due(now=T0 + 100)  # DEV_B fails again
    # A receiver that is not listening at all (connection refused).
    receiver.port, dead_port = 1, receiver.port
    broken = make_notifier(store, receiver)
    store.enqueue(CLIENT, "hold_expiring", now=T0 + 100)
    await broken.deliver_due(now=T0 + 100)
    receiver.port = dead_port

    assert len(receiver.posts) == 4
    text = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert "notify:" in text and "02111111" in text  # our own lines, with only the client prefix
    for secret in (DEV_A, DEV_B, "APA91bSECRET", "SECRET", CLIENT, "/push/", receiver.url_prefix(), "json://"):
        assert secret not in text, secret
    assert "127.0.0.1:1/" not in text


async def test_run_loop_delivers_and_stops(store: NotificationStore, receiver: Receiver) -> None:
    store.register_device(CLIENT, "webhook", DEV_A, now=time.time())
    notifier = make_notifier(store, receiver, poll_interval_secs=30.0)
    task = asyncio.create_task(notifier.run())
    try:
        await asyncio.sleep(0.05)
        assert notifier.notify(CLIENT, "message_waiting") is True
        for _ in range(200):
            if receiver.posts and store.status().sent == 1:
                break
            await asyncio.sleep(0.02)
        assert [d for d, _, _ in receiver.posts] == [DEV_A]
    finally:
        notifier.stop()
        await asyncio.wait_for(task, 10)


def test_notifier_refuses_bad_templates(store: NotificationStore) -> None:
    with pytest.raises(ConfigError, match="no URL template"):
        Notifier(store, {"webhook": "json://h/{device}"})
    with pytest.raises(ConfigError, match="exactly once"):
        Notifier(store, {"webhook": "json://h/x", "fcm": "fcm://k/{device}"})
