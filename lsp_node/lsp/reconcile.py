"""Start-up reconciliation of the holds' HTLCs against the intercepts LDK holds now (SPEC.md §8).

LDK does not announce again an intercept whose event was handled, and a forward or fail asked
just before a crash is undone if LDK had not persisted it; so after a restart, before the event
loop starts, our table is settled against LDK one intercept at a time. What is to be forwarded is
forwarded once (with the release's short wait, SPEC.md §4.7) and what cannot be is failed back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from lsp_node.engine import PendingIntercept
from lsp_node.lsp.context import Role, short
from lsp_node.lsp.forwarding import Forwarder
from lsp_node.lsp.holds import HELD, RELEASED, SETTLED
from lsp_node.lsp.store import FORWARDING, WAITING, HeldHtlc, Hold, LspStore

log = logging.getLogger("lsp_node.lsp")


@dataclass
class ReconcilePlan:
    """Start-up actions, one per intercept: forwards by hold, then fails."""

    forward: dict[str, tuple[Hold, list[HeldHtlc]]] = field(default_factory=dict)
    fail: list[str] = field(default_factory=list)

    def add_forward(self, hold: Hold, htlcs: list[HeldHtlc]) -> None:
        if htlcs:
            self.forward.setdefault(hold.hold_id, (hold, []))[1].extend(htlcs)

    def add_fail(self, intercept_id: str) -> None:
        self.fail.append(intercept_id)


class Reconciler:
    def __init__(self, role: Role, forwarder: Forwarder) -> None:
        self.role = role
        self.forwarder = forwarder

    @property
    def store(self) -> LspStore:
        return self.role.store

    async def reconcile(self) -> None:
        engine = self.role.engine
        ldk = {r.intercept_id: r for r in await engine.pending_intercepts()}
        waiting = await self.store.run(self._waiting_intercepts)
        # Our waiting HTLCs are also asked of LDK one by one: one intercepted before the engine kept
        # records would otherwise look gone (and a released one be taken for forwarded). Off the
        # loop: one channel-manager lookup each, as many as there are held HTLCs.
        unlisted = [i for i in waiting if i not in ldk]
        held = set(ldk) | set(
            await asyncio.to_thread(lambda: [i for i in unlisted if engine.intercept_pending_amount(i) is not None])
        )
        pending = engine.pending_inbound_payment_hashes()
        plan = await self.store.run(self._reconcile, ldk, held, pending, time.time())
        # One wait for all: channels to the next nodes come back together while peers reconnect.
        deadline = asyncio.get_running_loop().time() + self.role.policy.release_wait_secs
        for hold, htlcs in plan.forward.values():
            await self.forwarder.forward(hold, htlcs, end_hold=True, push=True, deadline=deadline)
        for intercept_id in plan.fail:
            await self.forwarder.fail(intercept_id)

    def _waiting_intercepts(self) -> list[str]:
        return [
            h.intercept_id
            for hold in self.store.holds((HELD, RELEASED))
            for h in self.store.htlcs(hold.hold_id, WAITING)
        ]

    def _reconcile(
        self, ldk: dict[str, PendingIntercept], held: set[str], pending: set[str], now: float
    ) -> ReconcilePlan:
        """One transaction; every intercept gets at most one action. `ldk`: the intercepts LDK holds
        with the engine's records; `held`: the ids LDK holds (records or not); `pending`: payment
        hashes LDK still has an inbound HTLC for."""
        store, plan = self.store, ReconcilePlan()
        # 1. Our waiting HTLCs.
        for hold in store.holds((HELD, RELEASED)):
            for h in store.htlcs(hold.hold_id, WAITING):
                if h.intercept_id in held:
                    continue  # held: stays so; released: forwarded below
                if h.payment_hash not in pending:
                    store.set_htlc_state(h.intercept_id, "gone", now)  # failed or settled inbound
                elif hold.state == RELEASED:
                    # LDK took our forward before the crash; had it not persisted it, it would hold
                    # the intercept (or announce it again, and that event redoes the forward).
                    store.set_htlc_state(h.intercept_id, "forwarded", now)
                # else held, not in LDK, inbound pending: LDK is failing it back or will announce it
                # again; the tick or that event deals with it.
            if hold.state == RELEASED:
                # Those being handed over when we stopped, and those still held.
                leftover = store.htlcs(hold.hold_id, FORWARDING)
                plan.add_forward(hold, leftover + store.mark_forwarding(hold.hold_id, now))
        # 2. What LDK holds that we committed an end for, or do not know.
        for intercept_id, record in ldk.items():
            row = store.htlc(intercept_id)
            if row is None:
                # Never ours. `pending`: its HtlcIntercepted event is still queued (or replayed by
                # LDK) and decides it; acting here would race it. `forwarded`/`failed`: we failed
                # it (no hold matched) and the fail was lost: fail it again, not at LDK's timeout.
                if record.state != "pending":
                    plan.add_fail(intercept_id)
                continue
            owner = store.hold(row.hold_id)
            if row.state in WAITING and owner is not None and owner.state in (HELD, RELEASED):
                continue  # done in 1
            if row.state == "forwarded" and owner is not None and owner.state in (RELEASED, SETTLED):
                plan.add_forward(owner, [row])  # a forward lost in the crash
            elif row.state == "settled":
                log.warning("settled HTLC %s is pending in LDK; left as is", short(intercept_id))
            else:
                # A fail lost in the crash, or an HTLC whose hold ended without it: back to the
                # payer, recorded before the call.
                if row.state != "failed":
                    store.set_htlc_state(intercept_id, "failed", now)
                plan.add_fail(intercept_id)
        return plan
