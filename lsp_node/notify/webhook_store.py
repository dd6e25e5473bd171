"""The LSPS5 part of the push outbox (notify.sqlite): signed webhook notifications queued as
outbox rows of delivery 'webhook', their payloads, and the webhooks the operator may list.
A mixin of `NotificationStore`, whose database and thread it uses."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lsp_node.errors import InvalidArgumentError
from lsp_node.notify.ids import check_client_id, client_tag

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import ParamSpec, TypeVar

    from lsp_node.db import Database, Store

    T = TypeVar("T")
    P = ParamSpec("P")

log = logging.getLogger("lsp_node.notify")


def _now(now: float | None) -> float:
    return time.time() if now is None else float(now)


@dataclass(frozen=True)
class WebhookPayload:
    """One signed LSPS5 notification as queued; the URL is left out of the repr (a secret)."""

    outbox_id: int
    app_name: str
    url: str = field(repr=False)
    headers: list[tuple[str, str]] = field(repr=False)
    body: str = field(repr=False)


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
    ) -> bool:
        """Queue one signed LSPS5 notification for one webhook. False if it was queued before
        (the engine event replayed): its signature is already in the outbox. The cooldown is
        lightning-liquidity's (60 s per client), applied before the notification was signed."""
        cid = check_client_id(client_id)
        t = _now(now)
        signature = next((v for k, v in headers if k.lower() == "x-lsps5-signature"), "")
        if not signature:
            raise InvalidArgumentError("an LSPS5 notification without its signature header")

        def enqueue() -> bool:
            db = self.db
            if list(self._store.rows("SELECT 1 AS x FROM notify_webhook WHERE signature = ?", (signature,))):
                return False
            db.execute(
                "INSERT INTO notify_lsps5_webhooks (client_id, app_name, url, first_seen, last_seen)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (client_id, app_name) DO UPDATE SET url = excluded.url,"
                " last_seen = excluded.last_seen",
                (cid, app_name, url, t, t),
            )
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
                    "app_name": app_name,
                    "url": url,
                    "headers": json.dumps(headers),
                    "body": body,
                    "signature": signature,
                }
            )
            return True

        created = self.call(enqueue)
        if created:
            log.debug("notify: %s webhook for client %s queued", method, client_tag(cid))
        return created

    def webhook_payload(self, outbox_id: int) -> WebhookPayload | None:
        rows = self._rows(
            "SELECT outbox_id, app_name, url, headers, body FROM notify_webhook WHERE outbox_id = ?", (outbox_id,)
        )
        if not rows:
            return None
        r = rows[0]
        headers = [(str(k), str(v)) for k, v in json.loads(r["headers"])]
        return WebhookPayload(int(r["outbox_id"]), str(r["app_name"]), str(r["url"]), headers, str(r["body"]))

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
