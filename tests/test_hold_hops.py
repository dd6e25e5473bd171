"""Holds over any route (protocol revision 3, SPEC.md §4.2-4.7): one intercept SCID per next node,
each HTLC forwarded to the next node of the SCID it came on, OK only once every HTLC was handed to
LDK, failures failed back at once, no retry loop. Against the fake engine: no LDK."""

from __future__ import annotations

import asyncio
import logging
import time
from types import SimpleNamespace

import pytest

from lsp_node import protocol as p
from lsp_node.engine import Channel, HtlcHandlingFailed, PaymentForwarded
from lsp_node.lsp import LdkEngine
from tests.fake_engine import LSP_NODE_ID
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
    unblock,
    unblock_context,
)

__all__ = ["lsp"]  # the fixture, used by name

R = "02" + "dd" * 32  # a routing node between the two LSPs, a public channel peer of ours
B = "03" + "ee" * 32  # a payee that is our own client too (one LSP for both), on a private channel
FAILED_ONE = "1 of 1 held HTLCs could not be forwarded (no usable channel to their next hop could carry them)"


def hold_id(lsp: Lsp) -> str:
    [hold] = lsp.store.holds()
    return hold.hold_id


def states(lsp: Lsp) -> dict[str, str]:
    return {h.intercept_id: h.state for h in lsp.store.htlcs(hold_id(lsp))}


async def test_one_scid_per_next_node_in_the_order_of_the_request(lsp: Lsp) -> None:
    lsp.engine.channels[R] = 10**9
    reply = await armed(lsp, nodes=(R, NEXT))
    [hold] = lsp.store.holds()
    assert [h.next_node for h in hold.hops] == [R, NEXT]
    assert reply.intercept_scids == tuple(h.scid for h in hold.hops) and len(set(hold.hops)) == 2
    for i, hop in enumerate(hold.hops):
        found = lsp.store.hold_by_scid(scid(reply, i))
        assert found is not None and found.hold_id == hold.hold_id and found.hop(hop.scid) == hop
    # A retry of the request is answered with the stored hops in the stored order, whatever next
    # nodes it names now (they are not compared, SPEC.md §4.2).
    again = await armed(lsp, nodes=(NEXT,))
    assert again.intercept_scids == reply.intercept_scids and len(lsp.store.holds()) == 1


async def test_the_hold_json_of_the_admin_api_shows_the_hops(lsp: Lsp) -> None:
    import dataclasses

    lsp.engine.channels[R] = 10**9
    reply = await armed(lsp, nodes=(NEXT, R))
    await intercept(lsp, htlc(scid(reply, 1)))
    [hold] = lsp.store.holds()
    shown = dataclasses.asdict(hold)
    assert shown["hops"] == ({"next_node": NEXT, "scid": scid(reply, 0)}, {"next_node": R, "scid": scid(reply, 1)})
    assert dataclasses.asdict(lsp.store.htlcs(hold.hold_id)[0])["next_node"] == R


NINE = tuple(f"02{i:02x}" + "77" * 31 for i in range(9))


@pytest.mark.parametrize(
    "nodes, why",
    [
        ((NEXT, LSP_NODE_ID), "next node 2 (035a5a5a) is this LSP itself"),
        ((STRANGER,), "next node 1 (03bbbbbb) is not the peer of a ready channel of this LSP"),
        ((NEXT, R, NEXT), "next node 3 (02cccccc) is listed twice"),
        (NINE, "a hold names 1 to 8 next nodes, not 9"),
        ((), "a hold names 1 to 8 next nodes, not 0"),
    ],
    ids=["self", "not_a_peer", "twice", "nine", "none"],
)
async def test_unusable_next_nodes_are_refused_at_once(lsp: Lsp, nodes: tuple[str, ...], why: str) -> None:
    for n in (R, *NINE):
        lsp.engine.channels[n] = 10**9
    reply = await lsp.service.on_hold_request(request(nodes=nodes))
    assert (reply.status, reply.error, reply.intercept_scids) == (p.Status.NEXT_HOP_UNUSABLE, why, None)
    assert lsp.store.holds() == []
    # Like every policy refusal, it used up the request id (SPEC.md §2.9 step 4).
    again = await lsp.service.on_hold_request(request(nodes=(NEXT,)))
    assert again.status == p.Status.STALE_OR_REPLAYED


async def test_nine_next_nodes_do_not_even_decode(lsp: Lsp) -> None:
    for n in NINE:
        lsp.engine.channels[n] = 10**9
    req = request(nodes=NINE)
    with pytest.raises(p.ProtocolError, match="next_node_ids must be a list of 1 to 8 items"):
        p.decode(req.TYPE, req.encode())
    await lsp.service.on_message(req.TYPE, req.encode(), None, "responder")
    assert lsp.engine.replies == [] and lsp.store.holds() == []  # ignored, not answered


def _channel(peer: str, ready: bool, usable: bool, state: str) -> Channel:
    return Channel("00" * 32, "1", peer, None, None, 100_000, 0, 0, 0, None, True, ready, usable, False, 0, state)


def test_the_ldk_port_takes_a_ready_channel_that_is_not_closing() -> None:
    node = SimpleNamespace(
        channels=lambda: [
            _channel(B, True, False, "ready"),  # the payee's phone is offline: still ready
            _channel(R, True, True, "closing"),
            _channel(NEXT, False, False, "pending"),
        ]
    )
    port = LdkEngine(node)  # type: ignore[arg-type]
    assert [port.has_ready_channel(n) for n in (B, R, NEXT, STRANGER)] == [True, False, False, False]


async def test_mpp_over_two_next_nodes_each_part_to_its_own(lsp: Lsp) -> None:
    lsp.engine.channels[R] = 10**9
    reply = await armed(lsp, nodes=(NEXT, R))
    await intercept(lsp, htlc(scid(reply, 0), "p1", inbound=400_000))
    await intercept(lsp, htlc(scid(reply, 1), "p2", inbound=600_000))
    assert {h.intercept_id: h.next_node for h in lsp.store.htlcs(hold_id(lsp))} == {"p1": NEXT, "p2": R}
    assert (await unblock(lsp)).status == p.Status.OK
    assert sorted(lsp.engine.forwarded) == [("p1", NEXT, 400_000), ("p2", R, 600_000)]
    for amount in (400_000, 600_000):
        await lsp.service.holding.on_payment_forwarded(PaymentForwarded(2, None, None, CLIENT, None, 0, amount, False))
    assert [h.state for h in lsp.store.holds()] == ["settled"]


@pytest.mark.parametrize("payer_online", [False, True])
async def test_release_with_no_usable_channel_fails_back_at_once(lsp: Lsp, payer_online: bool) -> None:
    if payer_online:
        lsp.engine.online.add(CLIENT)
    reply = await armed(lsp)
    await intercept(lsp, htlc(scid(reply)))
    del lsp.engine.channels[NEXT]  # the channel to the next node closed after the hold was armed
    seen: list[str | None] = []
    fail = lsp.engine.fail_intercepted_htlc

    async def fail_after_commit(intercept_id: str) -> None:
        row = lsp.store.htlc(intercept_id)
        seen.append(row.state if row else None)
        await fail(intercept_id)

    lsp.engine.fail_intercepted_htlc = fail_after_commit  # type: ignore[method-assign]
    answer = await unblock(lsp)
    assert (answer.status, answer.error) == (p.Status.FORWARD_FAILED, FAILED_ONE + " and were failed back to the payer")
    assert lsp.engine.forward_calls == [("i1", NEXT)]  # no ready channel: nothing to wait for
    assert lsp.engine.failed == ["i1"] and seen == ["failed"]  # committed first, then failed back
    [hold] = lsp.store.holds()
    assert (hold.state, hold.reason) == ("failed", "no released HTLC could be forwarded")
    assert lsp.store.client_totals(CLIENT) == (0, 0, 0)
    assert lsp.pushes.pushes == ([] if payer_online else [(CLIENT, "hold_failed")])
    # The payer's router retrying over the same SCID finds the hold failed: failed at once.
    await intercept(lsp, htlc(scid(reply), "i2"))
    assert lsp.engine.failed == ["i1", "i2"]


async def test_release_waits_for_a_reconnecting_next_node(lsp: Lsp) -> None:
    """One LSP for payer and payee (issue 11): the next node is the payee B, our own client on a
    private channel; it sends its unblock right after connecting, while the channel is still
    being reestablished. The release waits for it rather than failing."""
    lsp.service.policy = policy(release_wait_secs=5)
    lsp.engine.clients.add(B)
    lsp.engine.ready.add(B)  # ready, not usable: B is offline
    reply = await armed(lsp, nodes=(B,))
    await intercept(lsp, htlc(scid(reply)))

    async def reestablished() -> None:
        await asyncio.sleep(0.1)
        lsp.engine.channels[B] = 10**9

    task = asyncio.create_task(reestablished())
    answer = await unblock(lsp)
    await task
    assert answer.status == p.Status.OK
    assert lsp.engine.forwarded == [("i1", B, 1_000_000)] and len(lsp.engine.forward_calls) >= 2
    assert states(lsp) == {"i1": "forwarded"}


async def test_a_waiting_release_does_not_stall_other_events(lsp: Lsp) -> None:
    """The unblock's answer waits for the hand-over, up to release_wait_secs; meanwhile the LSP
    answers another client's hold request."""
    lsp.service.policy = policy(release_wait_secs=1)
    lsp.engine.ready.add(R)  # a ready channel whose peer never comes back in time
    reply = await armed(lsp, nodes=(R,))
    await intercept(lsp, htlc(scid(reply)))
    [first] = lsp.store.holds()

    def first_states() -> dict[str, str]:
        return {h.intercept_id: h.state for h in lsp.store.htlcs(first.hold_id)}

    unblock_msg = p.PaymentUnblock(PID, HASH)
    await lsp.service.on_message(unblock_msg.TYPE, unblock_msg.encode(), unblock_context(lsp).hex(), "payee")
    # Released and committed with the event; the hand-over is still waiting, unanswered.
    assert [h.state for h in lsp.store.holds()] == ["released"]
    assert first_states() == {"i1": "forwarding"} and lsp.engine.replies == []
    other = request(request_id=b"o" * 16, hashes=(bytes.fromhex("33" * 32),), pid=b"\x44" * 32)
    await lsp.service.on_message(other.TYPE, other.encode(), None, "payer")
    [(responder, tlv_type, payload)] = lsp.engine.replies  # answered while the release waits
    assert responder == "payer" and p.decode(tlv_type, payload).status == p.Status.OK  # type: ignore[attr-defined]
    assert first_states() == {"i1": "forwarding"}
    await lsp.service.role.drain()
    (responder, tlv_type, payload) = lsp.engine.replies[1]
    answer = p.decode(tlv_type, payload)
    assert responder == "payee" and isinstance(answer, p.UnblockReply)
    assert answer.status == p.Status.FORWARD_FAILED
    assert first_states() == {"i1": "failed"}


async def test_htlcs_arriving_together_at_a_released_hold_are_each_forwarded_once(lsp: Lsp) -> None:
    """Each arrival's hand-over owns only the HTLC it moved to `forwarding`: two arriving before
    either hand-over ran are forwarded once each, not twice."""
    reply = await armed(lsp)
    released = await unblock(lsp)
    assert released.status == p.Status.RELEASED_AWAITING_HTLC
    for i in ("i1", "i2"):
        await lsp.service.holding.on_htlc_intercepted(lsp.engine.intercepted(htlc(scid(reply), intercept_id=i)))
    await lsp.service.role.drain()
    assert sorted(i for i, _, _ in lsp.engine.forwarded) == ["i1", "i2"]
    assert sorted(i for i, _ in lsp.engine.forward_calls) == ["i1", "i2"]
    assert states(lsp) == {"i1": "forwarded", "i2": "forwarded"}


async def test_release_gives_up_on_a_next_node_that_stays_unusable(lsp: Lsp) -> None:
    lsp.engine.ready.add(R)  # a ready channel whose peer never comes back in time
    reply = await armed(lsp, nodes=(R,))
    await intercept(lsp, htlc(scid(reply)))
    answer = await unblock(lsp)
    assert answer.status == p.Status.FORWARD_FAILED and lsp.engine.failed == ["i1"]
    assert len(lsp.engine.forward_calls) >= 2  # tried again during the wait (WAIT s), then gave up
    assert [h.state for h in lsp.store.holds()] == ["failed"]


async def test_mpp_part_without_liquidity_is_failed_back_and_the_rest_goes(lsp: Lsp) -> None:
    lsp.engine.channels[R] = 500_000  # too little for the part that goes over R
    reply = await armed(lsp, nodes=(NEXT, R))
    await intercept(lsp, htlc(scid(reply, 0), "p1", inbound=400_000))
    await intercept(lsp, htlc(scid(reply, 1), "p2", inbound=600_000))
    answer = await unblock(lsp)
    assert answer.status == p.Status.FORWARD_FAILED and answer.error is not None
    assert answer.error.startswith("1 of 2 held HTLCs could not be forwarded")
    assert lsp.engine.forwarded == [("p1", NEXT, 400_000)] and lsp.engine.failed == ["p2"]
    assert states(lsp) == {"p1": "forwarded", "p2": "failed"}
    assert [h.state for h in lsp.store.holds()] == ["released"]  # p1 is in flight
    assert lsp.pushes.pushes == [(CLIENT, "hold_failed")]  # the payer must come online to retry
    # The payer's router retries the part over the other next hop's SCID: forwarded on arrival.
    await intercept(lsp, htlc(scid(reply, 0), "p3", inbound=600_000))
    assert lsp.engine.forwarded[-1] == ("p3", NEXT, 600_000)


async def test_released_before_any_htlc_then_each_part_goes_on_arrival(lsp: Lsp) -> None:
    lsp.engine.channels[R] = 10**9
    reply = await armed(lsp, nodes=(NEXT, R))
    answer = await unblock(lsp)
    assert answer.status == p.Status.RELEASED_AWAITING_HTLC
    assert [h.state for h in lsp.store.holds()] == ["released"]
    await intercept(lsp, htlc(scid(reply, 1), "p1", inbound=300_000))
    await intercept(lsp, htlc(scid(reply, 0), "p2", inbound=700_000))
    assert lsp.engine.forwarded == [("p1", R, 300_000), ("p2", NEXT, 700_000)]
    assert states(lsp) == {"p1": "forwarded", "p2": "forwarded"}


async def test_htlc_arriving_at_a_released_hold_without_a_channel_is_failed_at_once(lsp: Lsp) -> None:
    lsp.engine.channels[R] = 10**9
    reply = await armed(lsp, nodes=(NEXT, R))
    assert (await unblock(lsp)).status == p.Status.RELEASED_AWAITING_HTLC
    del lsp.engine.channels[R]  # R went away after the release
    await intercept(lsp, htlc(scid(reply, 1), "p1"))
    assert lsp.engine.forward_calls == [("p1", R)] and lsp.engine.failed == ["p1"]
    assert states(lsp) == {"p1": "failed"}
    # The hold stays released: the payer's retry over the other hop goes through.
    assert [h.state for h in lsp.store.holds()] == ["released"] and lsp.pushes.pushes == []
    await intercept(lsp, htlc(scid(reply, 0), "p2"))
    assert lsp.engine.forwarded == [("p2", NEXT, 1_000_000)]


async def test_downstream_failure_then_the_retry_is_forwarded_and_settles(lsp: Lsp) -> None:
    lsp.engine.channels[R] = 10**9
    lsp.engine.channel_peers["chan-a"] = CLIENT
    reply = await armed(lsp, nodes=(NEXT, R))
    await intercept(lsp, htlc(scid(reply, 1), "p1"))
    assert (await unblock(lsp)).status == p.Status.OK
    failure = f"Forward {{ node_id: Some({R}), channel_id: ChannelId(..) }}"
    await lsp.service.handle(HtlcHandlingFailed(3, "chan-a", failure, None))
    assert states(lsp) == {"p1": "failed"} and [h.state for h in lsp.store.holds()] == ["released"]
    await intercept(lsp, htlc(scid(reply, 0), "p2"))  # the payer's retry avoids R's SCID
    assert lsp.engine.forwarded == [("p1", R, 1_000_000), ("p2", NEXT, 1_000_000)]
    await lsp.service.holding.on_payment_forwarded(PaymentForwarded(4, None, None, CLIENT, None, 0, 1_000_000, False))
    assert [h.state for h in lsp.store.holds()] == ["settled"]
    assert lsp.pushes.pushes == [(CLIENT, "preimage_waiting")]


async def test_retry_grace_ends_a_hold_whose_htlcs_all_failed(lsp: Lsp) -> None:
    lsp.service.policy = policy(retry_grace_secs=30)
    lsp.engine.online.add(CLIENT)
    reply = await armed(lsp, nodes=(NEXT,))
    assert (await unblock(lsp)).status == p.Status.RELEASED_AWAITING_HTLC
    lsp.engine.channels.clear()
    await intercept(lsp, htlc(scid(reply)))
    assert states(lsp) == {"i1": "failed"}
    await lsp.service.tick()
    assert [h.state for h in lsp.store.holds()] == ["released"]
    lsp.store.db.execute("UPDATE lsp_hold_htlcs SET updated_at = ?", [time.time() - 31])
    await lsp.service.tick()
    assert [h.state for h in lsp.store.holds()] == ["failed"]
    assert lsp.pushes.pushes == []  # the payer is online: its LDK already knows


async def test_ticks_forward_nothing_and_log_nothing(lsp: Lsp, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 8: a stranded HTLC was retried and logged every second. Now only a release, an
    arrival and start-up forward; a tick, at every block or second, does neither."""
    reply = await armed(lsp)
    await intercept(lsp, htlc(scid(reply)))
    release_committed_only(lsp)  # e.g. killed while releasing: the HTLC is `forwarding`
    lsp.engine.channels.clear()
    caplog.set_level(logging.DEBUG, logger="lsp_node")
    for _ in range(5):
        await lsp.service.tick()
    assert lsp.engine.forward_calls == [] and caplog.records == []


async def test_start_up_forwards_once_and_fails_back_what_it_cannot(lsp: Lsp) -> None:
    lsp.engine.channels[R] = 10**9
    reply = await armed(lsp, nodes=(NEXT, R))
    await intercept(lsp, htlc(scid(reply, 0), "p1"))
    await intercept(lsp, htlc(scid(reply, 1), "p2"))
    release_committed_only(lsp)  # killed right after the release commit
    del lsp.engine.channels[R]  # R went away while we were down
    lsp.engine.pending_hashes = {htlc(0).payment_hash}
    await lsp.service.reconcile()
    assert lsp.engine.forwarded == [("p1", NEXT, 1_000_000)] and lsp.engine.failed == ["p2"]
    assert states(lsp) == {"p1": "forwarded", "p2": "failed"}
    assert [h.state for h in lsp.store.holds()] == ["released"]
    assert lsp.pushes.pushes == [(CLIENT, "hold_failed")]
    # Nothing is left to do at the next start.
    calls = list(lsp.engine.forward_calls)
    await lsp.service.reconcile()
    assert lsp.engine.forward_calls == calls and lsp.engine.failed == ["p2"]


async def test_start_up_that_can_forward_nothing_fails_the_hold(lsp: Lsp) -> None:
    lsp.engine.ready.add(R)
    lsp.engine.channels[R] = 10**9
    reply = await armed(lsp, nodes=(R,))
    await intercept(lsp, htlc(scid(reply)))
    release_committed_only(lsp)
    del lsp.engine.channels[R]  # ready, but its peer does not come back within the wait
    lsp.engine.pending_hashes = {htlc(0).payment_hash}
    await lsp.service.reconcile()
    assert lsp.engine.failed == ["i1"] and len(lsp.engine.forward_calls) >= 2
    assert [(h.state, h.reason) for h in lsp.store.holds()] == [("failed", "no released HTLC could be forwarded")]
