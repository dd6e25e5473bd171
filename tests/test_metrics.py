"""Prometheus /metrics of real LSP processes (`python main.py`, A -> LSP_a -> LSP_b -> B), scraped
over HTTP with the admin token and parsed with prometheus-client's own parser: the numbers follow
a held payment (held HTLCs and amount while held, the pid in LSP_b's mailbox while B is offline,
the push to B counted, then the release: latency histogram, settled hold, events handled), the
samples in LSP_a's monitor.sqlite hold the same values, no full node id is exported, and the
example Grafana dashboard names only metrics that are exported."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from lsp_node import protocol as p

from .lightningrod_net import Net, build_net, no_htlcs, own_chain, until
from .lsp_process import LspProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parent.parent
AMOUNT_MSAT = 30_000_000
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Net]:
    tmp = tmp_path_factory.mktemp("metrics")
    # The LSP processes inherit the environment: a sample a second instead of a minute.
    key = "LSP_MONITOR__SAMPLE_INTERVAL_SECS"
    old = os.environ.get(key)
    os.environ[key] = "1"
    try:
        async with own_chain(tmp) as (chain, make_node), build_net(chain, make_node, tmp) as n:
            yield n
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


async def scrape_text(lsp: LspProcess, auth: str | None = "good") -> tuple[int, str, str]:
    headers = {} if auth is None else {"Authorization": f"Bearer {lsp.token if auth == 'good' else auth}"}
    async with aiohttp.ClientSession() as s, s.get(lsp.admin + "/metrics", headers=headers) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


async def scrape(lsp: LspProcess) -> Samples:
    status, ctype, text = await scrape_text(lsp)
    assert status == 200 and ctype.startswith("text/plain"), (status, text[:300])
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def val(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


#: The sample names each metric type exports (a labelled counter none of whose labels happened yet
#: has no sample, only its TYPE line: a dashboard may still name it).
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


async def exported(lsp: LspProcess) -> set[str]:
    status, _, text = await scrape_text(lsp)
    assert status == 200
    return {f.name + sfx for f in text_string_to_metric_families(text) for sfx in SUFFIXES.get(f.type, ("",))}


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def sampled(lsp: LspProcess, name: str) -> list[tuple[float, float]]:
    """A series from the LSP's monitor.sqlite, read as another process (WAL allows it)."""
    path = lsp.dir / "data" / "regtest" / "monitor.sqlite"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return [(t, v) for t, v in db.execute("SELECT ts, value FROM samples WHERE name = ? ORDER BY ts", (name,))]


async def test_metrics_need_the_token(net: Net) -> None:
    for auth in (None, "wrong-token-" + "x" * 40):
        status, ctype, text = await scrape_text(net.lsp_a, auth)
        assert status == 401 and ctype.startswith("application/json"), (status, text)
        assert "bearer token" in json.loads(text)["error"]
        assert "lsp_" not in text


async def test_idle_numbers_match_the_node(net: Net) -> None:
    m = await scrape(net.lsp_a)
    info = await net.lsp_a.api("GET", "/api/info")
    channels = await net.lsp_a.api("GET", "/api/channels")
    assert val(m, "lsp_held_htlcs") == 0 and val(m, "lsp_held_msat") == 0
    assert val(m, "lsp_chain_height") == info["block_height"]
    # The LSP syncs every second in these tests.
    assert 0 <= val(m, "lsp_chain_sync_age_seconds") < 30
    assert val(m, "lsp_onchain_balance_sat") == info["balance"]["total_sat"]
    assert val(m, "lsp_channels") == len(channels) == 2
    status, _, text = await scrape_text(net.lsp_a)
    assert status == 200
    for c in channels:
        # A peer is named by its node id's first 8 digits, never the whole id (a client's identity).
        assert c["counterparty_node_id"] not in text
        key = {"channel": str(c["short_channel_id"]), "peer": c["counterparty_node_id"][:8]}
        assert val(m, "lsp_channel_outbound_msat", **key) == c["outbound_capacity_msat"]
        assert val(m, "lsp_channel_inbound_msat", **key) == c["inbound_capacity_msat"]
        assert val(m, "lsp_channel_capacity_sat", **key) == c["capacity_sat"]
    assert val(m, "lsp_lightning_outbound_msat") == sum(c["outbound_capacity_msat"] for c in channels)
    assert val(m, "lsp_lightning_inbound_msat") == sum(c["inbound_capacity_msat"] for c in channels)
    for result in ("accepted", "rate_limited", "forwarded", "intercepted", "undeliverable", "queue_refused"):
        assert ("lsp_onion_messages_total", frozenset({("result", result)})) in m
    # A's hold requests and device registration were messages to LSP_a, answered OK.
    assert val(m, "lsp_onion_messages_total", result="accepted") >= 1
    assert val(m, "lsp_protocol_replies_total", message="DeviceReply", status="OK") == 1
    assert val(m, "lsp_events_queued", lane="messages") == 0
    assert {"lsp_release_seconds_count", "lsp_release_seconds_bucket", "lsp_push_outbox"} <= names(m)
    for result in ("sent", "retried", "dead"):
        assert ("lsp_push_attempts_total", frozenset({("result", result)})) in m


async def test_a_held_payment_moves_the_numbers(net: Net) -> None:
    a0, b0 = await scrape(net.lsp_a), await scrape(net.lsp_b)
    request = await net.b.create_payment_request(AMOUNT_MSAT, "metrics")
    await net.phone_offline("bob")
    held = await net.a.pay_with_hold(request)

    async def hold_held() -> bool:
        return [h["state"] for h in await net.holds()] == ["held"]

    await until(hold_held, "HTLC held at LSP_a")
    [hold] = await net.holds()
    [htlc] = hold["htlcs"]  # type: ignore[misc]
    m = await scrape(net.lsp_a)
    assert val(m, "lsp_held_htlcs") == 1
    assert val(m, "lsp_held_msat") == htlc["inbound_msat"] >= AMOUNT_MSAT
    assert val(m, "lsp_holds", state="held") == 1
    assert val(m, "lsp_protocol_replies_total", message="HoldReply", status="OK") == 1 + val(
        a0, "lsp_protocol_replies_total", message="HoldReply", status="OK"
    )
    assert val(m, "lsp_events_handled_total", kind="htlc_intercepted") >= 1

    # The pid notice waits in LSP_b's mailbox for B, and B was pushed to come online.
    async def mail_waiting() -> bool:
        return val(await scrape(net.lsp_b), "lsp_mailbox_messages") == 1

    await until(mail_waiting, "the pid in LSP_b's mailbox")
    [mail] = await net.lsp_b.api("GET", "/api/mailbox")
    mb = await scrape(net.lsp_b)
    assert val(mb, "lsp_mailbox_bytes") == mail["size"] > 0
    assert val(mb, "lsp_mailbox_clients") == 1

    sent0 = val(b0, "lsp_push_attempts_total", result="sent")

    async def pushed() -> bool:
        return val(await scrape(net.lsp_b), "lsp_push_attempts_total", result="sent") > sent0

    await until(pushed, "LSP_b's push to B counted as sent")
    assert val(await scrape(net.lsp_b), "lsp_push_outbox", state="sent") >= 1
    await until(lambda: sampled(net.lsp_b, "pushes_sent_total")[-1][1] > sent0, "the push sampled")
    pushes = [v for _, v in sampled(net.lsp_b, "pushes_sent_total")]
    assert pushes == sorted(pushes), "a counter's samples never fall"

    # LSP_a's recorder saw the held HTLC: the same numbers in monitor.sqlite.
    await until(lambda: any(v == 1 for _, v in sampled(net.lsp_a, "held_htlcs")), "a sample with the held HTLC")
    assert htlc["inbound_msat"] in [v for _, v in sampled(net.lsp_a, "held_msat")]
    await until(lambda: any(v == 1 for _, v in sampled(net.lsp_b, "mailbox_messages")), "a sample of the mailbox")

    # B comes back, releases; the hold settles.
    b = await net.restart_phone("bob")
    await b.wait_for("payment_received", payment_hash=held.payment_hash)
    await until(lambda: held.payment_hash in b.unblock_replies, "LSP_a's answer to the unblock")
    assert b.unblock_replies[held.payment_hash].status == p.Status.OK
    await net.a.wait_for("payment_sent", payment_hash=held.payment_hash)

    async def settled() -> bool:
        return [h["state"] for h in await net.holds()] == ["settled"]

    await until(settled, "hold settled")
    await no_htlcs(net.alice, net.bob)
    m = await scrape(net.lsp_a)
    assert val(m, "lsp_held_htlcs") == 0 and val(m, "lsp_held_msat") == 0
    assert val(m, "lsp_holds", state="settled") == 1 + val(a0, "lsp_holds", state="settled")
    assert val(m, "lsp_holds", state="held") == 0
    assert val(m, "lsp_release_seconds_count") == 1 + val(a0, "lsp_release_seconds_count")
    assert 0 < val(m, "lsp_release_seconds_sum") - val(a0, "lsp_release_seconds_sum") < 30
    assert val(m, "lsp_protocol_replies_total", message="UnblockReply", status="OK") == 1
    assert val(m, "lsp_events_handled_total", kind="payment_forwarded") >= 1
    assert val(m, "lsp_events_failed_total", kind="payment_forwarded") == 0
    # LSP_a forwarded the HTLC: its channel to LSP_b sends less; its forwarding history has it.
    assert val(m, "lsp_lightning_outbound_msat") < val(a0, "lsp_lightning_outbound_msat")
    totals = (await net.lsp_a.api("GET", "/api/forwards"))["totals"]
    assert val(m, "lsp_forwards_total") == totals["count"] == 1 + val(a0, "lsp_forwards_total")
    assert val(m, "lsp_forward_fees_msat_total") == totals["fees_msat"]
    assert val(m, "lsp_forwarded_msat_total") == totals["amount_msat"] >= AMOUNT_MSAT

    mb = await scrape(net.lsp_b)
    assert val(mb, "lsp_mailbox_messages") == 0 and val(mb, "lsp_mailbox_bytes") == 0
    assert val(mb, "lsp_payments", direction="inbound", status="succeeded") == 0  # B was paid, not LSP_b
    assert val(mb, "lsp_events_handled_total", kind="onion_message_peer_connected") >= 1

    # The recorder follows: the latest samples have the HTLC released and the forward counted.
    await until(lambda: sampled(net.lsp_a, "held_htlcs")[-1][1] == 0, "a sample after the release")
    await until(lambda: sampled(net.lsp_a, "forwards_total")[-1][1] == totals["count"], "the forward sampled")
    assert sampled(net.lsp_a, "forward_fees_msat_total")[-1][1] == totals["fees_msat"]


async def test_payments_by_direction_and_status(net: Net) -> None:
    before = await scrape(net.lsp_a)
    invoice = await net.lsp_a.api("POST", "/api/invoices", {"amount_msat": 2_000_000, "description": "metrics"})
    await net.alice.pay_invoice(invoice["bolt11"])

    async def paid() -> bool:
        m = await scrape(net.lsp_a)
        return val(m, "lsp_payments", direction="inbound", status="succeeded") == 1 + val(
            before, "lsp_payments", direction="inbound", status="succeeded"
        )

    await until(paid, "LSP_a's inbound payment counted as succeeded")
    m = await scrape(net.lsp_a)
    assert val(m, "lsp_payments", direction="inbound", status="pending") == val(
        before, "lsp_payments", direction="inbound", status="pending"
    )
    # A payment to the LSP itself is no forward.
    assert val(m, "lsp_forwards_total") == val(before, "lsp_forwards_total")


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


async def test_grafana_dashboard_names_exported_metrics(net: Net) -> None:
    dashboard = json.loads((ROOT / "config" / "grafana-lsp-node.json").read_text())
    assert dashboard["__inputs"][0]["type"] == "datasource"
    assert all(panel["datasource"]["uid"] == "${DS_PROMETHEUS}" for panel in dashboard["panels"])
    available = await exported(net.lsp_a) | await exported(net.lsp_b)
    used = {name for e in expressions(dashboard) for name in re.findall(r"\blsp_[a-z_]+", e)}
    assert len(used) >= 20
    assert used <= available, f"the dashboard names metrics /metrics does not export: {used - available}"
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("holds", "held", "mailbox", "pushes", "events", "onion", "payments", "channel", "release", "sync"):
        assert topic in titles
