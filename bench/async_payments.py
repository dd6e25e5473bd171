"""BOLT async payments side by side, in one run on one local chain: the same held payment between
two stock ldk-node 0.7.1 clients (AsyncPaymentsRole::Client) through two servers that are

* ours: two `main.py` LSPs with [async_payments] on (HTLC held at the payer's LSP, static invoice
  and the held_htlc_available kept in the recipient's LSP's SQLite mailbox), and
* ldk-node's: two ldk-node 0.7.1 nodes with AsyncPaymentsRole::Server (in-memory mailbox).

Each round: the recipient goes offline, the payer pays the recipient's offer, the payment is left
held for `--settle` seconds, then the recipient is started again; the latency is from that start
to the payer's PaymentSuccessful (ldk-node's start-up, reconnection, delivery of the kept
message, release, forward, claim and fulfil back). Printed as a table with the ratio of the
medians (ours / ldk-node's), and as JSON. Needs `make build interop-peer`.

Run: `make bench-async` or `python -m bench.async_payments --rounds 5 [--json FILE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from lsp_node import _ldk
from tests.async_payments_net import Server, announced_channel, async_net, fund, ldk_node_server, lsp_server, restart
from tests.conftest import Chain
from tests.ldk_node_peer import LdkNodePeer
from tests.lightningrod_net import PushReceiver, lsp_fund
from tests.lsp_process import LspProcess

AMOUNT_MSAT = 21_000_000


async def rounds(
    chain: Chain, tmp: Path, holder: Server, keeper: Server, tag: str, n: int, settle: float, out: list[float]
) -> None:
    async with async_net(chain, tmp, holder, keeper, tag=tag) as net:
        for _ in range(n):
            await net.recipient.stop()
            payment_id = await net.payer.pay_offer(net.offer, AMOUNT_MSAT)
            await asyncio.sleep(settle)
            started = time.monotonic()
            await restart(net.recipient, chain)
            sent = await net.payer.wait_event(
                "payment_successful", "payment_failed", payment_id=payment_id, timeout=120
            )
            if sent["kind"] != "payment_successful":
                raise RuntimeError(f"{tag}: payment failed: {sent}")
            out.append(time.monotonic() - started)
            await net.recipient.wait_event("payment_received", timeout=30)


async def ours(chain: Chain, tmp: Path, n: int, settle: float, out: list[float]) -> None:
    pushes = PushReceiver()
    await pushes.start()
    sections: dict[str, dict[str, object]] = {"async_payments": {"enabled": True}}
    lsps = [LspProcess(tmp, name, chain.url, pushes.url, announce=True, sections=sections) for name in ("a", "b")]
    try:
        for lsp in lsps:
            await lsp.start()
            await lsp_fund(chain, lsp, 5_000_000)
        holder, keeper = (lsp_server(x.api, x.node_id, x.listen_addr) for x in lsps)
        await announced_channel(chain, holder, keeper, both(holder.sync, keeper.sync))
        await rounds(chain, tmp, holder, keeper, "-ours", n, settle, out)
    finally:
        for lsp in lsps:
            await lsp.stop()
        await pushes.stop()


async def theirs(chain: Chain, tmp: Path, n: int, settle: float, out: list[float]) -> None:
    async with AsyncExitStack() as stack:
        servers = []
        for name in ("server-a", "server-b"):
            peer = LdkNodePeer(tmp, name)
            await peer.start(
                chain.url, alias=name, async_payments_role="server", sync_interval_secs=1, anchor_channels=False
            )
            stack.push_async_callback(peer.stop)
            await fund(chain, peer, 5_000_000)
            servers.append(peer)
        holder, keeper = (ldk_node_server(p) for p in servers)
        await announced_channel(chain, holder, keeper, both(holder.sync, keeper.sync))
        await rounds(chain, tmp, holder, keeper, "-ldk", n, settle, out)


def both(*syncs: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await asyncio.gather(*(s() for s in syncs))

    return run


def summary(xs: list[float]) -> dict[str, Any]:
    if not xs:
        return {"rounds": 0}
    return {"rounds": len(xs), "median_s": statistics.median(xs), "min_s": min(xs), "max_s": max(xs)}


def table(result: dict[str, Any]) -> str:
    lines = [f"{'server':<10} {'rounds':>6} {'median s':>9} {'min s':>7} {'max s':>7}"]
    for name in ("ours", "ldk_node"):
        s = result[name]
        if s["rounds"]:
            lines.append(f"{name:<10} {s['rounds']:>6} {s['median_s']:>9.3f} {s['min_s']:>7.3f} {s['max_s']:>7.3f}")
        else:
            lines.append(f"{name:<10} {0:>6} {'-':>9} {'-':>7} {'-':>7}")
    if result.get("ratio") is not None:
        lines.append(f"end-to-end latency of a held payment, ours / ldk-node's (medians): {result['ratio']:.3f}")
    return "\n".join(lines)


async def main(n: int, settle: float, json_path: str | None) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-async-"))
    raw = _ldk.RegtestChain.open(str(tmp / "chain.sqlite"))
    chain = Chain(raw, await raw.start_server())
    measured: dict[str, list[float]] = {"ours": [], "ldk_node": []}
    errors: dict[str, str] = {}
    try:
        # Alternating would share one chain's blocks between the two set-ups' waits; one after
        # the other keeps each network's gossip rounds its own.
        for name, run in (("ours", ours), ("ldk_node", theirs)):
            try:
                await run(chain, tmp / name, n, settle, measured[name])
            except Exception as e:  # a benchmark prints what it measured, then why it stopped
                errors[name] = repr(e)
    finally:
        await raw.stop_server()
    result: dict[str, Any] = {k: summary(v) for k, v in measured.items()}
    result["samples_s"] = measured
    result["settle_s"] = settle
    ours_s, theirs_s = result["ours"], result["ldk_node"]
    result["ratio"] = ours_s["median_s"] / theirs_s["median_s"] if ours_s["rounds"] and theirs_s["rounds"] else None
    if errors:
        result["errors"] = errors
    print(table(result))
    for name, why in errors.items():
        print(f"{name}: stopped early: {why}")
    print(json.dumps(result))
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="held payments per server (default 5)")
    ap.add_argument(
        "--settle", type=float, default=3.0, help="seconds a payment stays held before the recipient returns"
    )
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    asyncio.run(main(args.rounds, args.settle, args.json))
