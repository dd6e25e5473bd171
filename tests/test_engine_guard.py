"""The engine's defences on an open network: the per-peer onion-message rate limit, the
bounded two-lane event queue, intercepted messages that name their previous hop, the inbound
channel policy, and ldk.log rotation. Real nodes over loopback throughout."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from lsp_node.config import NodeSettings
from lsp_node.engine import ChannelClosed, HtlcHandlingFailed, LightningNode, NodeOptions, OnionMessageIntercepted

from .conftest import Chain, NodeFactory, open_channel, wait_event, wait_until

PING = 65_601


async def _connect(a: LightningNode, b: LightningNode) -> None:
    await a.connect(b.node_id, b.listen_addr)
    await wait_until(lambda: any(p.node_id == a.node_id for p in b.peers()), what="peer connected")


async def _drain(node: LightningNode) -> list[str]:
    """Acknowledge every queued event; return their kinds in delivery order."""
    kinds = []
    while (event := node.poll_event()) is not None:
        kinds.append(event.kind)
        await node.event_handled(event)
    return kinds


async def test_a_flooding_peer_is_limited_and_another_peer_is_not(make_node: NodeFactory) -> None:
    lsp = await make_node("lsp", onion_message_rate_per_sec=5, onion_message_burst=5)
    flooder = await make_node("flooder")
    other = await make_node("other")
    await _connect(flooder, lsp)
    await _connect(other, lsp)

    for i in range(60):
        await flooder.send_onion_message(PING, f"flood {i}".encode(), to_node=lsp.node_id)
    await other.send_onion_message(PING, b"from other", to_node=lsp.node_id)

    async def stats_settled() -> None:
        while True:
            s = await lsp.onion_message_stats()
            if s.accepted + s.rate_limited >= 61:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(stats_settled(), 30)
    stats = await lsp.onion_message_stats()
    # The burst plus what the bucket refilled while the flood was sent (well under 60).
    assert stats.rate_limited >= 30, stats
    assert stats.accepted <= 30, stats
    await wait_event(lsp, "onion_message_received", payload=b"from other".hex())


async def test_message_lane_is_bounded_per_sender_and_served_after_channel_events(
    chain: Chain, make_node: NodeFactory
) -> None:
    # No rate limit: the queue's own bounds are under test. A quarter of 12 per sender.
    lsp = await make_node("lsp", onion_message_rate_per_sec=0, max_queued_onion_messages=12)
    alice = await make_node("alice")
    bob = await make_node("bob")
    await _connect(alice, lsp)
    await _connect(bob, lsp)
    await _drain(lsp)

    for i in range(25):
        await alice.send_onion_message(PING, f"a{i}".encode(), to_node=lsp.node_id)
    for i in range(2):
        await bob.send_onion_message(PING, f"b{i}".encode(), to_node=lsp.node_id)

    async def seen() -> int:
        s = await lsp.onion_message_stats()
        return s.queued_messages + s.queue_refused

    deadline = asyncio.get_running_loop().time() + 30
    while await seen() < 27:
        assert asyncio.get_running_loop().time() < deadline, await lsp.onion_message_stats()
        await asyncio.sleep(0.05)
    stats = await lsp.onion_message_stats()
    # Alice's flood keeps 3 places; Bob's messages still find room.
    assert stats.queued_messages == 5 and stats.queue_refused == 22, stats

    # A channel opened after the flood: its events are delivered before the queued messages.
    await chain.fund(alice, 1_500_000)
    await open_channel(chain, alice, lsp, 1_000_000, ack_peer_events=False)
    events = []
    while (event := lsp.poll_event()) is not None:
        events.append(event)
        await lsp.event_handled(event)
    kinds = [e.kind for e in events]
    first_message = kinds.index("onion_message_received")
    assert {"channel_pending", "channel_ready"} <= set(kinds[:first_message]), kinds
    payloads = sorted(bytes.fromhex(e.payload).decode() for e in events if e.kind == "onion_message_received")
    assert payloads == ["a0", "a1", "a2", "b0", "b1"]


async def test_intercepted_message_names_the_peer_it_came_from(chain: Chain, make_node: NodeFactory) -> None:
    lsp = await make_node("lsp")
    alice = await make_node("alice")
    bob = await make_node("bob")
    await chain.fund(lsp, 3_000_000)
    await open_channel(chain, lsp, alice, 1_000_000)
    await open_channel(chain, lsp, bob, 1_000_000)
    alice.set_message_relay(lsp.node_id)
    bob_path = bob.create_blinded_path(b"mailbox", [lsp.node_id])
    bob_id = bob.node_id
    await bob.stop()
    await wait_until(lambda: all(p.node_id != bob_id for p in lsp.peers()), what="bob gone")

    await alice.send_onion_message(PING, b"for bob", to_path=bob_path)
    held = await wait_event(lsp, "onion_message_intercepted", peer_node_id=bob_id)
    assert isinstance(held, OnionMessageIntercepted)
    assert held.prev_node_id == alice.node_id
    assert (await lsp.onion_message_stats()).intercepted == 1

    # The message is still whole: bob gets it when the LSP forwards it.
    bob = await make_node("bob")
    await wait_event(lsp, "onion_message_peer_connected", peer_node_id=bob_id)
    await lsp.forward_onion_message(held.message, bob_id)
    await wait_event(bob, "onion_message_received", payload=b"for bob".hex())


async def test_intercepted_messages_per_offline_node_are_bounded(chain: Chain, make_node: NodeFactory) -> None:
    lsp = await make_node("lsp", onion_message_rate_per_sec=0, max_intercepted_per_peer=3)
    alice = await make_node("alice")
    bob = await make_node("bob")
    await chain.fund(lsp, 3_000_000)
    await open_channel(chain, lsp, alice, 1_000_000)
    await open_channel(chain, lsp, bob, 1_000_000)
    alice.set_message_relay(lsp.node_id)
    bob_path = bob.create_blinded_path(b"mailbox", [lsp.node_id])
    bob_id = bob.node_id
    await bob.stop()
    await wait_until(lambda: all(p.node_id != bob_id for p in lsp.peers()), what="bob gone")
    await _drain(lsp)

    for i in range(8):
        await alice.send_onion_message(PING, f"for bob {i}".encode(), to_path=bob_path)
    await wait_until(lambda: True, timeout=1)

    async def seen() -> int:
        s = await lsp.onion_message_stats()
        return s.intercepted

    deadline = asyncio.get_running_loop().time() + 30
    while await seen() < 8:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    stats = await lsp.onion_message_stats()
    assert stats.queue_refused == 5 and stats.queued_messages == 3, stats
    assert (await _drain(lsp)).count("onion_message_intercepted") == 3


async def test_inbound_channels_are_accepted_by_policy(chain: Chain, make_node: NodeFactory) -> None:
    lsp = await make_node("lsp", min_inbound_channel_sat=200_000)
    alice = await make_node("alice")
    await chain.fund(alice, 2_000_000)
    await _connect(alice, lsp)

    async def refused(amount_sat: int, push_msat: int, why: str) -> None:
        uid = await alice.open_channel(lsp.node_id, amount_sat, push_msat=push_msat)
        closed = await wait_event(alice, "channel_closed", user_channel_id=uid)
        assert isinstance(closed, ChannelClosed)
        assert why in closed.reason, closed.reason
        assert not any(c.counterparty_node_id == alice.node_id for c in lsp.channels())

    await refused(150_000, 0, "below this node's minimum of 200000 sat")
    await refused(300_000, 1_000, "pushed amounts are not accepted")
    await open_channel(chain, alice, lsp, 200_000)
    assert any(c.counterparty_node_id == alice.node_id and c.is_usable for c in lsp.channels())


async def test_ldk_log_is_rotated_and_bounded(make_node: NodeFactory, tmp_path: Path) -> None:
    node = await make_node("noisy", log_level="trace", log_max_bytes=2_000, log_keep_files=2)
    other = await make_node("other")
    for _ in range(5):
        await _connect(other, node)
        other.disconnect(node.node_id)
        await wait_until(lambda: not node.peers(), what="disconnected")
    await node.stop()
    logs = sorted(p.name for p in (tmp_path / "noisy").iterdir() if p.name.startswith("ldk.log"))
    assert logs == ["ldk.log", "ldk.log.1", "ldk.log.2"], logs
    for name in logs:
        # A file ends before the line that would take it past the limit (a single longer line
        # still gets a file of its own).
        size = (tmp_path / "noisy" / name).stat().st_size
        assert 0 < size <= 2_000 or name == "ldk.log", (name, size)


def test_node_section_carries_the_defence_options_and_bounds_them() -> None:
    s = NodeSettings(onion_message_rate_per_sec=7, onion_message_burst=9, min_inbound_channel_sat=250_000)
    opts = s.options(accept_intercept_htlcs=True)
    assert (opts.onion_message_rate_per_sec, opts.onion_message_burst) == (7, 9)
    assert opts.min_inbound_channel_sat == 250_000
    assert opts.max_queued_onion_messages == NodeOptions().max_queued_onion_messages
    for bad in ({"min_inbound_channel_sat": 10}, {"onion_message_burst": 0}, {"log_keep_files": -1}):
        with pytest.raises(ValidationError):
            NodeSettings(**bad)


async def test_trace_logs_hold_no_preimage_and_no_message_payload(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    alice = await make_node("alice", log_level="trace")
    bob = await make_node("bob", log_level="trace")
    await chain.fund(alice, 2_000_000)
    await open_channel(chain, alice, bob, 1_000_000)
    invoice = await bob.create_invoice(5_000_000, "secret-free")
    payment_hash = await alice.pay_invoice(invoice)
    sent = await wait_event(alice, "payment_sent", payment_hash=payment_hash)
    await wait_event(bob, "payment_received", payment_hash=payment_hash)
    marker = b"pid-that-must-not-be-logged-0123456789"
    await alice.send_onion_message(PING, marker, to_node=bob.node_id)
    await wait_event(bob, "onion_message_received", payload=marker.hex())
    for n in (alice, bob):
        await n.stop()
    for name in ("alice", "bob"):
        text = "".join(p.read_text() for p in (tmp_path / name).iterdir() if p.name.startswith("ldk.log"))
        assert payment_hash in text, "the log is at trace level and names the payment"
        assert sent.preimage not in text
        assert marker.hex() not in text and marker.decode() not in text


def test_fields_added_to_events_default_to_none() -> None:
    """Code that builds these events (fakes, replays) without the new fields keeps working."""
    held = OnionMessageIntercepted(1, "02" + "aa" * 32, "ff")
    assert held.prev_node_id is None and held == OnionMessageIntercepted(1, "02" + "aa" * 32, "ff", None)
    failed = HtlcHandlingFailed(2, "cc" * 32, "InvalidOnion", None)
    assert (failed.next_node_id, failed.payment_hash, failed.intercept_id) == (None, None, None)
    assert HtlcHandlingFailed.__match_args__[-1] == "intercept_id"
