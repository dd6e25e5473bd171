"""LightningRod benchmarks on the local chain, printed as tables:

1. release latency: payment_unblock handled at LSP_a until every held HTLC is forwarded (p50/p99);
2. end-to-end latency of a held payment with B online, divided by the same payment without a hold;
3. concurrently held HTLCs at LSP_a and its memory per held HTLC (RSS of the process);
4. mailbox messages stored per second (SQLite, synchronous=FULL), and through the node;
5. the asyncio loop's longest stall and its p99 while the LSPs work (bench/looplag.py), per phase.

The LSPs run in this process (LspRole, as main.py runs it) so their internals can be timed.
Run: `make bench-holds` or `python -m bench.holds --payments 40 [--json FILE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.looplag import LoopLag
from lsp_node import _ldk
from lsp_node import protocol as p
from lsp_node.app import LspRole
from lsp_node.client import Client
from lsp_node.config import LspSettings, NotificationSettings
from lsp_node.engine import HeldHop, LightningNode, NodeOptions
from lsp_node.lsp import LspStore
from lsp_node.lsp.store import HeldHtlc, Hold
from tests.conftest import Chain, open_channel


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


async def until(cond, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    """Poll `cond` (a function, or a coroutine function so the poll itself stays off the loop)."""
    deadline = time.monotonic() + timeout
    while not (await cond() if asyncio.iscoroutinefunction(cond) else cond()):
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.005)


async def main(payments: int, held_htlcs: int, mail: int, json_path: str | None = None) -> None:
    d = Path(tempfile.mkdtemp(prefix="bench-holds-"))
    raw = _ldk.RegtestChain.open(str(d / "chain.sqlite"))
    chain = Chain(raw, await raw.start_server())

    async def node(name: str, **kw: Any) -> LightningNode:
        options = NodeOptions(sync_interval_secs=5, **kw)
        return await LightningNode.start(str(d / name), esplora_url=chain.url, name=name, options=options)

    # The LSPs' flood limits are lifted (the mailbox messages pass LSP_a, then wait at LSP_b): the
    # mailbox phase measures how fast messages are stored, not the token bucket or the queue caps
    # (make bench-flood measures those).
    unlimited = {
        "onion_message_rate_per_sec": 0,
        "max_intercepted_per_peer": 10 * mail,
        "max_queued_onion_messages": 10 * mail,
    }
    lsp_a = await node("lsp_a", accept_intercept_htlcs=True, **unlimited)
    lsp_b = await node("lsp_b", accept_intercept_htlcs=True, **unlimited)
    alice, bob = await node("alice"), await node("bob")
    for n in (alice, lsp_a, lsp_b):
        await chain.fund(n, 40_000_000)
    await open_channel(chain, alice, lsp_a, 16_000_000)
    await open_channel(chain, lsp_a, lsp_b, 16_000_000, announce=True)
    await open_channel(chain, lsp_b, bob, 16_000_000)
    # The payer's router must learn the LSPs' public channel by gossip (SPEC.md §4.2); LDK
    # re-broadcasts it within 6 blocks, seen one at a time.
    for _ in range(6):
        chain.mine(1)
        await asyncio.gather(*(n.sync() for n in (alice, lsp_a, lsp_b, bob)))
    for n in (alice, bob):
        while (e := n.poll_event()) is not None:
            await n.event_handled(e)
    lsp_cfg = LspSettings(cltv_expiry_delta=72, max_holds_per_client=1000, max_held_htlcs_per_client=483)
    lag = LoopLag()
    lag.start()
    # Whatever was measured is printed even if a later phase fails (then the error is raised).
    measured: dict[str, float] = {}
    try:
        role_a = await LspRole.start(lsp_a, d / "lsp_a", lsp_cfg, NotificationSettings())
        role_b = await LspRole.start(lsp_b, d / "lsp_b", lsp_cfg, NotificationSettings())
        a, b = Client(alice, lsp_a.node_id), Client(bob, lsp_b.node_id)
        a.start()
        b.start()

        # Time the LSP's unblock handling where it happens: the durable release (with the event)
        # then the hand-over to LDK (beside the event lane), from the first to the answer.
        release_ms: list[float] = []
        overtaken: list[bool] = []
        holding = role_a.service.holding
        release, hand_over = holding.release, holding.hand_over
        started: dict[bytes, float] = {}

        async def timed_release(
            msg: p.PaymentUnblock, context: bytes | None
        ) -> p.UnblockReply | tuple[Hold, list[HeldHtlc]]:
            started[msg.payment_hash] = time.perf_counter()
            return await release(msg, context)

        async def timed_hand_over(msg: p.PaymentUnblock, hold: Hold, htlcs: list[HeldHtlc]) -> p.UnblockReply:
            r = await hand_over(msg, hold, htlcs)
            # With the payee online its unblock often overtakes A's HTLC (onion messages need no
            # commitment dance): then the release is durable at once and the HTLC is forwarded on
            # arrival; both count, and how many overtook is printed.
            if r.status in (p.Status.OK, p.Status.RELEASED_AWAITING_HTLC):
                release_ms.append((time.perf_counter() - started.pop(msg.payment_hash)) * 1000)
                overtaken.append(r.status == p.Status.RELEASED_AWAITING_HTLC)
            return r

        holding.release = timed_release  # type: ignore[method-assign]
        holding.hand_over = timed_hand_over  # type: ignore[method-assign]

        link = next(c for c in lsp_a.channels() if c.counterparty_node_id == lsp_b.node_id)
        assert link.short_channel_id is not None
        direct_hop = HeldHop(lsp_b.node_id, link.short_channel_id, 1000, 0, 72)

        lag.mark("payments")
        # 1 + 2: the same payments with and without a hold, interleaved, B online.
        held_ms, plain_ms = [], []
        for i in range(payments):
            req = await b.create_payment_request(10_000_000, f"held {i}")
            t0 = time.perf_counter()
            h = await a.pay_with_hold(req, hold_blocks=144)
            await a.wait_for("payment_sent", payment_hash=h.payment_hash)
            held_ms.append((time.perf_counter() - t0) * 1000)
            inv = await bob.create_invoice(10_000_000, f"plain {i}")
            t0 = time.perf_counter()
            # The same route and padding, but over LSP_a's real channel SCID: no interception.
            ph = await alice.pay_invoice_held(inv, lsp_a.node_id, [direct_hop], extra_final_cltv=144)
            await a.wait_for("payment_sent", payment_hash=ph)
            plain_ms.append((time.perf_counter() - t0) * 1000)
        measured["held payment e2e p50, ms"] = statistics.median(held_ms)
        measured["same payment without hold p50, ms"] = statistics.median(plain_ms)
        measured["release latency p50, ms"] = statistics.median(release_ms)
        measured["unblocks that overtook the HTLC, %"] = 100 * sum(overtaken) / len(overtaken)

        lag.mark("holding")
        # 3: many HTLCs held at once (B offline so nothing is released), RSS before and after.
        await b.stop()
        await bob.stop()
        await until(lambda: all(x.node_id != bob.node_id for x in lsp_b.peers()))
        requests = []
        bob = await node("bob")
        b2 = Client(bob, lsp_b.node_id)
        for i in range(held_htlcs):
            requests.append(await b2.create_payment_request(10_000_000, f"hold {i}"))
        await bob.stop()
        await until(lambda: all(x.node_id != bob.node_id for x in lsp_b.peers()))
        base_rss = rss_kib()
        t0 = time.perf_counter()
        for r in requests:
            await a.pay_held(r.invoice, hold_blocks=144)
        store_a = role_a.service.store

        def count_held() -> int:
            return sum(len(store_a.htlcs(h.hold_id, "held")) for h in store_a.holds(("held",)))

        async def all_held() -> bool:
            return await store_a.run(count_held) >= held_htlcs

        await until(all_held)
        hold_secs = time.perf_counter() - t0
        held_now = await store_a.run(count_held)
        rss_per_htlc = (rss_kib() - base_rss) * 1024 / max(held_now, 1)
        measured["HTLCs held at once"] = held_now
        measured["time to arm and hold them all, s"] = hold_secs

        lag.mark("mailbox")
        # 4: mailbox. (a) the store alone; (b) through LDK: messages to offline B intercepted at LSP_b.
        lag.mark(None)  # the store alone is timed synchronously, on purpose; not a loop stall of the LSP
        store = LspStore(d / "mailbox-bench.sqlite")
        msg = os.urandom(1300).hex()
        t0 = time.perf_counter()
        for _ in range(mail):
            store.put_message("02" + "ab" * 32, msg, time.time(), 3600)
        store_rate = mail / (time.perf_counter() - t0)
        measured["mailbox store writes/s"] = store_rate
        store.close()
        lag.mark("mailbox")
        path = requests[0].mailbox_path.hex()
        store_b = role_b.service.store
        before = len(await store_b.run(store_b.messages))
        # Caps raised before sending: messages that arrive over the default cap would be dropped.
        role_b.service.policy = type(role_b.service.policy)(
            mailbox_max_messages=10**6,
            mailbox_max_bytes=10**9,
            # One sender sends them all: its per-sender shares are raised too (SPEC.md §5.3).
            mailbox_max_messages_per_sender=10**6,
            mailbox_max_bytes_per_sender=10**9,
            mailbox_unknown_sender_max_messages=10**6,
            mailbox_unknown_sender_max_bytes=10**9,
            mailbox_sender_max_messages_total=10**6,
        )
        t0 = time.perf_counter()
        for i in range(mail):
            await alice.send_onion_message(65_601, b"x" * 200 + i.to_bytes(4, "big"), to_path=path)

        async def stored() -> bool:
            return len(await store_b.run(store_b.messages)) - before >= mail * 0.95

        await until(stored, timeout=300)
        node_rate = (len(await store_b.run(store_b.messages)) - before) / (time.perf_counter() - t0)
        await lag.stop()
    except BaseException:
        measured["event loop longest stall so far, ms"] = lag.max_ms
        print("\nmeasured before the failure:")
        for name, value in measured.items():
            print(f"{name:<48}{value:>14.2f}")
        print(json.dumps({"partial": measured}))
        raise

    print()
    print(f"{'LightningRod measure':<48}{'value':>14}")
    overtook = measured["unblocks that overtook the HTLC, %"]
    print(f"{'release latency p50 (unblock -> answered), ms':<48}{statistics.median(release_ms):>14.2f}")
    print(f"{'release latency p99, ms':<48}{pct(release_ms, 99):>14.2f}")
    print(f"{'  unblocks that overtook the HTLC, %':<48}{overtook:>14.0f}")
    print(f"{'held payment e2e p50, ms (B online)':<48}{statistics.median(held_ms):>14.1f}")
    print(f"{'same payment without hold p50, ms':<48}{statistics.median(plain_ms):>14.1f}")
    print(f"{'ratio held / plain (p50)':<48}{statistics.median(held_ms) / statistics.median(plain_ms):>14.2f}")
    print(f"{'HTLCs held at once (one client channel)':<48}{held_now:>14d}")
    print(f"{'time to arm and hold them all, s':<48}{hold_secs:>14.1f}")
    print(f"{'RSS growth per held HTLC (4 nodes in-process), B':<48}{rss_per_htlc:>14.0f}")
    print(f"{'mailbox store writes/s (1.3 KB, sync=FULL)':<48}{store_rate:>14.0f}")
    print(f"{'mailbox messages stored/s via onion messages':<48}{node_rate:>14.0f}")
    print(f"{'event loop longest stall, ms':<48}{lag.max_ms:>14.1f}")
    print(f"{'event loop stall p99 (5 ms ticks), ms':<48}{lag.pct_ms(99):>14.2f}")
    for phase, ms in lag.phase_max_ms.items():
        print(f"{'  longest stall while ' + phase + ', ms':<48}{ms:>14.1f}")
    print(f"(payments: {payments} held + {payments} plain; mailbox: {mail} messages)")

    result = {
        "params": {"payments": payments, "held_htlcs": held_htlcs, "mail": mail},
        "release_ms_p50": statistics.median(release_ms),
        "release_ms_p99": pct(release_ms, 99),
        "unblocks_overtaking_htlc_pct": overtook,
        "held_ms_p50": statistics.median(held_ms),
        "plain_ms_p50": statistics.median(plain_ms),
        "held_htlcs": held_now,
        "hold_secs": hold_secs,
        "rss_per_htlc_bytes": rss_per_htlc,
        "mailbox_store_writes_per_s": store_rate,
        "mailbox_node_msgs_per_s": node_rate,
        "loop_stall_ms_max": lag.max_ms,
        "loop_stall_ms_p99": lag.pct_ms(99),
        "loop_stall_ms_max_by_phase": lag.phase_max_ms,
    }
    print(json.dumps(result))
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")

    for c in (a, b):
        await c.stop()
    for role in (role_a, role_b):
        await role.stop()
    for n in (alice, lsp_a, lsp_b):
        await n.stop()
    await raw.stop_server()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--payments", type=int, default=30)
    ap.add_argument("--held-htlcs", type=int, default=40)
    ap.add_argument("--mail", type=int, default=300)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    asyncio.run(main(args.payments, args.held_htlcs, args.mail, args.json))
