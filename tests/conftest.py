"""Fixtures: a fresh local regtest chain per test and real LDK nodes talking over loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from lsp_node import _ldk
from lsp_node.engine import Channel, ChannelPending, Event, LightningNode, NodeOptions

EVENT_TIMEOUT = 60.0


class Chain:
    """The embedded regtest chain with its Esplora server, plus test conveniences."""

    def __init__(self, raw: _ldk.RegtestChain, url: str) -> None:
        self.raw = raw
        self.url = url

    def mine(self, n: int = 1) -> None:
        self.raw.mine_blocks(n)

    async def fund(self, node: LightningNode, sat: int) -> None:
        self.raw.fund_address(await node.new_address(), sat)
        self.mine(1)
        await node.sync()


@pytest.fixture
async def chain(tmp_path: Path) -> AsyncIterator[Chain]:
    raw = _ldk.RegtestChain.open(str(tmp_path / "chain.sqlite"))
    url = await raw.start_server()
    yield Chain(raw, url)
    await raw.stop_server()


NodeFactory = Callable[..., Awaitable[LightningNode]]


@pytest.fixture
async def make_node(tmp_path: Path, chain: Chain) -> AsyncIterator[NodeFactory]:
    """Start (or restart, with the same name) a node whose data lives in tmp_path/name."""
    running: list[LightningNode] = []
    addresses: dict[str, str] = {}

    async def start(name: str, **kw: Any) -> LightningNode:
        """`kw` are NodeOptions fields; tests sync every second instead of every 30."""
        kw.setdefault("sync_interval_secs", 1)
        # A restarted node keeps its port so peers that know its address can reconnect.
        kw.setdefault("listen_addr", addresses.get(name, "127.0.0.1:0"))
        node = await LightningNode.start(
            str(tmp_path / name), esplora_url=chain.url, name=name, options=NodeOptions(**kw)
        )
        addresses[name] = node.listen_addr
        running.append(node)
        return node

    yield start
    for node in running:
        if node.is_running:
            await node.stop()


async def wait_event(node: LightningNode, kind: str, timeout: float = EVENT_TIMEOUT, **match: object) -> Event:
    """Acknowledge events until one of `kind` (with the given fields) arrives; return it acked."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {kind} event {match or ''} within {timeout}s")
        try:
            event = await asyncio.wait_for(node.next_event(), remaining)
        except TimeoutError:
            raise AssertionError(f"no {kind} event {match or ''} within {timeout}s") from None
        await node.event_handled(event)
        if event.kind == kind and all(getattr(event, k, None) == v for k, v in match.items()):
            return event


async def wait_until(cond: Callable[[], bool], timeout: float = EVENT_TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def sync_all(*nodes: LightningNode) -> None:
    await asyncio.gather(*(n.sync() for n in nodes))


async def open_channel(
    chain: Chain,
    a: LightningNode,
    b: LightningNode,
    amount_sat: int,
    *,
    push_msat: int = 0,
    announce: bool = False,
    ack_peer_events: bool = True,
) -> Channel:
    """Connect a to b, open a channel funded by a, confirm it, and wait until both can use it.
    With ack_peer_events=False, b's events are left unacknowledged in its queue."""
    host_port = b.listen_addr
    await a.connect(b.node_id, host_port)
    user_channel_id = await a.open_channel(b.node_id, amount_sat, push_msat=push_msat, announce=announce)
    pending = await wait_event(a, "channel_pending", user_channel_id=user_channel_id)
    assert isinstance(pending, ChannelPending)
    channel_id = pending.channel_id
    await wait_until(lambda: len(chain.raw.mempool_txids()) > 0, what="funding transaction broadcast")
    chain.mine(6)
    await sync_all(a, b)
    await wait_event(a, "channel_ready", channel_id=channel_id)
    if ack_peer_events:
        await wait_event(b, "channel_ready", channel_id=channel_id)

    def usable() -> bool:
        return any(c.channel_id == channel_id and c.is_usable for c in a.channels()) and any(
            c.channel_id == channel_id and c.is_usable for c in b.channels()
        )

    await wait_until(usable, what="channel usable on both sides")
    return next(c for c in a.channels() if c.channel_id == channel_id)


async def pay(payer: LightningNode, payee: LightningNode, amount_msat: int, description: str = "test") -> str:
    """Pay an invoice of payee's and wait for both sides to report success; returns the hash."""
    invoice = await payee.create_invoice(amount_msat, description)
    payment_hash = await payer.pay_invoice(invoice)
    await wait_event(payer, "payment_sent", payment_hash=payment_hash)
    await wait_event(payee, "payment_received", payment_hash=payment_hash)
    await settled(payer, payee)
    return payment_hash


async def settled(*nodes: LightningNode) -> None:
    """Wait until no channel of these nodes has an HTLC in flight."""
    await wait_until(lambda: all(c.pending_htlcs == 0 for n in nodes for c in n.channels()), what="HTLCs settled")


async def reconnected(*nodes: LightningNode) -> None:
    """Wait until every channel of these nodes is usable again (after a restart)."""
    await wait_until(lambda: all(c.is_usable for n in nodes for c in n.channels()), what="channels usable again")
