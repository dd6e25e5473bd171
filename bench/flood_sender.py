"""The flooding peer of `bench/flood.py`, run as its own process.

Run in the benchmark's process, the flooder shared the interpreter, the asyncio loop and the two
cores with four other nodes and the LSP roles, and reached about 730 msg/s. As its own process it
has its own loop and LDK runtime, so what it offers is limited by the wire, not by the others.

It starts a LightningNode (no channel: a stranger), connects to the target and speaks JSON lines:

  stdout  {"ready": node_id}                           connected, waiting
  stdin   go                                           start sending `rate` messages a second
  stdout  {"t": s, "handed": n, "buffer_full": m}      once a second while sending
  stdin   stop (or EOF)                                stop sending
  stdout  {"done": true, "secs": s, "handed": n, ...}  the totals, then the node stops

Sends are paced by a 5 ms timer against the clock (`rate * elapsed` messages due), each tick's
batch handed to LDK in chunks of 8 concurrent sends. A send LDK refuses because this node's
outbound buffer for the target is full (256 KiB, about 180 messages) is counted, ends the tick and
is retried on the next, so the offered rate is what LDK accepted for the wire; a backlog is bounded
at one second of sends (beyond it, sends are counted as skipped, not burst).
Run alone: `python -m bench.flood_sender --dir D --esplora URL --target ID --addr HOST:PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import stat
import sys
import time

from lsp_node.engine import LightningNode, NodeOptions
from lsp_node.errors import OnionMessageError

PING = 65_601  # an odd application type the LSP does not serve: refused after decoding
TICK = 0.005
CHUNK = 8


def set_nodelay(port: int) -> int:
    """Turn Nagle off on this process's TCP connections to `port`; returns how many.

    LDK sends at most 32 onion messages per ping/pong round trip. With Nagle on, the 64-byte ping
    waits behind unacknowledged data for the receiver's delayed ACK, about 40 ms: about 730 msg/s,
    whatever the sender wants. This engine now turns Nagle off itself; an attacker's node may be
    any implementation and tunes its own sockets, so the flooder makes sure: LDK owns them, so
    they are found through /proc/self/fd."""
    done = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            s = socket.socket(fileno=os.dup(fd))  # closing the duplicate leaves LDK's fd open
        except OSError:
            continue
        with s:
            try:
                tcp = s.type == socket.SOCK_STREAM and s.family in (socket.AF_INET, socket.AF_INET6)
                if tcp and s.getpeername()[1] == port:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    done += 1
            except OSError:
                continue
    return done


def emit(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Sender:
    def __init__(self, node: LightningNode, target: str, rate: int, size: int) -> None:
        self.node, self.target, self.rate, self.size = node, target, rate, size
        self.handed = 0  # accepted by LDK for the target (queued for the wire)
        self.buffer_full = 0  # refused by LDK: our outbound buffer for the target was full
        self.skipped = 0  # more than a second behind: given up rather than burst
        self.t0 = 0.0

    async def _one(self) -> bool:
        try:
            await self.node.send_onion_message(PING, os.urandom(self.size), to_node=self.target)
            return True
        except OnionMessageError:
            return False

    async def run(self) -> None:
        self.t0 = time.perf_counter()
        last_report = self.t0
        while True:
            now = time.perf_counter()
            due = int((now - self.t0) * self.rate) - self.skipped
            behind = due - self.handed
            if behind > self.rate:  # a stalled wire: do not hide it behind a later burst
                self.skipped += behind - self.rate
                behind = self.rate
            while behind > 0:
                # Small concurrent chunks; the first refusal ends the tick: retrying a full buffer
                # at once only burns the CPU the LSP (on the same cores) needs to drain it.
                ok = await asyncio.gather(*(self._one() for _ in range(min(behind, CHUNK))))
                n = sum(ok)
                self.handed += n
                behind -= n
                if n < len(ok):
                    self.buffer_full += len(ok) - n
                    break
            if now - last_report >= 1.0:
                last_report = now
                emit({"t": round(now - self.t0, 3), "handed": self.handed, "buffer_full": self.buffer_full})
            await asyncio.sleep(TICK)


async def main(args: argparse.Namespace) -> None:
    options = NodeOptions(sync_interval_secs=5)
    node = await LightningNode.start(args.dir, esplora_url=args.esplora, name="flooder", options=options)
    try:
        await node.connect(args.target, args.addr)
        nodelay = set_nodelay(int(args.addr.rsplit(":", 1)[1])) if args.nodelay else 0
        emit({"ready": node.node_id, "nodelay_sockets": nodelay})
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while (line := await reader.readline()) and line.strip() != b"go":
            pass
        sender = Sender(node, args.target, args.rate, args.size)
        task = asyncio.create_task(sender.run())
        while (line := await reader.readline()) and line.strip() != b"stop":
            pass
        secs = time.perf_counter() - sender.t0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        emit(
            {
                "done": True,
                "secs": secs,
                "handed": sender.handed,
                "buffer_full": sender.buffer_full,
                "skipped": sender.skipped,
                "rate": sender.handed / secs if secs > 0 else 0.0,
            }
        )
    finally:
        await node.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, help="the flooding node's data directory")
    ap.add_argument("--esplora", required=True, help="the chain server's URL")
    ap.add_argument("--target", required=True, help="node id of the LSP to flood")
    ap.add_argument("--addr", required=True, help="the LSP's host:port")
    ap.add_argument("--rate", type=int, default=1000, help="messages per second")
    ap.add_argument("--nagle", dest="nodelay", action="store_false", help="leave the sockets as the engine set them")
    ap.add_argument("--size", type=int, default=200, help="payload bytes per message")
    asyncio.run(main(ap.parse_args()))
