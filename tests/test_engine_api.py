"""The typed engine surface: frozen classes instead of JSON, one source of option defaults,
and releasing an intercepted HTLC by next node (the engine picks the channel)."""

from __future__ import annotations

import pytest

from lsp_node.config import NodeSettings
from lsp_node.engine import EVENT_CLASSES, Balance, HeldHop, NodeOptions, PaymentSent, fields
from lsp_node.errors import InvalidArgumentError, NoUsableChannelError

from .conftest import Chain, NodeFactory

UNKNOWN_NODE = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"


def test_operator_settings_take_the_engine_defaults() -> None:
    engine = NodeOptions()
    settings = NodeSettings()
    opts = settings.options(accept_intercept_htlcs=engine.accept_intercept_htlcs)
    # The daemon listens on the Lightning port; every other option is the engine's default.
    assert opts.listen_addr == "127.0.0.1:9735" and engine.listen_addr == "127.0.0.1:0"
    assert {k: v for k, v in fields(opts).items() if k != "listen_addr"} == {
        k: v for k, v in fields(engine).items() if k != "listen_addr"
    }


def test_engine_classes_are_frozen_typed_and_matchable() -> None:
    hop = HeldHop("02" + "11" * 32, 42, 1000, 0, 72)
    assert fields(hop) == {
        "next_node_id": "02" + "11" * 32,
        "short_channel_id": 42,
        "fee_base_msat": 1000,
        "fee_proportional_millionths": 0,
        "cltv_expiry_delta": 72,
    }
    with pytest.raises(AttributeError):
        hop.short_channel_id = 7  # type: ignore[misc]
    assert hop == HeldHop("02" + "11" * 32, 42, 1000, 0, 72)
    assert repr(hop).startswith("HeldHop(next_node_id='02")
    sent = PaymentSent(5, "aa", "aa", "bb", 1000, None)
    match sent:
        case PaymentSent(id=5, payment_hash=h, fee_paid_msat=None):
            assert h == "aa"
        case _:
            pytest.fail("a PaymentSent should match its own fields")
    kinds = [c.kind for c in EVENT_CLASSES]
    assert len(set(kinds)) == len(kinds) == 16
    assert {"htlc_intercepted", "lsps5_notification", "client_wanted"} <= set(kinds)


async def test_forward_to_a_node_without_a_channel_says_so(chain: Chain, make_node: NodeFactory) -> None:
    lsp = await make_node("lsp", accept_intercept_htlcs=True)
    assert isinstance(lsp.balance(), Balance)
    with pytest.raises(NoUsableChannelError, match="no usable channel to"):
        await lsp.forward_intercepted_htlc("ab" * 32, UNKNOWN_NODE, 1_000)
    with pytest.raises(InvalidArgumentError, match="not a node id"):
        await lsp.forward_intercepted_htlc("ab" * 32, "nope", 1_000)
    with pytest.raises(InvalidArgumentError, match="not an intercept id"):
        await lsp.forward_intercepted_htlc("abcd", UNKNOWN_NODE, 1_000)
