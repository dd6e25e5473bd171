"""Stock ldk-node 0.7.1 as a peer in tests: the `interop/ldk-node-peer` driver binary run as an
asyncio subprocess, one JSON command per line on its stdin, one JSON answer per line on its stdout.
`make interop-peer` builds it (`make test` does too)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from .lsp_process import free_port

#: Answers are small JSON lines; a channel list of a few channels fits many times over.
MAX_ANSWER = 1 << 20
#: Most commands answer in well under a second; sync and channel opens wait on the chain server.
CALL_TIMEOUT = 60.0


def binary() -> Path:
    """`$LDK_NODE_PEER`, else where `make interop-peer` puts it (`$CARGO_TARGET_DIR/debug`, the
    Makefile's default target directory when unset)."""
    if path := os.environ.get("LDK_NODE_PEER"):
        return Path(path)
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache/lsp_node/target")
    return Path(target) / "debug" / "ldk-node-peer"


class LdkNodePeerError(AssertionError):
    """The driver answered a command with an error (ldk-node refused it or it failed)."""


class LdkNodePeer:
    """One ldk-node in its own process; its data and logs live in `dir`."""

    def __init__(self, tmp_path: Path, name: str = "ldk") -> None:
        self.name = name
        self.dir = tmp_path / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: asyncio.subprocess.Process | None = None
        self.node_id = ""
        self.listen_addr = ""
        self._lock = asyncio.Lock()

    async def start(self, esplora_url: str, **options: Any) -> None:
        """Spawn the driver and start the node. `options`: the start command's other fields
        (alias, lsps1, lsps2, async_payments_role, anchor_channels, sync_interval_secs, listen_addr)."""
        exe = binary()
        if not exe.is_file():
            raise AssertionError(f"{exe} is missing: build it with `make interop-peer`")
        with open(self.dir / "driver.stderr.log", "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                str(exe),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                limit=MAX_ANSWER,
            )
        options.setdefault("listen_addr", self.listen_addr or f"127.0.0.1:{free_port()}")
        try:
            started = await self.call(
                "start", data_dir=str(self.dir / "data"), network="regtest", esplora_url=esplora_url, **options
            )
        except BaseException:
            await self.kill()
            raise
        self.node_id, self.listen_addr = started["node_id"], started["listen_addr"]

    async def call(self, cmd: str, timeout: float = CALL_TIMEOUT, **args: Any) -> Any:
        """Send one command and return its result; an error answer raises LdkNodePeerError. A
        driver that does not answer in `timeout` seconds is killed (its state is unknown)."""
        proc = self.proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise AssertionError(f"{self.name}: the driver is not running")
        async with self._lock:
            proc.stdin.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
            try:
                await proc.stdin.drain()
                line = await asyncio.wait_for(proc.stdout.readline(), timeout)
            except (TimeoutError, ConnectionError) as e:
                await self.kill()
                raise AssertionError(f"{self.name}: no answer to {cmd} ({e!r}); {self.log_tail()}") from None
        if not line:
            await self.kill()
            raise AssertionError(f"{self.name}: the driver exited during {cmd}; {self.log_tail()}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise LdkNodePeerError(f"{self.name} {cmd}: {answer['error']}{self.log_complaints()}")
        return answer["result"]

    def log_complaints(self, lines: int = 8) -> str:
        """The last ERROR and WARN lines of ldk-node's own log: its error answers name no cause
        ("Failed to send the given payment"), its log does (for example the router's refusal)."""
        path = self.dir / "data" / "ldk_node.log"
        if not path.exists():
            return ""
        found = [ln for ln in path.read_text(errors="replace").splitlines() if " ERROR " in ln or " WARN " in ln]
        return "".join(f"\n  ldk-node: {ln[-400:]}" for ln in found[-lines:])

    def log_tail(self, chars: int = 2000) -> str:
        path = self.dir / "driver.stderr.log"
        return f"stderr: {path.read_text()[-chars:]}" if path.exists() else "no stderr log"

    # -- commands ------------------------------------------------------------------------------------

    async def new_address(self) -> str:
        return str((await self.call("new_address"))["address"])

    async def balances(self) -> dict[str, int]:
        return dict(await self.call("balances"))

    async def sync(self) -> None:
        await self.call("sync")

    async def connect(self, node_id: str, address: str, persist: bool = False) -> None:
        await self.call("connect", node_id=node_id, address=address, persist=persist)

    async def open_channel(self, node_id: str, address: str, amount_sat: int, **kw: Any) -> str:
        """kw: push_msat, announce, fee_base_msat, fee_ppm. Returns the user channel id."""
        return str(
            (await self.call("open_channel", node_id=node_id, address=address, amount_sat=amount_sat, **kw))[
                "user_channel_id"
            ]
        )

    async def channels(self) -> list[dict[str, Any]]:
        return list(await self.call("channels"))

    async def receive_invoice(self, amount_msat: int, description: str = "", expiry_secs: int = 3600) -> dict[str, Any]:
        return dict(
            await self.call(
                "receive_invoice", amount_msat=amount_msat, description=description, expiry_secs=expiry_secs
            )
        )

    async def receive_via_jit_channel(
        self, amount_msat: int, description: str = "", expiry_secs: int = 3600, max_lsp_fee_msat: int | None = None
    ) -> dict[str, Any]:
        """An invoice whose payment makes the LSPS2 LSP (given to `start` as `lsps2`) open a channel."""
        return dict(
            await self.call(
                "receive_via_jit_channel",
                amount_msat=amount_msat,
                description=description,
                expiry_secs=expiry_secs,
                max_lsp_fee_msat=max_lsp_fee_msat,
            )
        )

    async def lsps1_request_channel(
        self, lsp_balance_sat: int, channel_expiry_blocks: int, client_balance_sat: int = 0, announce: bool = False
    ) -> dict[str, Any]:
        """Order a channel from the LSPS1 LSP (given to `start` as `lsps1`); returns the order."""
        return dict(
            await self.call(
                "lsps1_request_channel",
                lsp_balance_sat=lsp_balance_sat,
                client_balance_sat=client_balance_sat,
                channel_expiry_blocks=channel_expiry_blocks,
                announce=announce,
            )
        )

    async def lsps1_check_order(self, order_id: str) -> dict[str, Any]:
        return dict(await self.call("lsps1_check_order", order_id=order_id))

    async def pay_invoice(self, bolt11: str, amount_msat: int | None = None) -> dict[str, str]:
        """Start paying; returns payment_id and payment_hash (the outcome comes as an event)."""
        return dict(await self.call("pay_invoice", bolt11=bolt11, amount_msat=amount_msat))

    async def async_set_paths(self, paths_hex: str) -> None:
        """BOLT async payments, recipient: the blinded paths to its static invoice server."""
        await self.call("async_set_paths", paths_hex=paths_hex)

    async def async_receive_offer(self) -> str:
        """The offer to pay this node while it is offline; raises until its server keeps the invoice."""
        return str((await self.call("async_receive_offer"))["offer"])

    async def async_server_paths(self, recipient_id_hex: str) -> str:
        """ldk-node as the server (AsyncPaymentsRole::Server): paths for a recipient (hex)."""
        return str((await self.call("async_server_paths", recipient_id_hex=recipient_id_hex))["paths_hex"])

    async def pay_offer(self, offer: str, amount_msat: int) -> str:
        """Start paying a BOLT12 offer; returns the payment id (the outcome comes as an event)."""
        return str((await self.call("pay_offer", offer=offer, amount_msat=amount_msat))["payment_id"])

    async def graph_node(self, node_id: str) -> dict[str, bool]:
        """Whether this node's graph knows `node_id` (`known`) and its node announcement (`announced`)."""
        return dict(await self.call("graph_node", node_id=node_id))

    async def payment(self, payment_id: str) -> dict[str, Any]:
        return dict(await self.call("payment", payment_id=payment_id))

    async def send_onchain(self, address: str, amount_sat: int) -> str:
        return str((await self.call("send_onchain", address=address, amount_sat=amount_sat))["txid"])

    async def wait_event(self, *kinds: str, timeout: float = 60.0, **match: object) -> dict[str, Any]:
        """The next event of one of `kinds` whose fields equal `match`; others of those kinds
        that do not match are skipped (the driver keeps events of other kinds for later calls)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = max(0.0, deadline - loop.time())
            try:
                event = await self.call("wait_event", timeout=remaining + 10, kinds=list(kinds), timeout_secs=remaining)
            except LdkNodePeerError as e:
                raise AssertionError(f"{self.name}: no {kinds} event {match or ''} within {timeout}s ({e})") from None
            if all(event.get(k) == v for k, v in match.items()):
                return dict(event)

    async def stop(self) -> None:
        """Stop the node and wait for the driver to exit; kill it if either fails."""
        if self.proc is None:
            return
        try:
            await self.call("stop", timeout=60)
            await asyncio.wait_for(self.proc.wait(), 30)
        finally:
            await self.kill()

    async def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@asynccontextmanager
async def ldk_node_peer(
    tmp_path: Path, esplora_url: str, name: str = "ldk", **options: Any
) -> AsyncIterator[LdkNodePeer]:
    """A started ldk-node, stopped (or killed) when the block ends."""
    peer = LdkNodePeer(tmp_path, name)
    await peer.start(esplora_url, **options)
    try:
        yield peer
    finally:
        await peer.stop()
