"""Samples of the node's numbers over time (`<network_dir>/monitor.sqlite`), for the dashboard's
charts: one row per (time, series), downsampled on read, old rows pruned.

The database is opened like every other Python-side store (`lsp_node.db`: WAL, synchronous=FULL,
numbered migrations, one thread). Samples are not money state and a lost last sample would not
matter, but FULL costs one fsync per sample interval (a minute by default), which is nothing, so
this file does not need a pragma of its own."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final, ParamSpec, TypeVar

from lsp_node.db import Database, Schema, Store
from lsp_node.errors import InvalidArgumentError

T = TypeVar("T")
P = ParamSpec("P")

#: The series the recorder writes (the contract's names; the dashboard asks for them by name).
SERIES: Final = (
    "onchain_sat",
    "outbound_msat",
    "inbound_msat",
    "held_htlcs",
    "held_msat",
    "holds_active",
    "mailbox_messages",
    "mailbox_bytes",
    "pushes_sent_total",
    "pushes_failed_total",
    "forwards_total",
    "forward_fees_msat_total",
)
#: A chart needs no more points than it has pixels; a long range is averaged down to this.
MAX_POINTS: Final = 500
#: Names one `series` call may ask for (each is one query).
MAX_NAMES: Final = 32


def initial(db: Database) -> None:
    # WITHOUT ROWID: the key is the row; a series' points are read in time order by the key.
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS samples (
            name TEXT NOT NULL, ts REAL NOT NULL, value REAL NOT NULL,
            PRIMARY KEY (name, ts)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS samples_ts ON samples (ts);
        """
    )


SCHEMA = Schema("monitor", [initial])


class SampleStore(Store):
    """monitor.sqlite. `run` executes a function on the database thread in one transaction; the
    other methods are steps meant to run there (`await store.run(store.record, ts, values)`)."""

    def __init__(self, path: str | Path) -> None:
        # A Store itself: run, call, close, db and path are the database's own (lsp_node/db.py).
        super().__init__(path, SCHEMA, "monitor")

    def record(self, ts: float, values: Mapping[str, float]) -> None:
        """One sample of each series at time `ts` (a second sample at the same time replaces it)."""
        rows = [(name, float(ts), float(v)) for name, v in values.items()]
        self.call(lambda: self.db.conn.executemany("INSERT OR REPLACE INTO samples VALUES (?, ?, ?)", rows))

    def series(
        self, names: list[str], since: float, until: float | None = None, max_points: int = MAX_POINTS
    ) -> dict[str, list[tuple[float, float]]]:
        """Each named series from `since` (to `until`) as (time, value) in time order; more than
        `max_points` points are grouped into that many equal time buckets, each the average of its
        samples at the average of their times (a counter's average is still rising, a gauge's
        spike is smoothed but shown)."""
        if len(names) > MAX_NAMES:
            raise InvalidArgumentError(f"at most {MAX_NAMES} series at once")
        if max_points < 2:
            raise InvalidArgumentError("max_points must be at least 2")

        def read() -> dict[str, list[tuple[float, float]]]:
            out: dict[str, list[tuple[float, float]]] = {}
            hi = float("inf") if until is None else until
            for name in dict.fromkeys(names):
                n, first, last = self.db.execute(
                    "SELECT COUNT(*), MIN(ts), MAX(ts) FROM samples WHERE name = ? AND ts >= ? AND ts <= ?",
                    (name, since, hi),
                ).fetchone()
                if n <= max_points:
                    cur = self.db.execute(
                        "SELECT ts, value FROM samples WHERE name = ? AND ts >= ? AND ts <= ? ORDER BY ts",
                        (name, since, hi),
                    )
                else:
                    # Equal buckets over the span actually sampled; the last sample joins the last.
                    width = (last - first) / max_points
                    cur = self.db.execute(
                        "SELECT AVG(ts), AVG(value) FROM samples WHERE name = ? AND ts >= ? AND ts <= ?"
                        " GROUP BY MIN(CAST((ts - ?) / ? AS INTEGER), ?) ORDER BY 1",
                        (name, since, hi, first, width, max_points - 1),
                    )
                out[name] = [(float(t), float(v)) for t, v in cur]
            return out

        return self.call(read)

    def prune(self, before: float) -> int:
        """Delete every sample older than `before`; how many went."""
        return int(self.call(lambda: self.db.execute("DELETE FROM samples WHERE ts < ?", (before,)).rowcount))

    def count(self) -> int:
        return int(self.call(lambda: self.db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]))
