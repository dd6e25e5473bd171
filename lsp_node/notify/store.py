"""The push store (notify.sqlite): registered devices, the outbox of pending pushes and who got
them. Registrations, pending pushes, retries and the cooldown survive a restart. Tables carry a
``notify_`` prefix.

Every public method is one transaction on the store's database thread (`lsp_node.db.Store`):
called from the loop through `run`, it leaves the loop free; called directly it blocks its caller
(start-up, tests). Times are Unix seconds (float); every method takes an optional ``now`` so tests
control the clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

from lsp_node.db import Database, Schema, Store
from lsp_node.errors import ConfigError, InvalidArgumentError
from lsp_node.notify.ids import PLATFORM_RE, DeviceFormat, check_client_id, check_device_id, client_tag, device_format
from lsp_node.notify.kinds import check_kind
from lsp_node.notify.webhook_store import WebhookOutbox, webhooks

log = logging.getLogger("lsp_node.notify")

T = TypeVar("T")
P = ParamSpec("P")

DEFAULT_MAX_DEVICES_PER_CLIENT: Final = 10
DEFAULT_DEVICE_LIFETIME_SECS: Final = 28 * 24 * 3600.0
DEFAULT_COOLDOWN_SECS: Final = 60.0
DEFAULT_OUTBOX_RETENTION_SECS: Final = 7 * 24 * 3600.0

#: Migration 1: the schema as the first release wrote it (a file made by it is adopted as is).
SCHEMA_V1: Final = """
CREATE TABLE IF NOT EXISTS notify_devices (
    client_id     TEXT    NOT NULL,
    platform      TEXT    NOT NULL,
    device_id     TEXT    NOT NULL,
    registered_at REAL    NOT NULL,
    expires_at    REAL    NOT NULL,
    failures      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (client_id, platform, device_id)
);
CREATE INDEX IF NOT EXISTS notify_devices_expiry ON notify_devices (expires_at);

CREATE TABLE IF NOT EXISTS notify_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id       TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    created_at      REAL    NOT NULL,
    next_attempt_at REAL    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    sent_at         REAL,
    finished_at     REAL,
    last_error      TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS notify_outbox_one_pending
    ON notify_outbox (client_id, kind) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS notify_outbox_last_sent ON notify_outbox (client_id, kind, status, sent_at);

CREATE TABLE IF NOT EXISTS notify_sent (
    outbox_id INTEGER NOT NULL REFERENCES notify_outbox (id) ON DELETE CASCADE,
    platform  TEXT    NOT NULL,
    device_id TEXT    NOT NULL,
    sent_at   REAL    NOT NULL,
    PRIMARY KEY (outbox_id, platform, device_id)
);
"""


#: What an attempt at a push ends in: it reached the client's devices ('sent'), it failed and is
#: tried again later ('retried'), or it failed for the last time ('dead'). Counted in
#: notify_counters, which outlives the outbox rows (finished rows are deleted after the retention).
PUSH_RESULTS: Final = ("sent", "retried", "dead")


def initial(db: Database) -> None:
    db.executescript(SCHEMA_V1)


def push_counters(db: Database) -> None:
    # Seeded from the rows the outbox still holds, so a chart of the old outbox counts does not
    # drop to zero at the upgrade: a finished row's last attempt gave its status and each earlier
    # one failed; a pending row's attempts all failed. Rows purged before the upgrade are lost.
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS notify_counters (
            result TEXT    PRIMARY KEY,
            value  INTEGER NOT NULL DEFAULT 0
        );
        INSERT OR IGNORE INTO notify_counters (result, value)
            SELECT 'sent', COUNT(*) FROM notify_outbox WHERE status = 'sent';
        INSERT OR IGNORE INTO notify_counters (result, value)
            SELECT 'dead', COUNT(*) FROM notify_outbox WHERE status = 'dead';
        INSERT OR IGNORE INTO notify_counters (result, value)
            SELECT 'retried', COALESCE(SUM(CASE WHEN status = 'pending' THEN attempts
                                                ELSE MAX(attempts - 1, 0) END), 0)
            FROM notify_outbox;
        """
    )


SCHEMA = Schema("notify", [initial, push_counters, webhooks])


def _now(now: float | None) -> float:
    return time.time() if now is None else float(now)


@dataclass(frozen=True)
class Device:
    """A registered device. ``device_id`` is left out of the repr so it does not end up in logs."""

    client_id: str
    platform: str
    device_id: str = field(repr=False)
    registered_at: float
    expires_at: float
    failures: int = 0


@dataclass(frozen=True)
class Registration:
    """What ``register_device`` confirms to the caller."""

    platform: str
    registered_at: float
    expires_at: float
    refreshed: bool  # True if the device was already registered and only its expiry moved
    device_count: int  # unexpired devices of the client, this one included


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    client_id: str
    kind: str
    status: str
    created_at: float
    next_attempt_at: float
    attempts: int
    sent_at: float | None
    finished_at: float | None
    last_error: str | None
    #: 'apprise' (a push to the client's devices) or 'webhook' (one LSPS5 POST).
    delivery: str = "apprise"


@dataclass(frozen=True)
class NotifyStatus:
    """Counters for a dashboard."""

    pending: int
    sent: int
    dead: int
    devices: int
    clients: int


_DEVICE_COLS: Final = "client_id, platform, device_id, registered_at, expires_at, failures"
_OUTBOX_COLS: Final = (
    "id, client_id, kind, status, created_at, next_attempt_at, attempts, sent_at, finished_at, last_error, delivery"
)


class NotificationStore(WebhookOutbox):
    """Devices and the push outbox (apprise pushes; LSPS5 webhook POSTs through `WebhookOutbox`)."""

    def __init__(
        self,
        path: str | Path,
        platforms: Iterable[str] | Mapping[str, str],
        *,
        max_devices_per_client: int = DEFAULT_MAX_DEVICES_PER_CLIENT,
        device_lifetime_secs: float = DEFAULT_DEVICE_LIFETIME_SECS,
        cooldown_secs: float = DEFAULT_COOLDOWN_SECS,
        outbox_retention_secs: float = DEFAULT_OUTBOX_RETENTION_SECS,
    ) -> None:
        # Given the templates (platform -> URL), a platform's device id format also follows the
        # template's scheme; given only names, it follows the name (SPEC.md §7.1).
        templates: Mapping[str, str] = platforms if isinstance(platforms, Mapping) else {}
        self.platforms: frozenset[str] = frozenset(platforms)
        for p in self.platforms:
            if not PLATFORM_RE.fullmatch(p):
                raise ConfigError(f"invalid notification platform name {p!r}")
        self.formats: dict[str, DeviceFormat] = {p: device_format(p, templates.get(p)) for p in self.platforms}
        if max_devices_per_client < 1:
            raise ConfigError("max_devices_per_client must be at least 1")
        if device_lifetime_secs <= 0:
            raise ConfigError("device_lifetime_secs must be positive")
        if cooldown_secs < 0:
            raise ConfigError("cooldown_secs must not be negative")
        if outbox_retention_secs < cooldown_secs:
            raise ConfigError("outbox_retention_secs must be at least cooldown_secs")
        self.max_devices_per_client = max_devices_per_client
        self.device_lifetime_secs = float(device_lifetime_secs)
        self.cooldown_secs = float(cooldown_secs)
        self.outbox_retention_secs = float(outbox_retention_secs)
        self._store = Store(path, SCHEMA, "notify")
        self.db = self._store.db

    # -- lifecycle and units of work ---------------------------------------------------------------

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> NotificationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._store.run(fn, *args, **kwargs)

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return self._store.call(fn, *args, **kwargs)

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return self.call(self._store.rows, sql, list(args))

    # -- devices -----------------------------------------------------------------------------------

    def register_device(self, client_id: str, platform: str, device_id: str, now: float | None = None) -> Registration:
        """Register (or refresh the expiry of) a device; raises InvalidArgumentError if refused."""
        cid = check_client_id(client_id)
        if platform not in self.platforms:
            raise InvalidArgumentError(
                f"unknown notification platform {platform!r}; this LSP supports {sorted(self.platforms)}"
            )
        did = check_device_id(device_id, self.formats[platform])
        t = _now(now)
        expires = t + self.device_lifetime_secs
        key = {"client_id": cid, "platform": platform, "device_id": did}

        def register() -> tuple[bool, int]:
            db = self.db
            db.execute("DELETE FROM notify_devices WHERE client_id = ? AND expires_at <= ?", (cid, t))
            exists = bool(
                list(
                    self._store.rows(
                        "SELECT 1 AS x FROM notify_devices WHERE client_id = :client_id AND platform = :platform"
                        " AND device_id = :device_id",
                        key,
                    )
                )
            )
            [row] = self._store.rows("SELECT COUNT(*) AS n FROM notify_devices WHERE client_id = ?", (cid,))
            count = int(row["n"])
            if exists:
                db.execute(
                    "UPDATE notify_devices SET registered_at = :t, expires_at = :expires, failures = 0"
                    " WHERE client_id = :client_id AND platform = :platform AND device_id = :device_id",
                    {**key, "t": t, "expires": expires},
                )
                return True, count
            if count >= self.max_devices_per_client:
                raise InvalidArgumentError(
                    f"client already has {count} registered devices, the maximum is "
                    f"{self.max_devices_per_client}; remove one first"
                )
            db.table("notify_devices").insert({**key, "registered_at": t, "expires_at": expires})
            return False, count + 1

        exists, count = self.call(register)
        log.info(
            "notify: %s device for client %s on %s", "refreshed" if exists else "registered", client_tag(cid), platform
        )
        return Registration(platform, t, expires, exists, count)

    def remove_device(self, client_id: str, platform: str, device_id: str) -> bool:
        """Forget a device; True if it was registered."""
        cid = check_client_id(client_id)
        removed = self.call(
            lambda: (
                self.db.execute(
                    "DELETE FROM notify_devices WHERE client_id = ? AND platform = ? AND device_id = ?",
                    (cid, platform, device_id),
                ).rowcount
                > 0
            )
        )
        if removed:
            log.info("notify: removed device of client %s on %s", client_tag(cid), platform)
        return removed

    def has_device(self, client_id: str, now: float | None = None) -> bool:
        """Whether the client has an unexpired device (its pushes go through apprise)."""
        rows = self._rows(
            "SELECT 1 AS x FROM notify_devices WHERE client_id = ? AND expires_at > ? LIMIT 1",
            (check_client_id(client_id), _now(now)),
        )
        return bool(rows)

    def devices(self, client_id: str, now: float | None = None) -> list[Device]:
        """The client's unexpired devices, oldest registration first."""
        cid = check_client_id(client_id)
        rows = self._rows(
            f"SELECT {_DEVICE_COLS} FROM notify_devices"
            " WHERE client_id = ? AND expires_at > ? ORDER BY registered_at, platform, device_id",
            (cid, _now(now)),
        )
        return [Device(**r) for r in rows]

    def purge_expired(self, now: float | None = None) -> int:
        """Delete expired devices and finished outbox rows older than the retention; return devices deleted."""
        t = _now(now)

        def purge() -> int:
            n = self.db.execute("DELETE FROM notify_devices WHERE expires_at <= ?", (t,)).rowcount
            self.db.execute(
                "DELETE FROM notify_outbox WHERE status != 'pending' AND finished_at < ?",
                (t - self.outbox_retention_secs,),
            )
            self._purge_webhooks(t)
            return int(n)

        n = self.call(purge)
        if n:
            log.info("notify: purged %d expired devices", n)
        return n

    # -- outbox ------------------------------------------------------------------------------------

    def enqueue(self, client_id: str, kind: str, now: float | None = None) -> bool:
        """Record that ``kind`` must be pushed to the client.

        True if a new outbox row was created. False if coalesced: a push of the same kind is still
        pending, or one was sent less than ``cooldown_secs`` ago. Also False (nothing to do) when the
        client has no unexpired device.
        """
        cid = check_client_id(client_id)
        check_kind(kind)
        t = _now(now)

        def enqueue() -> bool:
            db = self.db
            if list(
                self._store.rows(
                    "SELECT 1 AS x FROM notify_outbox WHERE client_id = ? AND kind = ? AND status = 'pending'"
                    " AND delivery = 'apprise'",
                    (cid, kind),
                )
            ):
                log.debug("notify: %s for client %s coalesced with a pending push", kind, client_tag(cid))
                return False
            [row] = self._store.rows(
                "SELECT MAX(sent_at) AS last FROM notify_outbox WHERE client_id = ? AND kind = ? AND status = 'sent'",
                (cid, kind),
            )
            if row["last"] is not None and t < row["last"] + self.cooldown_secs:
                log.debug("notify: %s for client %s coalesced (cooldown)", kind, client_tag(cid))
                return False
            if not list(
                self._store.rows(
                    "SELECT 1 AS x FROM notify_devices WHERE client_id = ? AND expires_at > ? LIMIT 1", (cid, t)
                )
            ):
                log.debug("notify: %s for client %s dropped: no registered device", kind, client_tag(cid))
                return False
            db.table("notify_outbox").insert({"client_id": cid, "kind": kind, "created_at": t, "next_attempt_at": t})
            return True

        created = self.call(enqueue)
        if created:
            log.debug("notify: %s for client %s queued", kind, client_tag(cid))
        return created

    def due(self, now: float | None = None, limit: int = 100) -> list[OutboxEntry]:
        """Pending outbox rows whose next attempt is due, oldest first."""
        rows = self._rows(
            f"SELECT {_OUTBOX_COLS} FROM notify_outbox WHERE status = 'pending' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, id LIMIT ?",
            (_now(now), limit),
        )
        return [OutboxEntry(**r) for r in rows]

    def outbox(self, client_id: str | None = None) -> list[OutboxEntry]:
        """All outbox rows (of one client if given), oldest first; for inspection and tests."""
        if client_id is None:
            rows = self._rows(f"SELECT {_OUTBOX_COLS} FROM notify_outbox ORDER BY id")
        else:
            rows = self._rows(
                f"SELECT {_OUTBOX_COLS} FROM notify_outbox WHERE client_id = ? ORDER BY id",
                (check_client_id(client_id),),
            )
        return [OutboxEntry(**r) for r in rows]

    def outbox_page(self, status: str | None, limit: int, offset: int) -> list[OutboxEntry]:
        """One page of outbox rows, newest first, of one status if given (the admin API's listing)."""
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        rows = self._rows(
            f"SELECT {_OUTBOX_COLS} FROM notify_outbox {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        return [OutboxEntry(**r) for r in rows]

    def all_devices(self, now: float | None = None) -> list[Device]:
        """Every unexpired device of every client, oldest registration first."""
        rows = self._rows(
            f"SELECT {_DEVICE_COLS} FROM notify_devices WHERE expires_at > ? ORDER BY registered_at, client_id, platform",
            (_now(now),),
        )
        return [Device(**r) for r in rows]

    def retry(self, outbox_id: int, now: float | None = None) -> OutboxEntry:
        """Make a push due now: a pending one is tried at once, a dead one is revived for one more
        round of attempts. Raises KeyError for an unknown id, InvalidArgumentError for a push that
        was sent or whose (client, kind) has another push pending."""
        t = _now(now)

        def retry() -> OutboxEntry:
            rows = self._store.rows(f"SELECT {_OUTBOX_COLS} FROM notify_outbox WHERE id = ?", (outbox_id,))
            if not rows:
                raise KeyError(outbox_id)
            entry = OutboxEntry(**rows[0])
            if entry.status == "sent":
                raise InvalidArgumentError("the push was sent already")
            if entry.delivery == "webhook":
                self._check_webhook_retry(outbox_id, t)
            if entry.status == "dead":
                pending = self._store.rows(
                    "SELECT 1 AS x FROM notify_outbox WHERE client_id = ? AND kind = ? AND status = 'pending'"
                    " AND delivery = 'apprise'",
                    (entry.client_id, entry.kind),
                )
                if list(pending):
                    raise InvalidArgumentError("a push of this kind is already pending for this client")
            # Attempts restart: a revived push gets the delivery's whole round of attempts again.
            self.db.execute(
                "UPDATE notify_outbox SET status = 'pending', next_attempt_at = ?, attempts = 0, finished_at = NULL"
                " WHERE id = ?",
                (t, outbox_id),
            )
            [row] = self._store.rows(f"SELECT {_OUTBOX_COLS} FROM notify_outbox WHERE id = ?", (outbox_id,))
            return OutboxEntry(**row)

        return self.call(retry)

    def next_due_at(self) -> float | None:
        """When the earliest pending push is due, or None if nothing is pending."""
        [row] = self._rows("SELECT MIN(next_attempt_at) AS due FROM notify_outbox WHERE status = 'pending'")
        return None if row["due"] is None else float(row["due"])

    def delivered_to(self, outbox_id: int) -> set[tuple[str, str]]:
        """(platform, device_id) pairs that already received this push."""
        rows = self._rows("SELECT platform, device_id FROM notify_sent WHERE outbox_id = ?", (outbox_id,))
        return {(r["platform"], r["device_id"]) for r in rows}

    def record_delivery(self, outbox_id: int, device: Device, ok: bool, now: float) -> None:
        """Note the outcome of one device delivery (keeps retries from re-sending to it)."""
        key = {"client_id": device.client_id, "platform": device.platform, "device_id": device.device_id}

        def record() -> None:
            if ok:
                self.db.execute(
                    "INSERT OR IGNORE INTO notify_sent (outbox_id, platform, device_id, sent_at)"
                    " VALUES (:outbox_id, :platform, :device_id, :now)",
                    {**key, "outbox_id": outbox_id, "now": now},
                )
                self.db.execute(
                    "UPDATE notify_devices SET failures = 0"
                    " WHERE client_id = :client_id AND platform = :platform AND device_id = :device_id",
                    key,
                )
            else:
                self.db.execute(
                    "UPDATE notify_devices SET failures = failures + 1"
                    " WHERE client_id = :client_id AND platform = :platform AND device_id = :device_id",
                    key,
                )

        self.call(record)

    def _attempted(self, result: str, sql: str, args: tuple[Any, ...]) -> None:
        """Record an attempt's outcome on its outbox row and count it, in one transaction. Only a
        pending row changes (the UPDATEs say so), so an attempt is counted once even if marked twice."""

        def step() -> None:
            if self.db.execute(sql, args).rowcount:
                self.db.execute(
                    "INSERT INTO notify_counters (result, value) VALUES (?, 1)"
                    " ON CONFLICT (result) DO UPDATE SET value = value + 1",
                    (result,),
                )

        self.call(step)

    def mark_sent(self, outbox_id: int, now: float) -> None:
        self._attempted(
            "sent",
            "UPDATE notify_outbox SET status = 'sent', sent_at = ?, finished_at = ?, last_error = NULL,"
            " attempts = attempts + 1 WHERE id = ? AND status = 'pending'",
            (now, now, outbox_id),
        )

    def mark_failed(self, outbox_id: int, now: float, next_attempt_at: float, error: str) -> None:
        """One more failed attempt; try again at ``next_attempt_at``."""
        self._attempted(
            "retried",
            "UPDATE notify_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE id = ? AND status = 'pending'",
            (next_attempt_at, error, outbox_id),
        )

    def mark_dead(self, outbox_id: int, now: float, error: str) -> None:
        self._attempted(
            "dead",
            "UPDATE notify_outbox SET status = 'dead', attempts = attempts + 1, finished_at = ?, last_error = ?"
            " WHERE id = ? AND status = 'pending'",
            (now, error, outbox_id),
        )

    def attempt_counts(self) -> dict[str, int]:
        """Attempts at pushes since the store was created, by result (`PUSH_RESULTS`): counters
        that only rise, whatever the outbox's retention deletes."""
        counts = dict.fromkeys(PUSH_RESULTS, 0)
        for result, n in self.call(lambda: self.db.execute("SELECT result, value FROM notify_counters").fetchall()):
            counts[str(result)] = int(n)
        return counts

    def status(self, now: float | None = None) -> NotifyStatus:
        counts = {
            r["status"]: r["n"] for r in self._rows("SELECT status, COUNT(*) AS n FROM notify_outbox GROUP BY status")
        }
        [row] = self._rows(
            "SELECT COUNT(*) AS devices, COUNT(DISTINCT client_id) AS clients FROM notify_devices WHERE expires_at > ?",
            (_now(now),),
        )
        return NotifyStatus(
            pending=int(counts.get("pending", 0)),
            sent=int(counts.get("sent", 0)),
            dead=int(counts.get("dead", 0)),
            devices=int(row["devices"]),
            clients=int(row["clients"]),
        )
