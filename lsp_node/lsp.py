"""The LSP role of the LightningRod protocol: holds for payers, the mailbox for offline payees,
device registration and push notifications. Driven by engine events; see SPEC.md."""

from __future__ import annotations

import logging
import os
import time

from lsp_node import protocol as p
from lsp_node.config import LspSettings
from lsp_node.engine import (
    Event,
    HtlcIntercepted,
    LightningNode,
    OnionMessageIntercepted,
    OnionMessagePeerConnected,
    OnionMessageReceived,
    PaymentForwarded,
)
from lsp_node.errors import LspNodeError, NoUsableChannelError
from lsp_node.lsp_store import (
    ACTIVE,
    ARMED,
    EXPIRED,
    FAILED,
    HELD,
    RELEASED,
    SETTLED,
    HeldHtlc,
    Hold,
    LspStore,
)
from lsp_node.notify import Notifier

log = logging.getLogger("lsp_node.lsp")

# LDK fails an intercepted HTLC back by itself once height >= outgoing expiry - 39
# (CLTV_CLAIM_BUFFER 36 + LATENCY_GRACE_PERIOD_BLOCKS 3); we must act before it does.
LDK_FAIL_BACK_BUFFER = 39
HOLD_CONTEXT = b"hold:"


class LspService:
    def __init__(self, node: LightningNode, store: LspStore, policy: LspSettings, notifier: Notifier | None) -> None:
        """`policy` is the operator's [lsp] section (config.LspSettings)."""
        self.node = node
        self.store = store
        self.policy = policy
        self.notifier = notifier

    # -- helpers -----------------------------------------------------------------------------
    def is_client(self, node_id: str) -> bool:
        return any(c.counterparty_node_id == node_id for c in self.node.channels())

    def is_online(self, node_id: str) -> bool:
        return any(peer.node_id == node_id for peer in self.node.peers())

    def notify(self, client: str, kind: str) -> None:
        if self.notifier is not None:
            self.notifier.notify(client, kind)

    # -- event dispatch ------------------------------------------------------------------------
    async def handle(self, event: Event) -> None:
        """Apply one engine event; returns once its effects are committed (then ack it)."""
        if isinstance(event, OnionMessageReceived):
            await self.on_message(event.tlv_type, bytes.fromhex(event.payload), event.context, event.responder)
        elif isinstance(event, HtlcIntercepted):
            await self.on_htlc_intercepted(event)
        elif isinstance(event, OnionMessageIntercepted):
            self.on_message_for_offline_peer(event.peer_node_id, event.message)
        elif isinstance(event, OnionMessagePeerConnected):
            await self.deliver_mailbox(event.peer_node_id)
        elif isinstance(event, PaymentForwarded):
            self.on_payment_forwarded(event)

    async def on_message(self, tlv_type: int, payload: bytes, context: str | None, responder: str | None) -> None:
        try:
            msg = p.decode(tlv_type, payload)
        except p.ProtocolError as e:
            log.info("ignoring malformed message of type %s: %s", tlv_type, e)
            return
        if isinstance(msg, p.HoldRequest):
            try:
                reply: p.Message = self.on_hold_request(msg)
            except LspNodeError as e:
                reply = p.HoldReply(msg.request_id, int(p.Status.INTERNAL), error=str(e))
        elif isinstance(msg, p.PaymentUnblock):
            reply = await self.on_unblock(msg, bytes.fromhex(context) if context else None)
        elif isinstance(msg, p.DeviceRegister):
            reply = self.on_device_register(msg)
        else:
            log.info("ignoring %s sent to the LSP", type(msg).__name__)
            return
        if responder is None:
            log.info("cannot answer %s: the sender gave no reply path", type(msg).__name__)
            return
        try:
            await self.node.reply_onion_message(responder, reply.TYPE, reply.encode())
        except LspNodeError as e:
            log.warning("reply to %s failed: %s", type(msg).__name__, e)

    # -- authentication ------------------------------------------------------------------------
    def authenticate(self, msg: p.HoldRequest | p.DeviceRegister) -> p.Status:
        """Client, signature and freshness; the request id's single use is checked apart."""
        client = msg.client_node_id.hex()
        if not self.is_client(client):
            return p.Status.NOT_A_CLIENT
        if not LightningNode.verify_message(msg.signed_bytes(), msg.signature, client):
            return p.Status.BAD_SIGNATURE
        if abs(time.time() - msg.timestamp) > self.policy.request_max_age_secs:
            return p.Status.STALE_OR_REPLAYED
        return p.Status.OK

    def first_use(self, msg: p.HoldRequest | p.DeviceRegister) -> bool:
        return self.store.mark_request_seen(msg.client_node_id.hex(), msg.request_id.hex(), time.time())

    # -- holds ---------------------------------------------------------------------------------
    def on_hold_request(self, req: p.HoldRequest) -> p.HoldReply:
        client = req.client_node_id.hex()

        def refuse(status: p.Status, why: str) -> p.HoldReply:
            log.info("hold request from %s refused: %s (%s)", client[:16], status.name, why)
            return p.HoldReply(req.request_id, int(status), error=why)

        status = self.authenticate(req)
        if status != p.Status.OK:
            return refuse(status, "not authenticated as a client of this LSP")
        # A retried request (our reply was lost, or we crashed before sending it) gets the
        # same hold again; any other reuse of a request id is a replay.
        existing = self.store.hold_by_request(client, req.request_id.hex())
        if (
            existing is not None
            and existing.state in (ARMED, HELD)
            and existing.pid_hash == req.pid_hash.hex()
            and existing.payment_hashes == tuple(h.hex() for h in req.payment_hashes)
        ):
            return self.hold_reply(req.request_id, existing)
        if not self.first_use(req):
            return refuse(p.Status.STALE_OR_REPLAYED, "request id already used")
        pol = self.policy
        if not 1 <= req.hold_blocks <= pol.max_hold_blocks:
            return refuse(p.Status.INVALID_REQUEST, f"hold_blocks must be 1..{pol.max_hold_blocks}")
        if req.amount_msat <= 0:
            return refuse(p.Status.INVALID_REQUEST, "amount_msat must be positive")
        holds, _, held_msat = self.store.client_totals(client)
        if holds >= pol.max_holds_per_client:
            return refuse(p.Status.LIMIT_EXCEEDED, f"at most {pol.max_holds_per_client} active holds per client")
        if held_msat + req.amount_msat > pol.max_held_msat_per_client:
            return refuse(p.Status.LIMIT_EXCEEDED, "the client's held amount would exceed its cap")
        hashes = tuple(h.hex() for h in req.payment_hashes)
        for other in self.store.holds(ACTIVE):
            if set(other.payment_hashes) & set(hashes):
                return refuse(p.Status.INVALID_REQUEST, "a payment hash is already held")
        height = self.node.best_block_height
        hold_id = os.urandom(16)
        hold = Hold(
            hold_id=hold_id.hex(),
            client=client,
            request_id=req.request_id.hex(),
            pid_hash=req.pid_hash.hex(),
            payment_hashes=hashes,
            amount_msat=req.amount_msat,
            next_node=req.next_node_id.hex(),
            scid=self.fresh_intercept_scid(),
            cltv_delta=pol.cltv_expiry_delta,
            extra_final_cltv=req.hold_blocks,
            state=ARMED,
            created_at=time.time(),
            created_height=height,
            expires_height=height + req.hold_blocks,
            failback_height=None,
            warned=False,
            released_at=None,
            reason=None,
        )
        self.store.insert_hold(hold)  # durable before the reply makes the hold usable
        log.info("hold %s armed for %s: scid %s, until height %s", hold.hold_id[:12], client[:16], hold.scid, hold.expires_height)
        return self.hold_reply(req.request_id, hold)

    def fresh_intercept_scid(self) -> int:
        """LDK draws intercept SCIDs at random per block and does not remember them, so two
        holds armed in one block can draw the same one; each hold needs its own."""
        for _ in range(100):
            scid = self.node.get_intercept_scid()
            if self.store.hold_by_scid(scid) is None:
                return scid
        raise LspNodeError("cannot find an unused intercept SCID; retry in the next block")

    def hold_reply(self, request_id: bytes, hold: Hold) -> p.HoldReply:
        # A fresh blinded path each time; all of them carry the same authenticated hold id.
        path = bytes.fromhex(self.node.create_blinded_path(HOLD_CONTEXT + bytes.fromhex(hold.hold_id)))
        return p.HoldReply(
            request_id,
            int(p.Status.OK),
            intercept_scid=hold.scid,
            fee_base_msat=self.policy.fee_base_msat,
            fee_proportional_millionths=self.policy.fee_proportional_millionths,
            cltv_expiry_delta=hold.cltv_delta,
            extra_final_cltv=hold.extra_final_cltv,
            unblock_path=path,
        )

    async def on_htlc_intercepted(self, e: HtlcIntercepted) -> None:
        intercept_id = e.intercept_id
        payment_hash = e.payment_hash
        hold = self.store.hold_by_scid(e.requested_next_hop_scid)
        known = self.store.htlc(intercept_id)
        if known is not None and known.state != HELD:
            return  # replayed after a restart; already forwarded or failed
        why = None
        if hold is None:
            why = "no hold uses this intercept SCID"
        elif payment_hash not in hold.payment_hashes:
            why = "payment hash not covered by the hold"
        elif hold.state not in ACTIVE:
            why = f"hold is {hold.state}"
        elif e.prev_node_id != hold.client or e.inbound_cltv_expiry is None:
            why = "the HTLC does not come from the hold's client"
        elif e.inbound_amount_msat - e.expected_outbound_amount_msat < self.hold_fee(e.expected_outbound_amount_msat):
            # LDK does not check fees on intercepted HTLCs; the holding fee is ours to enforce.
            why = "the HTLC does not pay the holding fee"
        elif known is None:
            _, held, _ = self.store.client_totals(hold.client)
            if held >= self.policy.max_held_htlcs_per_client:
                why = "the client's held-HTLC cap is reached"
        if why is not None or hold is None or e.inbound_cltv_expiry is None:
            log.info("failing intercepted HTLC %s: %s", intercept_id[:12], why)
            await self._fail(intercept_id)
            return
        cltv = e.inbound_cltv_expiry
        if known is None:
            self.store.add_htlc(
                HeldHtlc(intercept_id, hold.hold_id, payment_hash, e.inbound_amount_msat,
                         e.expected_outbound_amount_msat, cltv, HELD),
                time.time(),
            )
        # Outgoing expiry = incoming - our hop delta; act a margin before LDK's own fail-back.
        self.store.set_failback(
            hold.hold_id, cltv - hold.cltv_delta - LDK_FAIL_BACK_BUFFER - self.policy.failback_margin_blocks
        )
        if hold.state == ARMED:
            self.store.set_hold_state(hold.hold_id, HELD)
        if hold.state == RELEASED:
            await self.forward_held(hold)

    def hold_fee(self, outbound_msat: int) -> int:
        pol = self.policy
        return pol.fee_base_msat + outbound_msat * pol.fee_proportional_millionths // 1_000_000

    async def _fail(self, intercept_id: str) -> None:
        try:
            await self.node.fail_intercepted_htlc(intercept_id)
        except LspNodeError as e:  # LDK already failed it (e.g. timed out)
            log.info("intercepted HTLC %s already gone: %s", intercept_id[:12], e)

    async def on_unblock(self, msg: p.PaymentUnblock, context: bytes | None) -> p.UnblockReply:
        def answer(status: p.Status, why: str | None = None) -> p.UnblockReply:
            if status != p.Status.OK:
                log.info("unblock for %s refused: %s (%s)", msg.payment_hash.hex()[:12], status.name, why)
            return p.UnblockReply(msg.payment_hash, int(status), why)

        if context is None or not context.startswith(HOLD_CONTEXT):
            return answer(p.Status.UNKNOWN_HOLD, "unblock must arrive over the hold's unblock path")
        hold = self.store.hold(context[len(HOLD_CONTEXT) :].hex())
        if hold is None:
            return answer(p.Status.UNKNOWN_HOLD, "no such hold")
        if msg.payment_hash.hex() not in hold.payment_hashes:
            return answer(p.Status.UNKNOWN_HOLD, "payment hash does not belong to this hold")
        if p.sha256(msg.pid).hex() != hold.pid_hash:
            return answer(p.Status.WRONG_PID, "pid does not match the hold")
        if hold.state in (RELEASED, SETTLED):
            return answer(p.Status.ALREADY_RELEASED, "hold already released")
        if hold.state in (FAILED, EXPIRED) or self.node.best_block_height >= (hold.failback_height or hold.expires_height):
            return answer(p.Status.EXPIRED, f"hold is {hold.state}")
        if not self.store.release(hold.hold_id, time.time()):
            return answer(p.Status.ALREADY_RELEASED, "hold already released")
        log.info("hold %s released", hold.hold_id[:12])
        if os.environ.get("LSPNODE_FAULT") == "crash_after_release":
            # Fault injection for the crash tests: die like kill -9 between the durable
            # release and the forwards, which restart reconciliation must complete once.
            os._exit(137)
        await self.forward_held(hold)
        return answer(p.Status.OK)

    async def forward_held(self, hold: Hold) -> None:
        """Forward every held HTLC of a released hold to its next node; each exactly once."""
        for h in self.store.htlcs(hold.hold_id, HELD):
            try:
                await self.node.forward_intercepted_htlc(h.intercept_id, hold.next_node, h.outbound_msat)
                self.store.set_htlc_state(h.intercept_id, "forwarded", time.time())
            except NoUsableChannelError:
                log.info("hold %s: no usable channel to %s for %s msat yet", hold.hold_id[:12], hold.next_node[:16], h.outbound_msat)
                continue
            except LspNodeError as e:
                # LDK no longer has it (already forwarded before a crash, or failed): never retry.
                log.info("HTLC %s not forwarded: %s", h.intercept_id[:12], e)
                self.store.set_htlc_state(h.intercept_id, "gone", time.time())

    def on_payment_forwarded(self, e: PaymentForwarded) -> None:
        """Step 8: a released HTLC was fulfilled downstream and LDK claimed it from the payer.
        LDK's event names no payment hash, so it is matched to a forwarded HTLC of a released
        hold of that client by amount; with the payer offline, the preimage waits: push."""
        client = e.prev_node_id
        amount = e.outbound_amount_msat
        if client is None or amount is None:
            return
        for hold in self.store.holds((RELEASED,), client=client):
            match = next((h for h in self.store.htlcs(hold.hold_id, "forwarded") if h.outbound_msat == amount), None)
            if match is None:
                continue
            self.store.set_htlc_state(match.intercept_id, "settled", time.time())
            if not self.store.htlcs(hold.hold_id, "forwarded"):
                self.store.set_hold_state(hold.hold_id, SETTLED)
                log.info("hold %s settled", hold.hold_id[:12])
            if not self.is_online(client):
                self.notify(client, "preimage_waiting")
            return

    async def tick(self) -> None:
        """Per block: fail back holds before LDK would, warn payers, expire unused holds."""
        height = self.node.best_block_height
        for hold in self.store.holds((RELEASED,)):
            # Released, but an HTLC could not be forwarded (no channel) or none ever came.
            stranded = self.store.htlcs(hold.hold_id, HELD)
            if stranded and hold.failback_height is not None and height >= hold.failback_height:
                for h in stranded:
                    await self._fail(h.intercept_id)
                    self.store.set_htlc_state(h.intercept_id, "failed", time.time())
                self.store.set_hold_state(hold.hold_id, FAILED, reason="released HTLC could not be forwarded")
            elif stranded:
                # The next node was unreachable (e.g. just after our restart): try again.
                await self.forward_held(hold)
            elif not self.store.htlcs(hold.hold_id) and height >= hold.expires_height:
                self.store.set_hold_state(hold.hold_id, EXPIRED, reason="released, but no HTLC arrived in time")
        for hold in self.store.holds((ARMED, HELD)):
            fb = hold.failback_height
            if fb is not None and height >= fb:
                for h in self.store.htlcs(hold.hold_id, HELD):
                    await self._fail(h.intercept_id)
                    self.store.set_htlc_state(h.intercept_id, "failed", time.time())
                self.store.set_hold_state(hold.hold_id, FAILED, reason=f"fail-back at height {height}")
                log.info("hold %s failed back at height %s", hold.hold_id[:12], height)
                self.notify(hold.client, "hold_expiring")
            elif fb is not None and height >= fb - self.policy.expiry_warning_blocks and not hold.warned:
                self.store.set_warned(hold.hold_id)
                self.notify(hold.client, "hold_expiring")
            elif hold.state == ARMED and height >= hold.expires_height:
                self.store.set_hold_state(hold.hold_id, EXPIRED, reason="no HTLC arrived in time")
        self.store.purge_mailbox(time.time())
        self.store.forget_requests_before(time.time() - 2 * self.policy.request_max_age_secs)

    # -- mailbox -------------------------------------------------------------------------------
    def on_message_for_offline_peer(self, peer: str, message: str) -> None:
        if not self.is_client(peer):
            log.info("dropping onion message for %s: not a client of this LSP", peer[:16])
            return
        n, size = self.store.mailbox_usage(peer)
        if n >= self.policy.mailbox_max_messages or size + len(message) // 2 > self.policy.mailbox_max_bytes:
            log.info("dropping onion message for %s: mailbox full (%s messages, %s bytes)", peer[:16], n, size)
            return
        self.store.put_message(peer, message, time.time(), self.policy.mailbox_ttl_secs)
        self.notify(peer, "message_waiting")

    async def deliver_mailbox(self, peer: str) -> int:
        """Forward stored messages to a peer that just connected; each is deleted only after
        LDK accepted it, so a crash in between delivers it again (at least once)."""
        delivered = 0
        for entry in self.store.messages(peer):
            try:
                await self.node.forward_onion_message(entry.message, peer)
            except LspNodeError as e:
                log.info("mailbox delivery to %s paused: %s", peer[:16], e)
                break
            self.store.delete_message(entry.id)
            delivered += 1
        return delivered

    # -- device registration -------------------------------------------------------------------
    def on_device_register(self, msg: p.DeviceRegister) -> p.DeviceReply:
        status = self.authenticate(msg)
        if status != p.Status.OK:
            return p.DeviceReply(msg.request_id, int(status), error="not authenticated as a client of this LSP")
        if not self.first_use(msg):
            return p.DeviceReply(msg.request_id, int(p.Status.STALE_OR_REPLAYED), error="request id already used")
        if self.notifier is None:
            return p.DeviceReply(msg.request_id, int(p.Status.INVALID_REQUEST), error="this LSP sends no notifications")
        client = msg.client_node_id.hex()
        try:
            if msg.remove:
                self.notifier.store.remove_device(client, msg.platform, msg.device_id)
                return p.DeviceReply(msg.request_id, int(p.Status.OK))
            reg = self.notifier.store.register_device(client, msg.platform, msg.device_id)
        except LspNodeError as e:
            return p.DeviceReply(msg.request_id, int(p.Status.INVALID_REQUEST), error=str(e))
        return p.DeviceReply(msg.request_id, int(p.Status.OK), expires_at=int(reg.expires_at))

    # -- start-up ------------------------------------------------------------------------------
    async def reconcile(self) -> None:
        """After a restart: finish releases a crash interrupted, mark HTLCs LDK no longer holds,
        and hand connected clients their mail. LDK replays pending HTLCIntercepted events."""
        pending = {h.payment_hash for h in self.node.pending_inbound_htlcs()}
        for hold in self.store.holds((HELD, RELEASED)):
            for h in self.store.htlcs(hold.hold_id, HELD):
                if h.payment_hash not in pending:
                    self.store.set_htlc_state(h.intercept_id, "gone", time.time())
            if hold.state == RELEASED:
                await self.forward_held(hold)
        for peer in self.node.peers():
            await self.deliver_mailbox(peer.node_id)
