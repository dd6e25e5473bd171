"""After a full held payment with pushes (A -> LSP_a -> LSP_b -> B, both LSPs real `main.py`
processes), no log of the run -- the LSPs' stderr logs, every ldk.log, the test process's captured
records -- holds a seed phrase, a preimage, a pid, a device id or a push URL template."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lsp_node import protocol as p

from .conftest import Chain, NodeFactory
from .lightningrod_net import build_net, until


def seed_phrases(root: Path) -> list[str]:
    """Every run of 3 consecutive words of every seed: single BIP39 words ("channel", "about")
    are ordinary English and appear in logs legitimately."""
    out = []
    for seed in root.rglob("seed.mnemonic"):
        words = seed.read_text().split()
        assert len(words) == 24
        out += [" ".join(words[i : i + 3]) for i in range(len(words) - 2)]
    return out


async def test_no_secret_in_any_log_of_a_full_run(
    chain: Chain, make_node: NodeFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with build_net(chain, make_node, tmp_path) as net:
        request = p.PaymentRequest.decode((await net.b.create_payment_request(20_000_000, "tea")).encode())
        await net.phone_offline("bob")
        held = await net.a.pay_with_hold(request, hold_blocks=144)

        async def held_at_lsp_a() -> bool:
            return [h["state"] for h in await net.holds()] == ["held"]

        async def in_mailbox() -> bool:
            return len(await net.lsp_b.api("GET", "/api/mailbox")) == 1

        await until(held_at_lsp_a, "HTLC held at LSP_a")
        await until(in_mailbox, "pid waiting in LSP_b's mailbox")
        await until(lambda: "message_waiting" in net.pushes.kinds_for("bob-phone"), "push to B")
        await net.phone_offline("alice")
        b = await net.restart_phone("bob")
        await b.wait_for("payment_received", payment_hash=held.payment_hash)

        async def settled() -> bool:
            return [h["state"] for h in await net.holds()] == ["settled"]

        await until(settled, "hold settled at LSP_a")
        await until(lambda: "preimage_waiting" in net.pushes.kinds_for("alice-phone"), "push to A")
        a = await net.restart_phone("alice")
        sent = await a.wait_for("payment_sent", payment_hash=held.payment_hash)
        preimage = sent.preimage
        template = net.pushes.url
        lsp_ids = [net.lsp_a.node_id, net.lsp_b.node_id]
    assert preimage is not None and len(preimage) == 64

    stderr_logs = sorted(tmp_path.glob("lsp_*/stderr.log"))
    ldk_logs = sorted(tmp_path.rglob("ldk.log"))
    assert len(stderr_logs) == 2 and len(ldk_logs) == 4  # 2 LSPs + 2 phones
    texts = {str(f): f.read_text(errors="replace") for f in [*stderr_logs, *ldk_logs]}
    texts["caplog"] = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    # The capture is real: every source has content, and the expected benign lines are there.
    for name, text in texts.items():
        assert len(text) > 200, f"{name} is (nearly) empty"
    both = "".join(texts[str(f)] for f in stderr_logs)
    assert "notify: message_waiting pushed to client" in both
    assert "notify: preimage_waiting pushed to client" in both
    assert "hold " in both and " released" in both

    secrets = {
        "preimage": preimage,
        "pid": held.pid.hex(),
        "device id alice": "alice-phone",
        "device id bob": "bob-phone",
        "url template": template,
        "push path": template.split("://")[1].rsplit("/", 1)[0],
    }
    secrets.update({f"seed phrase {i}": s for i, s in enumerate(seed_phrases(tmp_path))})
    for name, text in texts.items():
        for what, secret in secrets.items():
            assert secret not in text, f"{what} found in {name}"
            assert secret.upper() not in text or not secret.isalnum(), f"{what} (upper case) found in {name}"
    # Ids are shown as 8-character prefixes at most, never whole (SPEC.md §7.3).
    for name, text in texts.items():
        if "stderr.log" in name:
            for node_id in [*lsp_ids, net.alice.node_id, net.bob.node_id]:
                assert node_id not in text, f"a whole node id in {name}"
