"""The monitor's parts on real files and a real node: samples in a real monitor.sqlite (record,
read back, downsampled, pruned by the recorder, versioned schema), `summary(ops)` of a node with
the LSP role off, the push counters in a real notify.sqlite fed by real deliveries to a local HTTP
receiver, the engine's payment counts, and the `[monitor]` settings."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from lsp_node.admin.ops import Ops
from lsp_node.config import load_settings
from lsp_node.errors import ConfigError, InvalidArgumentError, PaymentError, StorageError
from lsp_node.monitor.recorder import Recorder
from lsp_node.monitor.samples import MAX_POINTS, SERIES, SampleStore
from lsp_node.monitor.summary import summary
from lsp_node.notify import NotificationStore, Notifier, NotifierSettings

from .conftest import Chain, NodeFactory, open_channel, pay

DAY = 86400.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SampleStore]:
    s = SampleStore(tmp_path / "monitor.sqlite")
    yield s
    s.close()


async def test_samples_round_trip_in_time_order(store: SampleStore) -> None:
    await store.run(store.record, 200.0, {"held_htlcs": 2, "mailbox_bytes": 300})
    await store.run(store.record, 100.0, {"held_htlcs": 1, "mailbox_bytes": 100})
    await store.run(store.record, 300.0, {"held_htlcs": 0})
    got = await store.run(store.series, ["held_htlcs", "mailbox_bytes", "no_such_series"], 150.0)
    assert got == {"held_htlcs": [(200.0, 2.0), (300.0, 0.0)], "mailbox_bytes": [(200.0, 300.0)], "no_such_series": []}
    # The same time again replaces the sample rather than doubling it.
    await store.run(store.record, 300.0, {"held_htlcs": 5})
    assert (await store.run(store.series, ["held_htlcs"], 0.0))["held_htlcs"][-1] == (300.0, 5.0)
    with pytest.raises(InvalidArgumentError):
        store.series(["x"] * 33, 0.0)


async def test_long_ranges_are_downsampled(store: SampleStore) -> None:
    # Two days of one sample a minute, in one transaction: a rising counter and a 0/1 gauge.
    n = 2 * 24 * 60

    def fill() -> None:
        for i in range(n):
            store.record(1000.0 + 60 * i, {"forwards_total": i, "held_htlcs": i % 2})

    await store.run(fill)
    got = await store.run(store.series, ["forwards_total", "held_htlcs"], 0.0)
    counter, gauge = got["forwards_total"], got["held_htlcs"]
    assert MAX_POINTS - 5 <= len(counter) <= MAX_POINTS
    times = [t for t, _ in counter]
    values = [v for _, v in counter]
    assert times == sorted(times) and values == sorted(values), "a counter stays rising after averaging"
    assert times[0] < 1000.0 + 60 * 10 and times[-1] > 1000.0 + 60 * (n - 10), "the whole range is covered"
    assert values[0] < 10 and values[-1] > n - 10
    assert all(0.3 <= v <= 0.7 for _, v in gauge), "a gauge's buckets are averages of its samples"
    # A short window of the same series is returned point by point.
    recent = await store.run(store.series, ["forwards_total"], 1000.0 + 60 * (n - 100))
    assert len(recent["forwards_total"]) == 100


async def test_summary_with_the_role_off_and_the_recorder_prunes(
    chain: Chain, make_node: NodeFactory, store: SampleStore
) -> None:
    node = await make_node("solo")
    await chain.fund(node, 250_000)
    ops = Ops(node)  # no LSP role, no notifier
    s = await summary(ops)
    assert s["holds_by_state"] == {
        "armed": 0,
        "held": 0,
        "released": 0,
        "settled": 0,
        "failed": 0,
        "expired": 0,
    }
    assert (s["held_htlcs"], s["held_msat"], s["holds_active"]) == (0, 0, 0)
    assert (s["mailbox_messages"], s["mailbox_bytes"], s["mailbox_clients"]) == (0, 0, 0)
    assert s["pushes"] == {"pending": 0, "sent": 0, "dead": 0} and s["push_failures"] == 0
    assert s["onchain_sat"] == node.balance().total_sat == 250_000
    assert (s["outbound_msat"], s["inbound_msat"], s["channels"]) == (0, 0, 0)
    assert s["block_height"] == node.best_block_height > 100
    assert node.last_sync_at is not None and time.time() - 30 < node.last_sync_at <= time.time()

    # Old samples (older than retention_days) go at the recorder's first sample; newer ones stay.
    now = time.time()
    await store.run(store.record, now - 20 * DAY, {"onchain_sat": 1})
    await store.run(store.record, now - 13 * DAY, {"onchain_sat": 2})
    recorder = Recorder(ops, store, interval_secs=1, retention_days=14)
    values = await recorder.sample(now)
    assert set(values) == set(SERIES)
    assert (values["forwards_total"], values["forward_fees_msat_total"]) == (0, 0)
    series = await store.run(store.series, ["onchain_sat", "held_htlcs"], 0.0)
    assert series["onchain_sat"] == [(now - 13 * DAY, 2.0), (now, 250_000.0)]
    assert series["held_htlcs"] == [(now, 0.0)]

    # Straight from the file, as another process would read it.
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT MIN(ts) FROM samples").fetchone()
    assert rows[0] == now - 13 * DAY


async def test_recorder_task_samples_at_start_and_every_interval(make_node: NodeFactory, store: SampleStore) -> None:
    node = await make_node("ticking")
    task = asyncio.create_task(Recorder(Ops(node), store, interval_secs=1, retention_days=14).run())
    try:
        await asyncio.sleep(0.5)
        assert len((await store.run(store.series, ["onchain_sat"], 0.0))["onchain_sat"]) == 1, "one at start"
        await asyncio.sleep(2.2)
        assert len((await store.run(store.series, ["onchain_sat"], 0.0))["onchain_sat"]) >= 3
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_schema_is_versioned(tmp_path: Path) -> None:
    path = tmp_path / "monitor.sqlite"
    SampleStore(path).close()
    with sqlite3.connect(path) as db:
        names = [r[0] for r in db.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = 'monitor'")]
        assert names == ["m001_initial"]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('monitor', 'm002_later', 'x')"
        )
    with pytest.raises(StorageError, match=r"newer version.*m002_later"):
        SampleStore(path)


def test_monitor_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert (s.monitor.sample_interval_secs, s.monitor.retention_days) == (60.0, 14.0)
    cfg = tmp_path / "lsp.toml"
    cfg.write_text("[monitor]\nsample_interval_secs = 5\nretention_days = 2\n")
    monkeypatch.setenv("LSP_MONITOR__SAMPLE_INTERVAL_SECS", "1")
    s = load_settings(cfg)
    assert (s.monitor.sample_interval_secs, s.monitor.retention_days) == (1.0, 2.0)
    cfg.write_text("[monitor]\nretention_day = 2\n")
    with pytest.raises(ConfigError, match=r"did you mean 'monitor\.retention_days'"):
        load_settings(cfg)
    monkeypatch.delenv("LSP_MONITOR__SAMPLE_INTERVAL_SECS")
    cfg.write_text("[monitor]\nsample_interval_secs = 0\n")
    with pytest.raises(ConfigError, match=r"monitor\.sample_interval_secs"):
        load_settings(cfg)


CLIENT = "02" + "ab" * 32
DEVICE = "monitor-device-1"


class Receiver:
    """A local push endpoint answering each POST with the next status of `statuses` (200 after)."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.posts = 0
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.posts += 1
        code = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=code, text="ok" if code == 200 else "no")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/push/{device}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    rec.port = runner.addresses[0][1]
    try:
        yield rec
    finally:
        await runner.cleanup()


def counting_runs(store: NotificationStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each unit of work `store.run` is asked for (by function name)."""
    calls: list[str] = []
    run = store.run

    async def counted(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", "?"))
        return await run(fn, *args, **kwargs)

    monkeypatch.setattr(store, "run", counted)
    return calls


async def test_push_counters_rise_through_retries_and_outlive_the_outbox(
    make_node: NodeFactory, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await make_node("pusher")
    path = tmp_path / "notify.sqlite"
    templates = {"webhook": f"json://127.0.0.1:{receiver.port}/push/{{device}}"}
    nstore = NotificationStore(path, templates, cooldown_secs=0.0, outbox_retention_secs=3600.0)
    notifier = Notifier(nstore, templates, NotifierSettings(max_attempts=2, request_timeout_secs=5.0))
    samples = SampleStore(tmp_path / "monitor.sqlite")
    ops = Ops(node, notifier=notifier)
    recorder = Recorder(ops, samples, interval_secs=60, retention_days=14)
    t = time.time()
    try:
        nstore.register_device(CLIENT, "webhook", DEVICE, now=t)

        async def step(now: float) -> dict[str, Any]:
            await recorder.sample(now)
            return await summary(ops)

        # The first attempt fails (HTTP 500), the retry succeeds.
        receiver.statuses = [500]
        assert notifier.notify(CLIENT, "message_waiting", now=t)
        await notifier.deliver_due(t)
        s = await step(t + 1)
        assert s["push_attempts"] == {"sent": 0, "retried": 1, "dead": 0}
        assert s["push_failures"] == 1  # the outbox gauge: one push failing now
        await notifier.deliver_due(t + 10)
        s = await step(t + 11)
        assert receiver.posts == 2
        assert s["push_attempts"] == {"sent": 1, "retried": 1, "dead": 0}
        # The outbox no longer holds a failing push, but the failed attempt stays counted.
        assert s["push_failures"] == 0 and s["pushes"]["sent"] == 1

        # A push given up after both attempts failed.
        receiver.statuses = [500, 500]
        assert notifier.notify(CLIENT, "hold_expiring", now=t + 20)
        await notifier.deliver_due(t + 20)
        await notifier.deliver_due(t + 30)
        s = await step(t + 31)
        assert s["push_attempts"] == {"sent": 1, "retried": 2, "dead": 1}

        # Past the retention the finished rows are deleted: the outbox is empty, the counters stay.
        await nstore.run(nstore.purge_expired, t + 3 * 3600.0)
        assert nstore.outbox() == []
        s = await step(t + 3 * 3600.0 + 1)
        assert s["pushes"] == {"pending": 0, "sent": 0, "dead": 0} and s["push_failures"] == 0
        assert s["push_attempts"] == {"sent": 1, "retried": 2, "dead": 1}

        # The recorded series are counters: they rose with each outcome and never fell.
        got = await samples.run(samples.series, ["pushes_sent_total", "pushes_failed_total"], 0.0)
        assert [v for _, v in got["pushes_sent_total"]] == [0, 1, 1, 1]
        assert [v for _, v in got["pushes_failed_total"]] == [1, 1, 3, 3]

        # One unit of work on the notification store per summary, whatever it reads there.
        calls = counting_runs(nstore, monkeypatch)
        await summary(ops)
        assert calls == ["read_pushes"]
    finally:
        samples.close()
        nstore.close()
    # Durable: the counters are in notify.sqlite, read again by a fresh store.
    with NotificationStore(path, ["webhook"]) as reopened:
        assert reopened.attempt_counts() == {"sent": 1, "retried": 2, "dead": 1}


def test_push_counters_are_seeded_from_an_old_outbox(tmp_path: Path) -> None:
    path = tmp_path / "notify.sqlite"
    NotificationStore(path, ["webhook"]).close()
    with sqlite3.connect(path) as db:
        # Back to the file as the first schema left it, with its outbox rows.
        db.execute("DROP TABLE notify_counters")
        db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm002_push_counters'")
        rows = [
            ("a", "sent", 1),  # sent at the first attempt
            ("b", "sent", 3),  # two failed attempts, then sent
            ("c", "dead", 2),  # one failed attempt, then given up
            ("d", "pending", 2),  # two failed attempts so far
        ]
        db.executemany(
            "INSERT INTO notify_outbox (client_id, kind, status, created_at, next_attempt_at, attempts)"
            " VALUES (?, ?, ?, 0, 0, ?)",
            [(CLIENT, kind, status, n) for kind, status, n in rows],
        )
    with NotificationStore(path, ["webhook"]) as store:
        assert store.attempt_counts() == {"sent": 2, "retried": 5, "dead": 1}
    with sqlite3.connect(path) as db:
        names = [r[0] for r in db.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = 'notify'")]
    assert names == ["m001_initial", "m002_push_counters", "m003_webhooks"]


async def test_summary_keeps_the_overview_keys(make_node: NodeFactory) -> None:
    s = await summary(Ops(await make_node("keys")))
    overview = {"outbound_msat", "inbound_msat", "onchain_sat", "capacity_sat", "channels", "block_height"}
    assert overview | {"pushes", "push_failures", "push_attempts", "holds_by_state", "held_htlcs"} <= set(s)
    assert s["push_attempts"] == {"sent": 0, "retried": 0, "dead": 0}


async def test_engine_counts_payments_without_reading_them(chain: Chain, make_node: NodeFactory) -> None:
    alice, bob = await make_node("alice"), await make_node("bob")
    await chain.fund(alice, 1_000_000)
    await open_channel(chain, alice, bob, 500_000)
    assert await alice.payment_counts() == {}
    await pay(alice, bob, 1_000_000)
    await bob.create_invoice(2_000_000, "left unpaid")
    # More than the channel can carry: refused, and recorded as failed.
    too_big = await bob.create_invoice(900_000_000, "too big")
    with pytest.raises(PaymentError):
        await alice.pay_invoice(too_big)
    for node in (alice, bob):
        counts = await node.payment_counts()
        assert counts == dict(Counter((p.direction, p.status) for p in await node.payments()))
    assert await alice.payment_counts() == {("outbound", "succeeded"): 1, ("outbound", "failed"): 1}
    assert await bob.payment_counts() == {("inbound", "succeeded"): 1, ("inbound", "pending"): 2}
