"""The four-node LightningRod network the end-to-end tests run on:
A (phone, in-process) -> LSP_a (process) -> LSP_b (process) -> B (phone, in-process)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from lsp_node import _ldk
from lsp_node import protocol as p
from lsp_node.client import Client
from lsp_node.engine import LightningNode, NodeOptions
from lsp_node.errors import LspNodeError, PeerError

from .conftest import Chain, NodeFactory, wait_event
from .lsp_process import LspProcess


class PushReceiver:
    """A local HTTP endpoint apprise's json:// posts to, standing in for a push service."""

    def __init__(self, on_push: Callable[[str, dict[str, object]], None] | None = None) -> None:
        self.on_push = on_push
        self.pushes: list[tuple[str, dict[str, object]]] = []
        self.url = ""
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def push(request: web.Request) -> web.Response:
            self.pushes.append((request.match_info["device"], json.loads(await request.text())))
            if self.on_push is not None:
                self.on_push(*self.pushes[-1])
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/push/{device}", push)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        port = self.runner.addresses[0][1]
        self.url = f"json://127.0.0.1:{port}/push/{{device}}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def kinds_for(self, device: str) -> list[str]:
        return [str(body.get("message", "")).split(":")[0] for d, body in self.pushes if d == device]


async def until(cond: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Like wait_until, but cond may be a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@dataclass
class Net:
    chain: Chain
    make_node: NodeFactory
    tmp_path: Path
    pushes: PushReceiver
    lsp_a: LspProcess
    lsp_b: LspProcess
    alice: LightningNode
    bob: LightningNode
    a: Client
    b: Client
    #: Plain routing nodes between the LSPs (Topology.routers), in order.
    routers: list[LspProcess] = field(default_factory=list)

    async def restart_phone(self, name: str, *, ack_mail: bool = True) -> Client:
        node = await self.make_node(name)
        lsp = self.lsp_a if name == "alice" else self.lsp_b
        client = Client(node, lsp.node_id, ack_mail=ack_mail)
        client.start()

        # The phone dials its LSP (the LSP cannot reach a phone).
        async def dial() -> bool:
            try:
                await node.connect(lsp.node_id, lsp.listen_addr)
                return True
            except PeerError:
                return False

        await until(dial, f"{name} reconnected", 30)
        if name == "alice":
            self.alice, self.a = node, client
        else:
            self.bob, self.b = node, client
        return client

    async def phone_offline(self, name: str) -> None:
        client, node = (self.a, self.alice) if name == "alice" else (self.b, self.bob)
        lsp = self.lsp_a if name == "alice" else self.lsp_b
        await client.stop()
        await node.stop()

        async def gone() -> bool:
            return all(p["node_id"] != node.node_id for p in await lsp.api("GET", "/api/peers"))

        await until(gone, f"{name} offline at its LSP")

    async def links_up(self) -> None:
        """Wait until the LSP-LSP channel and the channels of running phones are usable again
        (after an LSP restart)."""

        between = {self.lsp_b.node_id} | {r.node_id for r in self.routers}

        async def up() -> bool:
            chans = await self.lsp_a.api("GET", "/api/channels")
            if not all(c["is_usable"] for c in chans if c["counterparty_node_id"] in between):
                return False
            return all(c.is_usable for n in (self.alice, self.bob) if n.is_running for c in n.channels())

        await until(up, "LSP channels usable")

    async def holds(self) -> list[dict[str, object]]:
        return list(await self.lsp_a.api("GET", "/api/holds"))

    async def close(self) -> None:
        for c in (self.a, self.b):
            await c.stop()
        for x in (self.lsp_a, self.lsp_b, *self.routers):
            await x.stop()
        await self.pushes.stop()


async def lsp_fund(chain: Chain, lsp: LspProcess, sat: int) -> None:
    addr = (await lsp.api("POST", "/api/newaddress"))["address"]
    chain.raw.fund_address(addr, sat)
    chain.mine(1)
    await lsp.api("POST", "/api/sync")


async def confirm_channel(chain: Chain, lsps: list[LspProcess], nodes: list[LightningNode]) -> None:
    await until(lambda: len(chain.raw.mempool_txids()) > 0, "funding broadcast")
    chain.mine(6)
    for lsp in lsps:
        await lsp.api("POST", "/api/sync")
    await asyncio.gather(*(n.sync() for n in nodes))

    async def usable() -> bool:
        for lsp in lsps:
            if not all(c["is_usable"] for c in await lsp.api("GET", "/api/channels")):
                return False
        return all(c.is_usable for n in nodes for c in n.channels())

    await until(usable, "channels usable")


async def only_hold(net: Net) -> dict[str, Any]:
    holds = await net.holds()
    assert len(holds) == 1, holds
    return dict(holds[0])


async def hold_state(net: Net) -> str:
    return str((await only_hold(net))["state"])


def outbound(node: LightningNode) -> int:
    return sum(c.outbound_capacity_msat for c in node.channels())


def inbound(node: LightningNode) -> int:
    return sum(c.inbound_capacity_msat for c in node.channels())


async def no_htlcs(*nodes: LightningNode) -> None:
    await until(lambda: all(c.pending_htlcs == 0 for n in nodes for c in n.channels()), "no HTLC in flight")


async def deliver_held_payment(
    net: Net, amount_msat: int, *, blocks_offline: int = 0, payer_offline: bool = False, kill_lsp_a: bool = False
) -> tuple[str, int]:
    """B offline, A pays through a hold and tells B; `blocks_offline` blocks pass (A offline too
    with `payer_offline`; LSP_a killed with SIGKILL and restarted with `kill_lsp_a`); B comes back
    and releases. Returns the payment hash and the fee A paid, after checking the balances to the
    msat: B got exactly the amount, once; A paid the amount plus the fee."""
    a_before, b_before = outbound(net.alice), inbound(net.bob)
    request = await net.b.create_payment_request(amount_msat, "held payment")
    await net.phone_offline("bob")
    held = await net.a.pay_with_hold(request)
    await until(lambda: state_is(net, "held"), "HTLC held at LSP_a")
    if payer_offline:
        await net.phone_offline("alice")
    if kill_lsp_a:
        net.lsp_a.kill9()
        await net.lsp_a.start()
        assert [h["state"] for h in await net.holds()] == ["held"]
        await net.links_up()
    if blocks_offline:
        net.chain.mine(blocks_offline)
        for x in (net.lsp_a, net.lsp_b, *net.routers):
            await x.api("POST", "/api/sync")
        assert await hold_state(net) == "held"
    b = await net.restart_phone("bob")
    received = await b.wait_for("payment_received", payment_hash=held.payment_hash)
    assert received.amount_msat == amount_msat
    await until(lambda: held.payment_hash in b.unblock_replies, "LSP_a's answer to the unblock")
    assert b.unblock_replies[held.payment_hash].status == p.Status.OK
    if payer_offline:
        await until(lambda: "preimage_waiting" in net.pushes.kinds_for("alice-phone"), "push to A")
        await net.restart_phone("alice")
    sent = await net.a.wait_for("payment_sent", payment_hash=held.payment_hash)
    assert sent.fee_paid_msat is not None
    await until(lambda: state_is(net, "settled"), "hold settled")
    await no_htlcs(net.alice, net.bob)
    assert [e.kind for e in b.events if getattr(e, "payment_hash", None) == held.payment_hash].count(
        "payment_received"
    ) == 1
    assert a_before - outbound(net.alice) == amount_msat + sent.fee_paid_msat
    assert b_before - inbound(net.bob) == amount_msat
    return held.payment_hash, sent.fee_paid_msat


async def state_is(net: Net, state: str) -> bool:
    """LSP_a has one hold, in `state`."""
    holds = await net.holds()
    return len(holds) == 1 and holds[0]["state"] == state


@dataclass(frozen=True)
class Topology:
    """What lies between the payer's LSP and the payee (SPEC.md §1.5). Channels between LSPs and
    routing nodes are announced, so the payer's router learns them by gossip as on the real
    network; the phones' channels are private (the payee's is in its invoice's route hint).

    * `routers`: plain routing nodes (main.py with the LSP role off) in series between LSP_a and
      LSP_b; 0 is a direct LSP_a-LSP_b channel;
    * `parallel`: the routers sit side by side instead, each with a channel from LSP_a and one to
      LSP_b of `router_sat` (two routes, e.g. for MPP);
    * `same_lsp`: payer and payee are clients of one LSP (`Net.lsp_b is Net.lsp_a`);
    * `empty_router_sat`: with `parallel`, the first router's only channel to LSP_b is opened by
      LSP_b with this capacity: announced that wide, it has nothing on the router's side, so
      every part sent through it fails at the router;
    * `peer_lsps`: LSP_a connects to LSP_b as a peer (no channel) so onion messages flow between
      them;
    * `announce`: each LSP listens on a fixed port and announces it, so the other can dial it for
      onion messages (SPEC.md §1.6) instead of being connected by hand."""

    routers: int = 0
    parallel: bool = False
    same_lsp: bool = False
    router_sat: int = 3_000_000
    empty_router_sat: int | None = None
    peer_lsps: bool = True
    announce: bool = False


def _routing_channels(
    topology: Topology, lsp_a: LspProcess, lsp_b: LspProcess, routers: list[LspProcess]
) -> list[tuple[LspProcess, LspProcess, int, int]]:
    """(opener, peer, sat, push msat) of every announced channel between LSPs and routers."""
    if topology.same_lsp:
        return []
    if topology.parallel:
        out = [(lsp_a, r, 3_000_000, 0) for r in routers]
        for i, r in enumerate(routers):
            if i == 0 and topology.empty_router_sat is not None:
                out.append((lsp_b, r, topology.empty_router_sat, 0))
            else:
                out.append((r, lsp_b, topology.router_sat, 0))
        return out
    hops = [lsp_a, *routers, lsp_b]
    return [(x, y, 3_000_000 if x is lsp_a else topology.router_sat, 0) for x, y in itertools.pairwise(hops)]


async def routes_known(alice: LightningNode, bob: LightningNode, lsp: str, want: int, amount_msat: int) -> None:
    """Wait until A's router knows routes through its LSP to B (gossip of the announced channels
    reached A): `want` distinct next hops after the LSP for a probe invoice of `amount_msat`."""
    probe = await bob.create_invoice(amount_msat, "probe", 3600)

    async def known() -> bool:
        try:
            return len(await alice.held_route_next_hops(probe, lsp)) >= want
        except LspNodeError:
            return False

    await until(known, f"A's router knows a route to B through its LSP ({want} next hops wanted)", 90)


@asynccontextmanager
async def build_net(
    chain: Chain,
    make_node: NodeFactory,
    tmp_path: Path,
    *,
    alice_channels: int = 1,
    topology: Topology = Topology(),
    pushes: PushReceiver | None = None,
    admin_listens: tuple[str, str] = ("127.0.0.1:0", "127.0.0.1:0"),
    launcher: list[str] | None = None,
    **lsp: object,
) -> AsyncIterator[Net]:
    """`admin_listens`: the admin (and dashboard) addresses of LSP_a and LSP_b; `launcher`: how
    the LSPs are started (default `python main.py`)."""
    pushes = pushes or PushReceiver()
    await pushes.start()
    announce = topology.announce
    common: dict[str, Any] = {"announce": announce, "launcher": launcher, **lsp}
    lsp_a = LspProcess(tmp_path, "lsp_a", chain.url, pushes.url, admin_listen=admin_listens[0], **common)
    lsp_b = (
        lsp_a
        if topology.same_lsp
        else LspProcess(tmp_path, "lsp_b", chain.url, pushes.url, admin_listen=admin_listens[1], **common)
    )
    routers = [
        LspProcess(tmp_path, f"router{i + 1}", chain.url, pushes.url, role=False) for i in range(topology.routers)
    ]
    processes = list({id(x): x for x in (lsp_a, lsp_b, *routers)}.values())
    try:
        await asyncio.gather(*(x.start() for x in processes))
        alice = await make_node("alice")
        bob = await make_node("bob")
        await chain.fund(alice, 3_000_000)
        channels = _routing_channels(topology, lsp_a, lsp_b, routers)
        for x in processes:
            opens = sum(sat for opener, _, sat, _ in channels if opener is x)
            await lsp_fund(chain, x, 5_000_000 + opens)

        # A pays from its own channel(s) to LSP_a; announced channels lead to LSP_b; LSP_b gives B
        # inbound liquidity over a private channel.
        await alice.connect(lsp_a.node_id, lsp_a.listen_addr)
        for _ in range(alice_channels):
            uid = await alice.open_channel(lsp_a.node_id, 1_000_000)
            await wait_event(alice, "channel_pending", user_channel_id=uid)
        for opener, peer, sat, push in channels:
            await opener.api("POST", "/api/connect", {"node_id": peer.node_id, "address": peer.listen_addr})
            body = {"node_id": peer.node_id, "amount_sat": sat, "push_msat": push, "announce": True}
            await opener.api("POST", "/api/channels", body)
        if topology.peer_lsps and lsp_b is not lsp_a:
            # Onion messages (the pid notice, the unblock) go LSP to LSP directly: LDK forwards one
            # only to a connected peer.
            await lsp_a.api("POST", "/api/connect", {"node_id": lsp_b.node_id, "address": lsp_b.listen_addr})
        await bob.connect(lsp_b.node_id, lsp_b.listen_addr)
        await lsp_b.api("POST", "/api/channels", {"node_id": bob.node_id, "amount_sat": 2_000_000})
        await until(
            lambda: len(chain.raw.mempool_txids()) >= alice_channels + len(channels) + 1,
            "funding transactions broadcast",
        )
        await confirm_channel(chain, processes, [alice, bob])
        if channels:
            # LDK broadcasts a channel's announcement when the announcement signatures are exchanged,
            # and a node whose peer's signatures came first may never broadcast its own
            # channel_update; it re-broadcasts every 6 blocks (a week long), so 6 more blocks give
            # every payer the whole graph, as time does on the real network. One block at a time:
            # a sync reports only the tip, and the re-broadcast is tied to one height in six.
            for _ in range(6):
                chain.mine(1)
                await asyncio.gather(*(x.api("POST", "/api/sync") for x in processes), alice.sync(), bob.sync())
        # Drain the channel events so the clients start from a clean queue.
        for n in (alice, bob):
            while (e := n.poll_event()) is not None:
                await n.event_handled(e)
        if topology.parallel:  # a probe no single route can carry: both must be known
            await routes_known(alice, bob, lsp_a.node_id, len(routers), topology.router_sat * 1_200)
        else:
            await routes_known(alice, bob, lsp_a.node_id, 1, 1_000)

        a = Client(alice, lsp_a.node_id)
        b = Client(bob, lsp_b.node_id)
        a.start()
        b.start()
        await a.register_device("webhook", "alice-phone")
        await b.register_device("webhook", "bob-phone")
        net = Net(chain, make_node, tmp_path, pushes, lsp_a, lsp_b, alice, bob, a, b, routers)
    except BaseException:
        # A failed set-up must not leave LSP processes running after the test.
        for x in processes:
            await x.stop()
        await pushes.stop()
        raise
    try:
        yield net
    finally:
        await net.close()


@asynccontextmanager
async def own_chain(tmp_path: Path) -> AsyncIterator[tuple[Chain, NodeFactory]]:
    """A chain and a node factory like conftest's `chain` and `make_node`, which are per test (they
    use tmp_path): this one lets a module's tests share one network (a module-scoped fixture)."""
    raw = _ldk.RegtestChain.open(str(tmp_path / "chain.sqlite"))
    chain = Chain(raw, await raw.start_server())
    running: list[LightningNode] = []

    async def make_node(name: str, **kw: Any) -> LightningNode:
        kw.setdefault("sync_interval_secs", 1)
        node = await LightningNode.start(
            str(tmp_path / name), esplora_url=chain.url, name=name, options=NodeOptions(**kw)
        )
        running.append(node)
        return node

    try:
        yield chain, make_node
    finally:
        for node in running:
            if node.is_running:
                await node.stop()
        await raw.stop_server()
