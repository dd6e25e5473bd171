"""The monitor's parts on real files and a real node: samples in a real monitor.sqlite (record,
read back, downsampled, pruned by the recorder, versioned schema), `summary(ops)` of a node with
the LSP role off, and the `[monitor]` settings."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lsp_node.admin.ops import Ops
from lsp_node.config import load_settings
from lsp_node.errors import ConfigError, InvalidArgumentError, StorageError
from lsp_node.monitor.recorder import Recorder
from lsp_node.monitor.samples import MAX_POINTS, SERIES, SampleStore
from lsp_node.monitor.summary import summary

from .conftest import Chain, NodeFactory

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
