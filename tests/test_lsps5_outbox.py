"""The LSPS5 rows of the push outbox against a real notify.sqlite and a real local receiver:
stale notifications (bLIP-55 receivers refuse a timestamp older than 10 minutes), the replay key,
the bounds on what clients can queue, the operator's listing and its pruning, our per-(client,
method) cooldown, and migration 3's all-or-nothing."""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from lsp_node.db import Schema, Store
from lsp_node.errors import InvalidArgumentError, StorageError
from lsp_node.notify import NotificationStore, Notifier, NotifierSettings, WebhookPolicy
from lsp_node.notify.store import initial, push_counters
from lsp_node.notify.webhook_store import WebhookLimits

CLIENT = "02" + "11" * 32
OTHER = "03" + "22" * 32
THIRD = "02" + "33" * 32
BODY = '{"jsonrpc":"2.0","method":"lsps5.onion_message_incoming","params":{}}'
METHOD = "lsps5.onion_message_incoming"
T0 = 1_900_000_000.0


def headers(sig: str, at: float = T0) -> list[tuple[str, str]]:
    # As lightning-liquidity writes the timestamp (chrono's RFC 3339, UTC offset).
    stamp = datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="milliseconds")
    return [("Content-Type", "application/json"), ("x-lsps5-timestamp", stamp), ("x-lsps5-signature", sig)]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[str]]]:
    posts: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        posts.append(await request.text())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook?secret=s", posts
    await runner.cleanup()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[NotificationStore]:
    s = NotificationStore(tmp_path / "notify.sqlite", {})
    yield s
    s.close()


OPEN = WebhookPolicy(allow_http=True, allow_private_destinations=True, request_timeout_secs=5)


async def test_a_notification_older_than_nine_minutes_is_given_up_unsent_and_not_retried(
    store: NotificationStore, receiver: tuple[str, list[str]]
) -> None:
    url, posts = receiver
    notifier = Notifier(store, {}, NotifierSettings(max_attempts=5), OPEN)
    assert store.enqueue_webhook(CLIENT, "wallet", url, METHOD, headers("fresh"), BODY, now=T0)
    assert store.enqueue_webhook(CLIENT, "wallet", url, METHOD, headers("old", T0 - 600), BODY, now=T0 - 600)
    assert await notifier.deliver_due(T0 + 60) == 1
    assert len(posts) == 1
    by_id = {r["id"]: r for r in store.webhook_deliveries()}
    [stale] = [r for r in by_id.values() if r["status"] == "dead"]
    assert stale["last_error"].startswith("stale: signed 11 minutes ago")
    # The operator's retry of it is refused with the reason; a fresh dead one may be retried.
    with pytest.raises(InvalidArgumentError, match="older than 10 minutes: it cannot be sent again"):
        store.retry(stale["id"], now=T0 + 70)
    assert store.enqueue_webhook(CLIENT, "wallet", url, METHOD, headers("gave-up", T0 + 60), BODY, now=T0 + 60)
    [gave_up] = [e for e in store.outbox(CLIENT) if e.status == "pending"]
    store.mark_dead(gave_up.id, T0 + 61, "HTTP 404")
    assert store.retry(gave_up.id, now=T0 + 62).status == "pending"


async def test_a_row_that_goes_stale_while_retried_stops(
    store: NotificationStore, receiver: tuple[str, list[str]]
) -> None:
    url, posts = receiver
    notifier = Notifier(store, {}, NotifierSettings(max_attempts=50), OPEN)
    assert store.enqueue_webhook(CLIENT, "wallet", url, METHOD, headers("sig"), BODY, now=T0)
    [row] = store.outbox(CLIENT)
    store.mark_failed(row.id, T0 + 1, T0 + 541, "HTTP 503")
    assert await notifier.deliver_due(T0 + 541) == 0
    assert posts == [] and store.outbox(CLIENT)[0].status == "dead"


def test_the_replay_key_is_client_app_and_signature(store: NotificationStore) -> None:
    url = "https://hooks.example.com/x"
    assert store.enqueue_webhook(CLIENT, "a", url, METHOD, headers("same"), BODY, now=T0)
    # Signatures are deterministic over (timestamp, body): two webhooks, or two clients,
    # notified in the same millisecond carry the same one and each must still be queued.
    assert store.enqueue_webhook(CLIENT, "b", url, METHOD, headers("same"), BODY, now=T0)
    assert store.enqueue_webhook(OTHER, "a", url, METHOD, headers("same"), BODY, now=T0)
    # The same event replayed after a crash queues nothing.
    assert not store.enqueue_webhook(CLIENT, "a", url, METHOD, headers("same"), BODY, now=T0)
    assert len(store.outbox()) == 3


def test_a_notification_without_a_readable_timestamp_is_refused(store: NotificationStore) -> None:
    bad = [("x-lsps5-timestamp", "yesterday"), ("x-lsps5-signature", "s")]
    with pytest.raises(InvalidArgumentError, match="x-lsps5-timestamp"):
        store.enqueue_webhook(CLIENT, "a", "https://h/x", METHOD, bad, BODY, now=T0)
    assert store.outbox() == []


def test_pending_rows_are_bounded_per_client_and_in_total(store: NotificationStore) -> None:
    url = "https://hooks.example.com/x"
    lim = WebhookLimits(max_webhooks_per_client=1, max_pending_per_client=2, max_pending_total=3)
    q = [store.enqueue_webhook(CLIENT, "a", url, METHOD, headers(f"c{i}"), BODY, now=T0, limits=lim) for i in range(3)]
    assert q == [True, True, False]
    assert store.enqueue_webhook(OTHER, "a", url, METHOD, headers("o1"), BODY, now=T0, limits=lim)
    # Three pending in all: a third client waits for room.
    assert not store.enqueue_webhook(THIRD, "a", url, METHOD, headers("t1"), BODY, now=T0, limits=lim)
    first = store.outbox(CLIENT)[0]
    store.mark_sent(first.id, T0 + 1)
    assert store.enqueue_webhook(THIRD, "a", url, METHOD, headers("t2"), BODY, now=T0 + 2, limits=lim)
    assert sum(1 for e in store.outbox() if e.status == "pending") == 3


def test_the_operators_listing_is_capped_per_client_and_pruned_after_30_days(store: NotificationStore) -> None:
    url = "https://hooks.example.com/x"
    lim = WebhookLimits(max_webhooks_per_client=2)
    for i, app in enumerate(["a", "b", "c"]):
        assert store.enqueue_webhook(CLIENT, app, url, METHOD, headers(app), BODY, now=T0 + i, limits=lim)
    assert store.enqueue_webhook(OTHER, "z", url, METHOD, headers("z"), BODY, now=T0 + 20 * 86400, limits=lim)
    # lightning-liquidity keeps at most 2 webhooks for the client: the oldest app name is gone.
    assert sorted(r["app_name"] for r in store.lsps5_webhooks() if r["client_id"] == CLIENT) == ["b", "c"]
    store.purge_expired(now=T0 + 31 * 86400)
    assert [(r["client_id"], r["app_name"]) for r in store.lsps5_webhooks()] == [(OTHER, "z")]


def test_our_cooldown_per_client_and_method(tmp_path: Path) -> None:
    path = tmp_path / "notify.sqlite"
    with NotificationStore(path, {}) as store:
        assert not store.lsps5_cooling_down(CLIENT, METHOD, 3600, now=T0)
        store.lsps5_notified(CLIENT, METHOD, now=T0)
        assert store.lsps5_cooling_down(CLIENT, METHOD, 3600, now=T0 + 3599)
        assert not store.lsps5_cooling_down(CLIENT, "lsps5.expiry_soon", 3600, now=T0 + 1)
        assert not store.lsps5_cooling_down(OTHER, METHOD, 3600, now=T0 + 1)
        # lightning-liquidity's registration notice is never held back.
        store.lsps5_notified(CLIENT, "lsps5.webhook_registered", now=T0)
        assert not store.lsps5_cooling_down(CLIENT, "lsps5.webhook_registered", 3600, now=T0 + 1)
    with NotificationStore(path, {}) as store:
        assert store.lsps5_cooling_down(CLIENT, METHOD, 3600, now=T0 + 60)  # a restart keeps it
        assert not store.lsps5_cooling_down(CLIENT, METHOD, 3600, now=T0 + 3600)
        store.purge_expired(now=T0 + 86400 + 1)
        assert not store.lsps5_cooling_down(CLIENT, METHOD, 10**6, now=T0 + 86400 + 2)


def test_migration_3_is_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "notify.sqlite"
    # A notify.sqlite of the release before LSPS5 (migrations 1 and 2).
    Store(path, Schema("notify", [initial, push_counters]), "notify").close()
    with sqlite3.connect(path) as db:
        # Something that makes migration 3 fail after its first statements (a crash half way
        # leaves the same: some statements run, the migration not recorded).
        db.execute("CREATE TABLE notify_lsps5_webhooks (x)")
    with pytest.raises(StorageError):
        NotificationStore(path, {})
    with sqlite3.connect(path) as db:
        cols = [r[1] for r in db.execute("PRAGMA table_info(notify_outbox)")]
        assert "delivery" not in cols  # the ALTER TABLE was rolled back with the rest
        db.execute("DROP TABLE notify_lsps5_webhooks")
    with NotificationStore(path, {}) as store:
        assert store.outbox() == []
        assert store.enqueue_webhook(CLIENT, "a", "https://h/x", METHOD, headers("s"), BODY, now=T0)
