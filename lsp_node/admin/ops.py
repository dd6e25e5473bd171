"""What the operator can see and do, as plain data: one layer under the JSON API, the CLI (through
the API), the dashboard and the metrics, so each shows the same numbers. Reads of SQLite run on the
store's database thread and engine calls that wait are awaited; nothing here blocks the event loop.

Answers are JSON-ready dicts and lists: amounts in msat or sat as their names say, times in unix
seconds. They never carry a preimage, a full device id, a push URL or the admin token."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Final

from lsp_node.config import Settings
from lsp_node.engine import HeldAsyncHtlc, LightningNode, Payment, fields
from lsp_node.errors import InvalidArgumentError, NotFoundError
from lsp_node.lsp import ACTIVE, LspService
from lsp_node.lsp.store import Hold
from lsp_node.monitor.samples import SampleStore
from lsp_node.notify import Notifier
from lsp_node.notify import redact_url as redact_webhook_url
from lsp_node.notify.store import Device, OutboxEntry

#: Confirmation targets (blocks) of `fee_estimates`.
FEE_TARGETS: Final = (1, 6, 12, 144)
#: How often a payment started here is looked at while the caller waits for its outcome.
PAYMENT_POLL_SECS: Final = 0.1
REDACTED: Final = "<redacted>"


def payment_view(p: Payment) -> dict[str, Any]:
    """A payment without its preimage (the proof of payment is the payer's, not the API's)."""
    d = fields(p)
    d.pop("preimage", None)
    return d


def short_device(device_id: str) -> str:
    """Enough of a device id to tell two apart, not enough to push to it."""
    return device_id[:6] + "…" if len(device_id) > 6 else "…"


def hold_view(h: Hold) -> dict[str, Any]:
    d = dataclasses.asdict(h)
    # The pid's hash and the request id are protocol internals: they identify nothing for the
    # operator, and the hash is the pid's only fingerprint.
    d.pop("pid_hash", None)
    d.pop("request_id", None)
    return d


def outbox_view(e: OutboxEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "client": e.client_id,
        "kind": e.kind,
        "state": e.status,
        "attempts": e.attempts,
        "created_at": e.created_at,
        "next_attempt_at": e.next_attempt_at,
        "sent_at": e.sent_at,
        "last_error": e.last_error,
    }


def device_view(d: Device) -> dict[str, Any]:
    return {
        "client": d.client_id,
        "platform": d.platform,
        "device": short_device(d.device_id),
        "registered_at": d.registered_at,
        "expires_at": d.expires_at,
        "failures": d.failures,
    }


def redact_url(url: str | None) -> str | None:
    """A URL without the user and password or the query it may carry (an API key often rides in
    either)."""
    if url is None:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or ""
        parts = parts._replace(netloc=f"{REDACTED}@{host}" + (f":{parts.port}" if parts.port else ""))
    if parts.query:
        parts = parts._replace(query=REDACTED)
    return urllib.parse.urlunsplit(parts)


@dataclass
class Ops:
    node: LightningNode
    service: LspService | None = None
    notifier: Notifier | None = None
    settings: Settings | None = None
    samples: SampleStore | None = None

    def lsp(self) -> LspService:
        if self.service is None:
            raise InvalidArgumentError("the LSP role is disabled on this node")
        return self.service

    def push(self) -> Notifier:
        if self.notifier is None:
            raise InvalidArgumentError("push notifications are not configured ([notifications.templates] is empty)")
        return self.notifier

    # -- the node -----------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        node = self.node
        channels = node.channels()
        return {
            "node_id": node.node_id,
            "listen_addr": node.listen_addr,
            "network": node.network,
            "block_height": node.best_block_height,
            "balance": fields(node.balance()),
            "lightning": {
                "outbound_msat": sum(c.outbound_capacity_msat for c in channels),
                "inbound_msat": sum(c.inbound_capacity_msat for c in channels),
                "channels_ready": sum(c.is_ready for c in channels),
            },
            "channels": len(channels),
            "peers": len(node.peers()),
            "lsp_role": self.service is not None,
        }

    async def new_address(self) -> str:
        return await self.node.new_address()

    async def send_onchain(self, address: str, amount_sat: int | None, *, force: bool = False) -> str:
        """The txid; `amount_sat` None sends the whole spendable balance. Coins owed to paid
        LSPS1 orders are not spent unless `force`."""
        return await self.node.send_onchain(address, amount_sat, force=force)

    def fee_estimates(self) -> dict[str, int]:
        """sat/vB by target blocks, rounded up (an estimate rounded down may not confirm in time)."""
        est = self.node.fee_estimates(list(FEE_TARGETS))
        return {str(t): max(1, math.ceil(est[t])) for t in FEE_TARGETS}

    async def sync(self) -> int:
        await self.node.sync()
        return self.node.best_block_height

    async def connect(self, node_id: str, address: str) -> None:
        await self.node.connect(node_id.lower(), address)

    async def disconnect(self, node_id: str) -> None:
        node_id = node_id.lower()
        if all(p.node_id != node_id for p in self.node.peers()):
            raise NotFoundError("not connected to that node")
        self.node.disconnect(node_id)

    def peers(self) -> list[dict[str, Any]]:
        return [fields(p) for p in self.node.peers()]

    async def open_channel(
        self, node_id: str, amount_sat: int, push_msat: int = 0, announce: bool = False, *, force: bool = False
    ) -> str:
        if push_msat > amount_sat * 1000:
            raise InvalidArgumentError("field 'push_msat' must not exceed amount_sat * 1000")
        return await self.node.open_channel(
            node_id.lower(), amount_sat, push_msat=push_msat, announce=announce, force=force
        )

    def channels(self) -> list[dict[str, Any]]:
        return [fields(c) for c in self.node.channels()]

    def _channel(self, channel_id: str) -> None:
        if all(c.channel_id != channel_id for c in self.node.channels()):
            raise NotFoundError("no open channel with that id")

    async def close_channel(self, channel_id: str) -> None:
        channel_id = channel_id.lower()
        self._channel(channel_id)
        await self.node.close_channel(channel_id)

    async def force_close_channel(self, channel_id: str) -> None:
        channel_id = channel_id.lower()
        self._channel(channel_id)
        await self.node.force_close_channel(channel_id, "force-closed by the operator")

    # -- invoices and payments ------------------------------------------------------------------------

    async def create_invoice(self, amount_msat: int | None, description: str, expiry_secs: int) -> dict[str, Any]:
        bolt11 = await self.node.create_invoice(amount_msat, description, expiry_secs)
        info = self.node.decode_invoice(bolt11)
        return {
            "bolt11": bolt11,
            "payment_hash": info.payment_hash,
            "amount_msat": amount_msat,
            "expires_at": info.timestamp + info.expiry_secs,
        }

    async def invoices(self, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Invoices this node created, newest first, with their state (pending until paid)."""
        out = []
        for p in await self.node.payments_page(invoices_only=True, limit=limit, offset=offset):
            d = payment_view(p)
            if p.bolt11 is not None:
                info = self.node.decode_invoice(p.bolt11)
                d["description"] = info.description
                d["expires_at"] = info.timestamp + info.expiry_secs
                d["is_expired"] = info.is_expired
            out.append(d)
        return out

    async def _outcome(self, payment_id: str, wait_secs: float) -> dict[str, Any]:
        """The payment's record once it succeeded or failed, or as it stands after `wait_secs`."""
        deadline = time.monotonic() + wait_secs
        while True:
            p = await self.node.payment(payment_id)
            if p is not None and (p.status != "pending" or time.monotonic() >= deadline):
                return payment_view(p)
            if p is None and time.monotonic() >= deadline:
                return {"payment_id": payment_id, "status": "pending"}
            await asyncio.sleep(PAYMENT_POLL_SECS)

    async def pay_invoice(self, bolt11: str, amount_msat: int | None = None, wait_secs: float = 0) -> dict[str, Any]:
        """Start paying; with `wait_secs`, wait that long at most for the outcome."""
        payment_id = await self.node.pay_invoice(bolt11, amount_msat=amount_msat)
        return await self._outcome(payment_id, wait_secs)

    async def keysend(self, node_id: str, amount_msat: int, wait_secs: float = 0) -> dict[str, Any]:
        payment_id = await self.node.keysend(node_id.lower(), amount_msat)
        return await self._outcome(payment_id, wait_secs)

    async def payments(
        self, direction: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]:
        page = await self.node.payments_page(direction=direction, status=status, limit=limit, offset=offset)
        return [payment_view(p) for p in page]

    async def forwards(self, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        return [fields(f) for f in await self.node.forwards(limit, offset)]

    async def forward_totals(self) -> dict[str, int]:
        return fields(await self.node.forward_totals())

    async def lsps1(self, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Whether LSPS1 runs and the channel orders, newest first (an invoice is no secret)."""
        orders = [fields(o) for o in await self.node.lsps1_orders(limit, offset)]
        return {"enabled": self.node.lsps1_enabled, "orders": orders}

    async def lsps2(self, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Whether LSPS2 runs and the JIT channels sold, newest first (no secret in them)."""
        channels = [fields(c) for c in await self.node.lsps2_channels(limit, offset)]
        return {"enabled": self.node.lsps2_enabled, "channels": channels}

    async def lsps5(self, limit: int = 50) -> dict[str, Any]:
        """Whether LSPS5 runs, the webhooks lightning-liquidity has notified per client (with app
        names) and the newest deliveries. URLs are the clients' secrets: scheme and host only."""
        webhooks: list[dict[str, Any]] = []
        deliveries: list[dict[str, Any]] = []
        n = self.notifier
        if n is not None:
            webhooks = await n.store.run(n.store.lsps5_webhooks)
            deliveries = await n.store.run(n.store.webhook_deliveries, limit)
        for row in (*webhooks, *deliveries):
            row["url"] = redact_webhook_url(row["url"])
        return {"enabled": self.node.lsps5_enabled, "webhooks": webhooks, "deliveries": deliveries}

    async def lsps5_notify(self, client: str, method: str, timeout: int | None) -> dict[str, Any]:
        """Have the LSP's webhooks for `client` notified now with `method`. The outcome is
        "queued", "cooldown" (ours per method, or lightning-liquidity's 60 s), "online" (the
        client is connected: nothing to wake) or "failed" (logged)."""
        service, client = self.lsp(), client.lower()
        if not self.node.lsps5_enabled:
            raise InvalidArgumentError("LSPS5 is off ([lsps5] enabled = false)")
        outcome = await service.role.notify_lsps5(client, method, timeout)
        return {"client": client, "method": method, "outcome": outcome}

    # -- the LSP role: holds --------------------------------------------------------------------------

    async def holds(self, state: str | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        store = self.lsp().store

        def read() -> list[dict[str, Any]]:
            return [
                {**hold_view(h), "htlcs": [dataclasses.asdict(x) for x in store.htlcs(h.hold_id)]}
                for h in store.holds_page(state, limit, offset)
            ]

        # On the database thread, in one read transaction: the loop does not wait on SQLite.
        return await store.run(read)

    async def hold(self, hold_id: str) -> dict[str, Any]:
        """One hold with its HTLCs, its next hops, a timeline and the blocks left before its
        fail-back (or, before any HTLC, its expiry) while it is active."""
        store = self.lsp().store
        hold_id = hold_id.lower()

        def read() -> tuple[Hold | None, list[dict[str, Any]]]:
            return store.hold(hold_id), store.htlc_history(hold_id)

        hold, htlcs = await store.run(read)
        if hold is None:
            raise NotFoundError("no hold with that id")
        height = self.node.best_block_height
        deadline = hold.failback_height if hold.failback_height is not None else hold.expires_height
        timeline: list[dict[str, Any]] = [
            {"at": hold.created_at, "event": "armed", "detail": f"at height {hold.created_height}"}
        ]
        timeline += [
            {"at": h["updated_at"], "event": f"htlc {h['state']}", "detail": f"{h['inbound_msat']} msat in"}
            for h in htlcs
        ]
        if hold.released_at is not None:
            timeline.append({"at": hold.released_at, "event": "released", "detail": ""})
        timeline.sort(key=lambda e: float(e["at"]))
        if hold.state not in ACTIVE:
            timeline.append({"at": None, "event": hold.state, "detail": hold.reason or ""})
        return {
            **hold_view(hold),
            "htlcs": htlcs,
            "timeline": timeline,
            "block_height": height,
            "blocks_left": deadline - height if hold.state in ACTIVE else None,
        }

    async def fail_hold(self, hold_id: str) -> dict[str, Any]:
        """Fail a hold back by hand, through the hold state machine (OPERATOR_FAIL), with the code
        of the automatic fail-back; says what was done."""
        try:
            hold, failed, moved = await self.lsp().holding.fail_by_operator(hold_id.lower())
        except KeyError:
            raise NotFoundError("no hold with that id") from None
        after = await self.lsp().store.run(self.lsp().store.hold, hold.hold_id)
        return {
            "hold_id": hold.hold_id,
            "previous_state": hold.state,
            "state": after.state if after is not None else hold.state,
            "htlcs_failed_back": failed,
            "failed": moved,
        }

    # -- the LSP role: mailbox ------------------------------------------------------------------------

    async def mailbox_clients(self) -> list[dict[str, Any]]:
        store = self.lsp().store
        return await store.run(store.mailbox_clients)

    async def mailbox(self, client: str | None = None) -> list[dict[str, Any]]:
        store = self.lsp().store
        return await store.run(store.mailbox_entries, client.lower() if client else None)

    async def purge_mailbox(self, client: str) -> int:
        store = self.lsp().store
        return await store.run(store.purge_client_mailbox, client.lower())

    # -- pushes ---------------------------------------------------------------------------------------

    async def devices(self) -> list[dict[str, Any]]:
        if self.notifier is None:
            return []
        store = self.notifier.store
        return [device_view(d) for d in await store.run(store.all_devices)]

    async def outbox(self, state: str | None = None, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        if self.notifier is None:
            return []
        store = self.notifier.store
        return [outbox_view(e) for e in await store.run(store.outbox_page, state, limit, offset)]

    async def retry_push(self, push_id: int) -> dict[str, Any]:
        notifier = self.push()
        try:
            entry = await notifier.store.run(notifier.store.retry, push_id)
        except KeyError:
            raise NotFoundError("no push with that id") from None
        notifier.wake()
        return outbox_view(entry)

    async def test_push(self, client: str) -> dict[str, Any]:
        """Queue a `test` push to every device of the client; `queued` False if one is pending or
        was sent within the cooldown (pushes are coalesced, SPEC.md §7.4)."""
        notifier, client = self.push(), client.lower()
        devices = await notifier.store.run(notifier.store.devices, client)
        if not devices:
            raise InvalidArgumentError("that client has no registered device")
        queued = await notifier.enqueue(client, "test")
        return {"client": client, "devices": len(devices), "queued": queued}

    # -- configuration --------------------------------------------------------------------------------

    # -- BOLT async payments ------------------------------------------------------------------------

    async def async_payments(self) -> dict[str, Any]:
        return {
            **self.held_async_htlcs(),
            "static_invoices": [fields(i) for i in await self.node.static_invoices()],
        }

    def held_async_htlcs(self) -> dict[str, Any]:
        """Whether the async payments server runs, and the HTLCs held for it."""
        enabled = self.settings is not None and self.settings.async_payments.enabled
        held = [self.held_async_view(h) for h in self.service.async_holds.held()] if self.service else []
        return {"enabled": enabled, "held_htlcs": held}

    def held_async_view(self, h: HeldAsyncHtlc) -> dict[str, Any]:
        at = self.lsp().async_holds.fail_back_height(h)
        return {**fields(h), "fail_back_height": at, "blocks_left": at - self.node.best_block_height}

    async def fail_held_async_htlc(self, intercept_id: str) -> dict[str, Any]:
        """Fail one HTLC held for an async payment back to its payer now."""
        htlc = await self.lsp().async_holds.fail(intercept_id.lower())
        return {"failed": fields(htlc)}

    def async_recipient_paths(self, node_id: str) -> dict[str, Any]:
        # The recipient's mail is kept only for a client (a ready channel): paths for anyone else
        # would give it an offer nobody could pay while it is offline.
        if not any(c.counterparty_node_id == node_id and c.is_ready for c in self.node.channels()):
            raise InvalidArgumentError("not a client: open a channel to this node first")
        days = self.settings.async_payments.paths_valid_days if self.settings else 365
        return {"node_id": node_id, "valid_days": days, "paths": self.node.async_recipient_paths(node_id, days)}

    def config(self) -> dict[str, Any]:
        """The effective configuration (file, environment and command line applied), secrets
        redacted: push URL templates (they hold API keys) and credentials in the Esplora URL."""
        if self.settings is None:
            return {}
        c = self.settings.model_dump(mode="json")
        c["notifications"]["templates"] = {platform: REDACTED for platform in c["notifications"]["templates"]}
        c["chain"]["esplora_url"] = redact_url(c["chain"]["esplora_url"])
        return c
