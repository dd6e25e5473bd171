"""Onion messages for a node that is neither a peer nor a client (SPEC.md §1.6), against the fake
engine: dialled at its announced address off the event path, then forwarded; bounded dials and
queues; nothing dialled without an address or for ourselves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lsp_node.engine import OnionMessageIntercepted
from lsp_node.lsp import LspService, LspStore
from lsp_node.lsp.relay import DROP_LOG_EVERY, Offer, Relay
from tests.fake_engine import LSP_NODE_ID, FakeEngine
from tests.lsp_harness import CLIENT, FakeNotifier, policy

OTHER_LSP = "03" + "0b" * 32
ADDR = "127.0.0.1:9735"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[LspService]:
    engine = FakeEngine(clients={CLIENT}, announced={OTHER_LSP: [ADDR]})
    store = LspStore(tmp_path / "lsp.sqlite")
    svc = LspService(engine, store, policy(), FakeNotifier())  # type: ignore[arg-type]
    yield svc
    await svc.close()
    store.close()


def fake(svc: LspService) -> FakeEngine:
    assert isinstance(svc.engine, FakeEngine)
    return svc.engine


def node(i: int) -> str:
    return "02" + f"{i:04x}" * 16


async def test_only_a_channel_peer_can_make_the_lsp_dial(service: LspService) -> None:
    """A message handed over by a node without a channel here (or by no known node) is dropped:
    a stranger cannot make the LSP dial the network for it."""
    engine = fake(service)
    for prev in (node(7), None):
        await service.handle(OnionMessageIntercepted(1, OTHER_LSP, "aa01", prev))
    await service.relay.idle()
    assert engine.dials == [] and engine.delivered == [] and service.relay.pending == 0


async def test_message_for_an_announced_node_is_dialled_then_forwarded(service: LspService) -> None:
    engine = fake(service)
    engine.dial_gate = asyncio.Event()
    # The event is handled (so acknowledged) while the dial still hangs.
    await asyncio.wait_for(service.handle(OnionMessageIntercepted(1, OTHER_LSP, "aa01", CLIENT)), 1.0)
    await asyncio.sleep(0)
    assert engine.dials == [(OTHER_LSP, ADDR)]
    assert service.relay.dialling == {OTHER_LSP} and service.relay.pending == 1
    # More messages for it while the dial runs wait for it.
    await service.handle(OnionMessageIntercepted(2, OTHER_LSP, "aa02", CLIENT))
    engine.dial_gate.set()
    await service.relay.idle()
    assert engine.delivered == [(OTHER_LSP, "aa01"), (OTHER_LSP, "aa02")]
    assert engine.dials == [(OTHER_LSP, ADDR)], "one dial for both"
    assert service.relay.pending == 0 and not service.relay.dialling
    assert service.store.messages() == [], "nothing stored in a mailbox"


async def test_message_for_a_node_without_an_announced_address_is_refused(
    service: LspService, caplog: pytest.LogCaptureFixture
) -> None:
    engine = fake(service)
    stranger = node(7)
    with caplog.at_level(logging.INFO, logger="lsp_node.lsp"):
        await service.handle(OnionMessageIntercepted(1, stranger, "aa01", CLIENT))
    await service.relay.idle()
    assert engine.dials == [] and engine.delivered == [] and service.relay.pending == 0
    [line] = [r.getMessage() for r in caplog.records if stranger[:8] in r.getMessage()]
    assert "no announced address" in line and stranger not in line and "aa01" not in line


async def test_message_for_an_offline_client_goes_to_its_mailbox_not_a_dial(service: LspService) -> None:
    engine = fake(service)
    engine.announced[CLIENT] = [ADDR]
    await service.handle(OnionMessageIntercepted(1, CLIENT, "aa01", OTHER_LSP))
    await service.relay.idle()
    assert engine.dials == []
    assert [e.message for e in service.store.messages(CLIENT)] == ["aa01"]


async def test_our_own_node_is_never_dialled(service: LspService) -> None:
    engine = fake(service)
    engine.announced[LSP_NODE_ID] = [ADDR]
    assert service.relay.offer(LSP_NODE_ID, "aa01") is Offer.OWN_NODE
    await service.relay.idle()
    assert engine.dials == [] and service.relay.pending == 0


async def test_at_most_eight_dials_at_once_the_others_wait_their_turn(service: LspService) -> None:
    engine = fake(service)
    engine.dial_gate = asyncio.Event()
    nodes = [node(i) for i in range(11)]
    for i, n in enumerate(nodes):
        engine.announced[n] = [f"127.0.0.1:{10000 + i}"]
        assert service.relay.offer(n, f"{i:02x}") is Offer.QUEUED
    await asyncio.sleep(0.01)
    assert len(engine.dials) == 8 and len(service.relay.dialling) == 8
    assert service.relay.pending == 11
    engine.dial_gate.set()
    await service.relay.idle()
    assert sorted(engine.delivered) == sorted((n, f"{i:02x}") for i, n in enumerate(nodes))
    assert [n for n, _ in engine.dials] == nodes, "dialled in arrival order"


async def test_eight_messages_wait_per_node_more_are_dropped_and_logged_once(
    service: LspService, caplog: pytest.LogCaptureFixture
) -> None:
    engine = fake(service)
    engine.dial_gate = asyncio.Event()
    with caplog.at_level(logging.INFO, logger="lsp_node.lsp"):
        outcomes = [service.relay.offer(OTHER_LSP, f"{i:02x}") for i in range(12)]
    assert outcomes == [Offer.QUEUED] * 8 + [Offer.FULL] * 4
    full_lines = [r for r in caplog.records if "relay queue full" in r.getMessage()]
    assert len(full_lines) == 1, "one line per node per minute, never one per message"
    engine.dial_gate.set()
    await service.relay.idle()
    assert [m for _, m in engine.delivered] == [f"{i:02x}" for i in range(8)], "in arrival order"


async def test_256_messages_wait_in_all_beyond_that_new_ones_are_dropped(tmp_path: Path) -> None:
    clock = Clock()
    engine = FakeEngine(dial_gate=asyncio.Event())
    store = LspStore(tmp_path / "lsp.sqlite")
    service = LspService(engine, store, policy(), None)
    relay = service.relay = Relay(service.role, clock)
    try:
        nodes = [node(i) for i in range(40)]
        for n in nodes:
            engine.announced[n] = [ADDR]
        outcomes = [relay.offer(n, "aa") for n in nodes for _ in range(8)]
        assert outcomes.count(Offer.QUEUED) == 256 and relay.pending == 256
        assert outcomes.count(Offer.FULL) == 40 * 8 - 256
        # The drop line of a node comes again only a minute later.
        assert relay.offer(nodes[-1], "bb") is Offer.FULL
        assert relay._drops[nodes[-1]][1] > 0
        clock.now += DROP_LOG_EVERY
        assert relay.offer(nodes[-1], "bb") is Offer.FULL
        assert relay._drops[nodes[-1]] == (clock.now, 0)
        assert engine.dial_gate is not None
        engine.dial_gate.set()
        await relay.idle()
        assert len(engine.delivered) == 256 and relay.pending == 0
        # With room again, a message is taken (and dialled: the node is connected already).
        assert relay.offer(nodes[-1], "cc") is Offer.QUEUED
        await relay.idle()
        assert engine.delivered[-1] == (nodes[-1], "cc")
    finally:
        await service.close()
        store.close()


async def test_a_failed_dial_drops_its_messages_and_a_later_message_dials_again(
    service: LspService, caplog: pytest.LogCaptureFixture
) -> None:
    engine = fake(service)
    engine.unreachable.add(ADDR)
    with caplog.at_level(logging.INFO, logger="lsp_node.lsp"):
        service.relay.offer(OTHER_LSP, "aa01")
        service.relay.offer(OTHER_LSP, "aa02")
        await service.relay.idle()
    assert engine.delivered == [] and service.relay.pending == 0
    [line] = [r.getMessage() for r in caplog.records if "could not reach" in r.getMessage()]
    assert "2 onion message(s) dropped" in line
    assert OTHER_LSP[:8] in line and OTHER_LSP not in line, "short ids only, also in the engine's reason"
    assert "aa01" not in caplog.text and "aa02" not in caplog.text, "no payloads"
    engine.unreachable.clear()
    service.relay.offer(OTHER_LSP, "aa03")
    await service.relay.idle()
    assert engine.delivered == [(OTHER_LSP, "aa03")]
    assert len(engine.dials) == 2


async def test_the_addresses_are_tried_in_turn(service: LspService) -> None:
    engine = fake(service)
    engine.announced[OTHER_LSP] = ["127.0.0.1:1", ADDR]
    engine.unreachable.add("127.0.0.1:1")
    service.relay.offer(OTHER_LSP, "aa01")
    await service.relay.idle()
    assert engine.dials == [(OTHER_LSP, "127.0.0.1:1"), (OTHER_LSP, ADDR)]
    assert engine.delivered == [(OTHER_LSP, "aa01")]


async def test_a_dial_gives_up_at_its_deadline(service: LspService) -> None:
    engine = fake(service)
    service.policy = policy(relay_dial_timeout_secs=0.2)
    engine.announced[OTHER_LSP] = [ADDR, "127.0.0.1:2"]
    engine.dial_delay = 30.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    service.relay.offer(OTHER_LSP, "aa01")
    await asyncio.wait_for(service.relay.idle(), 5.0)
    assert loop.time() - started < 2.0
    assert engine.dials == [(OTHER_LSP, ADDR)], "the deadline covers every address"
    assert engine.delivered == [] and service.relay.pending == 0 and not service.relay.dialling


async def test_a_forward_ldk_refuses_drops_the_rest(service: LspService) -> None:
    engine = fake(service)
    engine.refuse_messages_to.add(OTHER_LSP)
    service.relay.offer(OTHER_LSP, "aa01")
    service.relay.offer(OTHER_LSP, "aa02")
    await service.relay.idle()
    assert engine.delivered == [] and service.relay.pending == 0


async def test_close_stops_the_dials(service: LspService) -> None:
    engine = fake(service)
    engine.dial_gate = asyncio.Event()
    service.relay.offer(OTHER_LSP, "aa01")
    await asyncio.sleep(0)
    await asyncio.wait_for(service.close(), 1.0)
    assert service.relay.pending == 0 and not service.relay.dialling
    assert service.relay.offer(OTHER_LSP, "aa02") is Offer.FULL
    engine.dial_gate.set()
    await asyncio.sleep(0.01)
    assert engine.delivered == []
