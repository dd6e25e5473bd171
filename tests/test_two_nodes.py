"""Two nodes on the local chain: fund, open, pay both ways, restart, pay again, close."""

from __future__ import annotations

from .conftest import Chain, NodeFactory, open_channel, pay, sync_all, wait_event, wait_until

CHANNEL_SAT = 1_000_000


async def test_pay_both_ways_survive_restart_and_close(chain: Chain, make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await chain.fund(alice, 2_000_000)
    assert alice.balance().confirmed_sat == 2_000_000

    channel = await open_channel(chain, alice, bob, CHANNEL_SAT)
    assert channel.capacity_sat == CHANNEL_SAT
    assert channel.short_channel_id is not None
    assert channel.counterparty_node_id == bob.node_id

    await pay(alice, bob, 200_000_000)
    await pay(bob, alice, 50_000_000)
    bob_side = next(c for c in bob.channels() if c.channel_id == channel.channel_id)
    # Bob holds what he received minus what he sent back; the reserve is not part of outbound.
    assert bob_side.outbound_capacity_msat + bob_side.inbound_capacity_msat <= CHANNEL_SAT * 1000
    assert 140_000_000 <= bob_side.outbound_capacity_msat <= 150_000_000

    payments = {p.payment_hash: p for p in await alice.payments()}
    assert [p.status for p in payments.values()].count("succeeded") == 2

    # Restart both nodes from their data directories.
    alice_id, bob_id = alice.node_id, bob.node_id
    await alice.stop()
    await bob.stop()
    alice = await make_node("alice")
    bob = await make_node("bob")
    assert (alice.node_id, bob.node_id) == (alice_id, bob_id)
    assert [c.channel_id for c in alice.channels()] == [channel.channel_id]
    # Alice knows Bob's address from before and reconnects by herself.
    await wait_until(
        lambda: any(c.is_usable for c in alice.channels()) and any(c.is_usable for c in bob.channels()),
        what="channel usable after restart",
    )
    await pay(alice, bob, 30_000_000)
    await pay(bob, alice, 10_000_000)

    alice_before = alice.balance().total_sat
    bob_before = bob.balance().total_sat
    alice_chan = next(c for c in alice.channels() if c.channel_id == channel.channel_id)
    bob_chan = next(c for c in bob.channels() if c.channel_id == channel.channel_id)
    await alice.close_channel(channel.channel_id)
    await wait_until(lambda: len(chain.raw.mempool_txids()) > 0, what="closing transaction broadcast")
    chain.mine(1)
    await sync_all(alice, bob)
    await wait_event(alice, "channel_closed", channel_id=channel.channel_id)
    await wait_event(bob, "channel_closed", channel_id=channel.channel_id)
    await sync_all(alice, bob)
    assert alice.channels() == [] and bob.channels() == []

    alice_gain = alice.balance().total_sat - alice_before
    bob_gain = bob.balance().total_sat - bob_before
    # Bob's share (170k sat) comes back exactly; Alice's comes back minus the closing fee.
    assert bob_gain == 170_000
    assert bob_gain >= bob_chan.outbound_capacity_msat // 1000
    assert CHANNEL_SAT - 170_000 - 5_000 < alice_gain <= CHANNEL_SAT - 170_000
    assert alice_gain >= alice_chan.outbound_capacity_msat // 1000 - 5_000
