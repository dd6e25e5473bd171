"""The Python-side SQLite stores: migrations from the first schema, refusal of newer files,
one transaction per unit of work."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from lsp_node.errors import StorageError
from lsp_node.lsp import HoldHop, LspStore
from lsp_node.lsp.holds import HoldEvent, IllegalTransition
from lsp_node.lsp.store import SCHEMA
from lsp_node.notify import NotificationStore

# The DDL of lsp.sqlite as the first release wrote it, and rows as that code inserted them
# (positional VALUES, payment hashes as a JSON list): a database from before the migrations.
OLD_LSP_SCHEMA = """
CREATE TABLE IF NOT EXISTS lsp_holds (
    hold_id TEXT PRIMARY KEY, client TEXT NOT NULL, request_id TEXT NOT NULL,
    pid_hash TEXT NOT NULL, payment_hashes TEXT NOT NULL, amount_msat INTEGER NOT NULL,
    next_node TEXT NOT NULL, scid INTEGER NOT NULL UNIQUE, cltv_delta INTEGER NOT NULL,
    extra_final_cltv INTEGER NOT NULL, state TEXT NOT NULL, created_at REAL NOT NULL,
    created_height INTEGER NOT NULL, expires_height INTEGER NOT NULL, failback_height INTEGER,
    warned INTEGER NOT NULL DEFAULT 0, released_at REAL, reason TEXT);
CREATE INDEX IF NOT EXISTS lsp_holds_client ON lsp_holds(client, state);
CREATE TABLE IF NOT EXISTS lsp_hold_htlcs (
    intercept_id TEXT PRIMARY KEY, hold_id TEXT NOT NULL REFERENCES lsp_holds(hold_id),
    payment_hash TEXT NOT NULL, inbound_msat INTEGER NOT NULL, outbound_msat INTEGER NOT NULL,
    cltv_expiry INTEGER NOT NULL, state TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS lsp_hold_htlcs_hold ON lsp_hold_htlcs(hold_id, state);
CREATE TABLE IF NOT EXISTS lsp_seen_requests (
    client TEXT NOT NULL, request_id TEXT NOT NULL, seen_at REAL NOT NULL,
    PRIMARY KEY (client, request_id));
CREATE TABLE IF NOT EXISTS lsp_mailbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, client TEXT NOT NULL, message TEXT NOT NULL,
    size INTEGER NOT NULL, received_at REAL NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS lsp_mailbox_client ON lsp_mailbox(client, id);
"""
CLIENT = "02" + "aa" * 32
H1, H2, H3 = "11" * 32, "22" * 32, "33" * 32


def old_lsp_file(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(OLD_LSP_SCHEMA)
    hold = (
        "h1",
        CLIENT,
        "r1",
        "ab" * 32,
        json.dumps([H2, H1]),
        5000,
        "03" + "cc" * 32,
        77,
        72,
        144,
        "held",
        1.5,
        100,
        244,
        190,
        0,
        None,
        None,
    )
    db.execute("INSERT INTO lsp_holds VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", hold)
    db.execute(
        "INSERT INTO lsp_holds VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            "h2",
            CLIENT,
            "r2",
            "cd" * 32,
            json.dumps([H3]),
            1,
            "03" + "cc" * 32,
            78,
            72,
            6,
            "expired",
            2.5,
            100,
            106,
            None,
            1,
            None,
            "no HTLC arrived in time",
        ),
    )
    db.execute("INSERT INTO lsp_hold_htlcs VALUES (?,?,?,?,?,?,?,?)", ("i1", "h1", H1, 5000, 5000, 400, "held", 3.0))
    db.execute("INSERT INTO lsp_seen_requests VALUES (?,?,?)", (CLIENT, "r1", 1.0))
    db.execute(
        "INSERT INTO lsp_mailbox (client, message, size, received_at, expires_at) VALUES (?,?,?,?,?)",
        (CLIENT, "beef", 2, 1.0, 9e9),
    )
    db.close()


def test_lsp_store_migrates_a_file_of_the_first_schema(tmp_path: Path) -> None:
    path = tmp_path / "lsp.sqlite"
    old_lsp_file(path)
    store = LspStore(path)
    try:
        h1, h2 = store.holds()
        assert h1.payment_hashes == (H2, H1)  # order of the request kept
        assert (h1.state, h1.hops, h1.failback_height, h1.warned) == (
            "held",
            (HoldHop("03" + "cc" * 32, 77),),
            190,
            False,
        )
        assert (h2.state, h2.payment_hashes, h2.warned, h2.reason) == (
            "expired",
            (H3,),
            True,
            "no HTLC arrived in time",
        )
        assert [x.intercept_id for x in store.htlcs("h1")] == ["i1"]
        assert store.active_hold_with_hash([H1]) == "h1"
        assert store.active_hold_with_hash([H3]) is None  # h2 is not active
        assert store.holds_covering(H3) == ["h2"]
        assert not store.mark_request_seen(CLIENT, "r1", 2.0)
        assert [m.message for m in store.messages()] == ["beef"]
        columns = {r["name"] for r in store.db.query("PRAGMA table_info(lsp_holds)")}
        assert "payment_hashes" not in columns
        plan = list(
            store.db.query("EXPLAIN QUERY PLAN SELECT hold_id FROM lsp_hold_hashes WHERE payment_hash = ?", [H1])
        )
        assert any("lsp_hold_hashes_hash" in r["detail"] for r in plan)
        assert store.db.query("PRAGMA journal_mode").__next__()["journal_mode"] == "wal"
        assert store.db.query("PRAGMA synchronous").__next__()["synchronous"] == 2  # FULL
        assert store.db.query("PRAGMA foreign_keys").__next__()["foreign_keys"] == 1
    finally:
        store.close()
    # Opening again applies nothing new and loses nothing.
    store = LspStore(path)
    try:
        assert [h.hold_id for h in store.holds()] == ["h1", "h2"]
        names = [r["name"] for r in store.db.query("SELECT name FROM _sqlite_migrations ORDER BY id")]
        assert (
            names
            == SCHEMA.names
            == [
                "m001_initial",
                "m002_hold_hashes_table",
                "m003_mailbox_sender",
                "m004_event_attempts_table",
                "m005_hold_hops_table",
                "m006_mailbox_deliveries",
            ]
        )
    finally:
        store.close()


def v4_lsp_file(path: Path) -> None:
    """A file as the release before the hold hops (migrations 1 to 4) left it, with rows written
    the way that code wrote them: one next node and one intercept SCID per hold, in lsp_holds."""
    from lsp_node.db import Schema, Store
    from lsp_node.lsp import store as lsp_store

    v4 = Schema(
        "lsp",
        [lsp_store.initial, lsp_store.hold_hashes_table, lsp_store.mailbox_sender, lsp_store.event_attempts_table],
    )
    Store(path, v4, "lsp").close()
    db = sqlite3.connect(path, isolation_level=None)
    for hold_id, next_node, scid, state in (("h1", NEXT_B, 77, "released"), ("h2", NEXT_R, 78, "held")):
        row = {
            "hold_id": hold_id,
            "client": CLIENT,
            "request_id": "r" + hold_id,
            "pid_hash": "ab" * 32,
            "amount_msat": 5000,
            "next_node": next_node,
            "scid": scid,
            "cltv_delta": 72,
            "extra_final_cltv": 144,
            "state": state,
            "created_at": 1.5,
            "created_height": 100,
            "expires_height": 244,
            "failback_height": 190,
        }
        db.execute(f"INSERT INTO lsp_holds ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
        db.execute("INSERT INTO lsp_hold_hashes (hold_id, position, payment_hash) VALUES (?,?,?)", (hold_id, 0, H1))
    db.execute(
        "INSERT INTO lsp_hold_htlcs (intercept_id, hold_id, payment_hash, inbound_msat, outbound_msat, cltv_expiry,"
        " state, updated_at) VALUES (?,?,?,?,?,?,?,?)",
        ("i1", "h1", H1, 5000, 5000, 400, "forwarding", 3.0),
    )
    db.execute(
        "INSERT INTO lsp_hold_htlcs (intercept_id, hold_id, payment_hash, inbound_msat, outbound_msat, cltv_expiry,"
        " state, updated_at) VALUES (?,?,?,?,?,?,?,?)",
        ("i2", "h2", H1, 6000, 6000, 410, "held", 4.0),
    )
    db.close()


NEXT_B, NEXT_R = "03" + "cc" * 32, "02" + "dd" * 32


def test_migration_5_gives_each_hold_its_hops_and_each_htlc_its_next_node(tmp_path: Path) -> None:
    path = tmp_path / "lsp.sqlite"
    v4_lsp_file(path)
    store = LspStore(path)
    try:
        h1, h2 = store.holds()
        assert (h1.hops, h2.hops) == ((HoldHop(NEXT_B, 77),), (HoldHop(NEXT_R, 78),))
        assert {x.intercept_id: x.next_node for x in store.htlcs("h1") + store.htlcs("h2")} == {
            "i1": NEXT_B,
            "i2": NEXT_R,
        }
        found = store.hold_by_scid(78)
        assert found is not None and found.hold_id == "h2" and store.hold_by_scid(79) is None
        assert store.scid_in_use(77) and not store.scid_in_use(79)
        plan = list(store.db.query("EXPLAIN QUERY PLAN SELECT hold_id FROM lsp_hold_hops WHERE scid = ?", [77]))
        assert any("lsp_hold_hops_scid" in r["detail"] for r in plan)
        # One SCID, one hop: a second hold cannot take an SCID already used.
        with pytest.raises(sqlite3.IntegrityError):
            store.db.execute(
                "INSERT INTO lsp_hold_hops (hold_id, position, next_node, scid) VALUES ('h2', 1, ?, 77)", [NEXT_B]
            )
        # A hold written after the migration keeps all its hops, in order.
        three = dataclasses.replace(
            h2,
            hold_id="h3",
            request_id="r3",
            hops=(HoldHop(NEXT_R, 90), HoldHop(NEXT_B, 91)),
            state="armed",
        )
        store.insert_hold(three)
        assert store.hold("h3").hops == three.hops  # type: ignore[union-attr]
        assert store.hold_by_scid(91).hold_id == "h3"  # type: ignore[union-attr]
    finally:
        store.close()


def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lsp.sqlite"
    LspStore(path).close()
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('lsp', 'm003_from_the_future', 'x')"
    )
    db.commit()
    db.close()
    with pytest.raises(StorageError, match=r"newer version.*m003_from_the_future"):
        LspStore(path)


def test_a_unit_of_work_rolls_back_as_a_whole(tmp_path: Path) -> None:
    store = LspStore(tmp_path / "lsp.sqlite")
    try:

        def fails() -> None:
            store.put_message(CLIENT, "01", 1.0, 9e9)
            store.mark_request_seen(CLIENT, "r", 1.0)
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            store.call(fails)
        assert store.messages() == []
        assert store.mark_request_seen(CLIENT, "r", 1.0)  # the first use did not stick either

        def works() -> None:
            store.put_message(CLIENT, "02", 1.0, 9e9)
            store.put_message(CLIENT, "03", 1.0, 9e9)

        store.call(works)
        assert [m.message for m in store.messages()] == ["02", "03"]
    finally:
        store.close()


async def test_run_leaves_the_loop_and_commits(tmp_path: Path) -> None:
    import threading

    store = LspStore(tmp_path / "lsp.sqlite")
    try:
        seen: list[str] = []

        def work() -> int:
            seen.append(threading.current_thread().name)
            return store.put_message(CLIENT, "04", 1.0, 9e9)

        msg_id = await store.run(work)
        assert seen[0].startswith("db-lsp") and msg_id == 1
        assert [m.id for m in store.messages()] == [1]
    finally:
        store.close()


def test_illegal_state_write_is_refused_and_stale_write_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "lsp.sqlite"
    old_lsp_file(path)
    store = LspStore(path)
    try:
        h1, h2 = store.holds()
        with pytest.raises(IllegalTransition):
            store.move_hold(h2, HoldEvent.UNBLOCK)  # expired holds stay expired
        assert store.move_hold(h1, HoldEvent.UNBLOCK, released_at=5.0)
        # h1 was read as held; it is released now, so a second write decided on "held" is skipped.
        assert not store.move_hold(h1, HoldEvent.UNBLOCK, released_at=6.0)
        assert store.hold("h1").state == "released"  # type: ignore[union-attr]
    finally:
        store.close()


OLD_NOTIFY_SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_devices (
    client_id TEXT NOT NULL, platform TEXT NOT NULL, device_id TEXT NOT NULL,
    registered_at REAL NOT NULL, expires_at REAL NOT NULL, failures INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (client_id, platform, device_id));
CREATE TABLE IF NOT EXISTS notify_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, kind TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    created_at REAL NOT NULL, next_attempt_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    sent_at REAL, finished_at REAL, last_error TEXT);
CREATE TABLE IF NOT EXISTS notify_sent (
    outbox_id INTEGER NOT NULL REFERENCES notify_outbox (id) ON DELETE CASCADE,
    platform TEXT NOT NULL, device_id TEXT NOT NULL, sent_at REAL NOT NULL,
    PRIMARY KEY (outbox_id, platform, device_id));
"""


def test_notify_store_adopts_a_file_of_the_first_schema(tmp_path: Path) -> None:
    path = tmp_path / "notify.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(OLD_NOTIFY_SCHEMA)
    db.execute(
        "INSERT INTO notify_devices (client_id, platform, device_id, registered_at, expires_at) VALUES (?,?,?,?,?)",
        (CLIENT, "webhook", "dev-1", 1.0, 9e9),
    )
    db.execute(
        "INSERT INTO notify_outbox (client_id, kind, created_at, next_attempt_at) VALUES (?,?,?,?)",
        (CLIENT, "message_waiting", 1.0, 1.0),
    )
    db.close()
    with NotificationStore(path, ["webhook"]) as store:
        assert [d.device_id for d in store.devices(CLIENT, now=2.0)] == ["dev-1"]
        [entry] = store.due(now=2.0)
        assert (entry.kind, entry.status) == ("message_waiting", "pending")
        assert store.enqueue(CLIENT, "message_waiting", now=3.0) is False  # still pending: coalesced
