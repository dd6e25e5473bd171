"""Push notifications that ask an offline client to come online.

A client registers one or more platform device ids with its LSP. The operator maps every platform name
("fcm", "apns", "webhook", ...) to an apprise URL template in which ``{device}`` stands for the device
id, e.g. ``json://127.0.0.1:8080/push/{device}`` or ``fcm://APIKEY/{device}``.

Design (LightningRod "Notifications", design question 9):

* Everything is in SQLite (WAL, synchronous=FULL), so registrations, pending pushes, retries and the
  cooldown survive a restart. Tables carry a ``notify_`` prefix and may share a file with other modules.
* ``NotificationStore.enqueue`` records that a push is due. At most one push per (client, kind) per
  cooldown window: while a push of that kind is pending, or was sent less than ``cooldown_secs`` ago,
  a new enqueue is coalesced (returns False).
* ``Notifier`` delivers due pushes to every unexpired device of the client, retrying the devices that
  failed with exponential backoff (base 2 s, doubling, capped at 10 min) until ``max_attempts``; then
  the push is 'dead' (or 'sent' if at least one device got it) and a warning is logged.
* Privacy: the payload is only title "LSP" and the kind plus a fixed sentence -- never a payment hash,
  amount, node id, device id or URL. Our log lines carry only a client id prefix, the platform and the
  kind. Apprise and urllib3 log the full URL at debug level; a filter installed on those loggers
  redacts URLs and the device ids being sent before any handler sees the record.

Times are Unix seconds (float); every method takes an optional ``now`` so tests control the clock.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import sqlite3
import threading
import time
import urllib.parse
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Iterable, Literal, Mapping

import apprise

from lsp_node.errors import ConfigError, InvalidArgumentError, StorageError

log = logging.getLogger("lsp_node.notify")


def _load_apprise_plugins() -> None:
    """Load apprise's plugins now, once, rather than lazily inside the first delivery.

    Some plugins import deprecated stdlib modules (``imghdr`` on 3.11+); that warning is apprise's
    business, not ours, and would otherwise surface (or, under ``-W error``, fail) at the first push.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        apprise.Apprise.instantiate("json://localhost")


_load_apprise_plugins()

Kind = Literal["message_waiting", "preimage_waiting", "hold_expiring"]

#: The human sentence sent with each kind. The push body is ``"<kind>: <sentence>"``.
KIND_SENTENCES: Final[Mapping[str, str]] = {
    "message_waiting": "A message is waiting for you. Please open your wallet.",
    "preimage_waiting": "A payment you sent needs you online to finish. Please open your wallet.",
    "hold_expiring": "A pending payment will expire soon. Please open your wallet.",
}
KINDS: Final[frozenset[str]] = frozenset(KIND_SENTENCES)

PUSH_TITLE: Final = "LSP"

DEFAULT_MAX_DEVICES_PER_CLIENT: Final = 10
DEFAULT_DEVICE_LIFETIME_SECS: Final = 28 * 24 * 3600.0
DEFAULT_COOLDOWN_SECS: Final = 60.0
DEFAULT_OUTBOX_RETENTION_SECS: Final = 7 * 24 * 3600.0

MAX_DEVICE_ID_LEN: Final = 4096
_CLIENT_ID_RE: Final = re.compile(r"^(02|03)[0-9a-f]{64}$")
_PLATFORM_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
_DEVICE_PLACEHOLDER: Final = "{device}"


def push_body(kind: str) -> str:
    """The exact body pushed for ``kind``: the kind string, a colon and a fixed sentence."""
    try:
        return f"{kind}: {KIND_SENTENCES[kind]}"
    except KeyError:
        raise InvalidArgumentError(f"unknown notification kind {kind!r}; expected one of {sorted(KINDS)}") from None


def _client_tag(client_id: str) -> str:
    """What logs may show of a client: a short prefix of its node id."""
    return client_id[:8]


def _now(now: float | None) -> float:
    return time.time() if now is None else float(now)


def _check_client_id(client_id: str) -> str:
    if not isinstance(client_id, str):
        raise InvalidArgumentError("client_id must be a hex node id string")
    cid = client_id.lower()
    if not _CLIENT_ID_RE.match(cid):
        raise InvalidArgumentError("client_id must be a 33-byte compressed public key in hex (66 characters)")
    return cid


def _check_device_id(device_id: str) -> str:
    # The message never echoes the id: it is a secret that could end up in a log.
    if not isinstance(device_id, str):
        raise InvalidArgumentError("device id must be a string")
    if not 1 <= len(device_id) <= MAX_DEVICE_ID_LEN:
        raise InvalidArgumentError(f"device id must be 1 to {MAX_DEVICE_ID_LEN} characters long")
    if not all("!" <= ch <= "~" for ch in device_id):
        raise InvalidArgumentError("device id must be printable ASCII without whitespace")
    return device_id


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidArgumentError(f"unknown notification kind {kind!r}; expected one of {sorted(KINDS)}")
    return kind


# --------------------------------------------------------------------------------------------------
# Log redaction for third-party loggers (apprise logs the full URL at debug level, urllib3 the path).
# --------------------------------------------------------------------------------------------------

_URL_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,31}://\S+")
_REDACTED: Final = "<redacted>"
_TOKEN_RE: Final = re.compile(r"[^\s\"'<>()\[\]]*%[0-9A-Fa-f]{2}[^\s\"'<>()\[\]]*")
_THIRD_PARTY_LOGGERS: Final = (
    "apprise",
    "urllib3",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "urllib3.poolmanager",
    "requests",
)


class _Secrets:
    """Strings (device ids, URLs, hosts) of the deliveries in flight; counted, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def add(self, items: Iterable[str]) -> None:
        with self._lock:
            self._counts.update(items)

    def remove(self, items: Iterable[str]) -> None:
        with self._lock:
            self._counts.subtract(items)
            for key in [k for k, v in self._counts.items() if v <= 0]:
                del self._counts[key]

    def snapshot(self) -> list[str]:
        with self._lock:
            # Longest first, so a URL is redacted before the device id inside it.
            return sorted(self._counts, key=len, reverse=True)


_secrets = _Secrets()


class _RedactingFilter(logging.Filter):
    """Rewrites a record so that it holds no URL and none of the in-flight secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed third-party record: drop it rather than risk a leak
            return False
        secrets = _secrets.snapshot()
        redacted = _URL_RE.sub(_REDACTED, message)
        for secret in secrets:
            if secret in redacted:
                redacted = redacted.replace(secret, _REDACTED)
        if secrets:
            # A library may re-encode a path differently from us: drop any token that decodes to one.
            def token(m: re.Match[str]) -> str:
                decoded = urllib.parse.unquote(m.group(0))
                return _REDACTED if any(s in decoded for s in secrets) else m.group(0)

            redacted = _TOKEN_RE.sub(token, redacted)
        record.msg = redacted
        record.args = None
        # Tracebacks of request errors quote the URL; they are of no use without it.
        record.exc_info = None
        record.exc_text = None
        return True


_filter_lock = threading.Lock()
_filter_installed = False


def _install_redaction() -> None:
    global _filter_installed
    with _filter_lock:
        if _filter_installed:
            return
        flt = _RedactingFilter()
        for name in _THIRD_PARTY_LOGGERS:
            logging.getLogger(name).addFilter(flt)
        _filter_installed = True


def _secrets_for(device_id: str, url: str, template: str) -> list[str]:
    """What must not appear in a log line while ``url`` is being called."""
    parts = urllib.parse.urlsplit(url)
    bare = urllib.parse.urlsplit(template.replace(_DEVICE_PLACEHOLDER, ""))
    out = [device_id, urllib.parse.quote(device_id, safe=""), url, urllib.parse.unquote(url)]
    pieces = (
        parts.netloc,
        parts.hostname or "",
        parts.path,
        urllib.parse.unquote(parts.path),
        bare.path.rstrip("/"),  # the operator's part of the path, e.g. a webhook token
    )
    out.extend(p for p in pieces if len(p) >= 4)
    return out


# --------------------------------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------------------------------

_SCHEMA: Final = """
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


@dataclass(frozen=True)
class NotifyStatus:
    """Counters for a dashboard."""

    pending: int
    sent: int
    dead: int
    devices: int
    clients: int


class NotificationStore:
    """Devices and the push outbox, in SQLite. Use from one thread (the event loop's)."""

    def __init__(
        self,
        path: str | Path,
        platforms: Iterable[str],
        *,
        max_devices_per_client: int = DEFAULT_MAX_DEVICES_PER_CLIENT,
        device_lifetime_secs: float = DEFAULT_DEVICE_LIFETIME_SECS,
        cooldown_secs: float = DEFAULT_COOLDOWN_SECS,
        outbox_retention_secs: float = DEFAULT_OUTBOX_RETENTION_SECS,
    ) -> None:
        self.platforms: frozenset[str] = frozenset(platforms)
        for p in self.platforms:
            if not _PLATFORM_RE.match(p):
                raise ConfigError(f"invalid notification platform name {p!r}")
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
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, timeout=10.0)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open notification store {path}: {e}") from e
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            self._db.close()
            raise StorageError(f"cannot initialise notification store {path}: {e}") from e

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> NotificationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            if exc_type is None:
                self.db.execute("COMMIT")
            else:
                self.db.execute("ROLLBACK")

    def _tx(self) -> NotificationStore._Tx:
        return NotificationStore._Tx(self._db)

    # -- devices -----------------------------------------------------------------------------------

    def register_device(
        self, client_id: str, platform: str, device_id: str, now: float | None = None
    ) -> Registration:
        """Register (or refresh the expiry of) a device; raises InvalidArgumentError if refused."""
        cid = _check_client_id(client_id)
        if platform not in self.platforms:
            raise InvalidArgumentError(
                f"unknown notification platform {platform!r}; this LSP supports {sorted(self.platforms)}"
            )
        did = _check_device_id(device_id)
        t = _now(now)
        expires = t + self.device_lifetime_secs
        with self._tx() as db:
            db.execute("DELETE FROM notify_devices WHERE client_id = ? AND expires_at <= ?", (cid, t))
            exists = db.execute(
                "SELECT 1 FROM notify_devices WHERE client_id = ? AND platform = ? AND device_id = ?",
                (cid, platform, did),
            ).fetchone()
            count = db.execute("SELECT COUNT(*) FROM notify_devices WHERE client_id = ?", (cid,)).fetchone()[0]
            if exists:
                db.execute(
                    "UPDATE notify_devices SET registered_at = ?, expires_at = ?, failures = 0"
                    " WHERE client_id = ? AND platform = ? AND device_id = ?",
                    (t, expires, cid, platform, did),
                )
            else:
                if count >= self.max_devices_per_client:
                    raise InvalidArgumentError(
                        f"client already has {count} registered devices, the maximum is "
                        f"{self.max_devices_per_client}; remove one first"
                    )
                db.execute(
                    "INSERT INTO notify_devices (client_id, platform, device_id, registered_at, expires_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (cid, platform, did, t, expires),
                )
                count += 1
        log.info(
            "notify: %s device for client %s on %s", "refreshed" if exists else "registered", _client_tag(cid), platform
        )
        return Registration(platform, t, expires, bool(exists), count)

    def remove_device(self, client_id: str, platform: str, device_id: str) -> bool:
        """Forget a device; True if it was registered."""
        cid = _check_client_id(client_id)
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM notify_devices WHERE client_id = ? AND platform = ? AND device_id = ?",
                (cid, platform, device_id),
            )
        removed = cur.rowcount > 0
        if removed:
            log.info("notify: removed device of client %s on %s", _client_tag(cid), platform)
        return removed

    def devices(self, client_id: str, now: float | None = None) -> list[Device]:
        """The client's unexpired devices, oldest registration first."""
        cid = _check_client_id(client_id)
        rows = self._db.execute(
            "SELECT client_id, platform, device_id, registered_at, expires_at, failures FROM notify_devices"
            " WHERE client_id = ? AND expires_at > ? ORDER BY registered_at, platform, device_id",
            (cid, _now(now)),
        ).fetchall()
        return [Device(*r) for r in rows]

    def purge_expired(self, now: float | None = None) -> int:
        """Delete expired devices and finished outbox rows older than the retention; return devices deleted."""
        t = _now(now)
        with self._tx() as db:
            n = db.execute("DELETE FROM notify_devices WHERE expires_at <= ?", (t,)).rowcount
            db.execute(
                "DELETE FROM notify_outbox WHERE status != 'pending' AND finished_at < ?",
                (t - self.outbox_retention_secs,),
            )
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
        cid = _check_client_id(client_id)
        _check_kind(kind)
        t = _now(now)
        with self._tx() as db:
            if db.execute(
                "SELECT 1 FROM notify_outbox WHERE client_id = ? AND kind = ? AND status = 'pending'", (cid, kind)
            ).fetchone():
                log.debug("notify: %s for client %s coalesced with a pending push", kind, _client_tag(cid))
                return False
            last_sent = db.execute(
                "SELECT MAX(sent_at) FROM notify_outbox WHERE client_id = ? AND kind = ? AND status = 'sent'",
                (cid, kind),
            ).fetchone()[0]
            if last_sent is not None and t < last_sent + self.cooldown_secs:
                log.debug("notify: %s for client %s coalesced (cooldown)", kind, _client_tag(cid))
                return False
            if not db.execute(
                "SELECT 1 FROM notify_devices WHERE client_id = ? AND expires_at > ? LIMIT 1", (cid, t)
            ).fetchone():
                log.debug("notify: %s for client %s dropped: no registered device", kind, _client_tag(cid))
                return False
            db.execute(
                "INSERT INTO notify_outbox (client_id, kind, created_at, next_attempt_at) VALUES (?, ?, ?, ?)",
                (cid, kind, t, t),
            )
        log.debug("notify: %s for client %s queued", kind, _client_tag(cid))
        return True

    _OUTBOX_COLS: Final = (
        "id, client_id, kind, status, created_at, next_attempt_at, attempts, sent_at, finished_at, last_error"
    )

    def due(self, now: float | None = None, limit: int = 100) -> list[OutboxEntry]:
        """Pending outbox rows whose next attempt is due, oldest first."""
        rows = self._db.execute(
            f"SELECT {self._OUTBOX_COLS} FROM notify_outbox WHERE status = 'pending' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, id LIMIT ?",
            (_now(now), limit),
        ).fetchall()
        return [OutboxEntry(*r) for r in rows]

    def outbox(self, client_id: str | None = None) -> list[OutboxEntry]:
        """All outbox rows (of one client if given), oldest first; for inspection and tests."""
        if client_id is None:
            rows = self._db.execute(f"SELECT {self._OUTBOX_COLS} FROM notify_outbox ORDER BY id").fetchall()
        else:
            rows = self._db.execute(
                f"SELECT {self._OUTBOX_COLS} FROM notify_outbox WHERE client_id = ? ORDER BY id",
                (_check_client_id(client_id),),
            ).fetchall()
        return [OutboxEntry(*r) for r in rows]

    def next_due_at(self) -> float | None:
        """When the earliest pending push is due, or None if nothing is pending."""
        row = self._db.execute("SELECT MIN(next_attempt_at) FROM notify_outbox WHERE status = 'pending'").fetchone()
        return None if row[0] is None else float(row[0])

    def delivered_to(self, outbox_id: int) -> set[tuple[str, str]]:
        """(platform, device_id) pairs that already received this push."""
        rows = self._db.execute(
            "SELECT platform, device_id FROM notify_sent WHERE outbox_id = ?", (outbox_id,)
        ).fetchall()
        return {(p, d) for p, d in rows}

    def record_delivery(self, outbox_id: int, device: Device, ok: bool, now: float) -> None:
        """Note the outcome of one device delivery (keeps retries from re-sending to it)."""
        with self._tx() as db:
            if ok:
                db.execute(
                    "INSERT OR IGNORE INTO notify_sent (outbox_id, platform, device_id, sent_at) VALUES (?, ?, ?, ?)",
                    (outbox_id, device.platform, device.device_id, now),
                )
                db.execute(
                    "UPDATE notify_devices SET failures = 0 WHERE client_id = ? AND platform = ? AND device_id = ?",
                    (device.client_id, device.platform, device.device_id),
                )
            else:
                db.execute(
                    "UPDATE notify_devices SET failures = failures + 1"
                    " WHERE client_id = ? AND platform = ? AND device_id = ?",
                    (device.client_id, device.platform, device.device_id),
                )

    def mark_sent(self, outbox_id: int, now: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE notify_outbox SET status = 'sent', sent_at = ?, finished_at = ?, last_error = NULL,"
                " attempts = attempts + 1 WHERE id = ? AND status = 'pending'",
                (now, now, outbox_id),
            )

    def mark_failed(self, outbox_id: int, now: float, next_attempt_at: float, error: str) -> None:
        """One more failed attempt; try again at ``next_attempt_at``."""
        with self._tx() as db:
            db.execute(
                "UPDATE notify_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
                " WHERE id = ? AND status = 'pending'",
                (next_attempt_at, error, outbox_id),
            )

    def mark_dead(self, outbox_id: int, now: float, error: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE notify_outbox SET status = 'dead', attempts = attempts + 1, finished_at = ?, last_error = ?"
                " WHERE id = ? AND status = 'pending'",
                (now, error, outbox_id),
            )

    def status(self, now: float | None = None) -> NotifyStatus:
        counts = dict(
            self._db.execute("SELECT status, COUNT(*) FROM notify_outbox GROUP BY status").fetchall()
        )
        devices, clients = self._db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT client_id) FROM notify_devices WHERE expires_at > ?", (_now(now),)
        ).fetchone()
        return NotifyStatus(
            pending=int(counts.get("pending", 0)),
            sent=int(counts.get("sent", 0)),
            dead=int(counts.get("dead", 0)),
            devices=int(devices),
            clients=int(clients),
        )


# --------------------------------------------------------------------------------------------------
# Notifier
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotifierSettings:
    max_attempts: int = 8
    backoff_base_secs: float = 2.0
    backoff_cap_secs: float = 600.0
    request_timeout_secs: float = 10.0
    #: Upper bound on how long ``run`` sleeps when nothing is due (new enqueues through ``notify`` wake it).
    poll_interval_secs: float = 30.0
    #: How often ``run`` purges expired devices and old outbox rows.
    purge_interval_secs: float = 3600.0
    #: Outbox rows handled per ``deliver_due`` round, and device sends in flight at once.
    batch_size: int = 100
    max_concurrent_sends: int = 16

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1")
        if self.backoff_base_secs <= 0 or self.backoff_cap_secs < self.backoff_base_secs:
            raise ConfigError("backoff_base_secs must be positive and at most backoff_cap_secs")
        if self.request_timeout_secs <= 0:
            raise ConfigError("request_timeout_secs must be positive")
        if self.poll_interval_secs <= 0 or self.purge_interval_secs <= 0:
            raise ConfigError("poll_interval_secs and purge_interval_secs must be positive")
        if self.batch_size < 1 or self.max_concurrent_sends < 1:
            raise ConfigError("batch_size and max_concurrent_sends must be at least 1")

    def backoff(self, attempts: int) -> float:
        """Delay before the next try after ``attempts`` failed attempts (1 -> base, 2 -> 2*base, ...)."""
        exp = min(max(attempts - 1, 0), 32)
        return float(min(self.backoff_base_secs * (2**exp), self.backoff_cap_secs))


class Notifier:
    """Delivers the store's due pushes through apprise."""

    def __init__(
        self,
        store: NotificationStore,
        templates: Mapping[str, str],
        settings: NotifierSettings | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or NotifierSettings()
        for platform, template in templates.items():
            if not _PLATFORM_RE.match(platform):
                raise ConfigError(f"invalid notification platform name {platform!r}")
            if not isinstance(template, str) or template.count(_DEVICE_PLACEHOLDER) != 1:
                # Never quote the template: it may hold an API key.
                raise ConfigError(f"the URL template of platform {platform!r} must contain {{device}} exactly once")
        missing = store.platforms - set(templates)
        if missing:
            raise ConfigError(f"no URL template for notification platforms {sorted(missing)}")
        self._templates = dict(templates)
        self._wake = asyncio.Event()
        self._stopping = False
        self._sem: asyncio.Semaphore | None = None
        self._inflight: set[int] = set()
        self.deliveries_ok = 0
        self.deliveries_failed = 0
        _install_redaction()

    # -- API for the rest of the LSP ---------------------------------------------------------------

    def notify(self, client_id: str, kind: str, now: float | None = None) -> bool:
        """Enqueue a push (see ``NotificationStore.enqueue``) and wake ``run``."""
        created = self.store.enqueue(client_id, kind, now)
        if created:
            self._wake.set()
        return created

    def status(self, now: float | None = None) -> dict[str, int]:
        s = self.store.status(now)
        return {
            "pending": s.pending,
            "sent": s.sent,
            "dead": s.dead,
            "devices": s.devices,
            "clients": s.clients,
            "deliveries_ok": self.deliveries_ok,
            "deliveries_failed": self.deliveries_failed,
        }

    def stop(self) -> None:
        """Ask ``run`` to return after its current round."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Deliver due pushes until ``stop`` is called or the task is cancelled."""
        self._stopping = False
        next_purge = 0.0
        while not self._stopping:
            now = time.time()
            if now >= next_purge:
                try:
                    self.store.purge_expired(now)
                except (sqlite3.Error, StorageError):
                    log.exception("notify: purge failed")
                next_purge = now + self.settings.purge_interval_secs
            try:
                await self.deliver_due(now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notify: delivery round failed")
            due = self.store.next_due_at()
            wait = self.settings.poll_interval_secs
            if due is not None:
                wait = min(wait, max(due - time.time(), 0.0))
            self._wake.clear()
            if self._stopping:
                break
            if wait > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                except asyncio.TimeoutError:
                    pass
            else:
                await asyncio.sleep(0)

    async def deliver_due(self, now: float | None = None) -> int:
        """One round: attempt every due push; return how many pushes were completed (marked 'sent')."""
        t = _now(now)
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.settings.max_concurrent_sends)
        entries = [e for e in self.store.due(t, self.settings.batch_size) if e.id not in self._inflight]
        if not entries:
            return 0
        ids = {e.id for e in entries}
        self._inflight |= ids
        try:
            results = await asyncio.gather(*(self._deliver_entry(e, t) for e in entries))
        finally:
            self._inflight -= ids
        return sum(1 for r in results if r)

    # -- internals ---------------------------------------------------------------------------------

    async def _deliver_entry(self, entry: OutboxEntry, now: float) -> bool:
        tag = _client_tag(entry.client_id)
        devices = self.store.devices(entry.client_id, now)
        if not devices:
            self.store.mark_dead(entry.id, now, "no registered device")
            log.warning("notify: %s for client %s dropped: no registered device", entry.kind, tag)
            return False
        done = self.store.delivered_to(entry.id)
        todo = [d for d in devices if (d.platform, d.device_id) not in done]
        body = push_body(entry.kind)
        outcomes = await asyncio.gather(*(self._send_one(d, entry.kind, body) for d in todo))
        failed_platforms: list[str] = []
        for device, ok in zip(todo, outcomes):
            self.store.record_delivery(entry.id, device, ok, now)
            if ok:
                self.deliveries_ok += 1
            else:
                self.deliveries_failed += 1
                failed_platforms.append(device.platform)
        delivered_any = bool(done) or any(outcomes)
        if not failed_platforms:
            self.store.mark_sent(entry.id, now)
            log.info("notify: %s pushed to client %s (%d devices)", entry.kind, tag, len(devices))
            return True
        attempts = entry.attempts + 1
        error = "delivery failed on " + ",".join(sorted(set(failed_platforms)))
        if attempts >= self.settings.max_attempts:
            if delivered_any:
                self.store.mark_sent(entry.id, now)
                log.warning(
                    "notify: %s for client %s reached only some devices after %d attempts; failing: %s",
                    entry.kind, tag, attempts, ",".join(failed_platforms),
                )
                return True
            self.store.mark_dead(entry.id, now, error)
            log.warning(
                "notify: %s for client %s is dead after %d attempts (%s)", entry.kind, tag, attempts, error
            )
            return False
        delay = self.settings.backoff(attempts)
        self.store.mark_failed(entry.id, now, now + delay, error)
        log.info(
            "notify: %s for client %s attempt %d failed on %s; retry in %.0f s",
            entry.kind, tag, attempts, ",".join(failed_platforms), delay,
        )
        return False

    def _url_for(self, device: Device) -> str:
        template = self._templates[device.platform]
        # Quote everything: a device id must not be able to change the URL's host, path or query.
        url = template.replace(_DEVICE_PLACEHOLDER, urllib.parse.quote(device.device_id, safe=""))
        timeout = f"{self.settings.request_timeout_secs:g}"
        extra = []
        query = urllib.parse.urlsplit(url).query
        keys = {k for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)}
        if "cto" not in keys:
            extra.append(f"cto={timeout}")
        if "rto" not in keys:
            extra.append(f"rto={timeout}")
        if extra:
            url += ("&" if "?" in url else "?") + "&".join(extra)
        return url

    @staticmethod
    def _send_blocking(url: str, secrets: list[str], body: str) -> bool:
        # The secrets are registered for redaction exactly while this thread may log them, even if
        # the awaiting coroutine has given up on it.
        _secrets.add(secrets)
        try:
            a = apprise.Apprise()
            if not a.add(url):
                raise ConfigError("apprise refused the URL")  # the message never quotes the URL
            try:
                return bool(a.notify(body=body, title=PUSH_TITLE))
            finally:
                a.clear()
        finally:
            _secrets.remove(secrets)

    async def _send_one(self, device: Device, kind: str, body: str) -> bool:
        assert self._sem is not None
        url = self._url_for(device)
        secrets = _secrets_for(device.device_id, url, self._templates[device.platform])
        tag = _client_tag(device.client_id)
        try:
            async with self._sem:
                # The per-request timeouts are in the URL; this bounds the whole call as well.
                return await asyncio.wait_for(
                    asyncio.to_thread(self._send_blocking, url, secrets, body),
                    timeout=2 * self.settings.request_timeout_secs + 5,
                )
        except asyncio.TimeoutError:
            log.warning("notify: %s to client %s on %s timed out", kind, tag, device.platform)
            return False
        except ConfigError:
            log.warning("notify: URL template of platform %s is not accepted by apprise", device.platform)
            return False
        except Exception as e:  # noqa: BLE001 -- never let one device break the round
            # Only the type: the message of a request error quotes the URL.
            log.warning("notify: %s to client %s on %s raised %s", kind, tag, device.platform, type(e).__name__)
            return False


__all__ = [
    "Device",
    "KINDS",
    "KIND_SENTENCES",
    "Kind",
    "NotificationStore",
    "Notifier",
    "NotifierSettings",
    "NotifyStatus",
    "OutboxEntry",
    "PUSH_TITLE",
    "Registration",
    "push_body",
]
