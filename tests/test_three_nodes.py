"""Three nodes A-B-C: a payment routed through B, then a force close recovered after the timelock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .conftest import Chain, NodeFactory, open_channel, sync_all, wait_event, wait_until


async def test_route_through_middle_node_then_force_close(chain: Chain, make_node: NodeFactory) -> None:
    a = await make_node("a")
    # B forwards without LDK's random batching delay, the LSP latency setting.
    b = await make_node("b", forward_immediately=True)
    c = await make_node("c")
    await chain.fund(a, 2_000_000)
    await chain.fund(b, 2_000_000)
    ab = await open_channel(chain, a, b, 1_000_000)
    bc = await open_channel(chain, b, c, 1_000_000)

    invoice = await c.create_invoice(100_000_000, "via b")
    info = a.decode_invoice(invoice)
    assert info.route_hints == 1, "C's only channel is unannounced, so its invoice must hint the route"
    payment_hash = await a.pay_invoice(invoice, max_fee_msat=1_000_000)
    sent = await wait_event(a, "payment_sent", payment_hash=payment_hash)
    received = await wait_event(c, "payment_received", payment_hash=payment_hash)
    forwarded = await wait_event(b, "payment_forwarded")
    assert received.amount_msat == 100_000_000
    assert forwarded.prev_channel_id == ab.channel_id
    assert forwarded.next_channel_id == bc.channel_id
    assert forwarded.outbound_amount_msat == 100_000_000
    assert forwarded.fee_earned_msat == sent.fee_paid_msat > 0

    # Force close A-B from A's side. B's share is immediately B's; A's waits out the
    # to_self_delay B imposed (144 blocks) before A's sweeper may spend it.
    await wait_until(lambda: all(ch.pending_htlcs == 0 for n in (a, b) for ch in n.channels()), what="settled")
    a_chan = next(ch for ch in a.channels() if ch.channel_id == ab.channel_id)
    a_before, b_before = a.balance().total_sat, b.balance().total_sat
    await a.force_close_channel(ab.channel_id, "test force close")
    await wait_event(a, "channel_closed", channel_id=ab.channel_id)
    await wait_until(lambda: len(chain.raw.mempool_txids()) > 0, what="commitment broadcast")
    chain.mine(1)
    close_height = chain.raw.height
    await sync_all(a, b)
    await wait_event(b, "channel_closed", channel_id=ab.channel_id)
    assert a.claimable_onchain_sat() > 0

    async def mine_until(cond: Callable[[], bool], blocks: int, what: str) -> None:
        for _ in range(0, blocks, 5):
            if cond():
                return
            chain.mine(5)
            await sync_all(a, b)
            await asyncio.sleep(0.05)
        raise AssertionError(f"{what}: not after {blocks} blocks")

    # B's output (the 100k sat plus fee it received from A) is swept to B's wallet.
    await mine_until(lambda: b.balance().confirmed_sat > b_before, 30, "B's to_remote swept")
    assert a.balance().total_sat == a_before, "A's funds must stay locked before the timelock"
    # After the timelock A's sweep confirms; A gets its channel balance minus on-chain fees.
    await mine_until(lambda: a.balance().confirmed_sat > a_before, 200, "A's delayed output swept")
    gained = a.balance().total_sat - a_before
    # outbound capacity excludes A's 1% reserve, which A gets back too; fees come off.
    outbound_sat = a_chan.outbound_capacity_msat // 1000
    assert outbound_sat - 10_000 < gained <= outbound_sat + 10_000 + 5_000
    assert chain.raw.height - close_height >= 144
