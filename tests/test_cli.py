"""`lsp-node <command>` against real running LSPs (A -> LSP_a -> LSP_b -> B): every admin command
run as a process (`python -m lsp_node ...`), finding its node from the LSP's config file, its table
checked and its `--json` output compared with the API's answer; state-changing commands checked
by their effect; a refusal exits 1 with the API's reason; the token is never printed.

One network serves the module; the tests run in file order and build on each other's state."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from lsp_node.admin.api import ROUTES
from lsp_node.cli.admin_commands import COMMANDS
from lsp_node.engine import PaymentFailed

from .lightningrod_net import Net, build_net, confirm_channel, own_chain, until
from .lsp_process import ROOT, LspProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: The commands the module ran, by their words: the last test checks every command was run.
RAN: set[tuple[str, ...]] = set()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def cli(lsp: LspProcess, *args: str, token_file: bool = False) -> Result:
    """`python -m lsp_node ARGS` for the node of `lsp`: its config file, and the admin URL it
    printed (its config listens on port 0); the token comes from the config's data dir unless
    `token_file`."""
    matching = [c.words for c in COMMANDS if args[: len(c.words)] == c.words]
    if matching:
        RAN.add(max(matching, key=len))
    where = ["--config", str(lsp.dir / "lsp.toml"), "--admin-url", lsp.admin]
    if token_file:
        where += ["--token-file", str(lsp.dir / "data" / "regtest" / "admin.token")]
    p = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "lsp_node", *args, *where],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert lsp.token not in p.stdout + p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    return Result(p.returncode, p.stdout, p.stderr)


async def ok(lsp: LspProcess, *args: str, **kw: Any) -> Result:
    r = await cli(lsp, *args, **kw)
    assert r.code == 0, r.err
    return r


async def both(lsp: LspProcess, *args: str) -> tuple[str, Any]:
    """The table and the JSON answer of a read-only command."""
    table = (await ok(lsp, *args)).out
    return table, (await ok(lsp, *args, "--json")).json()


def header(table: str) -> list[str]:
    return table.splitlines()[0].split()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Net]:
    tmp = tmp_path_factory.mktemp("cli")
    async with own_chain(tmp) as (chain, make_node), build_net(chain, make_node, tmp) as n:
        yield n


async def test_every_admin_route_has_a_command() -> None:
    class Any_:
        def __getattr__(self, name: str) -> Any:
            return "x"

    def pattern(path: str) -> str:
        return "^" + re.sub(r"\{[a-z_]+\}", "[^/]+", path) + "$"

    covered = set()
    for c in COMMANDS:
        path = c.path(Any_()).split("?")[0]  # type: ignore[arg-type]
        [route] = [r for r in ROUTES if r.method == c.method and re.fullmatch(pattern(r.path), path)]
        covered.add((route.method, route.path))
    assert covered == {(r.method, r.path) for r in ROUTES}


async def test_node_commands(net: Net) -> None:
    a = net.lsp_a
    table, info = await both(a, "info")
    assert info["node_id"] == a.node_id and "node_id" in table and a.node_id in table
    table, bal = await both(a, "balances")
    assert str(bal["onchain"]["spendable_sat"]) in table and "lightning.outbound_msat" in table
    table, fees = await both(a, "fees")
    assert header(table) == ["BLOCKS", "SAT_PER_VB"] and sorted(fees, key=int) == ["1", "6", "12", "144"]
    table, peers = await both(a, "peers")
    assert {p["node_id"] for p in peers} == {net.alice.node_id, net.lsp_b.node_id} and net.alice.node_id in table
    table, chans = await both(a, "channels")
    assert header(table)[:3] == ["CHANNEL_ID", "COUNTERPARTY_NODE_ID", "STATE"] and len(chans) == 2
    assert all(c["channel_id"] in table for c in chans)
    table, cfg = await both(a, "config")
    assert cfg["notifications"]["templates"] == {"webhook": "<redacted>"} and "push/{device}" not in table
    assert re.search(r"^notifications\.templates\.webhook\s+<redacted>$", table, re.M), table
    table, served = await both(a, "async")
    assert served == {"enabled": False, "static_invoices": [], "held_htlcs": []}
    assert table.startswith("async payments off") and "held HTLCs:\n(none)" in table
    unknown = await cli(a, "async", "fail", "ab" * 32)
    assert unknown.code == 1 and "404 no async payment HTLC is held with that intercept id" in unknown.err, unknown
    refused = await cli(a, "async", "paths", net.alice.node_id)
    assert refused.code == 1 and "async payments server is off" in refused.err, refused
    table, lsps2 = await both(a, "lsps2")
    assert lsps2 == {"enabled": False, "channels": []} and table.startswith("LSPS2 off")
    table, lsps5 = await both(a, "lsps5")
    assert lsps5["enabled"] is False and lsps5["webhooks"] == [] and table.startswith("LSPS5 off")
    off = await cli(a, "lsps5", "notify", net.alice.node_id, "liquidity_management_request")
    assert off.code != 0 and "LSPS5 is off" in off.err, off
    table, lsps1 = await both(a, "lsps1")
    assert lsps1 == {"enabled": False, "orders": []} and table.startswith("LSPS1 off")
    doc = (await ok(a, "openapi")).json()
    assert doc["openapi"] == "3.1.0" and "/api/holds/{hold_id}/fail" in doc["paths"]
    assert (await ok(a, "sync")).out.strip() == f"height {net.chain.raw.height}"
    address = (await ok(net.lsp_b, "newaddress")).out.strip()
    assert address.startswith("bcrt1")
    txid = (await ok(a, "send", address, "60000")).out.strip()
    assert txid in net.chain.raw.mempool_txids()
    net.chain.mine(1)


async def test_invoice_pay_keysend_payments_and_forwards(net: Net) -> None:
    a, b = net.lsp_a, net.lsp_b
    inv = (await ok(b, "invoice", "create", "15000000", "--description", "from the cli", "--json")).json()
    table, invoices = await both(b, "invoices", "--limit", "1")
    assert invoices[0]["payment_hash"] == inv["payment_hash"] and "from the cli" in table and "pending" in table
    paid = await ok(a, "pay", inv["bolt11"])
    assert re.search(r"^status\s+succeeded$", paid.out, re.M), paid.out
    sent = (await ok(a, "keysend", b.node_id, "1000000", "--json")).json()
    assert sent["status"] == "succeeded" and "preimage" not in sent
    table, out = await both(a, "payments", "--direction", "outbound", "--limit", "2")
    assert [p["payment_id"] for p in out] == [sent["payment_id"], inv["payment_hash"]]
    assert header(table) == ["PAYMENT_ID", "DIRECTION", "STATUS", "AMOUNT_MSAT", "FEE_MSAT", "CREATED_AT"]

    async def received() -> bool:
        rows = (await ok(b, "payments", "--direction", "inbound", "--status", "succeeded", "--json")).json()
        return {inv["payment_hash"], sent["payment_id"]} <= {p["payment_id"] for p in rows}

    await until(received, "both payments received at LSP_b")
    # A payment A -> B is forwarded by both LSPs.
    bolt11 = await net.bob.create_invoice(7_000_000, "routed", 3600)
    await net.alice.pay_invoice(bolt11)
    await net.a.wait_for("payment_sent", payment_hash=net.bob.decode_invoice(bolt11).payment_hash)

    async def forwarded() -> bool:
        return bool((await ok(b, "forwards", "--json")).json()["forwards"])

    await until(forwarded, "a forward at LSP_b")
    table, fwd = await both(b, "forwards", "--limit", "5")
    assert fwd["totals"]["count"] == 1 and fwd["forwards"][0]["outbound_amount_msat"] == 7_000_000
    assert table.startswith(f"1 forwards, {fwd['totals']['fees_msat']} msat in fees, 7000000 msat forwarded")


async def test_holds_mailbox_and_fail_by_hand(net: Net) -> None:
    a, b = net.lsp_a, net.lsp_b
    request = await net.b.create_payment_request(9_000_000, "held for the cli")
    await net.phone_offline("bob")
    held = await net.a.pay_with_hold(request, hold_blocks=144)

    async def one_held() -> bool:
        return len((await ok(a, "holds", "--state", "held", "--json")).json()) == 1

    await until(one_held, "a held hold")
    table, holds = await both(a, "holds", "--state", "held")
    hold_id = holds[0]["hold_id"]
    assert hold_id in table and header(table)[:2] == ["HOLD_ID", "STATE"]
    shown, detail = await both(a, "hold", "show", hold_id)
    assert detail["state"] == "held" and "HTLCs:" in shown and "timeline:" in shown
    assert re.search(rf"^blocks_left\s+{detail['blocks_left']}$", shown, re.M)

    async def mail() -> bool:
        return bool((await ok(b, "mailbox", "--json")).json())

    await until(mail, "mail for B at LSP_b")
    table, boxes = await both(b, "mailbox")
    assert boxes[0]["client"] == net.bob.node_id and header(table) == ["CLIENT", "MESSAGES", "BYTES", "OLDEST_AT"]
    table, entries = await both(b, "mailbox", "show", net.bob.node_id)
    assert len(entries) == boxes[0]["messages"] and header(table)[:2] == ["ID", "SIZE"]
    table, everything = await both(b, "mailbox", "list")
    assert everything == [{**e, "client": net.bob.node_id} for e in entries]
    purged = await ok(b, "mailbox", "purge", net.bob.node_id)
    assert purged.out.strip() == f"purged {len(entries)} messages of {net.bob.node_id}"
    assert (await ok(b, "mailbox")).out.strip() == "(none)"

    failed = await ok(a, "hold", "fail", hold_id)
    assert re.search(r"^state\s+failed$", failed.out, re.M) and re.search(r"^failed\s+yes$", failed.out, re.M)
    assert isinstance(await net.a.wait_for("payment_failed", payment_hash=held.payment_hash), PaymentFailed)
    again = await cli(a, "hold", "fail", hold_id)
    assert again.code == 1 and f"error: POST /api/holds/{hold_id}/fail: 400 the hold is already failed" in again.err
    await net.restart_phone("bob")


async def test_devices_outbox_and_pushes(net: Net) -> None:
    a = net.lsp_a
    table, devices = await both(a, "devices")
    assert devices[0]["device"] == "alice-…" and "alice-phone" not in table
    test = (await ok(a, "push", "test", net.alice.node_id, "--json")).json()
    assert test == {"client": net.alice.node_id, "devices": 1, "queued": True}
    await until(lambda: "test" in net.pushes.kinds_for("alice-phone"), "the test push at the receiver")

    async def sent() -> bool:
        rows = (await ok(a, "outbox", "--state", "sent", "--json")).json()
        return any(r["kind"] == "test" for r in rows)

    await until(sent, "the test push sent")
    table, rows = await both(a, "outbox", "--state", "sent")
    push_id = next(r["id"] for r in rows if r["kind"] == "test")
    assert header(table)[:4] == ["ID", "CLIENT", "KIND", "STATE"] and "test" in table
    retry = await cli(a, "push", "retry", str(push_id), token_file=True)
    assert retry.code == 1 and "400 the push was sent already" in retry.err


async def test_peers_and_channels(net: Net) -> None:
    a, b = net.lsp_a, net.lsp_b
    assert (await ok(a, "disconnect", b.node_id)).out.strip() == f"disconnected from {b.node_id}"
    assert (await ok(a, "connect", b.node_id, b.listen_addr)).out.strip() == f"connected to {b.node_id}"
    await net.links_up()
    opened = (await ok(a, "channel", "open", b.node_id, "150000", "--json")).json()
    await confirm_channel(net.chain, [a, b], [])
    chans = (await ok(a, "channels", "--json")).json()
    [c] = [c for c in chans if c["user_channel_id"] == opened["user_channel_id"]]
    closing = await ok(a, "channel", "close", c["channel_id"], "--force")
    assert closing.out.strip() == f"closing {c['channel_id']} (force)"

    async def gone() -> bool:
        states = {x["channel_id"]: x["state"] for x in (await ok(a, "channels", "--json")).json()}
        return states.get(c["channel_id"], "closed") in ("closing", "closed")

    await until(gone, "the channel closing")
    refused = await cli(a, "channel", "close", "not-an-id")
    assert refused.code == 1 and "path parameter 'channel_id' must be a 32-byte channel id" in refused.err


async def test_usage_errors_and_every_command_ran(net: Net) -> None:
    bad = await cli(net.lsp_a, "holds", "--state", "lost")
    assert bad.code == 2 and "invalid choice" in bad.err
    unreachable = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "lsp_node",
            "info",
            "--config",
            str(net.lsp_a.dir / "lsp.toml"),
            "--admin-url",
            "http://127.0.0.1:1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unreachable.returncode == 1 and "cannot reach the admin API" in unreachable.stderr
    assert {c.words for c in COMMANDS} - RAN == set()
