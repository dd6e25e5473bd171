"""The payer's side of a held payment (LightningRod) over real nodes: the next hops after its LSP
come from the route LDK's router finds (here across a routing node the payer only knows from
gossip), the payment leaves the LSP on the intercept SCID of its next hop with the hold's fee and
CLTV, and what cannot be held is refused with a reason a person can act on. The tests play the
LSP themselves (its events, its forward)."""

from __future__ import annotations

import asyncio
import time

import pytest

from lsp_node.engine import HeldHop, HtlcIntercepted, LightningNode, PaymentForwarded, PaymentSent
from lsp_node.errors import InvalidArgumentError, PaymentError

from .conftest import Chain, NodeFactory, open_channel, wait_event

LSP_OPTIONS = {"accept_intercept_htlcs": True, "forward_immediately": True}
AMOUNT = 20_000_000


async def _next_hops_once_known(payer: LightningNode, invoice: str, lsp: str, timeout: float = 180.0) -> list[str]:
    """Ask for the next hops until the payer's graph holds a route (gossip is on its way)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await payer.held_route_next_hops(invoice, lsp)
        except PaymentError as e:
            if time.monotonic() > deadline:
                raise AssertionError(f"no route through the LSP within {timeout}s: {e}") from None
        await asyncio.sleep(0.25)


async def test_a_held_payment_crosses_a_routing_node_learnt_from_gossip(chain: Chain, make_node: NodeFactory) -> None:
    payer = await make_node("payer")
    lsp = await make_node("lsp", **LSP_OPTIONS)
    router = await make_node("router", forward_immediately=True)
    payee = await make_node("payee")
    for n in (payer, lsp, router):
        await chain.fund(n, 2_000_000)
    # The payer's channel is private and it talks to the LSP only: everything it knows about
    # L-R and R-D comes from gossip the LSP relays.
    await open_channel(chain, payer, lsp, 1_000_000)
    await open_channel(chain, lsp, router, 1_000_000, announce=True)
    # Invoiced before D has a channel: no route hint, so R-D too is known from gossip only.
    invoice = await payee.create_invoice(AMOUNT, "across a routing node")
    assert payee.decode_invoice(invoice).route_hints == 0
    await open_channel(chain, router, payee, 1_000_000, announce=True)
    # At 6 confirmations each side sends its channel_update right after its announcement
    # signatures, and the one that arrives before the peer has built the announcement is dropped
    # ("Couldn't find channel for update"); LDK's router ignores a channel without both
    # directions' updates. LDK re-broadcasts announcement and update at the 7th confirmation (then
    # every 6 blocks for a week): one more block makes both channels routable at the payer.
    chain.mine(1)
    mined_at = time.monotonic()
    assert await _next_hops_once_known(payer, invoice, lsp.node_id) == [router.node_id]
    print(f"gossip: the payer routes over L-R-D {time.monotonic() - mined_at:.1f}s after the 7th confirmation")

    scid = lsp.get_intercept_scid()
    hop = HeldHop(router.node_id, scid, 1_000, 100, 72)
    height = payer.best_block_height
    payment_hash = await payer.pay_invoice_held(invoice, lsp.node_id, [hop], extra_final_cltv=144)
    htlc = await wait_event(lsp, "htlc_intercepted", payment_hash=payment_hash)
    assert isinstance(htlc, HtlcIntercepted)
    assert htlc.requested_next_hop_scid == scid and htlc.prev_node_id == payer.node_id
    forwarded = htlc.expected_outbound_amount_msat
    assert forwarded > AMOUNT, "what the LSP forwards includes the routing node's fee"
    assert htlc.inbound_amount_msat - forwarded == 1_000 + forwarded * 100 // 1_000_000
    # The LSP's hop carries the hold's delta and the payee's final CLTV the padding.
    final = payee.decode_invoice(invoice).min_final_cltv_expiry_delta
    assert htlc.inbound_cltv_expiry is not None and htlc.inbound_cltv_expiry - height >= 72 + 144 + final

    await lsp.forward_intercepted_htlc(htlc.intercept_id, router.node_id, forwarded)
    await wait_event(payee, "payment_received", payment_hash=payment_hash)
    sent = await wait_event(payer, "payment_sent", payment_hash=payment_hash)
    assert isinstance(sent, PaymentSent) and sent.fee_paid_msat == htlc.inbound_amount_msat - AMOUNT
    forwarded_at_router = await wait_event(router, "payment_forwarded")
    assert isinstance(forwarded_at_router, PaymentForwarded) and forwarded_at_router.outbound_amount_msat == AMOUNT


async def test_what_cannot_be_held_is_refused_with_a_reason(chain: Chain, make_node: NodeFactory) -> None:
    lsp = await make_node("lsp", **LSP_OPTIONS)
    alice = await make_node("alice")
    carol = await make_node("carol")
    await chain.fund(alice, 2_000_000)

    # Carol has no channel: nothing leads from the LSP to her.
    to_carol = await carol.create_invoice(AMOUNT, "unreachable")
    with pytest.raises(PaymentError, match="no usable channel to the LSP"):
        await alice.held_route_next_hops(to_carol, lsp.node_id)
    await open_channel(chain, alice, lsp, 1_000_000)

    to_lsp = await lsp.create_invoice(AMOUNT, "to the LSP")
    with pytest.raises(PaymentError, match="the payee is the LSP itself"):
        await alice.held_route_next_hops(to_lsp, lsp.node_id)
    with pytest.raises(PaymentError, match=f"no route to the payee {carol.node_id} through the LSP"):
        await alice.held_route_next_hops(to_carol, lsp.node_id)
    with pytest.raises(PaymentError, match="the invoice has no amount"):
        await alice.held_route_next_hops(await carol.create_invoice(None, "any amount"), lsp.node_id)

    hop = HeldHop(carol.node_id, lsp.get_intercept_scid(), 0, 0, 72)
    with pytest.raises(InvalidArgumentError, match="1 to 8 next hops"):
        await alice.pay_invoice_held(to_carol, lsp.node_id, [], extra_final_cltv=0)
    with pytest.raises(InvalidArgumentError, match="the LSP itself"):
        await alice.pay_invoice_held(to_carol, lsp.node_id, [HeldHop(lsp.node_id, 1, 0, 0, 72)], extra_final_cltv=0)
    with pytest.raises(InvalidArgumentError, match="listed twice"):
        await alice.pay_invoice_held(to_carol, lsp.node_id, [hop, hop], extra_final_cltv=0)
    with pytest.raises(InvalidArgumentError, match="shorter hold"):
        await alice.pay_invoice_held(to_carol, lsp.node_id, [hop], extra_final_cltv=1_990)
    with pytest.raises(PaymentError, match="the payee is the LSP itself"):
        await alice.pay_invoice_held(to_lsp, lsp.node_id, [hop], extra_final_cltv=0)
    # Valid, but no route: refused at once, and recorded as failed so it can be paid later.
    with pytest.raises(PaymentError, match="no route for the held payment"):
        await alice.pay_invoice_held(to_carol, lsp.node_id, [hop], extra_final_cltv=0)
    record = await alice.payment(alice.decode_invoice(to_carol).payment_hash)
    assert record is not None and record.status == "failed"
