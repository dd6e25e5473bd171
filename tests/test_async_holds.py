"""The role's rules for the HTLCs LDK holds for BOLT async payments (lsp/async_holds.py): the
fail-back margin, the per-payer caps and the operator's fail, against the fake engine. The same
HTLCs held by real LDK nodes are in test_async_payments_interop.py."""

from __future__ import annotations

import pytest

from lsp_node.engine import HeldAsyncHtlc
from lsp_node.errors import NotFoundError
from tests.lsp_harness import CLIENT, STRANGER, Lsp, lsp

__all__ = ["lsp"]  # the fixture, used by name

MARGIN = 6  # LspSettings.failback_margin_blocks, the harness keeps the default


def held(n: int, payer: str = CLIENT, amount_msat: int = 1_000_000, fail_back_in: int = 100) -> HeldAsyncHtlc:
    """The n-th HTLC held from `payer`; LDK would fail it back `fail_back_in` blocks from 1000."""
    return HeldAsyncHtlc(
        intercept_id=f"{n:064x}",
        channel_id=payer[2:66],
        counterparty_node_id=payer,
        htlc_id=n,
        payment_hash=f"{n + 1000:064x}",
        amount_msat=amount_msat,
        cltv_expiry=1000 + fail_back_in + 111,
        ldk_fail_back_height=1000 + fail_back_in,
    )


async def test_failed_back_the_margin_before_ldk_would(lsp: Lsp) -> None:
    assert lsp.engine.height == 1000 and lsp.service.role.policy.failback_margin_blocks == MARGIN
    due, early = held(1, fail_back_in=MARGIN), held(2, fail_back_in=MARGIN + 1)
    lsp.engine.held_async = [due, early]
    await lsp.service.tick()
    assert lsp.engine.failed == [due.intercept_id]
    lsp.engine.height += 1
    await lsp.service.tick()
    assert lsp.engine.failed == [due.intercept_id, early.intercept_id]
    assert lsp.service.async_holds.held() == []


async def test_each_payer_is_held_to_the_caps(lsp: Lsp) -> None:
    pol = lsp.service.role.policy  # the harness: 2 HTLCs, 10**8 msat per client
    assert (pol.max_held_htlcs_per_client, pol.max_held_msat_per_client) == (2, 10**8)
    mine = [held(1), held(2), held(3)]  # the third is over the count
    big = held(4, STRANGER, amount_msat=60_000_000)
    over = held(5, STRANGER, amount_msat=50_000_000)  # 110,000,000 msat with the one before
    lsp.engine.held_async = [*mine, big, over]
    await lsp.service.tick()
    assert sorted(lsp.engine.failed) == [mine[2].intercept_id, over.intercept_id]
    # What is failed no longer counts: nothing more goes at the next tick.
    await lsp.service.tick()
    assert len(lsp.engine.failed) == 2


async def test_the_operator_fails_one_back(lsp: Lsp) -> None:
    one, other = held(1), held(2)
    lsp.engine.held_async = [one, other]
    assert await lsp.service.async_holds.fail(one.intercept_id) == one
    assert lsp.engine.failed == [one.intercept_id]
    with pytest.raises(NotFoundError, match="no async payment HTLC is held"):
        await lsp.service.async_holds.fail(one.intercept_id)
    assert lsp.service.async_holds.held() == [other]
