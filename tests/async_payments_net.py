"""A BOLT async payment between two stock ldk-node 0.7.1 clients (AsyncPaymentsRole::Client)
through two servers: this project's LSPs (`main.py` with [async_payments] on) or, for the
side-by-side benchmark, ldk-node itself as AsyncPaymentsRole::Server.

    payer --private--> payer's LSP ==announced== recipient's LSP --private--> recipient

The payer's LSP holds the HTLC (LDK 0.2 holds only while the next hop's channel is live, so the
holder cannot be the offline recipient's own LSP); the recipient's LSP keeps its static invoice
and, in its mailbox, the messages for it while it is offline. The LSPs' channel is announced:
LDK builds a server's blinded paths only from an announced node (or one with a single peer).
The recipient gets its paths out of band, registers its static invoice and goes offline."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .conftest import Chain
from .ldk_node_peer import LdkNodePeer, LdkNodePeerError
from .lightningrod_net import until

# Static-remote-key channels, as this project's LSP opens: a recipient without on-chain funds
# refuses an anchor channel (it could not fund the reserve).
CLIENT = {"async_payments_role": "client", "sync_interval_secs": 1, "anchor_channels": False}


@dataclass
class Server:
    """What the set-up needs of a server, whichever implementation it is."""

    node_id: str
    listen_addr: str
    #: Open a channel of `sat` to the node `node_id` listening at `address`.
    open_channel: Callable[[str, str, int], Awaitable[None]]
    #: Every channel of the server usable (after a sync).
    channels_usable: Callable[[], Awaitable[bool]]
    #: Blinded paths to the server for the recipient `node_id` (hex).
    recipient_paths: Callable[[str], Awaitable[str]]
    sync: Callable[[], Awaitable[None]]
    #: Open an announced channel of `sat` to the node `node_id` listening at `address`.
    open_announced: Callable[[str, str, int], Awaitable[None]]


@dataclass
class AsyncNet:
    chain: Chain
    server: Server
    payer: LdkNodePeer
    recipient: LdkNodePeer
    offer: str


async def fund(chain: Chain, peer: LdkNodePeer, sat: int) -> None:
    chain.raw.fund_address(await peer.new_address(), sat)
    chain.mine(1)

    async def funded() -> bool:
        await peer.sync()
        return bool((await peer.balances())["spendable_onchain_sat"] == sat)

    await until(funded, f"{peer.name} funded", 30)


async def usable(peer: LdkNodePeer) -> bool:
    await peer.sync()
    chans = await peer.channels()
    return bool(chans) and all(c["is_usable"] for c in chans)


@asynccontextmanager
async def async_net(
    chain: Chain, tmp_path: Path, holder: Server, keeper: Server, tag: str = ""
) -> AsyncIterator[AsyncNet]:
    """Payer (client of `holder`) and recipient (client of `keeper`) set up, up to the
    recipient's offer; `holder` and `keeper` already share an announced channel. The recipient
    is still online when this yields."""
    async with AsyncExitStack() as stack:
        payer, recipient = LdkNodePeer(tmp_path, f"payer{tag}"), LdkNodePeer(tmp_path, f"recipient{tag}")
        for peer in (payer, recipient):
            await peer.start(chain.url, alias=peer.name, **CLIENT)
            stack.push_async_callback(peer.stop)
        await fund(chain, payer, 2_000_000)
        await payer.open_channel(holder.node_id, holder.listen_addr, 1_000_000)
        await recipient.connect(keeper.node_id, keeper.listen_addr, persist=True)
        await keeper.open_channel(recipient.node_id, recipient.listen_addr, 500_000)
        await until(lambda: len(chain.raw.mempool_txids()) >= 2, "both fundings broadcast")
        chain.mine(6)

        async def all_usable() -> bool:
            await holder.sync()
            await keeper.sync()
            ready = await holder.channels_usable() and await keeper.channels_usable()
            return ready and await usable(payer) and await usable(recipient)

        await until(all_usable, "channels usable", 60)

        # The payer reaches the recipient's LSP (the offer's introduction node) by the address in
        # its node announcement: wait until the gossip brought it (ldk-node announces its node on
        # a timer, this project's LSP when its channel is announced).
        async def announced() -> bool:
            return (await payer.graph_node(keeper.node_id))["announced"]

        await until(announced, "the recipient's LSP's node announcement at the payer", 180)
        paths = await keeper.recipient_paths(recipient.node_id)
        await recipient.async_set_paths(paths)
        offer = ""

        async def offered() -> bool:
            nonlocal offer
            try:
                offer = await recipient.async_receive_offer()
            except LdkNodePeerError:
                return False
            return True

        await until(offered, "the recipient's async offer (static invoice kept by its LSP)", 90)
        yield AsyncNet(chain, holder, payer, recipient, offer)


async def announced_channel(chain: Chain, a: Server, b: Server, sync: Callable[[], Awaitable[None]]) -> None:
    """An announced channel a -> b, confirmed, and its announcement gossiped: LDK broadcasts it
    once the signatures are exchanged and re-broadcasts every 6 blocks, one block at a time."""
    await a.open_announced(b.node_id, b.listen_addr, 2_000_000)
    await until(lambda: len(chain.raw.mempool_txids()) >= 1, "the LSPs' funding broadcast")
    chain.mine(6)
    await until(lambda: both_usable(a, b), "the LSPs' channel usable", 60)
    for _ in range(6):
        chain.mine(1)
        await sync()


async def both_usable(a: Server, b: Server) -> bool:
    await a.sync()
    await b.sync()
    return await a.channels_usable() and await b.channels_usable()


async def restart(peer: LdkNodePeer, chain: Chain) -> None:
    await peer.start(chain.url, alias=peer.name, **CLIENT)


def ldk_node_server(peer: LdkNodePeer) -> Server:
    async def open_channel(node_id: str, address: str, sat: int) -> None:
        await peer.open_channel(node_id, address, sat)

    async def open_announced(node_id: str, address: str, sat: int) -> None:
        await peer.open_channel(node_id, address, sat, announce=True)

    async def channels_usable() -> bool:
        return await usable(peer)

    async def recipient_paths(node_id: str) -> str:
        return await peer.async_server_paths(bytes.fromhex(node_id).hex())

    return Server(
        peer.node_id, peer.listen_addr, open_channel, channels_usable, recipient_paths, peer.sync, open_announced
    )


def lsp_server(api: Callable[..., Awaitable[Any]], node_id: str, listen_addr: str) -> Server:
    """This project's LSP as the server, through its admin API (`api(method, path, body)`)."""

    async def open_channel(peer: str, address: str, sat: int) -> None:
        await api("POST", "/api/channels", {"node_id": peer, "amount_sat": sat})

    async def open_announced(peer: str, address: str, sat: int) -> None:
        await api("POST", "/api/connect", {"node_id": peer, "address": address})
        await api("POST", "/api/channels", {"node_id": peer, "amount_sat": sat, "announce": True})

    async def channels_usable() -> bool:
        return all(c["is_usable"] for c in await api("GET", "/api/channels"))

    async def recipient_paths(peer: str) -> str:
        return str((await api("POST", "/api/async/paths", {"node_id": peer}))["paths"])

    async def sync() -> None:
        await api("POST", "/api/sync")

    return Server(node_id, listen_addr, open_channel, channels_usable, recipient_paths, sync, open_announced)
