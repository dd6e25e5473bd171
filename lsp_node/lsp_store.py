"""SQLite state of the LSP role: holds and their HTLCs, seen requests, the offline mailbox.

WAL with synchronous=FULL: a hold is durable before the hold reply leaves, a release is durable
before any HTLC is forwarded, a mailbox message is durable before the event is acknowledged."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
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

# Hold states (SPEC.md, "Hold state machine").
ARMED = "armed"
HELD = "held"
RELEASED = "released"
SETTLED = "settled"
FAILED = "failed"
EXPIRED = "expired"
ACTIVE = (ARMED, HELD, RELEASED)


@dataclass(frozen=True)
class Hold:
    hold_id: str
    client: str
    request_id: str
    pid_hash: str
    payment_hashes: tuple[str, ...]
    amount_msat: int
    next_node: str
    scid: int
    cltv_delta: int
    extra_final_cltv: int
    state: str
    created_at: float
    created_height: int
    expires_height: int
    failback_height: int | None
    warned: bool
    released_at: float | None
    reason: str | None


@dataclass(frozen=True)
class HeldHtlc:
    intercept_id: str
    hold_id: str
    payment_hash: str
    inbound_msat: int
    outbound_msat: int
    cltv_expiry: int
    state: str


@dataclass(frozen=True)
class MailboxEntry:
    id: int
    client: str
    message: str
    size: int
    received_at: float
    expires_at: float


def _hold(r: sqlite3.Row) -> Hold:
    d = dict(r)
    d["payment_hashes"] = tuple(json.loads(d["payment_hashes"]))
    d["warned"] = bool(d["warned"])
    return Hold(**d)


class LspStore:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- requests ----------------------------------------------------------------------------
    def mark_request_seen(self, client: str, request_id: str, now: float) -> bool:
        """False if this client already used this request id (a replay)."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO lsp_seen_requests (client, request_id, seen_at) VALUES (?, ?, ?)",
            (client, request_id, now),
        )
        return cur.rowcount == 1

    def forget_requests_before(self, t: float) -> None:
        self.db.execute("DELETE FROM lsp_seen_requests WHERE seen_at < ?", (t,))

    # -- holds -------------------------------------------------------------------------------
    def insert_hold(self, h: Hold) -> None:
        self.db.execute(
            "INSERT INTO lsp_holds VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                h.hold_id, h.client, h.request_id, h.pid_hash, json.dumps(list(h.payment_hashes)),
                h.amount_msat, h.next_node, h.scid, h.cltv_delta, h.extra_final_cltv, h.state,
                h.created_at, h.created_height, h.expires_height, h.failback_height, int(h.warned),
                h.released_at, h.reason,
            ),
        )

    def hold(self, hold_id: str) -> Hold | None:
        r = self.db.execute("SELECT * FROM lsp_holds WHERE hold_id = ?", (hold_id,)).fetchone()
        return _hold(r) if r else None

    def hold_by_request(self, client: str, request_id: str) -> Hold | None:
        r = self.db.execute(
            "SELECT * FROM lsp_holds WHERE client = ? AND request_id = ?", (client, request_id)
        ).fetchone()
        return _hold(r) if r else None

    def hold_by_scid(self, scid: int) -> Hold | None:
        r = self.db.execute("SELECT * FROM lsp_holds WHERE scid = ?", (scid,)).fetchone()
        return _hold(r) if r else None

    def holds(self, states: tuple[str, ...] | None = None, client: str | None = None) -> list[Hold]:
        q, args = "SELECT * FROM lsp_holds WHERE 1=1", []
        if states:
            q += f" AND state IN ({','.join('?' * len(states))})"
            args += list(states)
        if client:
            q += " AND client = ?"
            args.append(client)
        return [_hold(r) for r in self.db.execute(q + " ORDER BY created_at", args)]

    def set_hold_state(self, hold_id: str, state: str, reason: str | None = None, released_at: float | None = None) -> None:
        self.db.execute(
            "UPDATE lsp_holds SET state = ?, reason = COALESCE(?, reason), released_at = COALESCE(?, released_at) WHERE hold_id = ?",
            (state, reason, released_at, hold_id),
        )

    def release(self, hold_id: str, now: float) -> bool:
        """Atomically move a hold to released; False if it was not armed or held (single use)."""
        cur = self.db.execute(
            "UPDATE lsp_holds SET state = ?, released_at = ? WHERE hold_id = ? AND state IN (?, ?)",
            (RELEASED, now, hold_id, ARMED, HELD),
        )
        return cur.rowcount == 1

    def set_failback(self, hold_id: str, height: int) -> None:
        self.db.execute(
            "UPDATE lsp_holds SET failback_height = MIN(COALESCE(failback_height, ?), ?) WHERE hold_id = ?",
            (height, height, hold_id),
        )

    def set_warned(self, hold_id: str) -> None:
        self.db.execute("UPDATE lsp_holds SET warned = 1 WHERE hold_id = ?", (hold_id,))

    # -- held HTLCs --------------------------------------------------------------------------
    def add_htlc(self, h: HeldHtlc, now: float) -> bool:
        """Record an intercepted HTLC; False if it was known already (LDK replays on restart)."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO lsp_hold_htlcs VALUES (?,?,?,?,?,?,?,?)",
            (h.intercept_id, h.hold_id, h.payment_hash, h.inbound_msat, h.outbound_msat, h.cltv_expiry, h.state, now),
        )
        return cur.rowcount == 1

    def htlc(self, intercept_id: str) -> HeldHtlc | None:
        r = self.db.execute(
            "SELECT intercept_id, hold_id, payment_hash, inbound_msat, outbound_msat, cltv_expiry, state"
            " FROM lsp_hold_htlcs WHERE intercept_id = ?",
            (intercept_id,),
        ).fetchone()
        return HeldHtlc(**dict(r)) if r else None

    def htlcs(self, hold_id: str, state: str | None = None) -> list[HeldHtlc]:
        q = (
            "SELECT intercept_id, hold_id, payment_hash, inbound_msat, outbound_msat, cltv_expiry, state"
            " FROM lsp_hold_htlcs WHERE hold_id = ?"
        )
        args: list[object] = [hold_id]
        if state:
            q += " AND state = ?"
            args.append(state)
        return [HeldHtlc(**dict(r)) for r in self.db.execute(q, args)]

    def set_htlc_state(self, intercept_id: str, state: str, now: float) -> None:
        self.db.execute(
            "UPDATE lsp_hold_htlcs SET state = ?, updated_at = ? WHERE intercept_id = ?", (state, now, intercept_id)
        )

    def client_totals(self, client: str) -> tuple[int, int, int]:
        """(active holds, held HTLCs, held msat) of one client, for its caps."""
        holds = self.db.execute(
            f"SELECT COUNT(*) FROM lsp_holds WHERE client = ? AND state IN ({','.join('?' * len(ACTIVE))})",
            (client, *ACTIVE),
        ).fetchone()[0]
        n, msat = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(x.inbound_msat), 0) FROM lsp_hold_htlcs x JOIN lsp_holds h USING (hold_id)"
            " WHERE h.client = ? AND x.state = 'held'",
            (client,),
        ).fetchone()
        return holds, n, msat

    # -- mailbox -----------------------------------------------------------------------------
    def mailbox_usage(self, client: str) -> tuple[int, int]:
        n, size = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM lsp_mailbox WHERE client = ?", (client,)
        ).fetchone()
        return n, size

    def put_message(self, client: str, message: str, now: float, ttl: float) -> int:
        cur = self.db.execute(
            "INSERT INTO lsp_mailbox (client, message, size, received_at, expires_at) VALUES (?,?,?,?,?)",
            (client, message, len(message) // 2, now, now + ttl),
        )
        return int(cur.lastrowid or 0)

    def messages(self, client: str | None = None) -> list[MailboxEntry]:
        q, args = "SELECT * FROM lsp_mailbox", []
        if client:
            q += " WHERE client = ?"
            args.append(client)
        return [MailboxEntry(**dict(r)) for r in self.db.execute(q + " ORDER BY id", args)]

    def delete_message(self, message_id: int) -> None:
        self.db.execute("DELETE FROM lsp_mailbox WHERE id = ?", (message_id,))

    def purge_mailbox(self, now: float) -> int:
        return self.db.execute("DELETE FROM lsp_mailbox WHERE expires_at <= ?", (now,)).rowcount
