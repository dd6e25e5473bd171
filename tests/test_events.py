"""Events are delivered at least once: unacknowledged ones come back after a restart."""

from __future__ import annotations

import asyncio

from .conftest import Chain, NodeFactory, open_channel, pay, reconnected


async def test_unacknowledged_events_are_redelivered_after_restart(chain: Chain, make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await chain.fund(alice, 1_500_000)
    await open_channel(chain, alice, bob, 1_000_000, ack_peer_events=False)

    # Bob never acknowledged anything: his channel events wait in order, and asking again
    # without acknowledging returns the same event.
    first = await bob.next_event()
    again = await bob.next_event()
    assert first == again
    assert first.kind in ("onion_message_peer_connected", "channel_pending")

    invoice = await bob.create_invoice(25_000_000, "replay me")
    info = bob.decode_invoice(invoice)
    await alice.pay_invoice(invoice)
    # The payment row and its event are committed in one transaction; wait for the row.
    for _ in range(1200):
        if any(p.payment_hash == info.payment_hash and p.status == "succeeded" for p in await bob.payments()):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("bob never recorded the payment")

    await bob.stop()
    bob = await make_node("bob")
    replayed = []
    while (event := bob.poll_event()) is not None:
        replayed.append(event)
        await bob.event_handled(event)
    kinds = [e.kind for e in replayed if e.kind != "onion_message_peer_connected"]
    assert kinds[:2] == ["channel_pending", "channel_ready"]
    assert replayed[0] == first
    received = [e for e in replayed if e.kind == "payment_received"]
    assert len(received) == 1 and received[0].payment_hash == info.payment_hash
    assert received[0].amount_msat == 25_000_000

    # Acknowledged events stay acknowledged across a restart.
    await bob.stop()
    bob = await make_node("bob")
    assert bob.poll_event() is None
    await reconnected(alice, bob)
    await pay(alice, bob, 1_000_000)
