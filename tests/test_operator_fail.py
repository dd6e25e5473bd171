"""Failing a hold back by hand (SPEC.md §5.1, OPERATOR_FAIL) against a fake engine: the hold and
its HTLCs are committed `failed` before LDK is asked, so an HTLC or an unblock that arrives during
or after the fail finds a failed hold, and a crash in between is finished by start-up."""

from __future__ import annotations

import pytest

from lsp_node import protocol as p
from lsp_node.errors import InvalidArgumentError
from lsp_node.lsp import hooks
from tests.lsp_harness import Lsp, armed, htlc, intercept, lsp, scid, unblock

__all__ = ["lsp"]  # the fixture, used by name


async def test_commit_comes_before_the_engine_and_late_parts_are_failed_back(lsp: Lsp) -> None:
    reply = await armed(lsp)
    await intercept(lsp, htlc(scid(reply), "i1", inbound=500_000))
    [hold] = lsp.store.holds()
    seen: list[tuple[str, list[str], list[str]]] = []

    def at_commit() -> None:
        h = lsp.store.hold(hold.hold_id)
        assert h is not None
        seen.append((h.state, [x.state for x in lsp.store.htlcs(hold.hold_id)], list(lsp.engine.failed)))

    hooks.register(hooks.AFTER_FAIL_BACK, at_commit)
    try:
        before, failed, moved = await lsp.service.holding.fail_by_operator(hold.hold_id)
    finally:
        hooks.clear()
    assert (before.state, failed, moved) == ("held", 1, True)
    # Committed first: at the hook the hold and its HTLC are failed and LDK was not asked yet.
    assert seen == [("failed", ["failed"], [])]
    assert lsp.engine.failed == ["i1"]
    # The second part of the payment arrives after the fail: failed back, not held.
    await intercept(lsp, htlc(scid(reply), "i2", inbound=500_000))
    assert lsp.engine.failed == ["i1", "i2"]
    assert lsp.store.hold(hold.hold_id).state == "failed"  # type: ignore[union-attr]
    assert [x.state for x in lsp.store.htlcs(hold.hold_id, "held")] == []


async def test_an_unblock_after_the_fail_is_expired_and_releases_nothing(lsp: Lsp) -> None:
    reply = await armed(lsp)
    await intercept(lsp, htlc(scid(reply)))
    [hold] = lsp.store.holds()
    await lsp.service.holding.fail_by_operator(hold.hold_id)
    answer = await unblock(lsp)
    assert answer.status == p.Status.EXPIRED
    assert lsp.engine.forwarded == []


async def test_a_fail_ldk_lost_is_redone_at_start_up(lsp: Lsp) -> None:
    """The commit survives a crash before LDK persisted the fail: start-up fails it again."""
    reply = await armed(lsp)
    await intercept(lsp, htlc(scid(reply)))
    [hold] = lsp.store.holds()
    await lsp.service.holding.fail_by_operator(hold.hold_id)
    lsp.engine.gone.clear()  # LDK lost the fail
    lsp.engine.pending_hashes = set(hold.payment_hashes)
    await lsp.service.reconcile()
    assert lsp.engine.failed == ["i1", "i1"]


async def test_only_armed_or_held_holds_can_be_failed_by_hand(lsp: Lsp) -> None:
    await armed(lsp)
    [hold] = lsp.store.holds()
    _, failed, moved = await lsp.service.holding.fail_by_operator(hold.hold_id)  # armed: no HTLC yet
    assert (failed, moved) == (0, True)
    with pytest.raises(InvalidArgumentError, match="already failed"):
        await lsp.service.holding.fail_by_operator(hold.hold_id)
    with pytest.raises(KeyError):
        await lsp.service.holding.fail_by_operator("00" * 16)
