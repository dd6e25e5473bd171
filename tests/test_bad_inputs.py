"""Bad input gets a clear exception of its own class, and the node keeps working afterwards."""

from __future__ import annotations

import pytest

from lsp_node.errors import (
    AddressError,
    ChannelError,
    DuplicatePaymentError,
    InsufficientFundsError,
    InvalidArgumentError,
    InvoiceError,
    PaymentError,
    PeerError,
)

from .conftest import Chain, NodeFactory, open_channel, pay, wait_event

# The BOLT11 specification's own example: a well-formed invoice, but for mainnet.
MAINNET_INVOICE = (
    "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqq"
    "syqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6"
    "q93dj32dlqnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9lfyql"
)
UNKNOWN_NODE = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"  # the generator G
MAINNET_ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"


async def test_bad_inputs_raise_clear_errors_and_node_keeps_working(chain: Chain, make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await chain.fund(alice, 1_500_000)
    channel = await open_channel(chain, alice, bob, 1_000_000)

    # Malformed and foreign invoices.
    with pytest.raises(InvoiceError, match="not a BOLT11 invoice"):
        await alice.pay_invoice("lnbcrt1notaninvoice")
    with pytest.raises(InvoiceError, match="not a BOLT11 invoice"):
        alice.decode_invoice("hello")
    with pytest.raises(InvoiceError, match="Bitcoin but this node runs on regtest"):
        await alice.pay_invoice(MAINNET_INVOICE)

    # Unknown or unreachable peers.
    with pytest.raises(PeerError, match="not connected to"):
        await alice.open_channel(UNKNOWN_NODE, 100_000)
    with pytest.raises(PeerError, match=r"connection refused or timed out|closed the connection"):
        await alice.connect(UNKNOWN_NODE, "127.0.0.1:1")
    with pytest.raises(PeerError, match="closed the connection during the handshake"):
        # Bob listens there, but he is not UNKNOWN_NODE: the handshake must fail.
        await alice.connect(UNKNOWN_NODE, bob.listen_addr)
    with pytest.raises(InvalidArgumentError, match="not a node id"):
        await alice.connect("zz", bob.listen_addr)
    with pytest.raises(InvalidArgumentError, match="not a node id"):
        alice.node_addresses("zz")
    assert alice.node_addresses(UNKNOWN_NODE) == []

    # Not enough money, on chain and in the channel.
    with pytest.raises(InsufficientFundsError):
        await alice.open_channel(bob.node_id, 50_000_000)
    with pytest.raises(InsufficientFundsError):
        await alice.send_onchain(await bob.new_address(), 40_000_000)
    too_big = await bob.create_invoice(2_000_000_000, "more than the channel holds")
    with pytest.raises(PaymentError, match="enough outbound capacity"):
        await alice.pay_invoice(too_big)
    record = await alice.payment(alice.decode_invoice(too_big).payment_hash)
    assert record is not None and record.status == "failed" and record.direction == "outbound"

    # Addresses: other network, garbage.
    with pytest.raises(AddressError, match="not an address for regtest"):
        await alice.send_onchain(MAINNET_ADDRESS, 10_000)
    with pytest.raises(AddressError, match="is not a Bitcoin address"):
        await alice.send_onchain("bcrt1qnope", 10_000)

    # Channels that do not exist.
    with pytest.raises(InvalidArgumentError, match="not a channel id"):
        await alice.close_channel("1234")
    with pytest.raises(ChannelError, match="no open channel"):
        await alice.close_channel("00" * 32)

    # Paying the same invoice twice: the second attempt is refused, nothing is sent twice.
    invoice = await bob.create_invoice(10_000_000, "once")
    payment_hash = await alice.pay_invoice(invoice)
    await wait_event(alice, "payment_sent", payment_hash=payment_hash)
    with pytest.raises(DuplicatePaymentError, match="already paid"):
        await alice.pay_invoice(invoice)
    sent = [p for p in await alice.payments() if p.payment_hash == payment_hash]
    assert len(sent) == 1 and sent[0].status == "succeeded"

    # After all that, the node still pays (by invoice and by keysend) and the channel is intact.
    await pay(alice, bob, 5_000_000)
    keysend_hash = await alice.keysend(bob.node_id, 3_000_000)
    await wait_event(alice, "payment_sent", payment_hash=keysend_hash)
    got = await wait_event(bob, "payment_received", payment_hash=keysend_hash)
    assert got.amount_msat == 3_000_000
    assert [c.channel_id for c in alice.channels()] == [channel.channel_id]
    assert alice.is_running
