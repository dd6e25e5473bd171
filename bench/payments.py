"""Payment latency (p50/p99) and sustained payments/s, direct and over one hop, on the local chain.

Run with `make bench` (or `python -m bench.payments --count 300 --concurrency 20`). Prints a table.
Latency is measured from the pay call to the payer's payment_sent event as Python sees it,
so it includes the PyO3 boundary, the SQLite event queue and the asyncio loop.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from lsp_node import _ldk
from lsp_node.engine import LightningNode, NodeOptions
from tests.conftest import Chain, open_channel


class Payer:
    """Consumes a node's events and resolves one future per payment hash."""

    def __init__(self, node: LightningNode) -> None:
        self.node = node
        self.waiting: dict[str, asyncio.Future[str]] = {}
        self.task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async for event in self.node.events():
            await self.node.event_handled(event)
            h = getattr(event, "payment_hash", None)
            fut = self.waiting.pop(h, None) if isinstance(h, str) else None
            if fut is not None and not fut.done():
                fut.set_result(event.kind)

    async def pay(self, invoice: str, payment_hash: str) -> float:
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting[payment_hash] = fut
        t0 = time.perf_counter()
        await self.node.pay_invoice(invoice)
        kind = await asyncio.wait_for(fut, 60)
        if kind != "payment_sent":
            raise RuntimeError(f"payment {payment_hash} ended with {kind}")
        return time.perf_counter() - t0


async def drain(node: LightningNode) -> asyncio.Task[None]:
    async def run() -> None:
        async for event in node.events():
            await node.event_handled(event)

    return asyncio.create_task(run())


async def invoices(payee: LightningNode, n: int, msat: int) -> list[tuple[str, str]]:
    out = []
    for i in range(n):
        inv = await payee.create_invoice(msat, f"bench {i}")
        out.append((inv, payee.decode_invoice(inv).payment_hash))
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def measure(payer: Payer, payee: LightningNode, count: int, concurrency: int) -> dict[str, float]:
    # Latency: one payment at a time.
    lat = [await payer.pay(inv, h) for inv, h in await invoices(payee, count, 10_000_000)]
    # Throughput: `concurrency` payments kept in flight.
    todo = await invoices(payee, count, 10_000_000)
    sem = asyncio.Semaphore(concurrency)

    async def one(inv: str, h: str) -> None:
        async with sem:
            await payer.pay(inv, h)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(inv, h) for inv, h in todo))
    elapsed = time.perf_counter() - t0
    return {
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": pct(lat, 99) * 1000,
        "mean_ms": statistics.fmean(lat) * 1000,
        "per_s": count / elapsed,
    }


async def main(count: int, concurrency: int, immediate: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        raw = _ldk.RegtestChain.open(str(Path(d) / "chain.sqlite"))
        chain = Chain(raw, await raw.start_server())
        nodes = [
            await LightningNode.start(
                str(Path(d) / n),
                esplora_url=chain.url,
                name=n,
                options=NodeOptions(sync_interval_secs=5, forward_immediately=immediate),
            )
            for n in ("a", "b", "c")
        ]
        a, b, c = nodes
        await chain.fund(a, 30_000_000)
        await chain.fund(b, 30_000_000)
        await open_channel(chain, a, b, 16_000_000)
        await open_channel(chain, b, c, 16_000_000)
        payer = Payer(a)
        drains = [await drain(b), await drain(c)]

        rows = [
            ("direct A->B", await measure(payer, b, count, concurrency)),
            ("one hop A->B->C", await measure(payer, c, count, concurrency)),
        ]
        print()
        mode = "forwarding immediately" if immediate else "LDK's random forward delay"
        print(
            f"{mode}; payments of 10,000 sat (above the dust limit); {count} sequential for latency, {count} with {concurrency} in flight for rate"
        )
        print(f"{'route':<18}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'payments/s':>13}")
        for name, r in rows:
            print(f"{name:<18}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}{r['mean_ms']:>10.1f}{r['per_s']:>13.1f}")

        payer.task.cancel()
        for t in drains:
            t.cancel()
        for n in nodes:
            await n.stop()
        await raw.stop_server()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--mode", choices=["both", "delayed", "immediate"], default="both")
    args = ap.parse_args()
    for immediate in {"both": (False, True), "delayed": (False,), "immediate": (True,)}[args.mode]:
        asyncio.run(main(args.count, args.concurrency, immediate))
