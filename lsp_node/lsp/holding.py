"""Holds for payers (SPEC.md §4.2-4.8, §5.1): hold requests, intercepted HTLCs, unblocks,
settlement, downstream failures and the block tick. Forwarding is `forwarding.py`; start-up
reconciliation is `reconcile.py`.

Each event is decided by a synchronous `_decide_*` function that runs on the database thread in
one transaction and returns what the loop must then do with the engine (reply, forward, fail,
push). So the state an engine call depends on is durable before the call is made.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

from lsp_node import protocol as p
from lsp_node.engine import HtlcHandlingFailed, HtlcIntercepted, PaymentForwarded
from lsp_node.errors import InvalidArgumentError
from lsp_node.lsp import hooks
from lsp_node.lsp.context import NOT_AUTHENTICATED, Role, short
from lsp_node.lsp.forwarding import Forwarder, facts
from lsp_node.lsp.holds import ARMED, HELD, RELEASED, SETTLED, HoldEvent, allowed
from lsp_node.lsp.reconcile import Reconciler
from lsp_node.lsp.store import WAITING, HeldHtlc, Hold, HoldHop, LspStore

log = logging.getLogger("lsp_node.lsp")

# LDK fails an intercepted HTLC back by itself once height >= outgoing expiry - 39
# (CLTV_CLAIM_BUFFER 36 + LATENCY_GRACE_PERIOD_BLOCKS 3); we must act before it does.
LDK_FAIL_BACK_BUFFER = 39
HOLD_CONTEXT = b"hold:"
# LDK draws intercept SCIDs at random per block and does not remember them, so two holds armed in
# one block can draw the same one; a few spare candidates are drawn before the transaction picks.
SCID_CANDIDATES = 4


@dataclass(frozen=True)
class FailBack:
    hold: Hold
    htlcs: list[HeldHtlc]
    reason: str
    push: bool  # hold_expiring to the payer (not for released holds, SPEC.md §5.1)


@dataclass
class TickPlan:
    fail_back: list[FailBack] = field(default_factory=list)
    warn: list[str] = field(default_factory=list)  # payers to push hold_expiring
    #: payer -> the height its warned hold is failed back at (LSPS5 expiry_soon's timeout)
    warn_at: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)  # payers of released holds that failed: hold_failed


def next_hop_problem(nodes: list[str], own_id: str, ready: dict[str, bool], client: str = "") -> str | None:
    """Why a hold request's next nodes cannot be held for, in the order of SPEC.md §4.2, or None.
    `ready`: whether each is the peer of a ready, not closing channel of ours; `client`: the
    payer, which cannot be a next hop of its own payment."""
    seen: set[str] = set()
    for i, node in enumerate(nodes, 1):
        if node in seen:
            return f"next node {i} ({short(node)}) is listed twice"
        seen.add(node)
    if not 1 <= len(nodes) <= p.MAX_NEXT_NODES:
        return f"a hold names 1 to {p.MAX_NEXT_NODES} next nodes, not {len(nodes)}"
    for i, node in enumerate(nodes, 1):
        if node == own_id:
            return f"next node {i} ({short(node)}) is this LSP itself"
        if node == client:
            return f"next node {i} ({short(node)}) is the payer itself"
        if not ready.get(node, False):
            return f"next node {i} ({short(node)}) is not the peer of a ready channel of this LSP"
    return None


def match_downstream_failure(
    candidates: list[tuple[Hold, list[HeldHtlc]]], failure_type: str, intercept_id: str | None = None
) -> tuple[Hold, HeldHtlc] | None:
    """Which forwarded HTLC an HtlcHandlingFailed is about. The engine names the intercept when it
    can tell which one failed; then that HTLC, or none if it is not one of these. Otherwise LDK's
    event names only the inbound channel (whose peer is the client) and the next node
    (`node_id: Some(..)` in the failure type): take the client's oldest forwarded HTLC of a
    released hold whose next node appears in the failure type, else none. The client's other
    payments fail over the same inbound channel (a forward to a JIT channel the engine's LSPS2
    service opened, a plain forward), so a failure towards a node none of its holds' HTLCs went
    to is not theirs."""
    forwarded = [(hold, h) for hold, htlcs in candidates for h in htlcs]
    if intercept_id is not None:
        return next((m for m in forwarded if m[1].intercept_id == intercept_id), None)
    return next((m for m in forwarded if m[1].next_node in failure_type), None)


class Holding:
    def __init__(self, role: Role) -> None:
        self.role = role
        self.forwarder = Forwarder(role)
        self.reconciler = Reconciler(role, self.forwarder)

    @property
    def store(self) -> LspStore:
        return self.role.store

    # -- HOLD_REQUEST ----------------------------------------------------------------------------
    async def on_hold_request(self, req: p.HoldRequest) -> p.HoldReply:
        status = self.role.authenticate(req)
        if status != p.Status.OK:
            return self._refuse(req, status, NOT_AUTHENTICATED)
        engine = self.role.engine
        height = engine.best_block_height()
        nodes = [n.hex() for n in req.next_node_ids]
        # Engine calls on the loop, decided with the rest in the transaction (SPEC.md §4.2 order).
        ready = {n: engine.has_ready_channel(n) for n in set(nodes)}
        scids = [engine.get_intercept_scid() for _ in range(len(nodes) + SCID_CANDIDATES - 1)]
        decided = await self.store.run(self._decide_hold_request, req, height, ready, scids, time.time())
        if isinstance(decided, p.HoldReply):
            return decided
        return self.hold_reply(req.request_id, decided)

    def _refuse(self, req: p.HoldRequest, status: p.Status, why: str) -> p.HoldReply:
        log.info("hold request from %s refused: %s (%s)", short(req.client_node_id.hex()), status.name, why)
        return p.HoldReply(req.request_id, int(status), error=why)

    def _decide_hold_request(
        self, req: p.HoldRequest, height: int, ready: dict[str, bool], scids: list[int], now: float
    ) -> Hold | p.HoldReply:
        store, pol = self.store, self.role.policy
        client, request_id = req.client_node_id.hex(), req.request_id.hex()
        hashes = tuple(h.hex() for h in req.payment_hashes)
        # A retried request (our reply was lost, or we crashed before sending it) gets the
        # same hold again, with its stored hops; any other reuse of a request id is a replay.
        existing = store.hold_by_request(client, request_id)
        if (
            existing is not None
            and existing.state in (ARMED, HELD)
            and existing.pid_hash == req.pid_hash.hex()
            and existing.payment_hashes == hashes
        ):
            return existing
        if not store.mark_request_seen(client, request_id, now):
            return self._refuse(req, p.Status.STALE_OR_REPLAYED, "request id already used")
        if not 1 <= req.hold_blocks <= pol.max_hold_blocks:
            return self._refuse(req, p.Status.INVALID_REQUEST, f"hold_blocks must be 1..{pol.max_hold_blocks}")
        if req.amount_msat <= 0:
            return self._refuse(req, p.Status.INVALID_REQUEST, "amount_msat must be positive")
        holds, _, held_msat = store.client_totals(client)
        if holds >= pol.max_holds_per_client:
            return self._refuse(
                req, p.Status.LIMIT_EXCEEDED, f"at most {pol.max_holds_per_client} active holds per client"
            )
        if held_msat + req.amount_msat > pol.max_held_msat_per_client:
            return self._refuse(req, p.Status.LIMIT_EXCEEDED, "the client's held amount would exceed its cap")
        # Only this client's own holds are looked at: whether another client holds a hash is
        # not ours to tell (SPEC.md §2.9); two clients' holds on one hash do not meet (by SCID).
        if store.active_hold_with_hash(hashes, client) is not None:
            return self._refuse(req, p.Status.INVALID_REQUEST, "a payment hash is already in one of your holds")
        nodes = [n.hex() for n in req.next_node_ids]
        problem = next_hop_problem(nodes, self.role.engine.node_id(), ready, client)
        if problem is not None:
            return self._refuse(req, p.Status.NEXT_HOP_UNUSABLE, problem)
        # One SCID per next node: LSP_a cannot read the onion past its own hop, so the SCID an HTLC
        # comes on is how it knows where the HTLC goes.
        chosen: list[int] = []
        for s in scids:
            if s not in chosen and not store.scid_in_use(s):
                chosen.append(s)
        if len(chosen) < len(nodes):
            # The request id stays used, as it did when this was an exception after first use.
            return p.HoldReply(
                req.request_id,
                int(p.Status.INTERNAL),
                error="cannot find an unused intercept SCID; retry in the next block",
            )
        hold = Hold(
            hold_id=os.urandom(16).hex(),
            client=client,
            request_id=request_id,
            pid_hash=req.pid_hash.hex(),
            payment_hashes=hashes,
            amount_msat=req.amount_msat,
            hops=tuple(HoldHop(n, s) for n, s in zip(nodes, chosen[: len(nodes)], strict=True)),
            cltv_delta=pol.cltv_expiry_delta,
            extra_final_cltv=req.hold_blocks,
            state=ARMED,
            created_at=now,
            created_height=height,
            expires_height=height + req.hold_blocks,
            failback_height=None,
            warned=False,
            released_at=None,
            reason=None,
        )
        store.insert_hold(hold)  # committed before the reply makes the hold usable
        log.info(
            "hold %s armed for %s: %s hop(s) (%s), until height %s",
            short(hold.hold_id),
            short(client),
            len(hold.hops),
            ", ".join(f"{short(h.next_node)} on scid {h.scid}" for h in hold.hops),
            hold.expires_height,
        )
        return hold

    def hold_reply(self, request_id: bytes, hold: Hold) -> p.HoldReply:
        # A fresh blinded path each time; all of them carry the same authenticated hold id.
        path = self.role.engine.create_blinded_path(HOLD_CONTEXT + bytes.fromhex(hold.hold_id))
        pol = self.role.policy
        return p.HoldReply(
            request_id,
            int(p.Status.OK),
            intercept_scids=tuple(h.scid for h in hold.hops),
            fee_base_msat=pol.fee_base_msat,
            fee_proportional_millionths=pol.fee_proportional_millionths,
            cltv_expiry_delta=hold.cltv_delta,
            extra_final_cltv=hold.extra_final_cltv,
            unblock_path=path,
        )

    # -- intercepted HTLCs -------------------------------------------------------------------------
    async def on_htlc_intercepted(self, htlc: HtlcIntercepted) -> None:
        decided = await self.store.run(self._decide_intercept, htlc, time.time())
        if isinstance(decided, str):
            log.info("failing intercepted HTLC %s: %s", short(htlc.intercept_id), decided)
            await self.forwarder.fail(htlc.intercept_id)
        elif decided is not None:
            hold, to_forward = decided
            if to_forward:
                # The hold is released: forward at once, or fail back at once (after the short
                # wait, off the event lane: the intent to forward is committed, so a crash is
                # redone at start-up). The hold stays released: the payer may retry.
                self.role.spawn(self._forward_arrival(hold, to_forward), f"forward {short(htlc.intercept_id)}")

    async def _forward_arrival(self, hold: Hold, htlcs: list[HeldHtlc]) -> None:
        await self.forwarder.forward(hold, htlcs, end_hold=False, push=False)

    def hold_fee(self, outbound_msat: int) -> int:
        pol = self.role.policy
        return pol.fee_base_msat + outbound_msat * pol.fee_proportional_millionths // 1_000_000

    def _decide_intercept(self, htlc: HtlcIntercepted, now: float) -> str | tuple[Hold, list[HeldHtlc]] | None:
        """None: a replay to ignore; a string: why to fail it; else the hold and, if it is
        released already, the HTLCs to forward."""
        store = self.store
        hold = store.hold_by_scid(htlc.requested_next_hop_scid)
        known = store.htlc(htlc.intercept_id)
        if known is not None and known.state not in WAITING:
            # LDK hands out an intercept again only if it still has it: our forward or fail was
            # committed here but LDK crashed before persisting it. Do it again (SPEC.md §8).
            if known.state == "failed":
                return "failed back before a restart"
            if known.state == "forwarded" and hold is not None and hold.state in (RELEASED, SETTLED):
                return hold, [known]
            if known.state == "forwarded":
                return "forwarded before a restart, but its hold is no longer released"
            return None  # settled or gone: nothing to redo
        hop = hold.hop(htlc.requested_next_hop_scid) if hold is not None else None
        if hold is None or hop is None:
            return "no hold uses this intercept SCID"
        if htlc.payment_hash not in hold.payment_hashes:
            return "payment hash not covered by the hold"
        if hold.state not in (ARMED, HELD, RELEASED):
            return f"hold is {hold.state}"
        if htlc.prev_node_id != hold.client or htlc.inbound_cltv_expiry is None:
            return "the HTLC does not come from the hold's client"
        if htlc.inbound_amount_msat - htlc.expected_outbound_amount_msat < self.hold_fee(
            htlc.expected_outbound_amount_msat
        ):
            # LDK does not check fees on intercepted HTLCs; the holding fee is ours to enforce.
            return "the HTLC does not pay the holding fee"
        if known is None:
            _, held, held_msat = store.client_totals(hold.client)
            if held >= self.role.policy.max_held_htlcs_per_client:
                return "the client's held-HTLC cap is reached"
            # The cap on what arrives, not only on what was declared in the request.
            if held_msat + htlc.inbound_amount_msat > self.role.policy.max_held_msat_per_client:
                return "the client's held-amount cap is reached"
            store.add_htlc(
                HeldHtlc(
                    intercept_id=htlc.intercept_id,
                    hold_id=hold.hold_id,
                    payment_hash=htlc.payment_hash,
                    inbound_msat=htlc.inbound_amount_msat,
                    outbound_msat=htlc.expected_outbound_amount_msat,
                    cltv_expiry=htlc.inbound_cltv_expiry,
                    state=HELD,
                    next_node=hop.next_node,  # where it goes on release
                ),
                now,
            )
        # Outgoing expiry = incoming - our hop delta; act a margin before LDK's own fail-back.
        store.set_failback(
            hold.hold_id,
            htlc.inbound_cltv_expiry - hold.cltv_delta - LDK_FAIL_BACK_BUFFER - self.role.policy.failback_margin_blocks,
        )
        if hold.state == ARMED:
            store.move_hold(hold, HoldEvent.HTLC_ACCEPTED)
        if hold.state == RELEASED:
            return hold, store.mark_forwarding(hold.hold_id, now)
        return hold, []

    # -- PAYMENT_UNBLOCK ---------------------------------------------------------------------------
    async def on_unblock(self, msg: p.PaymentUnblock, context: bytes | None) -> p.UnblockReply:
        released = await self.release(msg, context)
        if isinstance(released, p.UnblockReply):
            return released
        return await self.hand_over(msg, *released)

    async def release(
        self, msg: p.PaymentUnblock, context: bytes | None
    ) -> p.UnblockReply | tuple[Hold, list[HeldHtlc]]:
        """The release, committed: the answer if it is refused, else the hold and the HTLCs it
        must hand to LDK (`hand_over`)."""
        if context is None or not context.startswith(HOLD_CONTEXT):
            return self._answer(msg, p.Status.UNKNOWN_HOLD, "unblock must arrive over the hold's unblock path")
        height = self.role.engine.best_block_height()
        hold_id = context[len(HOLD_CONTEXT) :].hex()
        decided = await self.store.run(self._decide_unblock, msg, hold_id, height, time.time())
        if isinstance(decided, p.UnblockReply):
            return decided
        hold, htlcs = decided
        log.info("hold %s released", short(hold.hold_id))
        hooks.fire(hooks.AFTER_RELEASE)
        return hold, htlcs

    async def hand_over(self, msg: p.PaymentUnblock, hold: Hold, htlcs: list[HeldHtlc]) -> p.UnblockReply:
        """Forward a released hold's HTLCs; the unblock's answer (SPEC.md §4.6)."""
        if not htlcs:
            # Nothing to hand over yet: each HTLC is forwarded when it arrives (SPEC.md §4.6).
            return self._answer(msg, p.Status.RELEASED_AWAITING_HTLC, "released; no HTLC has arrived yet")
        # OK only once every HTLC was handed to LDK; what could not be was failed back already.
        outcome = await self.forwarder.forward(hold, htlcs, end_hold=True, push=True)
        if not outcome.ok:
            return self._answer(msg, p.Status.FORWARD_FAILED, outcome.reason())
        return self._answer(msg, p.Status.OK)

    def _answer(self, msg: p.PaymentUnblock, status: p.Status, why: str | None = None) -> p.UnblockReply:
        if status != p.Status.OK:
            log.info("unblock for %s: %s (%s)", short(msg.payment_hash.hex()), status.name, why)
        return p.UnblockReply(msg.payment_hash, int(status), why)

    def _decide_unblock(
        self, msg: p.PaymentUnblock, hold_id: str, height: int, now: float
    ) -> p.UnblockReply | tuple[Hold, list[HeldHtlc]]:
        # The order of the checks fixes the status a peer sees (SPEC.md §2.8).
        hold = self.store.hold(hold_id)
        if hold is None:
            return self._answer(msg, p.Status.UNKNOWN_HOLD, "no such hold")
        if msg.payment_hash.hex() not in hold.payment_hashes:
            return self._answer(msg, p.Status.UNKNOWN_HOLD, "payment hash does not belong to this hold")
        if p.sha256(msg.pid).hex() != hold.pid_hash:
            return self._answer(msg, p.Status.WRONG_PID, "pid does not match the hold")
        if hold.state in (RELEASED, SETTLED):
            return self._answer(msg, p.Status.ALREADY_RELEASED, "hold already released")
        if not allowed(hold.state, HoldEvent.UNBLOCK, facts(hold, height)):
            return self._answer(msg, p.Status.EXPIRED, f"hold is {hold.state}")
        # Single use: the release is a compare-and-set on the state just read.
        if not self.store.move_hold(hold, HoldEvent.UNBLOCK, released_at=now):
            return self._answer(msg, p.Status.ALREADY_RELEASED, "hold already released")
        # The intent to forward is part of the release: one commit, before any LDK call.
        return hold, self.store.mark_forwarding(hold_id, now)

    # -- PaymentForwarded --------------------------------------------------------------------------
    async def on_payment_forwarded(self, event: PaymentForwarded) -> None:
        """Step 8: a released HTLC was fulfilled downstream and LDK claimed it from the payer.
        LDK's event names no payment hash, so it is matched to a forwarded HTLC of a released
        hold of that client by amount; with the payer offline, the preimage waits: push."""
        client, amount = event.prev_node_id, event.outbound_amount_msat
        if client is None or amount is None:
            return
        deadline = await self.store.run(self._decide_forwarded, client, amount, time.time())
        if deadline is not None and not self.role.engine.is_online(client):
            # The fulfil waits in the payer's channel; if the payer never returns the HTLC must be
            # claimed on-chain before it expires: LSPS5's expiry_soon names that height.
            await self.role.notify(client, "preimage_waiting", deadline)

    def _decide_forwarded(self, client: str, amount: int, now: float) -> int | None:
        """Settle the matching HTLC; its expiry height (the payer's deadline), or None if none matched."""
        store = self.store
        for hold in store.holds((RELEASED,), client=client):
            match = next((h for h in store.htlcs(hold.hold_id, "forwarded") if h.outbound_msat == amount), None)
            if match is None:
                continue
            store.set_htlc_state(match.intercept_id, "settled", now)
            if allowed(RELEASED, HoldEvent.SETTLE, facts(hold, 0, store.htlc_counts(hold.hold_id))):
                store.move_hold(hold, HoldEvent.SETTLE)
                log.info("hold %s settled", short(hold.hold_id))
            return match.cltv_expiry
        return None

    # -- HtlcHandlingFailed -------------------------------------------------------------------------
    async def on_htlc_handling_failed(self, event: HtlcHandlingFailed) -> None:
        """A released HTLC failed downstream (the payee or a later hop refused it) and LDK failed
        it back to the payer. The hold stays `released`: the payer's router retries over the
        hold's SCIDs and the retry is forwarded on arrival; if none comes, the tick fails the
        hold after `retry_grace_secs` (SPEC.md §4.7, §5.1)."""
        client = self.role.engine.channel_counterparty(event.prev_channel_id)
        if client is None or not event.failure_type.startswith("Forward"):
            return  # not a forward of one of ours (our own fail-backs are InvalidForward)
        await self.store.run(
            self._decide_downstream_failure, client, event.failure_type, event.intercept_id, time.time()
        )

    def _decide_downstream_failure(self, client: str, failure_type: str, intercept_id: str | None, now: float) -> None:
        """Mark the client's matching forwarded HTLC failed; settle its hold if that was the last
        one in flight of a payment already (partly) fulfilled."""
        store = self.store
        match = match_downstream_failure(
            [(hold, store.htlcs(hold.hold_id, "forwarded")) for hold in store.holds((RELEASED,), client=client)],
            failure_type,
            intercept_id,
        )
        if match is None:
            return
        hold, htlc = match
        store.set_htlc_state(htlc.intercept_id, "failed", now)
        counts = store.htlc_counts(hold.hold_id)
        if counts.get("settled") and allowed(RELEASED, HoldEvent.SETTLE, facts(hold, 0, counts)):
            store.move_hold(hold, HoldEvent.SETTLE)
            return
        log.info("hold %s: HTLC %s failed downstream", short(hold.hold_id), short(htlc.intercept_id))

    # -- block tick ----------------------------------------------------------------------------------
    async def tick(self) -> None:
        """Per block: fail back holds before LDK would, warn payers, expire unused holds, end
        released holds whose HTLCs all failed. Nothing is forwarded or retried here."""
        height = self.role.engine.best_block_height()
        plan = await self.store.run(self._plan_tick, height, time.time())
        await self._fail_back(plan.fail_back)
        for client in plan.warn + [fb.hold.client for fb in plan.fail_back if fb.push]:
            # Pushed to a connected payer too (its user should keep the wallet open, §7.2); the
            # LSPS5 wake-up is skipped for it (`Role.notify_lsps5`).
            await self.role.notify(client, "hold_expiring", plan.warn_at.get(client, height))
        for client in plan.failed:
            if not self.role.engine.is_online(client):
                await self.role.notify(client, "hold_failed")

    def _plan_tick(self, height: int, now: float) -> TickPlan:
        """Everything the tick decides, in one transaction; the transitions that need no engine
        call (expiry, retry grace, warning flag) are written here, fail-backs after the engine
        failed the HTLCs."""
        store, pol, plan = self.store, self.role.policy, TickPlan()
        for hold in store.holds((RELEASED,)):
            counts = store.htlc_counts(hold.hold_id)
            last = store.last_failure_at(hold.hold_id) if counts.get("failed") else None
            f = facts(hold, height, counts, None if last is None else now - last, pol.retry_grace_secs)
            if allowed(RELEASED, HoldEvent.FAIL_BACK, f):
                # Only while a release is still handing HTLCs over (or after a bug): a safety net.
                plan.fail_back.append(
                    FailBack(hold, store.htlcs(hold.hold_id, WAITING), "released HTLC still waiting", push=False)
                )
            elif allowed(RELEASED, HoldEvent.RETRY_EXPIRED, f):
                if store.move_hold(hold, HoldEvent.RETRY_EXPIRED, reason="every HTLC failed; the payer did not retry"):
                    log.info("hold %s failed: every HTLC failed and no retry came", short(hold.hold_id))
                    plan.failed.append(hold.client)
            elif allowed(RELEASED, HoldEvent.EXPIRE, f):
                store.move_hold(hold, HoldEvent.EXPIRE, reason="released, but no HTLC arrived in time")
        for hold in store.holds((ARMED, HELD)):
            f = facts(hold, height, store.htlc_counts(hold.hold_id))
            fb = hold.failback_height
            if allowed(hold.state, HoldEvent.FAIL_BACK, f):
                plan.fail_back.append(
                    FailBack(hold, store.htlcs(hold.hold_id, HELD), f"fail-back at height {height}", push=True)
                )
            elif fb is not None and height >= fb - pol.expiry_warning_blocks and not hold.warned:
                store.set_warned(hold.hold_id)
                plan.warn.append(hold.client)
                plan.warn_at[hold.client] = min(fb, plan.warn_at.get(hold.client, fb))
            elif allowed(hold.state, HoldEvent.EXPIRE, f):
                store.move_hold(hold, HoldEvent.EXPIRE, reason="no HTLC arrived in time")
        store.purge_mailbox(now)
        store.forget_requests_before(now - 2 * pol.request_max_age_secs)
        return plan

    async def _fail_back(self, fail_backs: list[FailBack]) -> set[str]:
        """Fail the planned HTLCs back with LDK, then commit: the ids of the holds that became failed."""
        for fb in fail_backs:
            for h in fb.htlcs:
                await self.forwarder.fail(h.intercept_id)
        if not fail_backs:
            return set()
        moved = await self.store.run(self._commit_fail_backs, fail_backs, time.time())
        hooks.fire(hooks.AFTER_FAIL_BACK)
        return moved

    # -- by hand -----------------------------------------------------------------------------------
    async def fail_by_operator(self, hold_id: str) -> tuple[Hold, int, bool]:
        """Fail a hold back now (SPEC.md §5.1, OPERATOR_FAIL). Unlike the tick, which acts at a
        height where no unblock is accepted any more, the operator acts at any time: so the hold
        moves to `failed` and every HTLC it holds is marked `failed` in one transaction first, and
        only then are they failed with LDK. An HTLC arriving later meets a failed hold and is
        failed back; an unblock meets a failed hold and is answered EXPIRED; a crash after the
        commit leaves `failed` rows that start-up fails again (reconcile step 2).

        Returns the hold as read, how many HTLCs LDK failed back and whether the hold became
        failed; raises InvalidArgumentError (naming the state) if the machine has no such
        transition, KeyError if there is no such hold."""
        hold, htlcs = await self.store.run(self._commit_operator_fail, hold_id, time.time())
        hooks.fire(hooks.AFTER_FAIL_BACK)
        failed = 0
        for h in htlcs:
            failed += await self.forwarder.fail(h.intercept_id)
        log.info("hold %s failed back by the operator (%s of %s HTLCs)", short(hold_id), failed, len(htlcs))
        if not self.role.engine.is_online(hold.client):
            await self.role.notify(hold.client, "hold_failed")
        return hold, failed, True

    def _commit_operator_fail(self, hold_id: str, now: float) -> tuple[Hold, list[HeldHtlc]]:
        hold = self.store.hold(hold_id)
        if hold is None:
            raise KeyError(hold_id)
        if not allowed(hold.state, HoldEvent.OPERATOR_FAIL, facts(hold, 0)):
            if hold.state == RELEASED:
                raise InvalidArgumentError(
                    "the hold is released: its HTLCs are with LDK or being handed over; it ends when they settle or fail"
                )
            raise InvalidArgumentError(f"the hold is already {hold.state}")
        # The database thread runs one unit of work at a time, so nothing changes the hold between
        # the read above and this compare-and-set; the HTLCs read after it are all it will have.
        if not self.store.move_hold(hold, HoldEvent.OPERATOR_FAIL, reason="failed back by the operator"):
            raise InvalidArgumentError("the hold changed state; read it again")
        htlcs = self.store.htlcs(hold_id, HELD)
        for h in htlcs:
            self.store.set_htlc_state(h.intercept_id, "failed", now, only_from=WAITING)
        return hold, htlcs

    def _commit_fail_backs(self, fail_backs: list[FailBack], now: float) -> set[str]:
        moved: set[str] = set()
        for fb in fail_backs:
            for h in fb.htlcs:
                # Conditional: the tick read these HTLCs before its engine calls.
                self.store.set_htlc_state(h.intercept_id, "failed", now, only_from=WAITING)
            rows = [self.store.htlc(h.intercept_id) for h in fb.htlcs]
            if any(r is not None and r.state != "failed" for r in rows):
                # A hand-over beside the tick took one of these HTLCs first (LDK refused our fail
                # of it): the hold's outcome is that HTLC's, not this fail-back's (SPEC.md §5.1).
                log.warning(
                    "hold %s: an HTLC was forwarded during its fail-back; hold left as is", short(fb.hold.hold_id)
                )
                continue
            if self.store.move_hold(fb.hold, HoldEvent.FAIL_BACK, reason=fb.reason):
                log.info("hold %s failed back: %s", short(fb.hold.hold_id), fb.reason)
                moved.add(fb.hold.hold_id)
            else:
                log.warning("hold %s changed state during its fail-back; left as is", short(fb.hold.hold_id))
        return moved

    # -- start-up ------------------------------------------------------------------------------------
    async def reconcile(self) -> None:
        """After a restart, before the event loop starts (SPEC.md §8): `reconcile.py`."""
        await self.reconciler.reconcile()
