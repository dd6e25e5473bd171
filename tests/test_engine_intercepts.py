"""What the LSP role needs from the engine to reconcile intercepted HTLCs: LDK does not replay
`htlc_intercepted` after a restart for an event already handled, so the engine lists the
intercepts LDK still holds; and a forwarded intercept that fails downstream comes back as an
`htlc_handling_failed` naming its intercept id and payment hash. And the payer's side of a held
payment: the next hops after its LSP, and paying over their intercept SCIDs, also across a
routing node learnt from gossip. Real nodes over loopback; the tests play the LSP themselves."""

from __future__ import annotations

import asyncio

from lsp_node.engine import HeldHop, HtlcHandlingFailed, HtlcIntercepted, LightningNode, PaymentFailed

from .conftest import Chain, NodeFactory, open_channel, wait_event, wait_until

LSP_OPTIONS = {"accept_intercept_htlcs": True, "forward_immediately": True}


async def _no_event_of(node: LightningNode, kind: str, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        event = node.poll_event()
        if event is None:
            await asyncio.sleep(0.1)
            continue
        assert event.kind != kind, f"unexpected {event!r}"
        await node.event_handled(event)


async def test_intercepts_survive_a_restart_and_a_downstream_failure_names_its_intercept(
    chain: Chain, make_node: NodeFactory
) -> None:
    lsp = await make_node("lsp", **LSP_OPTIONS)
    alice = await make_node("alice")
    carol = await make_node("carol")
    await chain.fund(alice, 2_000_000)
    await chain.fund(lsp, 2_000_000)
    await open_channel(chain, alice, lsp, 1_000_000)
    await open_channel(chain, lsp, carol, 1_000_000)
    # Carol's channel is private: her invoice's route hint is how alice's router reaches her, and
    # she is the node right after the LSP (payer and payee are clients of one LSP).
    invoice = await carol.create_invoice(10_000_000, "held")
    assert await alice.held_route_next_hops(invoice, lsp.node_id) == [carol.node_id]
    scid = lsp.get_intercept_scid()
    payment_hash = await alice.pay_invoice_held(
        invoice, lsp.node_id, [HeldHop(carol.node_id, scid, 0, 0, 72)], extra_final_cltv=0
    )
    htlc = await wait_event(lsp, "htlc_intercepted", payment_hash=payment_hash)
    assert isinstance(htlc, HtlcIntercepted)
    assert htlc.requested_next_hop_scid == scid and htlc.expected_outbound_amount_msat == 10_000_000

    [pending] = await lsp.pending_intercepts()
    assert (pending.intercept_id, pending.payment_hash, pending.state) == (htlc.intercept_id, payment_hash, "pending")
    assert pending.prev_node_id == alice.node_id and pending.inbound_cltv_expiry == htlc.inbound_cltv_expiry
    assert lsp.intercept_pending_amount(htlc.intercept_id) == htlc.inbound_amount_msat
    assert lsp.intercept_pending_amount("00" * 32) is None

    # Restart: LDK keeps the HTLC but does not hand out the event again.
    await lsp.stop()
    lsp = await make_node("lsp", **LSP_OPTIONS)
    await wait_until(
        lambda: {alice.node_id, carol.node_id} <= {p.node_id for p in lsp.peers()}, what="peers back after restart"
    )
    await _no_event_of(lsp, "htlc_intercepted", 3.0)
    assert [p.intercept_id for p in await lsp.pending_intercepts()] == [htlc.intercept_id]

    # Forwarded short of what the invoice asks: carol refuses, the failure names the intercept.
    await wait_until(lambda: any(c.is_usable for c in lsp.channels() if c.counterparty_node_id == carol.node_id))
    await lsp.forward_intercepted_htlc(htlc.intercept_id, carol.node_id, htlc.expected_outbound_amount_msat - 1_000)
    failed = await wait_event(lsp, "htlc_handling_failed", intercept_id=htlc.intercept_id)
    assert isinstance(failed, HtlcHandlingFailed)
    assert failed.payment_hash == payment_hash and failed.next_node_id == carol.node_id
    assert failed.next_channel_id is not None and failed.requested_next_hop_scid is None
    assert await lsp.pending_intercepts() == []
    assert lsp.intercept_pending_amount(htlc.intercept_id) is None
    await wait_event(alice, "payment_failed", payment_hash=payment_hash)


async def test_an_intercept_failed_by_the_lsp_is_forgotten_and_not_retried_through(
    chain: Chain, make_node: NodeFactory
) -> None:
    lsp = await make_node("lsp", **LSP_OPTIONS)
    alice = await make_node("alice")
    carol = await make_node("carol")
    await chain.fund(alice, 2_000_000)
    await chain.fund(lsp, 2_000_000)
    await open_channel(chain, alice, lsp, 1_000_000)
    await open_channel(chain, lsp, carol, 1_000_000)

    invoice = await carol.create_invoice(5_000_000, "refused")
    scid = lsp.get_intercept_scid()
    payment_hash = await alice.pay_invoice_held(
        invoice, lsp.node_id, [HeldHop(carol.node_id, scid, 0, 0, 72)], extra_final_cltv=0
    )
    htlc = await wait_event(lsp, "htlc_intercepted", payment_hash=payment_hash)
    await lsp.fail_intercepted_htlc(htlc.intercept_id)
    failed = await wait_event(lsp, "htlc_handling_failed", requested_next_hop_scid=scid)
    assert failed.intercept_id is None, "a failure the LSP chose itself is not matched twice"
    assert await lsp.pending_intercepts() == []
    # LDK retries, but its only next hop failed on its intercept SCID: the held router leaves
    # out the real channel behind it too, so the retry finds no route instead of paying carol
    # around the hold.
    gave_up = await wait_event(alice, "payment_failed", payment_hash=payment_hash)
    assert isinstance(gave_up, PaymentFailed) and gave_up.reason == "RouteNotFound"
    await _no_event_of(lsp, "htlc_intercepted", 1.0)
    assert not any(p.direction == "inbound" and p.status == "succeeded" for p in await carol.payments())
