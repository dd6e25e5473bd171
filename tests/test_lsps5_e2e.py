"""LSPS5 end to end: an LSP process (main.py, `[lsps5]` on) and a wallet on this engine with
lightning-liquidity's LSPS5 client (stock ldk-node has none), over BOLT8 custom messages. The
wallet registers an HTTPS webhook once it has a channel (a stranger without one is refused:
"prior activity", and past five tries in an hour "slow down"); the LSP's signed `webhook_registered` notification arrives at a local HTTPS
receiver through the push outbox, and its signature verifies as the LSP's (bLIP-55)."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from lsp_node.engine import LightningNode, Lsps5WebhookReply

from .conftest import Chain, NodeFactory, wait_event
from .lightningrod_net import PushReceiver, until
from .lsp_process import LspProcess


@dataclass
class HttpsHook:
    """An HTTPS webhook receiver on 127.0.0.1 with a self-signed certificate (`cert`)."""

    cert: Path
    key: Path
    port: int = 0
    posts: list[tuple[dict[str, str], str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append((dict(request.headers), await request.text()))
        return web.Response(text="ok")


@pytest.fixture
async def https_hook(tmp_path: Path) -> AsyncIterator[HttpsHook]:
    cert, key = tmp_path / "hook.pem", tmp_path / "hook.key"
    args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"]
    names = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    await asyncio.to_thread(
        subprocess.run,
        ["openssl", *args, *names, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    hook = HttpsHook(cert, key)
    app = web.Application()
    app.router.add_post("/hook/{secret}", hook.handle)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx).start()
    hook.port = runner.addresses[0][1]
    yield hook
    await runner.cleanup()


async def reply(node: LightningNode) -> Lsps5WebhookReply:
    event = await wait_event(node, "lsps5_webhook_reply", timeout=30)
    assert isinstance(event, Lsps5WebhookReply)
    return event


async def test_a_client_registers_a_webhook_and_gets_a_signed_notification(
    chain: Chain, make_node: NodeFactory, tmp_path: Path, https_hook: HttpsHook
) -> None:
    pushes = PushReceiver()
    await pushes.start()
    # Loopback is a private destination: allowed here, and the receiver's CA trusted.
    lsps5 = {"allow_private_destinations": True, "ca_file": str(https_hook.cert), "max_webhooks_per_client": 2}
    lsp = LspProcess(tmp_path, "lsp", chain.url, pushes.url, lsps5=lsps5)
    await lsp.start()
    try:
        url = f"https://127.0.0.1:{https_hook.port}/hook/SECRETPATH"

        # No channel, no LSPS2 sale: lightning-liquidity refuses to keep state for a stranger.
        stranger = await make_node("stranger", lsps5_client=True)
        await stranger.connect(lsp.node_id, lsp.listen_addr)
        stranger.lsps5_set_webhook(lsp.node_id, "wallet", url)
        refused = await reply(stranger)
        assert not refused.ok and refused.app_name == "wallet"
        assert "NoPriorActivity" in refused.detail, refused.detail
        # Five set_webhook an hour per peer reach lightning-liquidity; the sixth is answered
        # "slow down" (1002) by the LSP's guard in front of it.
        for _ in range(4):
            stranger.lsps5_set_webhook(lsp.node_id, "wallet", url)
            assert "NoPriorActivity" in (await reply(stranger)).detail
        stranger.lsps5_set_webhook(lsp.node_id, "wallet", url)
        slow = await reply(stranger)
        assert not slow.ok and "SlowDown" in slow.detail, slow.detail
        await asyncio.sleep(1)
        assert https_hook.posts == []

        phone = await make_node("phone", lsps5_client=True)
        await chain.fund(phone, 2_000_000)
        await phone.connect(lsp.node_id, lsp.listen_addr)
        await phone.open_channel(lsp.node_id, 600_000)
        await until(lambda: len(chain.raw.mempool_txids()) >= 1, "phone's funding broadcast")
        chain.mine(6)

        async def usable() -> bool:
            await phone.sync()
            await lsp.api("POST", "/api/sync")
            return any(c.is_usable for c in phone.channels())

        await until(usable, "phone's channel usable")

        phone.lsps5_set_webhook(lsp.node_id, "wallet", url)
        registered = await reply(phone)
        assert registered.ok, registered.detail
        assert "1 of 2" in registered.detail

        await until(lambda: len(https_hook.posts) == 1, "the webhook_registered POST")
        headers, body = https_hook.posts[0]
        assert '"method":"lsps5.webhook_registered"' in body
        ts, sig = headers["x-lsps5-timestamp"], headers["x-lsps5-signature"]
        assert LightningNode.lsps5_verify(lsp.node_id, ts, sig, body)
        # Another node's key, or a changed body, does not verify.
        assert not LightningNode.lsps5_verify(phone.node_id, ts, sig, body)
        assert not LightningNode.lsps5_verify(
            lsp.node_id, ts, sig, body.replace("webhook_registered", "payment_incoming")
        )

        # The operator sees the webhook and the delivery, the URL as scheme and host only.
        state = await lsp.api("GET", "/api/lsps5")
        assert state["enabled"] is True
        [hook] = state["webhooks"]
        assert (hook["client_id"], hook["app_name"], hook["url"]) == (phone.node_id, "wallet", "https://127.0.0.1")
        [sent] = state["deliveries"]
        assert (sent["method"], sent["status"], sent["last_status"]) == ("lsps5.webhook_registered", "sent", 200)
        assert "SECRETPATH" not in str(state)

        # The operator asks the LSP to wake the phone for liquidity management: not while it is
        # connected (nothing to wake); once it is gone, one signed notification reaches the hook.
        route = f"/api/lsps5/{phone.node_id}/notify"
        ask = {"method": "lsps5.liquidity_management_request"}
        assert (await lsp.api("POST", route, ask))["outcome"] == "online"
        phone.disconnect(lsp.node_id)

        async def asked() -> bool:
            return (await lsp.api("POST", route, ask))["outcome"] != "online"

        await until(asked, "the LSP sees the phone gone")
        await until(lambda: len(https_hook.posts) == 2, "the liquidity_management_request POST")
        headers, body = https_hook.posts[1]
        assert '"method":"lsps5.liquidity_management_request"' in body
        assert LightningNode.lsps5_verify(lsp.node_id, headers["x-lsps5-timestamp"], headers["x-lsps5-signature"], body)
        # A cooldown holds the next one back (ours per method, checked first; lightning-liquidity's 60 s too).
        assert (await lsp.api("POST", route, ask))["outcome"] == "cooldown"
        await asyncio.sleep(1)
        assert len(https_hook.posts) == 2
        log = (lsp.dir / "stderr.log").read_text()
        assert "SECRETPATH" not in log and "https://127.0.0.1" not in log
    finally:
        await lsp.stop()
        await pushes.stop()
