"""The LSPS5 part of the push outbox (notify.sqlite): signed webhook notifications queued as
outbox rows of delivery 'webhook', their payloads, and the webhooks the operator may list.
A mixin of `NotificationStore`, whose database and thread it uses."""

from __future__ import annotations

import datetime
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from lsp_node.errors import InvalidArgumentError
from lsp_node.notify.ids import check_client_id, client_tag

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import ParamSpec, TypeVar

    from lsp_node.db import Database, Store

    T = TypeVar("T")
    P = ParamSpec("P")

log = logging.getLogger("lsp_node.notify")


#: bLIP-55 receivers refuse a notification whose x-lsps5-timestamp is more than 10 minutes from
#: their clock. Past 9 minutes (a minute's margin for clocks and the POST) a queued one is
#: given up unsent: the receiver would throw it away, and the next event signs a fresh one.
STALE_AFTER_SECS: Final = 9 * 60.0
#: lightning-liquidity prunes a webhook unused for 30 days; the operator's listing does likewise.
WEBHOOK_RETENTION_SECS: Final = 30 * 24 * 3600.0
#: Rows of our per-(client, method) cooldown outlive the longest allowed cooldown (a day).
COOLDOWN_RETENTION_SECS: Final = 24 * 3600.0
#: lightning-liquidity's own notification, sent once per registration: under no cooldown of ours.
WEBHOOK_REGISTERED: Final = "lsps5.webhook_registered"


def _now(now: float | None) -> float:
    return time.time() if now is None else float(now)


def signed_at(headers: list[tuple[str, str]]) -> float:
    """The x-lsps5-timestamp header (RFC 3339, as chrono writes it) in Unix seconds."""
    value = next((v for k, v in headers if k.lower() == "x-lsps5-timestamp"), "")
    try:
        t = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgumentError("an LSPS5 notification without a readable x-lsps5-timestamp") from None
    if t.tzinfo is None:
        raise InvalidArgumentError("an LSPS5 notification whose x-lsps5-timestamp has no time zone")
    return t.timestamp()


#: Migration 3 (LSPS5), one statement at a time with `execute`: sqlite-utils runs a migration and
#: its record in one transaction, so a crash half way leaves nothing (tests/test_lsps5_outbox.py).
#: sqlite3's own `executescript` would commit before the script and run each statement on its own;
#: sqlite-utils 4.2's `Database.executescript` avoids that inside a transaction, but this does not
#: rely on it.
M003_WEBHOOKS: Final = (
    # A push row may be a signed webhook POST (delivery 'webhook') beside the apprise pushes.
    # Each is one notification for one URL, so several may be pending for one client and method:
    # the one-pending rule stays apprise's.
    "ALTER TABLE notify_outbox ADD COLUMN delivery TEXT NOT NULL DEFAULT 'apprise'",
    "DROP INDEX IF EXISTS notify_outbox_one_pending",
    "CREATE UNIQUE INDEX notify_outbox_one_pending"
    " ON notify_outbox (client_id, kind) WHERE status = 'pending' AND delivery = 'apprise'",
    # (client, app, signature) is unique, so an engine event replayed after a crash queues nothing
    # twice. Not the signature alone: signatures are deterministic over (timestamp, body), so two
    # webhooks (or two clients) notified in the same millisecond share one. `signed_at`: the
    # x-lsps5-timestamp, past which receivers refuse the notification (stale).
    """CREATE TABLE notify_webhook (
        outbox_id   INTEGER PRIMARY KEY REFERENCES notify_outbox (id) ON DELETE CASCADE,
        client_id   TEXT    NOT NULL,
        app_name    TEXT    NOT NULL,
        url         TEXT    NOT NULL,
        headers     TEXT    NOT NULL,
        body        TEXT    NOT NULL,
        signature   TEXT    NOT NULL,
        signed_at   REAL    NOT NULL,
        last_status INTEGER,
        UNIQUE (client_id, app_name, signature)
    )""",
    # What the operator sees: every (client, app) lightning-liquidity has notified, with its last
    # URL; pruned like lightning-liquidity's own (30 days unused) and capped per client.
    """CREATE TABLE notify_lsps5_webhooks (
        client_id   TEXT NOT NULL,
        app_name    TEXT NOT NULL,
        url         TEXT NOT NULL,
        first_seen  REAL NOT NULL,
        last_seen   REAL NOT NULL,
        PRIMARY KEY (client_id, app_name)
    )""",
    "CREATE INDEX notify_lsps5_webhooks_seen ON notify_lsps5_webhooks (last_seen)",
    # Our own cooldown per (client, method): when the engine was last asked to notify it.
    """CREATE TABLE notify_lsps5_sent (
        client_id TEXT NOT NULL,
        method    TEXT NOT NULL,
        last_at   REAL NOT NULL,
        PRIMARY KEY (client_id, method)
    )""",
)


def webhooks(db: Database) -> None:
    for statement in M003_WEBHOOKS:
        db.execute(statement)


@dataclass(frozen=True)
class WebhookLimits:
    """Bounds on what clients can make the outbox hold (`[lsps5]`)."""

    #: Webhooks per client lightning-liquidity keeps: the operator's listing keeps as many.
    max_webhooks_per_client: int = 10
    #: Pending webhook rows per client; a webhook_registered per set_webhook counts too.
    max_pending_per_client: int = 20
    #: Pending webhook rows of all clients together.
    max_pending_total: int = 10_000


@dataclass(frozen=True)
class WebhookPayload:
    """One signed LSPS5 notification as queued; the URL is left out of the repr (a secret)."""

    outbox_id: int
    app_name: str
    url: str = field(repr=False)
    headers: list[tuple[str, str]] = field(repr=False)
    body: str = field(repr=False)
    #: The x-lsps5-timestamp the notification was signed with (Unix seconds).
    signed_at: float = 0.0


class WebhookOutbox:
    """Webhook rows of the outbox; `NotificationStore` supplies the database."""

    db: Database
    _store: Store

    if TYPE_CHECKING:

        def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T: ...

        def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]: ...

    def enqueue_webhook(
        self,
        client_id: str,
        app_name: str,
        url: str,
        method: str,
        headers: list[tuple[str, str]],
        body: str,
        now: float | None = None,
        limits: WebhookLimits | None = None,
    ) -> bool:
        """Queue one signed LSPS5 notification for one webhook. False if it was queued before
        (the engine event replayed: its (client, app, signature) is in the outbox already), or
        if the client's or everyone's pending webhook rows are at their bound (dropped, logged)."""
        cid = check_client_id(client_id)
        lim = limits or WebhookLimits()
        t = _now(now)
        signature = next((v for k, v in headers if k.lower() == "x-lsps5-signature"), "")
        if not signature:
            raise InvalidArgumentError("an LSPS5 notification without its signature header")
        signed = signed_at(headers)

        def enqueue() -> str:
            db, rows = self.db, self._store.rows
            if list(
                rows(
                    "SELECT 1 AS x FROM notify_webhook WHERE client_id = ? AND app_name = ? AND signature = ?",
                    (cid, app_name, signature),
                )
            ):
                return "replayed"
            [mine] = rows(
                "SELECT COUNT(*) AS n FROM notify_outbox WHERE client_id = ? AND delivery = 'webhook'"
                " AND status = 'pending'",
                (cid,),
            )
            if int(mine["n"]) >= lim.max_pending_per_client:
                return "the client's pending webhook notifications are at their bound"
            [everyone] = rows(
                "SELECT COUNT(*) AS n FROM notify_outbox WHERE status = 'pending' AND delivery = 'webhook'"
            )
            if int(everyone["n"]) >= lim.max_pending_total:
                return "the pending webhook notifications of all clients are at their bound"
            self._seen_webhook(cid, app_name, url, t, lim.max_webhooks_per_client)
            outbox_id = (
                db.table("notify_outbox")
                .insert(
                    {"client_id": cid, "kind": method, "created_at": t, "next_attempt_at": t, "delivery": "webhook"}
                )
                .last_pk
            )
            db.table("notify_webhook").insert(
                {
                    "outbox_id": outbox_id,
                    "client_id": cid,
                    "app_name": app_name,
                    "url": url,
                    "headers": json.dumps(headers),
                    "body": body,
                    "signature": signature,
                    "signed_at": signed,
                }
            )
            return "queued"

        outcome = self.call(enqueue)
        if outcome == "queued":
            log.debug("notify: %s webhook for client %s queued", method, client_tag(cid))
        elif outcome != "replayed":
            log.warning("notify: %s webhook for client %s dropped: %s", method, client_tag(cid), outcome)
        return outcome == "queued"

    def _seen_webhook(self, cid: str, app_name: str, url: str, t: float, keep: int) -> None:
        """Note (client, app) in the operator's listing, keeping the client's `keep` newest: the
        app names beyond lightning-liquidity's bound are webhooks it no longer has."""
        self.db.execute(
            "INSERT INTO notify_lsps5_webhooks (client_id, app_name, url, first_seen, last_seen)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (client_id, app_name) DO UPDATE SET url = excluded.url,"
            " last_seen = excluded.last_seen",
            (cid, app_name, url, t, t),
        )
        self.db.execute(
            "DELETE FROM notify_lsps5_webhooks WHERE client_id = ? AND app_name NOT IN (SELECT app_name"
            " FROM notify_lsps5_webhooks WHERE client_id = ? ORDER BY last_seen DESC, app_name LIMIT ?)",
            (cid, cid, keep),
        )

    def _purge_webhooks(self, t: float) -> None:
        """Part of the store's purge (inside its transaction): webhooks unseen for 30 days, and
        cooldown rows past any cooldown."""
        self.db.execute("DELETE FROM notify_lsps5_webhooks WHERE last_seen < ?", (t - WEBHOOK_RETENTION_SECS,))
        self.db.execute("DELETE FROM notify_lsps5_sent WHERE last_at < ?", (t - COOLDOWN_RETENTION_SECS,))

    def _check_webhook_retry(self, outbox_id: int, t: float) -> None:
        """Part of the operator's retry (inside its transaction): a stale notification cannot be
        sent again, the receiver would refuse it."""
        rows = self._store.rows("SELECT signed_at FROM notify_webhook WHERE outbox_id = ?", (outbox_id,))
        if not rows:
            raise InvalidArgumentError("the webhook notification's payload is gone")
        age = t - float(rows[0]["signed_at"])
        if age > STALE_AFTER_SECS:
            raise InvalidArgumentError(
                f"the notification was signed {age / 60:.0f} minutes ago and bLIP-55 receivers refuse one older"
                " than 10 minutes: it cannot be sent again (the client's next event signs a new one)"
            )

    # -- our per-(client, method) cooldown ---------------------------------------------------------

    def lsps5_cooling_down(self, client_id: str, method: str, cooldown_secs: float, now: float | None = None) -> bool:
        """Whether `method` was asked for this client less than `cooldown_secs` ago."""
        if method == WEBHOOK_REGISTERED or cooldown_secs <= 0:
            return False
        rows = self._rows(
            "SELECT last_at FROM notify_lsps5_sent WHERE client_id = ? AND method = ?",
            (check_client_id(client_id), method),
        )
        return bool(rows) and _now(now) < float(rows[0]["last_at"]) + cooldown_secs

    def lsps5_notified(self, client_id: str, method: str, now: float | None = None) -> None:
        """Start the cooldown of (client, method): the engine was asked to notify it."""
        cid, t = check_client_id(client_id), _now(now)
        self.call(
            lambda: self.db.execute(
                "INSERT INTO notify_lsps5_sent (client_id, method, last_at) VALUES (?, ?, ?)"
                " ON CONFLICT (client_id, method) DO UPDATE SET last_at = excluded.last_at",
                (cid, method, t),
            )
        )

    def webhook_payload(self, outbox_id: int) -> WebhookPayload | None:
        rows = self._rows(
            "SELECT outbox_id, app_name, url, headers, body, signed_at FROM notify_webhook WHERE outbox_id = ?",
            (outbox_id,),
        )
        if not rows:
            return None
        r = rows[0]
        headers = [(str(k), str(v)) for k, v in json.loads(r["headers"])]
        return WebhookPayload(
            int(r["outbox_id"]), str(r["app_name"]), str(r["url"]), headers, str(r["body"]), float(r["signed_at"])
        )

    def set_webhook_status(self, outbox_id: int, status: int | None) -> None:
        self.call(
            lambda: self.db.execute(
                "UPDATE notify_webhook SET last_status = ? WHERE outbox_id = ?", (status, outbox_id)
            )
        )

    def lsps5_webhooks(self) -> list[dict[str, Any]]:
        """Every (client, app) lightning-liquidity has notified, with its last URL (a secret: the
        caller redacts it), newest first."""
        return self._rows(
            "SELECT client_id, app_name, url, first_seen, last_seen FROM notify_lsps5_webhooks"
            " ORDER BY last_seen DESC LIMIT 1000"
        )

    def webhook_deliveries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest webhook pushes with their outcome (URLs included: the caller redacts)."""
        return self._rows(
            "SELECT o.id, o.client_id, o.kind AS method, o.status, o.attempts, o.created_at, o.sent_at,"
            " o.last_error, w.app_name, w.url, w.last_status FROM notify_outbox o"
            " JOIN notify_webhook w ON w.outbox_id = o.id ORDER BY o.id DESC LIMIT ?",
            (limit,),
        )
