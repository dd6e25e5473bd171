"""SQLite state of the LSP role (lsp.sqlite): holds, their payment hashes and HTLCs, seen
requests, the offline mailbox; its numbered migrations.

Every method is one step of a unit of work: callers group the steps of one engine event into a
single transaction with `LspStore.run` (from the loop) or `LspStore.call`. Rows are read and
written by column name. Hold state changes go through the state machine (`holds.next_state`) and
are written only if the hold is still in the state they were decided on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from lsp_node.db import Database, Schema, Store
from lsp_node.lsp.holds import ACTIVE, HELD, HoldEvent, next_state

#: An HTLC of a released hold that is to be handed to LDK: recorded before the forward (the
#: intent), `forwarded` after it. Between the two, after a crash, LDK decides which it was.
FORWARDING = "forwarding"
#: HTLC states in which the HTLC is still ours to forward or fail back (SPEC.md §5.2).
WAITING = (HELD, FORWARDING)

T = TypeVar("T")
P = ParamSpec("P")

# -- schema -----------------------------------------------------------------------------------

#: Migration 1: the schema as the first release wrote it (kept verbatim: a file made by that
#: release has these tables and no migration record, and is adopted as is).
SCHEMA_V1 = """
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


def initial(db: Database) -> None:
    db.executescript(SCHEMA_V1)


def hold_hashes_table(db: Database) -> None:
    """A hold's payment hashes get their own rows, so "is this hash in an active hold" and "which
    hold covers it" are index lookups instead of a scan over every active hold's JSON list."""
    db.table("lsp_hold_hashes").create(
        {"hold_id": str, "position": int, "payment_hash": str},
        pk=("hold_id", "position"),
        not_null={"hold_id", "position", "payment_hash"},
        foreign_keys=[("hold_id", "lsp_holds", "hold_id")],
    )
    db.table("lsp_hold_hashes").create_index(["payment_hash"], index_name="lsp_hold_hashes_hash")
    # json_each's key is the list position: the order of the request is kept (a retry compares it).
    db.execute(
        "INSERT INTO lsp_hold_hashes (hold_id, position, payment_hash)"
        " SELECT h.hold_id, CAST(j.key AS INTEGER), j.value FROM lsp_holds h, json_each(h.payment_hashes) j"
    )
    db.execute("ALTER TABLE lsp_holds DROP COLUMN payment_hashes")


def mailbox_sender(db: Database) -> None:
    """Mailbox quotas per previous-hop peer (SPEC.md §5.3): each entry names the bucket of the peer
    that handed it to us. Entries stored before this step count as the unknown sender."""
    db.execute("ALTER TABLE lsp_mailbox ADD COLUMN sender TEXT NOT NULL DEFAULT '*'")
    db.execute("CREATE INDEX IF NOT EXISTS lsp_mailbox_sender ON lsp_mailbox(sender, client)")


def event_attempts_table(db: Database) -> None:
    """Failed attempts at handling an engine event, so a poison event is dropped after a bounded
    number of attempts even when the attempts span crashes and restarts (app.LspRole._events)."""
    db.table("lsp_event_attempts").create(
        {"event_id": int, "kind": str, "attempts": int, "last_error": str, "updated_at": float},
        pk="event_id",
        not_null={"event_id", "kind", "attempts", "updated_at"},
    )


def hold_hops_table(db: Database) -> None:
    """Revision 3 (SPEC.md §4.2): a hold names one next node per path of the payer's route, each
    bound to the hold by its own intercept SCID, and an HTLC is forwarded to the next node of the
    SCID it came on, so it records that node. A hold of an older file had one hop: its
    (next_node, scid). `lsp_holds` keeps those two columns, written as a copy of the first hop:
    SQLite drops a UNIQUE column only by rebuilding the table, which two others reference."""
    db.table("lsp_hold_hops").create(
        {"hold_id": str, "position": int, "next_node": str, "scid": int},
        pk=("hold_id", "position"),
        not_null={"hold_id", "position", "next_node", "scid"},
        foreign_keys=[("hold_id", "lsp_holds", "hold_id")],
    )
    # The intercept lookup of every HTLC: indexed, and unique over every hold ever armed (stronger
    # than among the active ones, and an HTLC on an ended hold's SCID still finds that hold).
    db.table("lsp_hold_hops").create_index(["scid"], index_name="lsp_hold_hops_scid", unique=True)
    db.execute(
        "INSERT INTO lsp_hold_hops (hold_id, position, next_node, scid) SELECT hold_id, 0, next_node, scid FROM lsp_holds"
    )
    db.execute("ALTER TABLE lsp_hold_htlcs ADD COLUMN next_node TEXT NOT NULL DEFAULT ''")
    db.execute(
        "UPDATE lsp_hold_htlcs SET next_node = (SELECT h.next_node FROM lsp_holds h WHERE h.hold_id = lsp_hold_htlcs.hold_id)"
    )


def mailbox_deliveries(db: Database) -> None:
    """How many times each kept message was forwarded without an acknowledgement: a wallet that
    does not speak LightningRod (an ldk-node one, for BOLT async payments) never sends
    MAILBOX_ACK, so its mail is deleted after MAX_UNACKED_DELIVERIES deliveries (SPEC.md §5.3)."""
    db.execute("ALTER TABLE lsp_mailbox ADD COLUMN deliveries INTEGER NOT NULL DEFAULT 0")


SCHEMA = Schema(
    "lsp", [initial, hold_hashes_table, mailbox_sender, event_attempts_table, hold_hops_table, mailbox_deliveries]
)


# -- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldHop:
    """One next hop of a hold: the node after the LSP on one path of the payer's route, and the
    intercept SCID the payer puts on the LSP's hop of that path (SPEC.md §4.2)."""

    next_node: str
    scid: int


@dataclass(frozen=True)
class Hold:
    hold_id: str
    client: str
    request_id: str
    pid_hash: str
    payment_hashes: tuple[str, ...]
    amount_msat: int
    hops: tuple[HoldHop, ...]  # in the order of the request
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

    def hop(self, scid: int) -> HoldHop | None:
        return next((h for h in self.hops if h.scid == scid), None)


@dataclass(frozen=True)
class HeldHtlc:
    intercept_id: str
    hold_id: str
    payment_hash: str
    inbound_msat: int
    outbound_msat: int
    cltv_expiry: int
    state: str
    next_node: str  # the next node of the hop whose SCID the HTLC came on: where it is forwarded


@dataclass(frozen=True)
class MailboxEntry:
    id: int
    client: str
    message: str
    size: int
    received_at: float
    expires_at: float
    sender: str = "*"


_HOLD_COLS = (
    "hold_id, client, request_id, pid_hash, amount_msat, cltv_delta, extra_final_cltv,"
    " state, created_at, created_height, expires_height, failback_height, warned, released_at, reason"
)
_HTLC_COLS = "intercept_id, hold_id, payment_hash, inbound_msat, outbound_msat, cltv_expiry, state, next_node"
_MAIL_COLS = "id, client, message, size, received_at, expires_at, sender"


def _marks(n: int) -> str:
    return ",".join("?" * n)


class LspStore:
    """lsp.sqlite. `run`/`call` execute a unit of work on the database thread in one transaction;
    the other methods are its steps (they also work alone: each is then its own transaction)."""

    def __init__(self, path: str | Path) -> None:
        self._store = Store(path, SCHEMA, "lsp")
        self.db = self._store.db

    def close(self) -> None:
        self._store.close()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._store.run(fn, *args, **kwargs)

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return self._store.call(fn, *args, **kwargs)

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return self.call(self._store.rows, sql, list(args))

    def _exec(self, sql: str, args: Iterable[Any] | dict[str, Any] = ()) -> int:
        """Run one write statement; the number of rows it changed."""
        params = args if isinstance(args, dict) else list(args)
        return self.call(lambda: self.db.execute(sql, params).rowcount)

    # -- requests ---------------------------------------------------------------------------------
    def mark_request_seen(self, client: str, request_id: str, now: float) -> bool:
        """False if this client already used this request id (a replay)."""
        return (
            self._exec(
                "INSERT OR IGNORE INTO lsp_seen_requests (client, request_id, seen_at) VALUES (?, ?, ?)",
                (client, request_id, now),
            )
            == 1
        )

    def forget_requests_before(self, t: float) -> None:
        self._exec("DELETE FROM lsp_seen_requests WHERE seen_at < ?", (t,))

    # -- holds ------------------------------------------------------------------------------------
    def insert_hold(self, h: Hold) -> None:
        def insert() -> None:
            row = {k: v for k, v in vars(h).items() if k not in ("payment_hashes", "hops")}
            row["warned"] = int(h.warned)
            # The legacy columns (migration 5) hold a copy of the first hop; nothing reads them.
            row["next_node"], row["scid"] = h.hops[0].next_node, h.hops[0].scid
            self.db.table("lsp_holds").insert(row)
            self.db.table("lsp_hold_hashes").insert_all(
                {"hold_id": h.hold_id, "position": i, "payment_hash": ph} for i, ph in enumerate(h.payment_hashes)
            )
            self.db.table("lsp_hold_hops").insert_all(
                {"hold_id": h.hold_id, "position": i, "next_node": hop.next_node, "scid": hop.scid}
                for i, hop in enumerate(h.hops)
            )

        self.call(insert)

    def _holds(self, where: str, args: Iterable[Any] = (), order: str = "") -> list[Hold]:
        def load() -> list[Hold]:
            rows = self._store.rows(f"SELECT {_HOLD_COLS} FROM lsp_holds WHERE {where} {order}", list(args))
            if not rows:
                return []
            hashes: dict[str, list[str]] = {r["hold_id"]: [] for r in rows}
            for r in self._store.rows(
                f"SELECT hold_id, payment_hash FROM lsp_hold_hashes WHERE hold_id IN ({_marks(len(hashes))})"
                " ORDER BY hold_id, position",
                list(hashes),
            ):
                hashes[r["hold_id"]].append(r["payment_hash"])
            hops: dict[str, list[HoldHop]] = {r["hold_id"]: [] for r in rows}
            for r in self._store.rows(
                f"SELECT hold_id, next_node, scid FROM lsp_hold_hops WHERE hold_id IN ({_marks(len(hops))})"
                " ORDER BY hold_id, position",
                list(hops),
            ):
                hops[r["hold_id"]].append(HoldHop(r["next_node"], r["scid"]))
            return [
                Hold(
                    **{**r, "warned": bool(r["warned"])},
                    payment_hashes=tuple(hashes[r["hold_id"]]),
                    hops=tuple(hops[r["hold_id"]]),
                )
                for r in rows
            ]

        return self.call(load)

    def hold(self, hold_id: str) -> Hold | None:
        return next(iter(self._holds("hold_id = ?", (hold_id,))), None)

    def hold_by_request(self, client: str, request_id: str) -> Hold | None:
        return next(iter(self._holds("client = ? AND request_id = ?", (client, request_id))), None)

    def hold_by_scid(self, scid: int) -> Hold | None:
        """The hold one of whose hops uses this intercept SCID (an index lookup)."""
        return next(iter(self._holds("hold_id = (SELECT hold_id FROM lsp_hold_hops WHERE scid = ?)", (scid,))), None)

    def scid_in_use(self, scid: int) -> bool:
        return bool(self._rows("SELECT 1 AS x FROM lsp_hold_hops WHERE scid = ?", (scid,)))

    def holds(self, states: tuple[str, ...] | None = None, client: str | None = None) -> list[Hold]:
        where, args = "1=1", []
        if states:
            where += f" AND state IN ({_marks(len(states))})"
            args += list(states)
        if client:
            where += " AND client = ?"
            args.append(client)
        return self._holds(where, args, "ORDER BY created_at")

    def holds_page(self, state: str | None, limit: int, offset: int) -> list[Hold]:
        """One page of holds, newest first, of one state if given (the admin API's listing)."""
        where, args = ("state = ?", [state]) if state else ("1=1", [])
        return self._holds(where, [*args, limit, offset], "ORDER BY created_at DESC, hold_id LIMIT ? OFFSET ?")

    def htlc_history(self, hold_id: str) -> list[dict[str, Any]]:
        """The hold's HTLCs with when each last changed state (`updated_at`), oldest first."""
        return self._rows(
            f"SELECT {_HTLC_COLS}, updated_at FROM lsp_hold_htlcs WHERE hold_id = ? ORDER BY rowid", (hold_id,)
        )

    def active_hold_with_hash(self, payment_hashes: Iterable[str], client: str | None = None) -> str | None:
        """The id of an active hold (of `client`, if given) covering one of these hashes, if any."""
        hashes = list(payment_hashes)
        only = " AND h.client = ?" if client is not None else ""
        rows = self._rows(
            f"SELECT h.hold_id AS hold_id FROM lsp_hold_hashes x JOIN lsp_holds h USING (hold_id)"
            f" WHERE x.payment_hash IN ({_marks(len(hashes))}) AND h.state IN ({_marks(len(ACTIVE))}){only} LIMIT 1",
            (*hashes, *ACTIVE, *([client] if client is not None else [])),
        )
        return rows[0]["hold_id"] if rows else None

    def holds_covering(self, payment_hash: str) -> list[str]:
        """Ids of every hold (any state) whose payment hashes include this one."""
        rows = self._rows("SELECT DISTINCT hold_id FROM lsp_hold_hashes WHERE payment_hash = ?", (payment_hash,))
        return [r["hold_id"] for r in rows]

    def move_hold(
        self, hold: Hold, event: HoldEvent, *, reason: str | None = None, released_at: float | None = None
    ) -> bool:
        """Apply `event` to a hold read in state `hold.state`: the table decides the next state
        (raising IllegalTransition if there is none) and the row changes only if it is still in
        that state. False if another unit of work moved it first."""
        target = next_state(hold.state, event)
        return (
            self._exec(
                "UPDATE lsp_holds SET state = ?, reason = COALESCE(?, reason), released_at = COALESCE(?, released_at)"
                " WHERE hold_id = ? AND state = ?",
                (target, reason, released_at, hold.hold_id, hold.state),
            )
            == 1
        )

    def set_failback(self, hold_id: str, height: int) -> None:
        """Lower (never raise) the hold's fail-back height."""
        self._exec(
            "UPDATE lsp_holds SET failback_height = MIN(COALESCE(failback_height, ?), ?) WHERE hold_id = ?",
            (height, height, hold_id),
        )

    def set_warned(self, hold_id: str) -> None:
        self._exec("UPDATE lsp_holds SET warned = 1 WHERE hold_id = ?", (hold_id,))

    # -- held HTLCs -------------------------------------------------------------------------------
    def add_htlc(self, h: HeldHtlc, now: float) -> bool:
        """Record an intercepted HTLC; False if it was known already (LDK replays on restart)."""
        return (
            self._exec(
                "INSERT OR IGNORE INTO lsp_hold_htlcs (intercept_id, hold_id, payment_hash, inbound_msat,"
                " outbound_msat, cltv_expiry, state, next_node, updated_at) VALUES (:intercept_id, :hold_id,"
                " :payment_hash, :inbound_msat, :outbound_msat, :cltv_expiry, :state, :next_node, :now)",
                {**vars(h), "now": now},
            )
            == 1
        )

    def htlc(self, intercept_id: str) -> HeldHtlc | None:
        rows = self._rows(f"SELECT {_HTLC_COLS} FROM lsp_hold_htlcs WHERE intercept_id = ?", (intercept_id,))
        return HeldHtlc(**rows[0]) if rows else None

    def htlcs(self, hold_id: str, state: str | tuple[str, ...] | None = None) -> list[HeldHtlc]:
        q, args = f"SELECT {_HTLC_COLS} FROM lsp_hold_htlcs WHERE hold_id = ?", [hold_id]
        if state:
            states = (state,) if isinstance(state, str) else state
            q += f" AND state IN ({_marks(len(states))})"
            args += list(states)
        return [HeldHtlc(**r) for r in self._rows(q + " ORDER BY rowid", args)]

    def mark_forwarding(self, hold_id: str, now: float) -> list[HeldHtlc]:
        """Record the intent to forward every `held` HTLC of a released hold; only those HTLCs.
        Whoever gets an HTLC here owns its hand-over: one already `forwarding` belongs to a
        hand-over under way (or, at start-up, to reconciliation, which takes those itself)."""
        moving = self.htlcs(hold_id, HELD)
        self._exec(
            "UPDATE lsp_hold_htlcs SET state = ?, updated_at = ? WHERE hold_id = ? AND state = ?",
            (FORWARDING, now, hold_id, HELD),
        )
        return [dataclasses.replace(h, state=FORWARDING) for h in moving]

    def htlc_counts(self, hold_id: str) -> dict[str, int]:
        """How many of the hold's HTLCs are in each state."""
        rows = self._rows(
            "SELECT state, COUNT(*) AS n FROM lsp_hold_htlcs WHERE hold_id = ? GROUP BY state", (hold_id,)
        )
        return {r["state"]: r["n"] for r in rows}

    def set_htlc_state(
        self, intercept_id: str, state: str, now: float, only_from: tuple[str, ...] | None = None
    ) -> bool:
        """Set an HTLC's state; with `only_from`, only if it is still in one of those states (a
        write decided on an earlier read must not undo what another unit of work did since)."""
        q, args = (
            "UPDATE lsp_hold_htlcs SET state = ?, updated_at = ? WHERE intercept_id = ?",
            [state, now, intercept_id],
        )
        if only_from:
            q += f" AND state IN ({_marks(len(only_from))})"
            args += list(only_from)
        return self._exec(q, args) == 1

    def last_failure_at(self, hold_id: str) -> float | None:
        """When the hold's most recent HTLC failure was recorded (downstream or failed back)."""
        [r] = self._rows(
            "SELECT MAX(updated_at) AS t FROM lsp_hold_htlcs WHERE hold_id = ? AND state = 'failed'", (hold_id,)
        )
        return None if r["t"] is None else float(r["t"])

    def client_totals(self, client: str) -> tuple[int, int, int]:
        """(active holds, held HTLCs, held msat) of one client, for its caps."""
        [holds] = self._rows(
            f"SELECT COUNT(*) AS n FROM lsp_holds WHERE client = ? AND state IN ({_marks(len(ACTIVE))})",
            (client, *ACTIVE),
        )
        [held] = self._rows(
            "SELECT COUNT(*) AS n, COALESCE(SUM(x.inbound_msat), 0) AS msat"
            " FROM lsp_hold_htlcs x JOIN lsp_holds h USING (hold_id) WHERE h.client = ? AND x.state IN (?, ?)",
            (client, *WAITING),
        )
        return holds["n"], held["n"], held["msat"]

    # -- mailbox ----------------------------------------------------------------------------------
    def mailbox_usage(self, client: str) -> tuple[int, int]:
        [r] = self._rows(
            "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS size FROM lsp_mailbox WHERE client = ?", (client,)
        )
        return r["n"], r["size"]

    def mailbox_usage_by_sender(self, sender: str, client: str | None = None) -> tuple[int, int]:
        """(messages, bytes) a sender bucket holds, for one client or in every mailbox."""
        q, args = "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS size FROM lsp_mailbox WHERE sender = ?", [sender]
        if client is not None:
            q += " AND client = ?"
            args.append(client)
        [r] = self._rows(q, args)
        return r["n"], r["size"]

    def put_message(self, client: str, message: str, now: float, ttl: float, sender: str = "*") -> int:
        def put() -> int:
            table = self.db.table("lsp_mailbox")
            table.insert(
                {
                    "client": client,
                    "message": message,
                    "size": len(message) // 2,
                    "received_at": now,
                    "expires_at": now + ttl,
                    "sender": sender,
                }
            )
            return int(table.last_rowid or 0)

        return self.call(put)

    def messages(self, client: str | None = None) -> list[MailboxEntry]:
        q, args = f"SELECT {_MAIL_COLS} FROM lsp_mailbox", []
        if client:
            q += " WHERE client = ?"
            args.append(client)
        return [MailboxEntry(**r) for r in self._rows(q + " ORDER BY id", args)]

    def delete_message(self, message_id: int) -> None:
        self._exec("DELETE FROM lsp_mailbox WHERE id = ?", (message_id,))

    def delete_messages(self, client: str, ids: Iterable[int]) -> int:
        """Delete acknowledged entries; only the client's own (an ack cannot touch other mail)."""
        ids = list(ids)
        if not ids:
            return 0
        return self._exec(f"DELETE FROM lsp_mailbox WHERE client = ? AND id IN ({_marks(len(ids))})", (client, *ids))

    def count_delivery(self, client: str, ids: Iterable[int], most: int) -> int:
        """One more unacknowledged delivery of the client's entries `ids`; those delivered `most`
        times are deleted (returns how many); one transaction when run through `run`."""
        ids = list(ids)
        if not ids:
            return 0
        where = f"client = ? AND id IN ({_marks(len(ids))})"
        self._exec(f"UPDATE lsp_mailbox SET deliveries = deliveries + 1 WHERE {where}", (client, *ids))
        return self._exec(f"DELETE FROM lsp_mailbox WHERE {where} AND deliveries >= ?", (client, *ids, most))

    def mailbox_clients(self) -> list[dict[str, Any]]:
        """Per client: messages kept, their bytes and the oldest one's arrival; fullest first."""
        return self._rows(
            "SELECT client, COUNT(*) AS messages, SUM(size) AS bytes, MIN(received_at) AS oldest_at"
            " FROM lsp_mailbox GROUP BY client ORDER BY messages DESC, client"
        )

    def mailbox_entries(self, client: str | None = None) -> list[dict[str, Any]]:
        """The entries without their bodies (opaque onion messages, up to 32 KB each)."""
        q, args = "SELECT id, client, size, received_at, expires_at, sender FROM lsp_mailbox", []
        if client:
            q += " WHERE client = ?"
            args.append(client)
        return self._rows(q + " ORDER BY id", args)

    def purge_client_mailbox(self, client: str) -> int:
        """Delete every entry kept for one client (the operator's purge); how many."""
        return self._exec("DELETE FROM lsp_mailbox WHERE client = ?", (client,))

    def purge_mailbox(self, now: float) -> int:
        return self._exec("DELETE FROM lsp_mailbox WHERE expires_at <= ?", (now,))

    # -- engine events that failed ---------------------------------------------------------------
    def event_attempts(self, first_pending_id: int | None) -> dict[int, int]:
        """Attempts recorded per event id; rows of events acknowledged since (ids below the
        engine's oldest pending event) are deleted first."""

        def load() -> dict[int, int]:
            self.db.execute(
                "DELETE FROM lsp_event_attempts WHERE event_id < ?",
                [first_pending_id if first_pending_id is not None else 2**62],
            )
            return {r["event_id"]: r["attempts"] for r in self._store.rows("SELECT * FROM lsp_event_attempts")}

        return self.call(load)

    def count_event_attempt(self, event_id: int, kind: str, error: str, now: float) -> int:
        """Record one more attempt at an event (before it is tried, or after it failed); the
        attempts so far, this one included."""

        def count() -> int:
            [row] = self._store.rows(
                "INSERT INTO lsp_event_attempts (event_id, kind, attempts, last_error, updated_at)"
                " VALUES (?, ?, 1, ?, ?) ON CONFLICT (event_id) DO UPDATE SET attempts = attempts + 1,"
                " last_error = excluded.last_error, updated_at = excluded.updated_at RETURNING attempts",
                [event_id, kind, error, now],
            )
            return int(row["attempts"])

        return self.call(count)

    def forget_event(self, event_id: int) -> None:
        self._exec("DELETE FROM lsp_event_attempts WHERE event_id = ?", (event_id,))
