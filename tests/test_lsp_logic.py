"""The LSP role's hold, intercept, unblock, tick and mailbox logic against a fake engine: no LDK."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from lsp_node import protocol as p
from lsp_node.app import LspRole
from lsp_node.config import LspSettings
from lsp_node.engine import HtlcHandlingFailed, PaymentForwarded
from lsp_node.lsp import HoldHop
from lsp_node.lsp.holding import LDK_FAIL_BACK_BUFFER
from tests.fake_engine import LSP_NODE_ID, FakeEngine
from tests.lsp_harness import (
    CLIENT,
    HASH,
    NEXT,
    PID,
    STRANGER,
    Lsp,
    armed,
    htlc,
    intercept,
    lsp,
    policy,
    release_committed_only,
    request,
    scid,
    unblock_context,
)

__all__ = ["lsp"]  # the fixture, used by name


async def test_hold_request_arms_a_hold_durably(lsp: Lsp) -> None:
    reply = await armed(lsp)
    [hold] = lsp.store.holds()
    assert (hold.state, hold.hops, hold.payment_hashes) == ("armed", (HoldHop(NEXT, scid(reply)),), (HASH.hex(),))
    assert reply.unblock_path == b"path:hold:" + bytes.fromhex(hold.hold_id)
    assert (reply.extra_final_cltv, reply.cltv_expiry_delta, hold.expires_height) == (144, 72, 1144)


async def test_hold_request_refusals(lsp: Lsp) -> None:
    svc, engine = lsp.service, lsp.engine
    # No channel, a bad signature, a stale timestamp: one answer, so a stranger learns nothing.
    stranger = await svc.on_hold_request(request(client_node_id=bytes.fromhex(STRANGER)))
    engine.signatures_ok = False
    forged = await svc.on_hold_request(request())
    engine.signatures_ok = True
    stale = await svc.on_hold_request(request(timestamp=1))
    assert {(r.status, r.error) for r in (stranger, forged, stale)} == {
        (p.Status.NOT_A_CLIENT, "not authenticated as a client of this LSP")
    }
    # Failed authentication does not use up the request id.
    await armed(lsp)
    # Same id, other pid: a replay. A new id for a hash already held: invalid.
    assert (await svc.on_hold_request(request(pid=b"x" * 32))).status == p.Status.STALE_OR_REPLAYED
    assert (await svc.on_hold_request(request(request_id=b"s" * 16))).status == p.Status.INVALID_REQUEST
    assert (
        await svc.on_hold_request(request(request_id=b"t" * 16, hold_blocks=5000))
    ).status == p.Status.INVALID_REQUEST
    big = request(request_id=b"u" * 16, hashes=(b"\x33" * 32,), amount_msat=10**9)
    assert (await svc.on_hold_request(big)).status == p.Status.LIMIT_EXCEEDED
    # A request id refused for a policy reason stays used (SPEC.md §2.9 step 4).
    assert (
        await svc.on_hold_request(request(request_id=b"t" * 16, hashes=(b"\x44" * 32,)))
    ).status == p.Status.STALE_OR_REPLAYED


async def test_hold_count_cap(lsp: Lsp) -> None:
    for i in range(3):
        await armed(lsp, request_id=bytes([i]) * 16, hashes=(bytes([i]) * 32,))
    fourth = await lsp.service.on_hold_request(request(request_id=b"z" * 16, hashes=(b"\x09" * 32,)))
    assert fourth.status == p.Status.LIMIT_EXCEEDED


async def test_retried_request_gets_the_same_hold(lsp: Lsp) -> None:
    first = await armed(lsp)
    again = await armed(lsp)
    assert again.intercept_scids == first.intercept_scids
    assert len(lsp.store.holds()) == 1


async def test_intercepted_htlc_is_held_and_sets_failback(lsp: Lsp) -> None:
    reply = await armed(lsp)
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply)))
    await lsp.service.role.drain()
    [hold] = lsp.store.holds()
    assert hold.state == "held"
    assert hold.failback_height == 1300 - 72 - LDK_FAIL_BACK_BUFFER - 6
    assert [h.state for h in lsp.store.htlcs(hold.hold_id)] == ["held"]
    assert lsp.engine.failed == []


@pytest.mark.parametrize(
    "case, why",
    [
        ("scid", "no hold"),
        ("hash", "hash not covered"),
        ("sender", "not from the client"),
        ("fee", "holding fee"),
    ],
)
async def test_intercepted_htlc_failed(lsp: Lsp, case: str, why: str) -> None:
    lsp.service.policy = LspSettings(fee_base_msat=1000 if case == "fee" else 0)
    reply = await armed(lsp)
    h = htlc(
        scid(reply) + (1 if case == "scid" else 0),
        payment_hash=b"\x55" * 32 if case == "hash" else HASH,
        sender=STRANGER if case == "sender" else CLIENT,
    )
    await lsp.service.holding.on_htlc_intercepted(h)
    await lsp.service.role.drain()
    assert lsp.engine.failed == ["i1"], why
    assert lsp.store.holds()[0].state == "armed"


async def test_held_htlc_cap(lsp: Lsp) -> None:
    reply = await armed(lsp)
    for i in range(3):
        await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply), intercept_id=f"i{i}"))
        await lsp.service.role.drain()
    assert lsp.engine.failed == ["i2"]


async def test_unblock_releases_once_and_forwards(lsp: Lsp) -> None:
    reply = await armed(lsp)
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply)))
    await lsp.service.role.drain()
    ctx = unblock_context(lsp)
    svc = lsp.service
    assert (await svc.on_unblock(p.PaymentUnblock(PID, HASH), None)).status == p.Status.UNKNOWN_HOLD
    assert (await svc.on_unblock(p.PaymentUnblock(PID, b"\x66" * 32), ctx)).status == p.Status.UNKNOWN_HOLD
    assert (await svc.on_unblock(p.PaymentUnblock(b"\x00" * 32, HASH), ctx)).status == p.Status.WRONG_PID
    assert (await svc.on_unblock(p.PaymentUnblock(PID, HASH), ctx)).status == p.Status.OK
    assert lsp.engine.forwarded == [("i1", NEXT, 1_000_000)]
    assert (await svc.on_unblock(p.PaymentUnblock(PID, HASH), ctx)).status == p.Status.ALREADY_RELEASED
    [hold] = lsp.store.holds()
    assert hold.state == "released" and hold.released_at is not None
    assert [h.state for h in lsp.store.htlcs(hold.hold_id)] == ["forwarded"]


async def test_unblock_after_deadline_is_expired(lsp: Lsp) -> None:
    await armed(lsp)
    lsp.engine.height = 1144
    reply = await lsp.service.on_unblock(p.PaymentUnblock(PID, HASH), unblock_context(lsp))
    assert reply.status == p.Status.EXPIRED
    assert lsp.store.holds()[0].state == "armed"


async def test_htlc_after_release_is_forwarded_on_arrival_and_settles(lsp: Lsp) -> None:
    reply = await armed(lsp)
    released = await lsp.service.on_unblock(p.PaymentUnblock(PID, HASH), unblock_context(lsp))
    assert (released.status, released.error) == (p.Status.RELEASED_AWAITING_HTLC, "released; no HTLC has arrived yet")
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply)))
    await lsp.service.role.drain()
    assert lsp.engine.forwarded == [("i1", NEXT, 1_000_000)]
    await lsp.service.holding.on_payment_forwarded(PaymentForwarded(2, None, None, CLIENT, None, 0, 1_000_000, False))
    [hold] = lsp.store.holds()
    assert hold.state == "settled"
    assert lsp.pushes.pushes == [(CLIENT, "preimage_waiting")]


async def test_held_amount_cap_counts_the_htlcs_that_arrive(lsp: Lsp) -> None:
    # Declared 1M msat (well under the 1e8 cap), but the HTLC that comes carries more than the cap.
    reply = await armed(lsp)
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply), inbound=10**8 + 1))
    await lsp.service.role.drain()
    assert lsp.engine.failed == ["i1"]
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply), intercept_id="i2", inbound=10**8))
    await lsp.service.role.drain()
    assert lsp.store.htlc("i2") is not None and lsp.store.holds()[0].state == "held"


def downstream_failure(next_node: str = NEXT) -> HtlcHandlingFailed:
    return HtlcHandlingFailed(3, "chan-a", f"Forward {{ node_id: Some({next_node}), channel_id: ChannelId(..) }}", None)


async def test_released_htlc_failed_downstream_waits_for_a_retry_then_fails(lsp: Lsp) -> None:
    """SPEC.md §4.7: a downstream failure leaves the hold released (the payer's router retries
    over its SCIDs); with nothing in flight and no retry within retry_grace_secs, the tick fails
    it, frees the client's caps and pushes hold_failed to the offline payer."""
    lsp.service.policy = policy(retry_grace_secs=60)
    lsp.engine.channel_peers["chan-a"] = CLIENT
    reply = await armed(lsp)
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply)))
    await lsp.service.role.drain()
    await lsp.service.on_unblock(p.PaymentUnblock(PID, HASH), unblock_context(lsp))
    assert [h.state for h in lsp.store.holds()] == ["released"]
    # Our own fail-backs (InvalidForward) and other channels' failures do not touch it.
    await lsp.service.handle(HtlcHandlingFailed(4, "chan-a", "InvalidForward { requested_forward_scid: 1 }", None))
    await lsp.service.handle(HtlcHandlingFailed(5, "chan-x", downstream_failure().failure_type, None))
    assert lsp.store.htlc("i1").state == "forwarded"  # type: ignore[union-attr]
    await lsp.service.handle(downstream_failure())
    [hold] = lsp.store.holds()
    assert (hold.state, lsp.store.htlc("i1").state) == ("released", "failed")  # type: ignore[union-attr]
    assert lsp.store.client_totals(CLIENT) == (1, 0, 0)  # the HTLC no longer counts; the hold still does
    await lsp.service.tick()
    assert lsp.store.holds()[0].state == "released" and lsp.pushes.pushes == []  # within the grace
    failed_at = time.time() - 61
    lsp.store.db.execute("UPDATE lsp_hold_htlcs SET updated_at = ?", [failed_at])
    await lsp.service.tick()
    [hold] = lsp.store.holds()
    assert (hold.state, hold.reason) == ("failed", "every HTLC failed; the payer did not retry")
    assert lsp.store.client_totals(CLIENT) == (0, 0, 0)  # the quota is free again
    assert lsp.pushes.pushes == [(CLIENT, "hold_failed")]  # the offline payer is told to come online
    await lsp.service.tick()
    assert lsp.pushes.pushes == [(CLIENT, "hold_failed")]  # once


async def test_downstream_failure_named_by_the_engine_fails_only_that_htlc(lsp: Lsp) -> None:
    lsp.engine.channel_peers["chan-a"] = CLIENT
    reply = await armed(lsp)
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply)))
    await lsp.service.role.drain()
    await lsp.service.on_unblock(p.PaymentUnblock(PID, HASH), unblock_context(lsp))
    failure = downstream_failure().failure_type
    # The engine names another intercept: this hold's HTLC is not the one that failed.
    await lsp.service.handle(HtlcHandlingFailed(6, "chan-a", failure, None, intercept_id="other"))
    assert lsp.store.htlc("i1").state == "forwarded"  # type: ignore[union-attr]
    await lsp.service.handle(HtlcHandlingFailed(7, "chan-a", failure, None, intercept_id="i1"))
    assert lsp.store.htlc("i1").state == "failed"  # type: ignore[union-attr]
    assert [h.state for h in lsp.store.holds()] == ["released"]


async def test_a_failure_towards_another_node_is_not_blamed_on_a_holds_htlc(lsp: Lsp) -> None:
    """The client's other payments fail over the same inbound channel: one to a JIT channel the
    engine's LSPS2 service opened for some node, say. The engine cannot name an intercept for
    it; a failure whose next node is none of the hold's HTLCs' must leave them forwarded."""
    lsp.engine.channel_peers["chan-a"] = CLIENT
    reply = await armed(lsp)
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply)))
    await lsp.service.role.drain()
    await lsp.service.on_unblock(p.PaymentUnblock(PID, HASH), unblock_context(lsp))
    jit_client = "03" + "ee" * 32
    await lsp.service.handle(downstream_failure(next_node=jit_client))
    assert lsp.store.htlc("i1").state == "forwarded"  # type: ignore[union-attr]
    # Nor one that names no next node at all.
    await lsp.service.handle(
        HtlcHandlingFailed(8, "chan-a", "Forward { node_id: None, channel_id: ChannelId(..) }", None)
    )
    assert lsp.store.htlc("i1").state == "forwarded"  # type: ignore[union-attr]
    # The hold's own next node failing is still its HTLC.
    await lsp.service.handle(downstream_failure())
    assert lsp.store.htlc("i1").state == "failed"  # type: ignore[union-attr]


async def test_replayed_intercept_of_a_persisted_forward_is_not_redone(lsp: Lsp) -> None:
    reply = await armed(lsp)
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply)))
    await lsp.service.role.drain()
    await lsp.service.on_unblock(p.PaymentUnblock(PID, HASH), unblock_context(lsp))
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply)))
    await lsp.service.role.drain()
    assert lsp.engine.failed == [] and len(lsp.engine.forwarded) == 1
    assert lsp.store.htlc("i1").state == "forwarded"  # type: ignore[union-attr]


async def test_intercept_replayed_after_a_lost_forward_or_fail_is_redone(lsp: Lsp) -> None:
    """kill -9 after our commit but before LDK persisted its ChannelManager: LDK has the
    intercept again and replays it; the forward (or fail) must happen again, not be ignored."""
    reply = await armed(lsp)
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply)))
    await lsp.service.role.drain()
    await lsp.service.on_unblock(p.PaymentUnblock(PID, HASH), unblock_context(lsp))
    lsp.engine.gone.discard("i1")  # LDK lost the forward in the crash
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply)))
    await lsp.service.role.drain()
    assert [f[0] for f in lsp.engine.forwarded] == ["i1", "i1"]
    assert lsp.store.htlc("i1").state == "forwarded"  # type: ignore[union-attr]
    # A fail-back lost the same way is failed again.
    lsp.store.set_htlc_state("i1", "failed", time.time())
    lsp.engine.gone.discard("i1")
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply)))
    await lsp.service.role.drain()
    assert lsp.engine.failed == ["i1"]


async def test_tick_warns_then_fails_back(lsp: Lsp) -> None:
    reply = await armed(lsp)
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply)))
    await lsp.service.role.drain()
    fb = lsp.store.holds()[0].failback_height
    assert fb is not None
    lsp.engine.height = fb - 12
    await lsp.service.tick()
    assert lsp.store.holds()[0].warned and lsp.pushes.pushes == [(CLIENT, "hold_expiring")]
    lsp.engine.height = fb
    await lsp.service.tick()
    [hold] = lsp.store.holds()
    assert hold.state == "failed" and lsp.engine.failed == ["i1"]
    assert [h.state for h in lsp.store.htlcs(hold.hold_id)] == ["failed"]
    assert lsp.pushes.pushes == [(CLIENT, "hold_expiring")] * 2


async def test_tick_expires_unused_holds(lsp: Lsp) -> None:
    await armed(lsp)
    lsp.engine.height = 1143
    await lsp.service.tick()
    assert lsp.store.holds()[0].state == "armed"
    lsp.engine.height = 1144
    await lsp.service.tick()
    assert lsp.store.holds()[0].state == "expired"
    assert lsp.pushes.pushes == []


async def test_tick_fails_a_released_hold_still_waiting_at_failback(lsp: Lsp) -> None:
    """The safety net: a released hold whose HTLC is still waiting (a release handing it over, or
    a bug) at its fail-back height is failed back by the tick, without a push (SPEC.md §5.1)."""
    reply = await armed(lsp)
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply)))
    await lsp.service.role.drain()
    release_committed_only(lsp)
    fb = lsp.store.holds()[0].failback_height
    assert fb is not None
    lsp.engine.height = fb - 1
    await lsp.service.tick()
    assert lsp.engine.failed == [] and lsp.engine.forwarded == []  # the tick forwards nothing
    lsp.engine.height = fb
    await lsp.service.tick()
    assert lsp.store.holds()[0].state == "failed" and lsp.engine.failed == ["i1"]
    assert lsp.store.htlc("i1").state == "failed"  # type: ignore[union-attr]
    assert lsp.pushes.pushes == []  # no push for a released hold failed back at its height


async def test_reconcile_marks_gone_and_finishes_releases(lsp: Lsp) -> None:
    reply = await armed(lsp)
    await intercept(lsp, htlc(scid(reply), intercept_id="kept"))
    await intercept(lsp, htlc(scid(reply), intercept_id="lost", payment_hash=HASH))
    release_committed_only(lsp)
    lsp.engine.pending_hashes = {HASH.hex()}
    lsp.engine.gone.add("lost")  # forwarded by LDK just before a crash, not recorded
    await lsp.service.reconcile()
    states = {h.intercept_id: h.state for h in lsp.store.htlcs(lsp.store.holds()[0].hold_id)}
    # "lost": its inbound HTLC is still pending but LDK has no intercept: forwarded before the crash.
    assert states == {"kept": "forwarded", "lost": "forwarded"}
    assert [f[0] for f in lsp.engine.forwarded] == ["kept"] and lsp.engine.refused == []  # "lost": not asked again


async def test_reconcile_redoes_forwards_and_fail_backs_ldk_lost(lsp: Lsp) -> None:
    """Committed `forwarded`/`failed`, then kill -9 before LDK persisted: LDK has the intercept
    pending again and sends no new event, so start-up does it again."""
    reply = await armed(lsp)
    await intercept(lsp, htlc(scid(reply)))
    await lsp.service.on_unblock(p.PaymentUnblock(PID, HASH), unblock_context(lsp))
    other = await armed(lsp, request_id=b"o" * 16, hashes=(b"\x66" * 32,), pid=b"\x67" * 32)
    await intercept(lsp, htlc(scid(other), "f1", payment_hash=b"\x66" * 32))
    lsp.store.set_htlc_state("f1", "failed", time.time())
    lsp.engine.gone.clear()  # LDK lost both the forward of i1 and the fail of f1
    lsp.engine.pending_hashes = {HASH.hex(), (b"\x66" * 32).hex()}
    await lsp.service.reconcile()
    assert [f[0] for f in lsp.engine.forwarded] == ["i1", "i1"] and lsp.engine.failed == ["f1"]
    assert (lsp.store.htlc("i1").state, lsp.store.htlc("f1").state) == ("forwarded", "failed")  # type: ignore[union-attr]
    # Persisted after all (LDK refuses the redo): nothing changes, nothing is sent twice.
    await lsp.service.reconcile()
    assert len(lsp.engine.forwarded) == 2 and lsp.engine.failed == ["f1"]


async def test_reconcile_settles_waiting_htlcs_ldk_no_longer_holds(lsp: Lsp) -> None:
    """Rule 1 (SPEC.md §8): per intercept, not per payment hash. Of a released hold's HTLCs, one
    LDK holds is forwarded; one it does not hold whose inbound HTLC is pending was forwarded before
    the crash; one whose inbound HTLC is gone too is `gone`. A held hold's HTLC LDK still holds, or
    whose inbound HTLC is still pending, stays held."""
    lsp.service.policy = policy(max_held_htlcs_per_client=5)
    h2, h3 = b"\x55" * 32, b"\x56" * 32
    released = await armed(lsp, hashes=(HASH, h2))
    await intercept(lsp, htlc(scid(released), "kept"))
    await intercept(lsp, htlc(scid(released), "taken"))
    await intercept(lsp, htlc(scid(released), "over", payment_hash=h2))
    release_committed_only(lsp)
    held = await armed(lsp, request_id=b"h" * 16, hashes=(h3,), pid=b"\x57" * 32)
    await intercept(lsp, htlc(scid(held), "still", payment_hash=h3))
    await intercept(lsp, htlc(scid(held), "failing", payment_hash=h3))
    lsp.engine.gone |= {"taken", "over", "failing"}
    lsp.engine.pending_hashes = {HASH.hex(), h3.hex()}
    await lsp.service.reconcile()
    states = {i: lsp.store.htlc(i).state for i in ("kept", "taken", "over", "still", "failing")}  # type: ignore[union-attr]
    assert states == {"kept": "forwarded", "taken": "forwarded", "over": "gone", "still": "held", "failing": "held"}
    assert [f[0] for f in lsp.engine.forwarded] == ["kept"] and lsp.engine.failed == []
    assert lsp.engine.refused == []  # nothing LDK no longer holds is asked of it


async def test_reconcile_asks_ldk_about_htlcs_the_engine_has_no_record_of(lsp: Lsp) -> None:
    """An HTLC intercepted before the engine kept records is not in `pending_intercepts`; LDK is
    asked about it directly, so a released one it holds is forwarded, not taken for forwarded."""
    reply = await armed(lsp)
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply), "old"))
    await lsp.service.role.drain()
    release_committed_only(lsp)
    lsp.engine.unrecorded = {"old": 1_000_000}
    lsp.engine.pending_hashes = {HASH.hex()}
    assert await lsp.engine.pending_intercepts() == []
    await lsp.service.reconcile()
    assert [f[0] for f in lsp.engine.forwarded] == ["old"]
    assert lsp.store.htlc("old").state == "forwarded"  # type: ignore[union-attr]


async def test_reconcile_redoes_only_the_lost_forwards_and_fails(lsp: Lsp) -> None:
    """Rule 2: a committed forward or fail is redone only for the intercepts LDK holds again, not
    for every HTLC whose payment hash is pending; and it is done once."""
    reply = await armed(lsp)
    await intercept(lsp, htlc(scid(reply), "persisted"))
    await intercept(lsp, htlc(scid(reply), "undone"))
    await lsp.service.on_unblock(p.PaymentUnblock(PID, HASH), unblock_context(lsp))
    assert {f[0] for f in lsp.engine.forwarded} == {"persisted", "undone"}
    lsp.engine.forwarded.clear()
    lsp.engine.gone.discard("undone")  # LDK lost this forward in the crash, kept the other
    lsp.engine.pending_hashes = {HASH.hex()}
    [record] = await lsp.engine.pending_intercepts()
    assert (record.intercept_id, record.state) == ("undone", "forwarded")
    await lsp.service.reconcile()
    await lsp.service.reconcile()
    assert [f[0] for f in lsp.engine.forwarded] == ["undone"] and lsp.engine.failed == []
    assert lsp.engine.refused == []  # "persisted" is not redone, "undone" not twice
    assert {h.state for h in lsp.store.htlcs(lsp.store.holds()[0].hold_id)} == {"forwarded"}


async def test_reconcile_fails_back_a_forwarded_htlc_of_a_hold_that_ended(lsp: Lsp) -> None:
    """A forward lost in the crash whose hold has since failed (its fail-back height passed) is
    not forwarded again but failed back to the payer, recorded `failed` before the call."""
    reply = await armed(lsp)
    await intercept(lsp, htlc(scid(reply), "fwd"))
    await intercept(lsp, htlc(scid(reply), "stuck", inbound=2_000_000))
    # Killed while releasing: "fwd" was handed to LDK, "stuck" not yet; its fail-back height came.
    release_committed_only(lsp)
    assert await lsp.engine.forward_htlc("fwd", NEXT, 1_000_000)
    lsp.store.set_htlc_state("fwd", "forwarded", time.time())
    fb = lsp.store.holds()[0].failback_height
    assert fb is not None and lsp.store.htlc("fwd").state == "forwarded"  # type: ignore[union-attr]
    lsp.engine.height = fb
    await lsp.service.tick()
    assert lsp.store.holds()[0].state == "failed" and lsp.engine.failed == ["stuck"]
    lsp.engine.gone.discard("fwd")  # the forward of "fwd" was lost
    lsp.engine.pending_hashes = {HASH.hex()}
    await lsp.service.reconcile()
    assert lsp.engine.failed == ["stuck", "fwd"] and len(lsp.engine.forwarded) == 1
    assert lsp.store.htlc("fwd").state == "failed"  # type: ignore[union-attr]


async def test_reconcile_fails_unknown_intercepts_only_once_their_event_was_handled(lsp: Lsp) -> None:
    """Rule 3: an intercept LDK holds that our table does not know. Recorded `failed` by the
    engine (we failed it, the fail was lost): failed again at start-up. Still `pending`: its
    event is queued and comes next, so reconcile leaves it to that event."""
    reply = await armed(lsp)
    await intercept(lsp, htlc(0x999, "stray"))  # no hold uses that SCID: failed
    assert lsp.engine.failed == ["stray"]
    lsp.engine.gone.discard("stray")  # the fail was lost in the crash
    queued = lsp.engine.intercepted(htlc(scid(reply), "queued"))  # event not yet handled
    lsp.engine.pending_hashes = {HASH.hex()}
    await lsp.service.reconcile()
    assert lsp.engine.failed == ["stray", "stray"] and lsp.store.htlc("stray") is None
    assert lsp.store.htlc("queued") is None and "queued" not in lsp.engine.failed
    # The queued event then arrives and is handled as usual: the HTLC is held for its hold.
    await lsp.service.handle(queued)
    assert lsp.store.htlc("queued").state == "held"  # type: ignore[union-attr]
    assert lsp.store.holds()[0].state == "held"
    # Nothing is redone: LDK holds only "queued", which is ours and held.
    await lsp.service.reconcile()
    assert lsp.engine.failed == ["stray", "stray"] and lsp.engine.forwarded == []


PEER = "02" + "dd" * 32  # a peer with a funded channel, forwarding mail (e.g. the payer's LSP)


async def ack_last(lsp: Lsp, peer: str = CLIENT) -> None:
    """What the reference client does on MAILBOX_DONE: answer MAILBOX_ACK with its batch id."""
    done = p.MailboxDone.decode(lsp.engine.sent[-1][2])
    ack = p.MailboxAck(done.batch_id)
    await lsp.service.on_message(ack.TYPE, ack.encode(), None, None)


async def test_mailbox_keeps_caps_and_delivers_in_order(lsp: Lsp) -> None:
    lsp.service.policy = LspSettings(mailbox_max_messages=2)
    mb = lsp.service.mailbox
    await mb.on_message_for_offline_peer(STRANGER, "aa")
    for m in ("01", "02", "03"):
        await mb.on_message_for_offline_peer(CLIENT, m)
    assert [e.message for e in lsp.store.messages()] == ["01", "02"]
    assert lsp.pushes.pushes == [(CLIENT, "message_waiting")] * 2
    lsp.engine.refuse_messages_to.add(CLIENT)
    assert await lsp.service.deliver_mailbox(CLIENT) == 0
    assert len(lsp.store.messages()) == 2
    lsp.engine.refuse_messages_to.clear()
    assert await lsp.service.deliver_mailbox(CLIENT) == 2
    assert lsp.engine.delivered == [(CLIENT, "01"), (CLIENT, "02")]
    [(peer, tlv_type, payload)] = lsp.engine.sent
    assert (peer, tlv_type, p.MailboxDone.decode(payload).count) == (CLIENT, p.MailboxDone.TYPE, 2)
    # Handed to LDK is not received: nothing is deleted before the client's ack.
    assert len(lsp.store.messages()) == 2
    await ack_last(lsp)
    assert lsp.store.messages() == []


async def test_mailbox_redelivers_until_acknowledged(lsp: Lsp) -> None:
    mb = lsp.service.mailbox
    await mb.on_message_for_offline_peer(CLIENT, "01", PEER)
    await lsp.service.deliver_mailbox(CLIENT)  # the phone drops off before it acks
    first = p.MailboxDone.decode(lsp.engine.sent[-1][2]).batch_id
    await mb.on_message_for_offline_peer(CLIENT, "02", PEER)
    assert await lsp.service.deliver_mailbox(CLIENT) == 2  # reconnect: both again, in order
    assert lsp.engine.delivered == [(CLIENT, "01"), (CLIENT, "01"), (CLIENT, "02")]
    # The ack of the superseded delivery, a forged batch id: neither deletes anything.
    for batch in (first, b"\x00" * 16):
        await lsp.service.on_message(p.MailboxAck.TYPE, p.MailboxAck(batch).encode(), None, None)
    assert len(lsp.store.messages()) == 2
    await ack_last(lsp)
    assert lsp.store.messages() == []


async def test_mail_never_acknowledged_is_deleted_after_its_third_delivery(lsp: Lsp) -> None:
    # A wallet that does not speak LightningRod (ldk-node, BOLT async payments) never acks.
    mb = lsp.service.mailbox
    await mb.on_message_for_offline_peer(CLIENT, "01", PEER)
    for _ in range(2):
        assert await lsp.service.deliver_mailbox(CLIENT) == 1
    await mb.on_message_for_offline_peer(CLIENT, "02", PEER)
    assert await lsp.service.deliver_mailbox(CLIENT) == 2  # "01" for the third time: deleted
    assert [e.message for e in lsp.store.messages()] == ["02"]
    assert await lsp.service.deliver_mailbox(CLIENT) == 1
    assert await lsp.service.deliver_mailbox(CLIENT) == 1
    assert lsp.store.messages() == []
    assert [m for _, m in lsp.engine.delivered] == ["01", "01", "01", "02", "02", "02"]


async def test_mailbox_quota_per_sender_keeps_room_for_others(lsp: Lsp) -> None:
    lsp.engine.clients.add(PEER)
    lsp.service.policy = LspSettings(
        mailbox_max_messages=10, mailbox_max_messages_per_sender=3, mailbox_unknown_sender_max_messages=2
    )
    mb = lsp.service.mailbox
    # Strangers (no previous hop known, or one without a funded channel) share one small bucket.
    for i, sender in enumerate([None, STRANGER, "03" + "ee" * 32, None]):
        await mb.on_message_for_offline_peer(CLIENT, f"a{i}", sender)
    # A channel peer gets its own share, and is cut off at it.
    for i in range(5):
        await mb.on_message_for_offline_peer(CLIENT, f"b{i}", PEER)
    kept = [(e.sender, e.message) for e in lsp.store.messages(CLIENT)]
    assert kept == [("*", "a0"), ("*", "a1"), (PEER, "b0"), (PEER, "b1"), (PEER, "b2")]
    assert lsp.pushes.pushes == [(CLIENT, "message_waiting")] * 5  # no push for a dropped message
    # The client's own cap still binds everyone together; stored mail is never evicted.
    lsp.service.policy = LspSettings(mailbox_max_messages=5)
    await mb.on_message_for_offline_peer(CLIENT, "c0", "02" + "ff" * 32)
    assert len(lsp.store.messages(CLIENT)) == 5


async def test_mailbox_quota_per_sender_in_all_mailboxes(lsp: Lsp) -> None:
    other = "02" + "ab" * 32
    lsp.engine.clients |= {PEER, other}
    lsp.service.policy = LspSettings(mailbox_sender_max_messages_total=2)
    for client in (CLIENT, other, other):
        await lsp.service.mailbox.on_message_for_offline_peer(client, "01", PEER)
    assert [e.client for e in lsp.store.messages()] == [CLIENT, other]


async def test_hold_request_signed_for_another_lsp_is_refused(lsp: Lsp) -> None:
    req = request()
    other_lsp = bytes.fromhex("02" + "77" * 32)
    for_other = dataclasses.replace(req, signature=FakeEngine.sign(req.signed_bytes(other_lsp)))
    reply = await lsp.service.on_hold_request(for_other)
    assert (reply.status, lsp.store.holds()) == (p.Status.NOT_A_CLIENT, [])
    for_us = dataclasses.replace(req, signature=FakeEngine.sign(req.signed_bytes(bytes.fromhex(LSP_NODE_ID))))
    assert (await lsp.service.on_hold_request(for_us)).status == p.Status.OK


async def test_other_clients_holds_are_not_revealed(lsp: Lsp) -> None:
    await armed(lsp)
    lsp.engine.clients.add(STRANGER)
    # Another client asking to hold the same hash gets its own hold: no "already held" oracle.
    reply = await lsp.service.on_hold_request(request(client_node_id=bytes.fromhex(STRANGER)))
    assert reply.status == p.Status.OK
    assert sorted(h.client for h in lsp.store.holds()) == sorted([CLIENT, STRANGER])


async def test_mailbox_purged_by_tick(lsp: Lsp) -> None:
    lsp.store.put_message(CLIENT, "01", time.time() - 100, 10)
    await lsp.service.tick()
    assert lsp.store.messages() == []


async def test_messages_are_dispatched_and_answered(lsp: Lsp) -> None:
    req = request()
    await lsp.service.on_message(req.TYPE, req.encode(), None, "responder")
    [(responder, tlv_type, payload)] = lsp.engine.replies
    assert responder == "responder" and tlv_type == p.HoldReply.TYPE
    assert p.HoldReply.decode(payload).status == p.Status.OK
    await lsp.service.on_message(req.TYPE, b"\xff", None, "responder")  # malformed: ignored
    assert len(lsp.engine.replies) == 1


async def test_tick_task_survives_a_failing_tick(lsp: Lsp, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    async def flaky_tick() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database is locked")

    monkeypatch.setattr(lsp.service, "tick", flaky_tick)
    role = LspRole(None, lsp.service, None)  # type: ignore[arg-type]
    task = asyncio.create_task(role._ticks())
    await asyncio.sleep(1.5)  # the task ticks once a second
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == 2  # the failed first tick did not end the task


async def test_role_logs_name_ids_by_8_hex_characters_and_never_secrets(
    lsp: Lsp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="lsp_node")
    await lsp.service.on_hold_request(request(client_node_id=bytes.fromhex(STRANGER)))  # refused
    reply = await armed(lsp)
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply) + 1, intercept_id="ab" * 32))  # failed
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply), intercept_id="cd" * 32))
    await lsp.service.role.drain()
    await lsp.service.on_unblock(p.PaymentUnblock(b"\x99" * 32, HASH), unblock_context(lsp))  # wrong pid
    await lsp.service.on_unblock(p.PaymentUnblock(PID, HASH), unblock_context(lsp))
    await lsp.service.mailbox.on_message_for_offline_peer(STRANGER, "ee" * 40)
    [hold] = lsp.store.holds()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "hold" in text and "refused" in text  # the flow was logged at all
    for named in (CLIENT, STRANGER, HASH.hex(), hold.hold_id, "ab" * 32):
        assert named[:8] in text, named  # named, by its first 8 hex characters only
    for whole in (CLIENT, STRANGER, HASH.hex(), hold.hold_id, "ab" * 32, "cd" * 32, NEXT):
        assert whole[:9] not in text, whole
    for secret in (PID.hex(), p.sha256(PID).hex()[:9], ("99" * 32)[:9], "ee" * 40):
        assert secret not in text


async def test_tick_writes_are_conditional_on_the_state_it_read(lsp: Lsp) -> None:
    from lsp_node.lsp.holding import FailBack

    reply = await armed(lsp)
    await lsp.service.holding.on_htlc_intercepted(htlc(scid(reply)))
    await lsp.service.role.drain()
    [hold] = lsp.store.holds()
    stale = FailBack(hold, lsp.store.htlcs(hold.hold_id), "fail-back", push=True)
    # Between the tick's read and its commit the event task released and forwarded the HTLC.
    await lsp.service.on_unblock(p.PaymentUnblock(PID, HASH), unblock_context(lsp))
    await lsp.store.run(lsp.service.holding._commit_fail_backs, [stale], time.time())
    assert (lsp.store.holds()[0].state, lsp.store.htlc("i1").state) == ("released", "forwarded")  # type: ignore[union-attr]


async def test_intercepted_message_event_without_a_previous_hop_is_an_unknown_sender(lsp: Lsp) -> None:
    from lsp_node.engine import OnionMessageIntercepted

    lsp.service.policy = LspSettings(mailbox_unknown_sender_max_messages=1)
    for i in range(2):
        await lsp.service.handle(OnionMessageIntercepted(7 + i, CLIENT, f"0{i}"))
    assert [(e.sender, e.message) for e in lsp.store.messages()] == [("*", "00")]
