"""Engine hooks the LightningRod protocol stands on: application onion messages with reply
paths and authenticated contexts, offline-peer interception, and node-key signatures."""

from __future__ import annotations

import pytest

from lsp_node.engine import LightningNode
from lsp_node.errors import InvalidArgumentError

from .conftest import Chain, NodeFactory, open_channel, wait_event, wait_until

PING = 65_601
PONG = 65_603


async def test_message_with_reply_path_and_blinded_context(chain: Chain, make_node: NodeFactory) -> None:
    lsp = await make_node("lsp")
    phone = await make_node("phone")
    await chain.fund(lsp, 1_500_000)
    await open_channel(chain, lsp, phone, 1_000_000)
    phone.set_message_relay(lsp.node_id)

    # Phone -> LSP, straight to its node id, asking for replies tagged b"ctx-1".
    await phone.send_onion_message(PING, b"hello", to_node=lsp.node_id, reply_context=b"ctx-1")
    got = await wait_event(lsp, "onion_message_received")
    assert got.tlv_type == PING and bytes.fromhex(got.payload) == b"hello"
    assert got.context is None, "a message to a bare node id carries no authenticated context"
    await lsp.reply_onion_message(got.responder, PONG, b"world")
    reply = await wait_event(phone, "onion_message_received")
    assert bytes.fromhex(reply.payload) == b"world"
    assert bytes.fromhex(reply.context) == b"ctx-1"

    # A path the LSP built for itself: whoever uses it, the LSP learns the context it chose.
    path = lsp.create_blinded_path(b"hold-42")
    await phone.send_onion_message(PING, b"via path", to_path=path)
    via = await wait_event(lsp, "onion_message_received", payload=b"via path".hex())
    assert bytes.fromhex(via.context) == b"hold-42"

    with pytest.raises(InvalidArgumentError, match="odd type"):
        await phone.send_onion_message(64, b"x", to_node=lsp.node_id)


async def test_messages_for_an_offline_peer_are_intercepted_and_forwarded(chain: Chain, make_node: NodeFactory) -> None:
    lsp = await make_node("lsp")
    alice = await make_node("alice")
    bob = await make_node("bob")
    await chain.fund(lsp, 3_000_000)
    await open_channel(chain, lsp, alice, 1_000_000)
    await open_channel(chain, lsp, bob, 1_000_000)
    alice.set_message_relay(lsp.node_id)
    bob.set_message_relay(lsp.node_id)
    # Bob's mailbox address: a blinded path entered at his LSP.
    bob_path = bob.create_blinded_path(b"mailbox", [lsp.node_id])

    bob_id = bob.node_id
    await bob.stop()
    await wait_until(lambda: all(p.node_id != bob_id for p in lsp.peers()), what="bob gone")
    await alice.send_onion_message(PING, b"for bob", to_path=bob_path)
    held = await wait_event(lsp, "onion_message_intercepted", peer_node_id=bob_id)

    bob = await make_node("bob")
    await wait_event(lsp, "onion_message_peer_connected", peer_node_id=bob_id)
    await lsp.forward_onion_message(held.message, bob_id)
    got = await wait_event(bob, "onion_message_received", payload=b"for bob".hex())
    assert bytes.fromhex(got.context) == b"mailbox"


async def test_node_key_signatures(make_node: NodeFactory) -> None:
    node = await make_node("signer")
    sig = node.sign_message(b"hold request")
    assert LightningNode.verify_message(b"hold request", sig, node.node_id)
    assert not LightningNode.verify_message(b"hold request!", sig, node.node_id)
