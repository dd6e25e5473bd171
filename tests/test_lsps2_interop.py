"""LSPS2 (JIT channels) against stock ldk-node 0.7.1 as the client: ldk-node, with no channel,
asks our LSP (main.py with `[lsps2]` on) for a JIT invoice; a payer with a channel to the LSP
pays it; the LSP opens the channel, skims the opening fee, ldk-node receives the rest to the
msat, then pays and receives normally over that channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lsp_node._ldk import Lsps2Options
from lsp_node.config import load_settings
from lsp_node.engine import PaymentReceived, PaymentSent
from lsp_node.errors import ConfigError

from .conftest import Chain, NodeFactory, wait_event
from .ldk_node_peer import ldk_node_peer
from .lightningrod_net import until
from .lsp_process import LspProcess
from .lsps2_net import jit_lsp, lsps2_source


def test_lsps2_section_reaches_the_engine_options(tmp_path: Path) -> None:
    cfg = tmp_path / "lsp.toml"
    cfg.write_text("[lsps2]\nenabled = true\nmin_fee_msat = 1500000\nproportional_ppm = 4000\nzero_conf = false\n")
    opts = load_settings(cfg).node.options(
        accept_intercept_htlcs=False, lsps2=load_settings(cfg).lsps2.engine_options()
    )
    assert opts.lsps2 is not None
    assert (opts.lsps2.min_fee_msat, opts.lsps2.proportional_ppm, opts.lsps2.zero_conf) == (1_500_000, 4_000, False)
    # Keys left out keep the engine's defaults; the section off gives the engine no service.
    assert opts.lsps2.max_channel_sat == Lsps2Options().max_channel_sat
    cfg.write_text("[lsps2]\nmin_fee_msat = 1500000\n")
    assert load_settings(cfg).lsps2.engine_options() is None
    cfg.write_text("[lsps2]\nenabled = true\nproportional_ppm = 1000000\n")
    with pytest.raises(ConfigError, match="proportional_ppm"):
        load_settings(cfg)


def test_lsps2_limits_reach_the_engine_and_unsafe_terms_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "lsp.toml"
    cfg.write_text("[lsps2]\nenabled = true\nmax_unpaid_per_client = 3\nmax_unpaid_total_sat = 5000000\n")
    opts = load_settings(cfg).lsps2.engine_options()
    assert opts is not None and (opts.max_unpaid_per_client, opts.max_unpaid_total_sat) == (3, 5_000_000)
    assert (Lsps2Options().max_unpaid_per_client, Lsps2Options().cltv_expiry_delta) == (1, 72)
    cfg.write_text("[lsps2]\nenabled = true\ncltv_expiry_delta = 47\n")
    with pytest.raises(ConfigError, match="cltv_expiry_delta"):
        load_settings(cfg)
    # 10_000_000 sat of payment + 100_000 margin + 1% + 10_000 sat needs 10_211_000 sat.
    cfg.write_text("[lsps2]\nenabled = true\nmax_channel_sat = 10210999\n")
    with pytest.raises(ConfigError, match="max_channel_sat"):
        load_settings(cfg)
    cfg.write_text("[lsps2]\nenabled = true\nmax_channel_sat = 10211000\n")
    assert load_settings(cfg).lsps2.engine_options() is not None


async def lsp_channel_with(lsp: LspProcess, node_id: str) -> dict[str, Any]:
    chans = [c for c in await lsp.api("GET", "/api/channels") if c["counterparty_node_id"] == node_id]
    assert len(chans) == 1, chans
    return dict(chans[0])


async def test_ldk_node_gets_a_jit_channel_and_then_pays_and_receives(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with (
        jit_lsp(chain, make_node, tmp_path) as (lsp, payer),
        ldk_node_peer(tmp_path, chain.url, lsps2=lsps2_source(lsp)) as ldk,
    ):
        assert await ldk.channels() == []
        amount = 50_000_000
        fee = amount * 50_000 // 1_000_000  # 2_500_000 msat: above the 2_000_000 minimum
        invoice = await ldk.receive_via_jit_channel(amount, "first payment", max_lsp_fee_msat=fee)
        # The sale is on the operator's books before any payment: the SCID is the invoice's hint.
        sold = await lsp.api("GET", "/api/lsps2")
        assert sold["enabled"] is True
        [jit] = sold["channels"]
        assert (jit["client_node_id"], jit["state"]) == (ldk.node_id, "sold")
        assert (jit["min_fee_msat"], jit["proportional_ppm"]) == (2_000_000, 50_000)

        payment_id = await payer.pay_invoice(invoice["bolt11"])
        received = await ldk.wait_event("payment_received", payment_hash=invoice["payment_hash"], timeout=90)
        assert received["amount_msat"] == amount - fee
        sent = await wait_event(payer, "payment_sent", payment_id=payment_id)
        assert isinstance(sent, PaymentSent)

        # The JIT channel: static_remote_key, sized to the payment less the fee plus the margin,
        # plus 1% and 10,000 sat so the LSP's reserve and commitment fees never stop the forward.
        chan = await lsp_channel_with(lsp, ldk.node_id)
        wanted = (amount - fee) // 1000 + 100_000
        assert chan["capacity_sat"] == wanted + -(-wanted // 100) + 10_000
        [ldk_chan] = await ldk.channels()
        assert ldk_chan["counterparty_node_id"] == lsp.node_id

        async def booked() -> bool:
            [j] = (await lsp.api("GET", "/api/lsps2"))["channels"]
            return bool(j["state"] == "paid")

        await until(booked, "the JIT channel booked as paid")
        [jit] = (await lsp.api("GET", "/api/lsps2"))["channels"]
        assert jit["opening_fee_msat"] == fee and jit["channel_id"] == chan["channel_id"]
        forwards = await lsp.api("GET", "/api/forwards")
        [fwd] = [f for f in forwards["forwards"] if f["next_node_id"] == ldk.node_id]
        assert fwd["outbound_amount_msat"] == amount - fee

        # Zero-conf, but the funding was broadcast: confirm it, then use the channel normally.
        await until(lambda: len(chain.raw.mempool_txids()) >= 1, "JIT funding broadcast")
        chain.mine(6)
        await lsp.api("POST", "/api/sync")
        await ldk.sync()
        await payer.sync()

        out = 10_000_000

        async def ldk_usable() -> bool:
            await ldk.sync()
            return any(c["is_usable"] and c["outbound_capacity_msat"] > out for c in await ldk.channels())

        await until(ldk_usable, "ldk-node's JIT channel usable after confirmation")
        # The payer's invoice names its channel with the LSP as a route hint only while it is usable.
        await until(lambda: any(c.is_usable for c in payer.channels()), "the payer's channel usable")

        # ldk-node pays the payer over its JIT channel.
        bill = await payer.create_invoice(out, "from ldk-node")
        started = await ldk.pay_invoice(bill)
        paid = await ldk.wait_event("payment_successful", "payment_failed", payment_hash=started["payment_hash"])
        assert paid["kind"] == "payment_successful", paid
        got = await wait_event(payer, "payment_received", payment_hash=started["payment_hash"])
        assert isinstance(got, PaymentReceived) and got.amount_msat == out

        # And receives an ordinary invoice over it: no new channel, no skim.
        more = 20_000_000
        inv = await ldk.receive_invoice(more, "second payment")
        await payer.pay_invoice(inv["bolt11"])
        again = await ldk.wait_event("payment_received", payment_hash=inv["payment_hash"], timeout=60)
        assert again["amount_msat"] == more
        assert len(await ldk.channels()) == 1
        assert len((await lsp.api("GET", "/api/lsps2"))["channels"]) == 1
