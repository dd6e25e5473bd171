"""The HTLCs LDK holds for BOLT async payments (SPEC.md §13): LDK keeps them until the
recipient's `release_held_htlc` and would fail them back only `HTLC_FAIL_BACK_BUFFER` blocks
before their outgoing CLTV, with no cap. The role applies LightningRod's rules to them on every
tick: failed `failback_margin_blocks` before LDK would (§5.2), and each payer held to the
`max_held_htlcs_per_client` / `max_held_msat_per_client` caps, counted apart from its
LightningRod holds. The operator can list them and fail one back by hand."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lsp_node.engine import HeldAsyncHtlc
from lsp_node.errors import LspNodeError, NotFoundError
from lsp_node.lsp.context import Role, short

log = logging.getLogger("lsp_node.lsp")


@dataclass(frozen=True)
class Verdict:
    htlc: HeldAsyncHtlc
    why: str


class AsyncHolds:
    def __init__(self, role: Role) -> None:
        self.role = role

    def held(self) -> list[HeldAsyncHtlc]:
        """Oldest first per payer channel: the order the caps keep them in."""
        return sorted(self.role.engine.held_async_htlcs(), key=lambda h: (h.channel_id, h.htlc_id))

    def fail_back_height(self, htlc: HeldAsyncHtlc) -> int:
        return htlc.ldk_fail_back_height - self.role.policy.failback_margin_blocks

    def verdicts(self, held: list[HeldAsyncHtlc], height: int) -> list[Verdict]:
        """Which held HTLCs to fail now and why: past the margin, or over the payer's caps (the
        newest of a payer's HTLCs go first; one past the margin no longer counts)."""
        pol = self.role.policy
        out: list[Verdict] = []
        count: dict[str, int] = {}
        msat: dict[str, int] = {}
        for h in held:
            if height >= self.fail_back_height(h):
                out.append(Verdict(h, "its fail-back height is reached"))
                continue
            payer = h.counterparty_node_id
            n, total = count.get(payer, 0) + 1, msat.get(payer, 0) + h.amount_msat
            if n > pol.max_held_htlcs_per_client:
                out.append(Verdict(h, "the payer's held-HTLC cap is reached"))
            elif total > pol.max_held_msat_per_client:
                out.append(Verdict(h, "the payer's held-amount cap is reached"))
            else:
                count[payer], msat[payer] = n, total
        return out

    async def tick(self) -> None:
        """Fail what `verdicts` names. A failure LDK refuses means the HTLC was released or
        failed meanwhile: nothing to do."""
        height = self.role.engine.best_block_height()
        for v in self.verdicts(self.held(), height):
            try:
                await self.role.engine.fail_intercepted_htlc(v.htlc.intercept_id)
            except LspNodeError:
                continue
            log.info(
                "async payment HTLC %s from %s failed back: %s",
                short(v.htlc.intercept_id),
                short(v.htlc.counterparty_node_id),
                v.why,
            )

    async def fail(self, intercept_id: str) -> HeldAsyncHtlc:
        """The operator fails one held HTLC back to its payer now."""
        htlc = next((h for h in self.held() if h.intercept_id == intercept_id), None)
        if htlc is None:
            raise NotFoundError("no async payment HTLC is held with that intercept id")
        try:
            await self.role.engine.fail_intercepted_htlc(intercept_id)
        except LspNodeError:
            raise NotFoundError("the HTLC is no longer held (released or failed meanwhile)") from None
        log.info("async payment HTLC %s failed back by the operator", short(intercept_id))
        return htlc
