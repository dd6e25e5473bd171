"""A representative subset of the wire's bad-input corpus sent as real onion messages: to a
running LSP (its own `main.py` process) and, through the payee's mailbox path, to the reference
client. Each is refused in the log with its reason; then a normal held payment completes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lsp_node import protocol as p

from .bad_wire_corpus import CASES, Case
from .conftest import Chain, NodeFactory
from .lightningrod_net import Net, build_net, until

LIVE = [
    "shared_reference_bomb",
    "self_referencing_map",
    "tag28_around_map",
    "indefinite_map",
    "version_half",
    "version_true",
    "field_null",
    "duplicate_key",
    "keys_reversed",
    "version_not_shortest",
    "nested_5_deep",
    "huge_array_count",
    "trailing_zero",
    "cut_in_half",
    "bad_utf8",
    "version_2",
    "unknown_even_key",
    "top_level_array",
]
TO_LSP = [c for c in CASES if c.name.split("-", 1)[0] in ("HoldRequest", "DeviceRegister", "PaymentUnblock")]
TO_LSP = [c for c in TO_LSP if c.name.split("-", 1)[1] in LIVE] + [
    c
    for c in CASES
    if c.name
    in (
        "HoldRequest-amount_msat_as_true",
        "HoldRequest-hold_blocks_negative",
        "HoldRequest-payment_hashes_17_items",
        "HoldRequest-client_node_id_32_bytes",
        "DeviceRegister-device_id_too_long",
        "PaymentUnblock-pid_31_bytes",
    )
]
TO_CLIENT = [
    c for c in CASES if c.name.split("-", 1)[0] in ("PidNotice", "UnblockReply") and c.name.split("-", 1)[1] in LIVE
]


@pytest.fixture
async def net(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> AsyncIterator[Net]:
    async with build_net(chain, make_node, tmp_path) as n:
        yield n


def refusals(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if "refused a message of type" in line]


async def test_bad_messages_are_refused_and_a_held_payment_then_completes(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    assert len(TO_LSP) >= 50 and len(TO_CLIENT) >= 30
    caplog.set_level(logging.INFO, "lsp_node.client")
    log = net.lsp_a.dir / "stderr.log"
    before = len(refusals(log))
    request = await net.b.create_payment_request(20_000_000, "after the garbage")

    for case in TO_LSP:
        # With a reply path: the LSP could answer, and must not.
        await net.alice.send_onion_message(
            case.tlv_type, case.data, to_node=net.lsp_a.node_id, reply_context=b"req:" + bytes(16)
        )
    for case in TO_CLIENT:
        await net.alice.send_onion_message(case.tlv_type, case.data, to_path=request.mailbox_path.hex())

    await until(lambda: len(refusals(log)) - before >= len(TO_LSP), "LSP_a refused every bad message", 60)
    lines = refusals(log)[before:]
    for case in TO_LSP:
        assert any(
            f"type {case.tlv_type} ({len(case.data)} bytes): " in line and case.error in line for line in lines
        ), case.name
    assert "Traceback" not in log.read_text()

    def client_refused() -> bool:
        return client_refusals() >= len(TO_CLIENT)

    def client_refusals() -> int:
        return sum("refused a message of type" in r.getMessage() for r in caplog.records)

    await until(client_refused, "the payee's client refused every bad message", 60)
    assert client_refusals() == len(TO_CLIENT)
    assert net.b._task is not None and not net.b._task.done()
    assert net.a._task is not None and not net.a._task.done()

    # The LSP and the client still work: a held payment to the online payee completes.
    held = await net.a.pay_with_hold(request, hold_blocks=144)
    received = await net.b.wait_for("payment_received", payment_hash=held.payment_hash)
    assert received.amount_msat == 20_000_000
    await until(lambda: held.payment_hash in net.b.unblock_replies, "LSP_a's answer to the unblock")
    # The unblock may overtake the HTLC (onion messages need no commitment dance).
    assert net.b.unblock_replies[held.payment_hash].status in (p.Status.OK, p.Status.RELEASED_AWAITING_HTLC)

    async def settled() -> bool:
        return [h["state"] for h in await net.holds()] == ["settled"]

    await until(settled, "hold settled at LSP_a")


def test_the_live_subset_is_drawn_from_the_corpus() -> None:
    assert all(isinstance(c, Case) for c in TO_LSP + TO_CLIENT)
    assert {c.name.split("-", 1)[1] for c in TO_CLIENT} == set(LIVE)
