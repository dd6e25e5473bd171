"""Flood control under load, printed as a table (and JSON):

One peer (a stranger with no channel) sends LSP_a onion messages at a fixed rate (1,000/s by
default) while Alice pays Bob with holds that Bob releases. Measured with and without the flood:

- release handling at LSP_a (payment_unblock handled until the held HTLCs are forwarded), p50/p99;
- a held payment end to end (hold, release, settled at Alice), p50/p99;
- the admin API's GET /api/info latency, p50/p99 (polled every 20 ms throughout);
- messages accepted vs dropped by the per-peer token bucket, and the event queue's depth.

The LSPs run in this process (LspRole and the admin app, as main.py runs them), so does the
flooding node: the figures include its CPU cost, on the same cores.
Run: `make bench-flood` or `python -m bench.flood --rate 1000 --payments 8 [--json FILE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.holds import pct, until
from lsp_node import _ldk
from lsp_node import protocol as p
from lsp_node.admin import create_app, serve
from lsp_node.app import LspRole
from lsp_node.client import Client
from lsp_node.config import LspSettings, NotificationSettings
from lsp_node.engine import LightningNode, NodeOptions
from lsp_node.errors import OnionMessageError
from tests.conftest import Chain, open_channel

PING = 65_601


class AdminPoller:
    """GET /api/info every `every` seconds; latencies kept per phase."""

    def __init__(self, url: str, token: str, every: float = 0.02) -> None:
        self.url, self.token, self.every = url, token, every
        self.phase = "idle"
        self.ms: dict[str, list[float]] = {}
        self.errors = 0
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with aiohttp.ClientSession(headers=headers) as s:
            while True:
                t0 = time.perf_counter()
                try:
                    async with s.get(self.url + "/api/info") as r:
                        await r.read()
                        ok = r.status == 200
                except aiohttp.ClientError:
                    ok = False
                if ok:
                    self.ms.setdefault(self.phase, []).append((time.perf_counter() - t0) * 1000)
                else:
                    self.errors += 1
                await asyncio.sleep(self.every)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


class Flooder:
    """Sends `rate` messages a second to `target`, in 10 ms slices; counts what it sent."""

    def __init__(self, node: LightningNode, target: str, rate: int) -> None:
        self.node, self.target, self.rate = node, target, rate
        self.sent = 0
        # Refused by the flooder's own node: its outbound buffer for the LSP was full (TCP and
        # LDK back-pressure), so the flood cannot go faster than the LSP reads.
        self.buffer_full = 0
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        t0 = time.perf_counter()
        while True:
            due = int((time.perf_counter() - t0) * self.rate)
            while self.sent + self.buffer_full < due:
                try:
                    await self.node.send_onion_message(PING, os.urandom(200), to_node=self.target)
                    self.sent += 1
                except OnionMessageError:
                    self.buffer_full += 1
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def main(rate: int, payments: int, json_path: str | None = None) -> None:
    d = Path(tempfile.mkdtemp(prefix="bench-flood-"))
    raw = _ldk.RegtestChain.open(str(d / "chain.sqlite"))
    chain = Chain(raw, await raw.start_server())

    async def node(name: str, **kw: Any) -> LightningNode:
        options = NodeOptions(sync_interval_secs=5, **kw)
        return await LightningNode.start(str(d / name), esplora_url=chain.url, name=name, options=options)

    lsp_a, lsp_b = await node("lsp_a", accept_intercept_htlcs=True), await node("lsp_b", accept_intercept_htlcs=True)
    alice, bob, flooder = await node("alice"), await node("bob"), await node("flooder")
    for n in (alice, lsp_a, lsp_b):
        await chain.fund(n, 40_000_000)
    await open_channel(chain, alice, lsp_a, 16_000_000)
    await open_channel(chain, lsp_a, lsp_b, 16_000_000)
    await open_channel(chain, lsp_b, bob, 16_000_000)
    await flooder.connect(lsp_a.node_id, lsp_a.listen_addr)
    for n in (alice, bob, flooder):
        while (e := n.poll_event()) is not None:
            await n.event_handled(e)
    lsp_cfg = LspSettings(cltv_expiry_delta=72, max_holds_per_client=1000, max_held_htlcs_per_client=483)
    role_a = await LspRole.start(lsp_a, d / "lsp_a", lsp_cfg, NotificationSettings())
    role_b = await LspRole.start(lsp_b, d / "lsp_b", lsp_cfg, NotificationSettings())
    token = "bench-token"
    runner, url = await serve(create_app(lsp_a, role_a.service, token), "127.0.0.1:0")
    a, b = Client(alice, lsp_a.node_id), Client(bob, lsp_b.node_id)
    a.start()
    b.start()

    release_ms: dict[str, list[float]] = {}
    phase = "baseline"
    service = role_a.service
    original = service.on_unblock

    async def timed(msg: p.PaymentUnblock, context: bytes | None) -> p.UnblockReply:
        t0 = time.perf_counter()
        r = await original(msg, context)
        if r.status == p.Status.OK:
            release_ms.setdefault(phase, []).append((time.perf_counter() - t0) * 1000)
        return r

    service.on_unblock = timed  # type: ignore[method-assign]

    admin = AdminPoller(url, token)
    admin.start()
    held_ms: dict[str, list[float]] = {}
    depth_max = {"messages": 0, "other": 0}

    async def held_payments(label: str) -> None:
        for i in range(payments):
            req = await b.create_payment_request(10_000_000, f"{label} {i}")
            t0 = time.perf_counter()
            h = await a.pay_with_hold(req, hold_blocks=144)
            await a.wait_for("payment_sent", timeout=120, payment_hash=h.payment_hash)
            held_ms.setdefault(label, []).append((time.perf_counter() - t0) * 1000)

    admin.phase = phase = "baseline"
    await held_payments("baseline")

    before = await lsp_a.onion_message_stats()
    flood = Flooder(flooder, lsp_a.node_id, rate)
    admin.phase = phase = "flood"
    t_flood = time.perf_counter()
    flood.start()

    async def sample_depth() -> None:
        while True:
            s = await lsp_a.onion_message_stats()
            depth_max["messages"] = max(depth_max["messages"], s.queued_messages)
            depth_max["other"] = max(depth_max["other"], s.queued_other)
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample_depth())
    await asyncio.sleep(2.0)  # the flood reaches its steady state before the payments
    await held_payments("flood")
    await flood.stop()
    flood_secs = time.perf_counter() - t_flood
    sampler.cancel()
    await admin.stop()

    async def settled() -> bool:
        s = await lsp_a.onion_message_stats()
        return s.accepted + s.rate_limited - before.accepted - before.rate_limited >= flood.sent * 0.99

    await until(settled, timeout=60)
    after = await lsp_a.onion_message_stats()
    accepted = after.accepted - before.accepted
    dropped = after.rate_limited - before.rate_limited

    def row(label: str, v: float, fmt: str = ".1f") -> None:
        print(f"{label:<56}{format(v, fmt):>14}")

    print()
    print(f"{'flood control measure':<56}{'value':>14}")
    row("flood: messages sent by one peer", flood.sent, "d")
    row("flood: refused by the sender's full outbound buffer", flood.buffer_full, "d")
    row("flood: achieved rate, msg/s", flood.sent / flood_secs)
    row("flood: accepted by the token bucket", accepted, "d")
    row("flood: dropped by the token bucket", dropped, "d")
    row("flood: message events refused by a full queue", after.queue_refused - before.queue_refused, "d")
    row("event queue depth max, message lane", depth_max["messages"], "d")
    row("event queue depth max, other lane", depth_max["other"], "d")
    for label in ("baseline", "flood"):
        rel, e2e, adm = release_ms.get(label, [0.0]), held_ms.get(label, [0.0]), admin.ms.get(label, [0.0])
        row(f"[{label}] release handling p50, ms", statistics.median(rel), ".2f")
        row(f"[{label}] release handling p99, ms", pct(rel, 99), ".2f")
        row(f"[{label}] held payment e2e p50, ms", statistics.median(e2e))
        row(f"[{label}] held payment e2e p99, ms", pct(e2e, 99))
        row(f"[{label}] admin GET /api/info p50, ms", statistics.median(adm), ".2f")
        row(f"[{label}] admin GET /api/info p99, ms", pct(adm, 99), ".2f")
    print(
        f"(rate limit: {NodeOptions().onion_message_rate_per_sec}/s, burst {NodeOptions().onion_message_burst}; "
        f"{payments} held payments per phase; admin errors: {admin.errors})"
    )

    result = {
        "params": {"rate": rate, "payments": payments},
        "sent": flood.sent,
        "sender_buffer_full": flood.buffer_full,
        "achieved_rate": flood.sent / flood_secs,
        "accepted": accepted,
        "rate_limited": dropped,
        "queue_refused": after.queue_refused - before.queue_refused,
        "queue_depth_max": depth_max,
        "phases": {
            label: {
                "release_ms_p50": statistics.median(release_ms.get(label, [0.0])),
                "release_ms_p99": pct(release_ms.get(label, [0.0]), 99),
                "held_e2e_ms_p50": statistics.median(held_ms.get(label, [0.0])),
                "held_e2e_ms_p99": pct(held_ms.get(label, [0.0]), 99),
                "admin_info_ms_p50": statistics.median(admin.ms.get(label, [0.0])),
                "admin_info_ms_p99": pct(admin.ms.get(label, [0.0]), 99),
            }
            for label in ("baseline", "flood")
        },
    }
    print(json.dumps(result))
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")

    for c in (a, b):
        await c.stop()
    for r in (role_a, role_b):
        await r.stop()
    await runner.cleanup()
    for n in (alice, bob, flooder, lsp_a, lsp_b):
        await n.stop()
    await raw.stop_server()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=1000, help="messages per second from the flooding peer")
    ap.add_argument("--payments", type=int, default=8, help="held payments per phase")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    asyncio.run(main(args.rate, args.payments, args.json))
