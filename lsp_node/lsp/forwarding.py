"""Handing released HTLCs to LDK (SPEC.md §4.7): each to the next node of the intercept SCID it
came on, after a short wait for a next node whose ready channel is not usable yet (its peer is
reconnecting), and failing back at once whatever cannot be forwarded, so the payer's funds are
never left locked up until the fail-back height.

There is no retry loop: a release, an HTLC arriving at a released hold and start-up
reconciliation each try once (with that wait); nothing is tried again at every block or second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from lsp_node.errors import LspNodeError
from lsp_node.lsp import hooks
from lsp_node.lsp.context import Role, short
from lsp_node.lsp.holds import RELEASED, HoldEvent, HoldFacts, allowed
from lsp_node.lsp.store import FORWARDING, WAITING, HeldHtlc, Hold, LspStore

log = logging.getLogger("lsp_node.lsp")

#: While waiting for a next node's channel, LDK is asked again this often (seconds).
POLL_SECS = 0.25


def facts(
    hold: Hold,
    height: int,
    counts: dict[str, int] | None = None,
    failure_age: float | None = None,
    retry_grace_secs: float = 0.0,
) -> HoldFacts:
    """The state machine's view of a hold: its heights and its HTLCs counted by state."""
    counts = counts or {}
    return HoldFacts(
        height=height,
        expires_height=hold.expires_height,
        failback_height=hold.failback_height,
        htlcs=sum(counts.values()),
        held=counts.get("held", 0) + counts.get(FORWARDING, 0),
        forwarded=counts.get("forwarded", 0),
        settled=counts.get("settled", 0),
        failed=counts.get("failed", 0),
        failure_age=failure_age,
        retry_grace_secs=retry_grace_secs,
    )


@dataclass(frozen=True)
class Outcome:
    """What became of the HTLCs of one attempt to forward."""

    forwarded: list[HeldHtlc]
    failed: list[HeldHtlc]  # no usable channel could carry them in time: failed back to the payer
    gone: list[HeldHtlc]  # LDK no longer had them (failed or forwarded before, e.g. across a crash)
    hold_failed: bool  # the hold became `failed`: none of its HTLCs is left in flight

    @property
    def ok(self) -> bool:
        """Every HTLC was handed to LDK (the unblock's OK, SPEC.md §4.6)."""
        return bool(self.forwarded) and not self.failed and not self.gone

    def reason(self) -> str:
        """For FORWARD_FAILED: what went wrong, without node ids or amounts."""
        total = len(self.forwarded) + len(self.failed) + len(self.gone)
        if self.failed:
            return (
                f"{len(self.failed)} of {total} held HTLCs could not be forwarded (no usable channel to their next"
                " hop could carry them) and were failed back to the payer"
            )
        return f"{len(self.gone)} of {total} held HTLCs were no longer pending at the LSP"


class Forwarder:
    def __init__(self, role: Role) -> None:
        self.role = role

    @property
    def store(self) -> LspStore:
        return self.role.store

    async def forward(
        self,
        hold: Hold,
        htlcs: list[HeldHtlc],
        *,
        end_hold: bool,
        push: bool,
        deadline: float | None = None,
    ) -> Outcome:
        """Hand each HTLC to LDK for its own next node. One whose next node has a ready channel that
        cannot carry it yet is tried again until `deadline` (loop time; default: now +
        release_wait_secs); one whose next node has no ready channel is not waited for. What is
        left is recorded `failed` (committed first) and then failed back. With `end_hold`, a
        released hold with nothing left in flight becomes `failed`; with `push`, an offline payer
        whose HTLCs were failed back is pushed `hold_failed`."""
        if not htlcs:
            return Outcome([], [], [], hold_failed=False)
        engine, loop = self.role.engine, asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + self.role.policy.release_wait_secs
        forwarded: list[HeldHtlc] = []
        gone: list[HeldHtlc] = []
        failed: list[HeldHtlc] = []
        waiting = list(htlcs)
        while waiting:
            blocked: list[HeldHtlc] = []
            for h in waiting:
                try:
                    if not await engine.forward_htlc(h.intercept_id, h.next_node, h.outbound_msat):
                        blocked.append(h)
                        continue
                except LspNodeError as e:
                    # LDK no longer has it (already forwarded before a crash, or failed): never
                    # asked again. A redone forward keeps `forwarded`: LDK took the first one.
                    log.info("HTLC %s not forwarded: %s", short(h.intercept_id), type(e).__name__)
                    gone.append(h)
                    continue
                forwarded.append(h)
                hooks.fire(hooks.AFTER_LDK_FORWARD)
                # Recorded at once, not after the batch: while another HTLC of the hold waits for
                # its channel, this one may already fail or settle downstream, and those events
                # look for `forwarded` HTLCs.
                await self.store.run(self.store.set_htlc_state, h.intercept_id, "forwarded", time.time())
            # Only a ready channel whose peer is reconnecting is worth waiting for.
            waiting = [h for h in blocked if engine.has_ready_channel(h.next_node)]
            failed += [h for h in blocked if h not in waiting]
            left = deadline - loop.time()
            if waiting and left <= 0:
                failed += waiting
                break
            if waiting:
                await asyncio.sleep(min(POLL_SECS, left))
        hold_failed = await self.store.run(self._commit, hold, gone, failed, end_hold, time.time())
        for h in failed:
            log.info(
                "hold %s: no usable channel to %s for %s msat; failing HTLC %s back",
                short(hold.hold_id),
                short(h.next_node),
                h.outbound_msat,
                short(h.intercept_id),
            )
            await self.fail(h.intercept_id)
        if failed and push and not engine.is_online(hold.client):
            await self.role.notify(hold.client, "hold_failed")
        return Outcome(forwarded, failed, gone, hold_failed)

    def _commit(
        self,
        hold: Hold,
        gone: list[HeldHtlc],
        failed: list[HeldHtlc],
        end_hold: bool,
        now: float,
    ) -> bool:
        """One transaction; True if the hold became `failed`."""
        store = self.store
        for h in gone:
            store.set_htlc_state(h.intercept_id, "gone", now, only_from=WAITING)
        for h in failed:
            # Recorded before LDK is asked to fail it: after a crash, start-up fails it again.
            store.set_htlc_state(h.intercept_id, "failed", now, only_from=WAITING)
        current = store.hold(hold.hold_id)
        if not end_hold or current is None or current.state != RELEASED:
            return False
        if not allowed(RELEASED, HoldEvent.FORWARD_FAILED, facts(current, 0, store.htlc_counts(hold.hold_id))):
            return False
        store.move_hold(current, HoldEvent.FORWARD_FAILED, reason="no released HTLC could be forwarded")
        log.info("hold %s failed: no released HTLC could be forwarded", short(hold.hold_id))
        return True

    async def fail(self, intercept_id: str) -> bool:
        """Fail an intercepted HTLC back to the payer; False if LDK no longer had it."""
        try:
            await self.role.engine.fail_intercepted_htlc(intercept_id)
        except LspNodeError as e:  # LDK already failed it (e.g. timed out)
            log.info("intercepted HTLC %s already gone: %s", short(intercept_id), type(e).__name__)
            return False
        return True
