"""`make demo`: a local four-node network (A, LSP_a, LSP_b, B; the LSPs are `lsp-node run`
processes with their dashboards on known ports) walks one async payment step by step, then keeps
running for the operator to look at until Ctrl-C.

It reuses the network the end-to-end tests run on (tests/lightningrod_net.py): the same code that
the suite proves is what the demo shows. A and B are phones (in-process LDK nodes with the reference
client); the chain is the embedded regtest chain; pushes go to a local HTTP receiver that prints
them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from lsp_node import protocol as p
from tests.lightningrod_net import Net, PushReceiver, build_net, own_chain, state_is, until

AMOUNT_MSAT = 50_000_000
_started = time.monotonic()


def step(text: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f}s] {text}", flush=True)


def on_push(device: str, body: dict[str, object]) -> None:
    # The receiver stands in for FCM/APNs: what a phone would be woken with (kind only, no amount).
    step(f"push receiver: '{str(body.get('message', '')).split(':')[0]}' for device {device}")


async def walk(net: Net) -> None:
    step(f"A = {net.alice.node_id[:16]}..  B = {net.bob.node_id[:16]}..")
    step("B creates a payment request (invoice + its LSP's mailbox path), hands it to A, goes offline")
    request = await net.b.create_payment_request(AMOUNT_MSAT, "demo: an async payment")
    await net.phone_offline("bob")

    step(f"A asks LSP_a to hold its HTLCs and pays {AMOUNT_MSAT // 1000:,} sat")
    held = await net.a.pay_with_hold(request)
    await until(lambda: state_is(net, "held"), "HTLC held at LSP_a")
    hold = (await net.holds())[0]
    step(f"LSP_a holds the HTLC: hold {str(hold['hold_id'])[:12]}.., state {hold['state']}")

    step("A goes offline too: nobody who is paying or being paid is online now")
    await net.phone_offline("alice")
    step("the pid notice for B waits in LSP_b's mailbox, and LSP_b pushed B (the push line above)")
    await until(lambda: "message_waiting" in net.pushes.kinds_for("bob-phone"), "the push to B", 60)

    step("B comes online, fetches its mail and sends the pid to LSP_a (unblock)")
    b = await net.restart_phone("bob")
    received = await b.wait_for("payment_received", payment_hash=held.payment_hash)
    step(f"B received {received.amount_msat // 1000:,} sat")
    await until(lambda: held.payment_hash in b.unblock_replies, "LSP_a's answer to the unblock")
    assert b.unblock_replies[held.payment_hash].status == p.Status.OK
    step("LSP_a released the HTLC and answered OK; the preimage waits for A at LSP_a")

    await until(lambda: "preimage_waiting" in net.pushes.kinds_for("alice-phone"), "the push to A", 60)
    step("A comes online and learns the payment completed")
    a = await net.restart_phone("alice")
    sent = await a.wait_for("payment_sent", payment_hash=held.payment_hash)
    await until(lambda: state_is(net, "settled"), "the hold settled")
    step(f"A's payment succeeded (fee {sent.fee_paid_msat} msat); the hold at LSP_a is settled")


async def main(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="lsp-demo-"))
    launcher = [str(Path(sys.executable).with_name("lsp-node")), "run"]
    admin = (f"127.0.0.1:{args.port_a}", f"127.0.0.1:{args.port_b}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    step(f"state of this run: {work}")
    step("starting the embedded regtest chain, LSP_a and LSP_b (lsp-node run), A and B; opening channels")
    async with (
        own_chain(work) as (chain, make_node),
        build_net(chain, make_node, work, pushes=PushReceiver(on_push), admin_listens=admin, launcher=launcher) as net,
    ):
        for name, lsp in (("LSP_a", net.lsp_a), ("LSP_b", net.lsp_b)):
            token_file = lsp.dir / "data" / "regtest" / "admin.token"
            step(f"{name}: dashboard {lsp.admin}/  (sign in with the token in {token_file})")
        step(f"esplora (regtest) at {chain.url}")
        await walk(net)
        if args.exit:
            step("done")
            return 0
        step("done; everything keeps running: look at the dashboards. Ctrl-C stops all.")
        await stop.wait()
        step("stopping")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    step("stopped")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port-a", type=int, default=9740, help="LSP_a's dashboard and admin API port")
    parser.add_argument("--port-b", type=int, default=9741, help="LSP_b's dashboard and admin API port")
    parser.add_argument("--exit", action="store_true", help="stop once the payment settled (for tests)")
    parser.add_argument("--keep", action="store_true", help="keep the run's state directory")
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main(parser.parse_args())))
