"""Flood control under load, printed as a table (and a JSON line):

One peer (a stranger with no channel) sends LSP_a onion messages at a fixed rate (1,000/s by
default) while Alice pays Bob with holds that Bob releases. Measured with and without the flood:

- what the flooder offered: messages handed to its LDK node for LSP_a, and messages LSP_a's
  onion-message guard saw (`onion_message_stats()`: accepted + dropped by the token bucket), as
  rates over the flood window;
- messages accepted vs dropped by the per-peer token bucket, refused by a full queue, and the
  event queue's depth per lane (sampled every 100 ms);
- release handling at LSP_a (payment_unblock handled until the held HTLCs are forwarded), p50/p99;
- a held payment end to end (hold, release, settled at Alice), p50/p99;
- the admin API's GET /api/info latency, p50/p99 (polled every 20 ms throughout).

The LSPs, Alice and Bob run in this process (LspRole and the admin app, as main.py runs them) so
their internals can be timed. The flooder is its own process (`bench/flood_sender.py`), with
Nagle off on its socket as an attacker would have it: LDK sends 32 onion messages per ping/pong
round trip, and with Nagle on each round trip waited ~40 ms for a delayed ACK (~730 msg/s).
Whatever was measured is printed even if a later step fails.
Run: `make bench-flood` or `python -m bench.flood --rate 1000 --payments 8 [--json FILE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.holds import pct, until
from lsp_node import _ldk
from lsp_node import protocol as p
from lsp_node.admin import Ops, create_app, serve
from lsp_node.app import LspRole
from lsp_node.client import Client
from lsp_node.config import LspSettings, NotificationSettings
from lsp_node.engine import LightningNode, NodeOptions, OnionMessageStats
from tests.conftest import Chain, open_channel

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("baseline", "flood")


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


class FlooderProcess:
    """bench/flood_sender.py in its own process, driven over its stdin/stdout JSON lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.progress: list[dict[str, Any]] = []  # its once-a-second counters
        self.done: dict[str, Any] | None = None
        self.nodelay_sockets = 0  # its connections to the LSP with Nagle off (see flood_sender)

    @classmethod
    async def start(cls, data_dir: Path, esplora: str, target: LightningNode, rate: int) -> FlooderProcess:
        log = await asyncio.to_thread(data_dir.with_suffix(".stderr").open, "wb")  # the child keeps it
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.flood_sender", "--dir", str(data_dir), "--esplora", esplora,
            "--target", target.node_id, "--addr", target.listen_addr, "--rate", str(rate),
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
        )  # fmt: skip
        log.close()
        self = cls(proc)
        ready = await asyncio.wait_for(self._line(), timeout=120)
        if ready is None or "ready" not in ready:
            raise RuntimeError(f"the flooder did not start (see {data_dir.with_suffix('.stderr')})")
        self.nodelay_sockets = int(ready.get("nodelay_sockets", 0))
        return self

    async def _line(self) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        raw = await self.proc.stdout.readline()
        return json.loads(raw) if raw else None

    async def _command(self, word: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(ConnectionError):  # it exited: its stdout says what it did
            self.proc.stdin.write(word.encode() + b"\n")
            await self.proc.stdin.drain()

    async def go(self) -> None:
        await self._command("go")
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while (msg := await self._line()) is not None:
            if msg.get("done"):
                self.done = msg
                return
            self.progress.append(msg)

    async def stop(self) -> dict[str, Any] | None:
        await self._command("stop")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.reader, timeout=30)
        return self.done

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def guard_seen(s: OnionMessageStats) -> int:
    """Messages from any peer that reached LSP_a's onion-message guard (bucket verdict given)."""
    return s.accepted + s.rate_limited


def report(r: dict[str, Any]) -> None:
    """Print what was measured: every row whose figure exists, then the JSON line."""

    def row(label: str, key: str, fmt: str = ".1f") -> None:
        v: Any = r
        for k in key.split("."):
            v = v.get(k) if isinstance(v, dict) else None
        if v is not None:
            print(f"{label:<60}{format(v, fmt):>12}")

    print()
    print(f"{'flood control measure':<60}{'value':>12}")
    row("flood window, s", "flood.secs", ".2f")
    row("flooder's sockets to LSP_a with Nagle off", "flood.sender_nodelay_sockets", "d")
    row("offered: handed to the flooder's LDK node", "flood.handed", "d")
    row("offered: handed to LDK, msg/s", "flood.handed_rate")
    row("offered: refused by the flooder's full outbound buffer", "flood.sender_buffer_full", "d")
    row("offered: given up, more than 1 s behind", "flood.sender_skipped", "d")
    row("seen by LSP_a's guard in the window", "flood.guard_seen_window", "d")
    row("seen by LSP_a's guard in the window, msg/s", "flood.guard_rate_window")
    row("seen by LSP_a's guard during the held payments, msg/s", "flood.guard_rate_payments")
    row("seen by LSP_a's guard in all (after draining)", "flood.guard_seen_total", "d")
    row("accepted by the token bucket", "flood.accepted", "d")
    row("dropped by the token bucket", "flood.rate_limited", "d")
    row("message events refused by a full queue", "flood.queue_refused", "d")
    row("event queue depth max, message lane", "flood.depth_max.messages", "d")
    row("event queue depth max, other lane", "flood.depth_max.other", "d")
    row("event queue depth p50, message lane", "flood.depth_p50.messages", "d")
    for label in PHASES:
        row(f"[{label}] release handling p50, ms", f"phases.{label}.release_ms_p50", ".2f")
        row(f"[{label}] release handling p99, ms", f"phases.{label}.release_ms_p99", ".2f")
        row(f"[{label}] held payment e2e p50, ms", f"phases.{label}.held_e2e_ms_p50")
        row(f"[{label}] held payment e2e p99, ms", f"phases.{label}.held_e2e_ms_p99")
        row(f"[{label}] admin GET /api/info p50, ms", f"phases.{label}.admin_info_ms_p50", ".2f")
        row(f"[{label}] admin GET /api/info p99, ms", f"phases.{label}.admin_info_ms_p99", ".2f")
    params = r.get("params", {})
    print(
        f"(rate limit {params.get('rate_limit')}/s, burst {params.get('burst')}; "
        f"{params.get('payments')} held payments per phase; admin errors: {r.get('admin_errors')})"
    )
    if "error" in r:
        print(f"stopped early: {r['error']}")
    print(json.dumps(r))


def phase_figures(release: list[float], held: list[float], admin: list[float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, xs in (("release_ms", release), ("held_e2e_ms", held), ("admin_info_ms", admin)):
        if xs:
            out[f"{name}_p50"] = statistics.median(xs)
            out[f"{name}_p99"] = pct(xs, 99)
    return out


class Bench:
    """The run's state, so that `finish` can print whatever `run` measured before it failed."""

    def __init__(self, rate: int, payments: int) -> None:
        opts = NodeOptions()
        self.rate, self.payments = rate, payments
        self.result: dict[str, Any] = {
            "params": {
                "rate": rate,
                "payments": payments,
                "rate_limit": opts.onion_message_rate_per_sec,
                "burst": opts.onion_message_burst,
            },
            "flood": {},
        }
        self.release_ms: dict[str, list[float]] = {}
        self.held_ms: dict[str, list[float]] = {}
        self.admin: AdminPoller | None = None
        self.cleanup: list[Any] = []  # coroutine functions, run last first

    async def run(self) -> None:
        d = Path(tempfile.mkdtemp(prefix="bench-flood-"))
        raw = _ldk.RegtestChain.open(str(d / "chain.sqlite"))
        chain = Chain(raw, await raw.start_server())
        self.cleanup.append(raw.stop_server)

        async def node(name: str, **kw: Any) -> LightningNode:
            options = NodeOptions(sync_interval_secs=5, **kw)
            n = await LightningNode.start(str(d / name), esplora_url=chain.url, name=name, options=options)
            self.cleanup.append(n.stop)
            return n

        lsp_a = await node("lsp_a", accept_intercept_htlcs=True)
        lsp_b = await node("lsp_b", accept_intercept_htlcs=True)
        alice, bob = await node("alice"), await node("bob")
        for n in (alice, lsp_a, lsp_b):
            await chain.fund(n, 40_000_000)
        await open_channel(chain, alice, lsp_a, 16_000_000)
        await open_channel(chain, lsp_a, lsp_b, 16_000_000)
        await open_channel(chain, lsp_b, bob, 16_000_000)
        for n in (alice, bob):
            while (e := n.poll_event()) is not None:
                await n.event_handled(e)
        lsp_cfg = LspSettings(cltv_expiry_delta=72, max_holds_per_client=1000, max_held_htlcs_per_client=483)
        role_a = await LspRole.start(lsp_a, d / "lsp_a", lsp_cfg, NotificationSettings())
        self.cleanup.append(role_a.stop)
        role_b = await LspRole.start(lsp_b, d / "lsp_b", lsp_cfg, NotificationSettings())
        self.cleanup.append(role_b.stop)
        token = secrets.token_urlsafe(32)  # the admin API refuses short tokens
        runner, url = await serve(create_app(Ops(lsp_a, role_a.service), token), "127.0.0.1:0")
        self.cleanup.append(runner.cleanup)
        a, b = Client(alice, lsp_a.node_id), Client(bob, lsp_b.node_id)
        a.start()
        b.start()
        self.cleanup += [a.stop, b.stop]
        flooder = await FlooderProcess.start(d / "flooder", chain.url, lsp_a, self.rate)
        self.cleanup.append(flooder.close)
        self.result["flood"]["sender_nodelay_sockets"] = flooder.nodelay_sockets

        phase = "baseline"
        service = role_a.service
        original = service.on_unblock

        async def timed(msg: p.PaymentUnblock, context: bytes | None) -> p.UnblockReply:
            t0 = time.perf_counter()
            r = await original(msg, context)
            if r.status == p.Status.OK:
                self.release_ms.setdefault(phase, []).append((time.perf_counter() - t0) * 1000)
            return r

        service.on_unblock = timed  # type: ignore[method-assign]
        self.admin = admin = AdminPoller(url, token)
        admin.start()

        async def held_payments(label: str) -> None:
            for i in range(self.payments):
                req = await b.create_payment_request(10_000_000, f"{label} {i}")
                t0 = time.perf_counter()
                h = await a.pay_with_hold(req, hold_blocks=144)
                await a.wait_for("payment_sent", timeout=120, payment_hash=h.payment_hash)
                self.held_ms.setdefault(label, []).append((time.perf_counter() - t0) * 1000)

        admin.phase = phase = "baseline"
        await held_payments("baseline")

        fl = self.result["flood"]
        depth: dict[str, list[int]] = {"messages": [], "other": []}

        async def sample_depth() -> None:
            while True:
                s = await lsp_a.onion_message_stats()
                depth["messages"].append(s.queued_messages)
                depth["other"].append(s.queued_other)
                fl["depth_max"] = {k: max(v) for k, v in depth.items()}
                fl["depth_p50"] = {k: int(statistics.median(v)) for k, v in depth.items()}
                await asyncio.sleep(0.1)

        before = await lsp_a.onion_message_stats()
        admin.phase = phase = "flood"
        t_flood = time.perf_counter()
        await flooder.go()
        sampler = asyncio.create_task(sample_depth())
        self.cleanup.append(lambda: _cancel(sampler))
        try:
            await asyncio.sleep(2.0)  # the flood reaches its steady state before the payments
            pay_from, t_pay = await lsp_a.onion_message_stats(), time.perf_counter()
            await held_payments("flood")
            pay_to, t_paid = await lsp_a.onion_message_stats(), time.perf_counter()
            fl["guard_rate_payments"] = (guard_seen(pay_to) - guard_seen(pay_from)) / (t_paid - t_pay)
        finally:
            done = await flooder.stop()
            window = time.perf_counter() - t_flood
            at_stop = await lsp_a.onion_message_stats()
            admin.phase = "after"
            fl["secs"] = window
            fl["guard_seen_window"] = guard_seen(at_stop) - guard_seen(before)
            fl["guard_rate_window"] = fl["guard_seen_window"] / window
            if done is not None:
                fl["handed"] = done["handed"]
                fl["handed_rate"] = done["rate"]
                fl["sender_buffer_full"] = done["buffer_full"]
                fl["sender_skipped"] = done["skipped"]
                fl["sender_secs"] = done["secs"]
            # [seconds, handed so far, buffer refusals so far], once a second: the rate's steadiness
            fl["sender_progress"] = [[m["t"], m["handed"], m["buffer_full"]] for m in flooder.progress]
        handed = int(fl.get("handed", 0))

        async def drained() -> bool:
            return guard_seen(await lsp_a.onion_message_stats()) - guard_seen(before) >= handed * 0.99

        with contextlib.suppress(TimeoutError):  # a shortfall shows in the figures
            await until(drained, timeout=60)
        after = await lsp_a.onion_message_stats()
        fl["guard_seen_total"] = guard_seen(after) - guard_seen(before)
        fl["accepted"] = after.accepted - before.accepted
        fl["rate_limited"] = after.rate_limited - before.rate_limited
        fl["queue_refused"] = after.queue_refused - before.queue_refused

    async def finish(self, json_path: str | None) -> None:
        r = self.result
        if self.admin is not None:
            await self.admin.stop()
            r["admin_errors"] = self.admin.errors
        admin_ms = self.admin.ms if self.admin else {}
        r["phases"] = {
            label: phase_figures(self.release_ms.get(label, []), self.held_ms.get(label, []), admin_ms.get(label, []))
            for label in PHASES
        }
        report(r)
        if json_path:
            Path(json_path).write_text(json.dumps(r, indent=2) + "\n")
        for step in reversed(self.cleanup):
            with contextlib.suppress(Exception):
                await step()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def main(rate: int, payments: int, json_path: str | None = None) -> None:
    bench = Bench(rate, payments)
    try:
        await bench.run()
    except Exception as e:
        bench.result["error"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        await bench.finish(json_path)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=1000, help="messages per second from the flooding peer")
    ap.add_argument("--payments", type=int, default=8, help="held payments per phase")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    asyncio.run(main(args.rate, args.payments, args.json))
