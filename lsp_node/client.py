"""Reference client of the LightningRod protocol (a phone wallet's side), payer and payee.

It owns its node's event stream: every event is applied here and then acknowledged. Tests, the
demo and wallet developers use it; SPEC.md describes the messages it exchanges."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from lsp_node import protocol as p
from lsp_node.engine import Event, HeldHop, LightningNode, OnionMessageReceived
from lsp_node.errors import LspNodeError

log = logging.getLogger("lsp_node.client")

MAILBOX_CONTEXT = b"mailbox"
REPLY_TIMEOUT = 30.0


class HoldRefused(LspNodeError):
    """The LSP refused a hold or a device registration; `status` says why."""

    def __init__(self, status: int, message: str | None) -> None:
        super().__init__(f"{p.Status(status).name}: {message or ''}")
        self.status = p.Status(status)


@dataclass
class HeldPayment:
    """A payment sent through a hold: what the payer keeps until the payment completes."""

    payment_hash: str
    pid: bytes
    hold: p.HoldReply
    #: The next hops the hold was asked for, in the order of `hold.intercept_scids`.
    next_nodes: tuple[str, ...] = ()


@dataclass
class Client:
    node: LightningNode
    lsp_node_id: str
    events: list[Event] = field(default_factory=list)
    unblock_replies: dict[str, p.UnblockReply] = field(default_factory=dict)
    #: Acknowledge mailbox deliveries (MAILBOX_ACK); off only to test redelivery.
    ack_mail: bool = True
    #: MAILBOX_DONE messages received (their batch ids), in order.
    mail_batches: list[bytes] = field(default_factory=list)
    _replies: dict[bytes, asyncio.Future[p.Message]] = field(default_factory=dict)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        # A phone's only peer is its LSP: onion messages go through it.
        self.node.set_message_relay(self.lsp_node_id)
        self._task = asyncio.create_task(self._run(), name=f"client-{self.node.node_id[:8]}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        async for event in self.node.events():
            try:
                await self._apply(event)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # Whatever one event does, the client's only event task must go on and the event
                # is acknowledged: a wallet has no operator to restart it.
                log.warning("event %s not fully applied: %s: %.200s", event.kind, type(e).__name__, e)
            await self.node.event_handled(event)
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    async def _apply(self, event: Event) -> None:
        if not isinstance(event, OnionMessageReceived):
            return
        try:
            msg = p.decode(event.tlv_type, bytes.fromhex(event.payload))
        except p.ProtocolError as e:
            log.info("refused a message of type %s: %s", event.tlv_type, e)
            return
        context = bytes.fromhex(event.context) if event.context else None
        if isinstance(msg, p.PidNotice) and context == MAILBOX_CONTEXT:
            await self._unblock(msg)
        elif isinstance(msg, p.MailboxDone):
            await self._ack_mail(msg)
        elif isinstance(msg, p.UnblockReply):
            self.unblock_replies[msg.payment_hash.hex()] = msg
        elif context is not None and context in self._replies:
            fut = self._replies.pop(context)
            if not fut.done():
                fut.set_result(msg)

    async def wait_for(self, kind: str, timeout: float = 60.0, **match: Any) -> Event:
        """Wait until an event of `kind` with the given fields has been applied."""
        deadline = time.monotonic() + timeout

        def found() -> Event | None:
            return next(
                (e for e in self.events if e.kind == kind and all(getattr(e, k, None) == v for k, v in match.items())),
                None,
            )

        async with self._changed:
            while (e := found()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {kind} {match} within {timeout}s")
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    raise TimeoutError(f"no {kind} {match} within {timeout}s") from None
            return e

    async def _request(self, msg: p.HoldRequest | p.DeviceRegister, to: str | None = None) -> p.Message:
        context = b"req:" + msg.request_id
        fut: asyncio.Future[p.Message] = asyncio.get_running_loop().create_future()
        self._replies[context] = fut
        await self.node.send_onion_message(
            msg.TYPE, msg.encode(), to_node=to or self.lsp_node_id, reply_context=context
        )
        try:
            return await asyncio.wait_for(fut, REPLY_TIMEOUT)
        finally:
            self._replies.pop(context, None)

    def _sign(self, unsigned: p.HoldRequest | p.DeviceRegister, lsp: str | None = None) -> str:
        """Sign for the LSP the request goes to (its node id is in the signed bytes)."""
        return self.node.sign_message(unsigned.signed_bytes(bytes.fromhex(lsp or self.lsp_node_id)))

    async def _ack_mail(self, done: p.MailboxDone) -> None:
        """Every stored message of the delivery came before this (one connection keeps the
        order) and has been applied: let the LSP delete them (SPEC.md §5.3)."""
        self.mail_batches.append(done.batch_id)
        if not self.ack_mail:
            return
        ack = p.MailboxAck(done.batch_id)
        await self.node.send_onion_message(ack.TYPE, ack.encode(), to_node=self.lsp_node_id)

    # -- notifications ---------------------------------------------------------------------
    async def register_device(self, platform: str, device_id: str, *, remove: bool = False) -> p.DeviceReply:
        msg = p.DeviceRegister(
            os.urandom(16), int(remove), platform, device_id, bytes.fromhex(self.node.node_id), int(time.time()), ""
        )
        msg = p.DeviceRegister(**{**msg.__dict__, "signature": self._sign(msg)})
        reply = await self._request(msg)
        assert isinstance(reply, p.DeviceReply)
        if reply.status != p.Status.OK:
            raise HoldRefused(reply.status, reply.error)
        return reply

    # -- payee side ----------------------------------------------------------------------------
    async def create_payment_request(
        self, amount_msat: int, description: str, expiry_secs: int = 86_400
    ) -> p.PaymentRequest:
        invoice = await self.node.create_invoice(amount_msat, description, expiry_secs)
        path = self.node.create_blinded_path(MAILBOX_CONTEXT, [self.lsp_node_id])
        return p.PaymentRequest(invoice, bytes.fromhex(path))

    async def _unblock(self, notice: p.PidNotice) -> None:
        """Step 6: we are online and got the pid; release our payment at the payer's LSP."""
        mine = {x.payment_hash for x in await self.node.payments() if x.direction == "inbound"}
        if notice.payment_hash.hex() not in mine:
            log.info("pid notice for a payment we did not request; ignored")
            return
        await self.send_unblock(notice.unblock_path, notice.pid, notice.payment_hash.hex())

    # -- payer side ----------------------------------------------------------------------------
    async def request_hold(
        self,
        payment_hashes: list[str],
        amount_msat: int,
        next_node_ids: list[str],
        pid: bytes,
        hold_blocks: int,
        *,
        lsp: str | None = None,
    ) -> p.HoldReply:
        """Step 2: ask our LSP (or, to test refusals, another node) to hold these payments, for
        the next nodes (after the LSP) of the paths our route will take; the reply has one
        intercept SCID per next node, in the same order."""
        msg = p.HoldRequest(
            request_id=os.urandom(16),
            payment_hashes=tuple(bytes.fromhex(h) for h in payment_hashes),
            amount_msat=amount_msat,
            pid_hash=p.sha256(pid),
            next_node_ids=tuple(bytes.fromhex(n) for n in next_node_ids),
            hold_blocks=hold_blocks,
            client_node_id=bytes.fromhex(self.node.node_id),
            timestamp=int(time.time()),
            signature="",
        )
        msg = p.HoldRequest(**{**msg.__dict__, "signature": self._sign(msg, lsp)})
        reply = await self._request(msg, lsp)
        assert isinstance(reply, p.HoldReply)
        if reply.status != p.Status.OK:
            raise HoldRefused(reply.status, reply.error)
        if reply.intercept_scids is None or len(reply.intercept_scids) != len(next_node_ids):
            raise LspNodeError("the LSP's hold reply does not give one intercept SCID per next node")
        return reply

    async def pay_with_hold(self, request: p.PaymentRequest, *, hold_blocks: int = 144) -> HeldPayment:
        """Steps 1-4: make a pid, have our LSP arm a hold, pay through it, tell the payee."""
        held = await self.pay_held(request.invoice, hold_blocks=hold_blocks)
        await self.send_pid(request, held)
        return held

    async def pay_held(
        self,
        invoice: str,
        *,
        hold_blocks: int = 144,
        hold: p.HoldReply | None = None,
        next_nodes: list[str] | None = None,
    ) -> HeldPayment:
        """Steps 1-3: make a pid, have our LSP arm a hold (unless given one, with the `next_nodes`
        it was asked for), pay through it. The next hops are the nodes after our LSP on the routes
        our router picks now (SPEC.md §4.2); the engine's router then pays over those routes with
        each next hop's intercept SCID on the LSP's hop, retries included (§4.3)."""
        info = self.node.decode_invoice(invoice)
        if info.amount_msat is None:
            raise LspNodeError("held payments need an invoice with an amount")
        if next_nodes is None:
            next_nodes = await self.node.held_route_next_hops(invoice, self.lsp_node_id)
        pid = os.urandom(32)
        if hold is None:
            hold = await self.request_hold([info.payment_hash], info.amount_msat, next_nodes, pid, hold_blocks)
        if hold.intercept_scids is None or len(hold.intercept_scids) != len(next_nodes) or hold.unblock_path is None:
            raise LspNodeError("the hold does not give one intercept SCID per next node")
        hops = [
            HeldHop(
                node,
                scid,
                hold.fee_base_msat or 0,
                hold.fee_proportional_millionths or 0,
                hold.cltv_expiry_delta or 72,
            )
            for node, scid in zip(next_nodes, hold.intercept_scids, strict=True)
        ]
        payment_hash = await self.node.pay_invoice_held(
            invoice, self.lsp_node_id, hops, extra_final_cltv=hold.extra_final_cltv or 0
        )
        return HeldPayment(payment_hash, pid, hold, tuple(next_nodes))

    async def send_pid(self, request: p.PaymentRequest, held: HeldPayment) -> None:
        """Step 4: tell the payee the pid and where to send it, via its mailbox. A may go offline."""
        assert held.hold.unblock_path is not None
        notice = p.PidNotice(bytes.fromhex(held.payment_hash), held.pid, held.hold.unblock_path)
        await self.node.send_onion_message(notice.TYPE, notice.encode(), to_path=request.mailbox_path.hex())

    async def send_unblock(self, unblock_path: bytes, pid: bytes, payment_hash: str) -> None:
        """Send a payment_unblock along an unblock path (the payee does this on a pid notice)."""
        unblock = p.PaymentUnblock(pid, bytes.fromhex(payment_hash))
        self.unblock_replies.pop(payment_hash, None)
        await self.node.send_onion_message(
            unblock.TYPE, unblock.encode(), to_path=unblock_path.hex(), reply_context=b"unblock:" + unblock.payment_hash
        )
