"""LSPS1 (buy a channel, bLIP-51) against stock ldk-node 0.7.1 as the client: ldk-node orders a
channel from our LSP (main.py with `[lsps1]` on), a payer with a channel to the LSP pays the
order's invoice, the LSP opens the channel to ldk-node, ldk-node's order shows it, and
payments then reach ldk-node over it, with the LSP selling LSPS1 alone and beside LSPS2. Paid on
chain instead (the order's wallet address, once confirmed enough), the order is opened the same
way, its invoice is no longer taken, and coins sent after it are owed back. An
order paid while ldk-node is offline still gets its channel once ldk-node is back, even across a
kill -9 of the LSP in between. Orders outside the terms, or past the per-client limit, are
refused (ldk-node reports the request failed) and leave nothing on the books. (ldk-node ignores
error replies: their exact codes are checked in the engine's handler tests.)"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lsp_node._ldk import Lsps1Options
from lsp_node.config import load_settings
from lsp_node.engine import LightningNode, PaymentFailed, PaymentSent
from lsp_node.errors import ConfigError

from .conftest import Chain, NodeFactory, wait_event
from .ldk_node_peer import LdkNodePeer, LdkNodePeerError, ldk_node_peer
from .lightningrod_net import lsp_fund, until
from .lsp_process import LspProcess
from .lsps2_net import TERMS as LSPS2_TERMS
from .lsps2_net import lsps2_source

# The operator's terms: channels of 100k..2M sat, a lease of 144..4320 blocks, 1000 sat plus
# 1% of the LSP side; two unpaid orders per client.
TERMS: dict[str, object] = {
    "min_channel_sat": 100_000,
    "max_channel_sat": 2_000_000,
    "min_channel_expiry_blocks": 144,
    "max_channel_expiry_blocks": 4_320,
    "fee_base_sat": 1_000,
    "fee_ppm": 10_000,
    "order_valid_secs": 600,
    "max_pending_per_client": 2,
}
# No client of the LightningRod role here: the push template is never used.
UNUSED_PUSH = "json://127.0.0.1:9/push/{device}"


def test_lsps1_section_reaches_the_engine_options_and_bad_terms_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "lsp.toml"
    cfg.write_text("[lsps1]\nenabled = true\nfee_base_sat = 500\nmax_pending_per_client = 4\n")
    s = load_settings(cfg)
    opts = s.node.options(accept_intercept_htlcs=False, lsps1=s.lsps1.engine_options())
    assert opts.lsps1 is not None and opts.lsps2 is None
    assert (opts.lsps1.fee_base_sat, opts.lsps1.max_pending_per_client) == (500, 4)
    assert opts.lsps1.max_channel_sat == Lsps1Options().max_channel_sat
    assert (opts.lsps1.onchain_payment, opts.lsps1.min_onchain_payment_confirmations) == (False, 1)
    assert opts.lsps1.max_onchain_offers_per_day == 200
    cfg.write_text(
        "[lsps1]\nenabled = true\nonchain_payment = true\nmin_onchain_payment_confirmations = 3\n"
        "max_onchain_offers_per_day = 7\n"
    )
    opts1 = load_settings(cfg).lsps1.engine_options()
    assert opts1 is not None and (opts1.onchain_payment, opts1.min_onchain_payment_confirmations) == (True, 3)
    assert opts1.max_onchain_offers_per_day == 7
    cfg.write_text("[lsps1]\nfee_base_sat = 500\n")
    assert load_settings(cfg).lsps1.engine_options() is None
    for bad, key in [
        ("min_channel_sat = 300000\nmax_channel_sat = 200000", "min_channel_sat"),
        ("max_client_balance_sat = 16700000", "max_client_balance_sat"),
        ("fee_ppm = 1000000", "fee_ppm"),
        ("order_valid_secs = 10", "order_valid_secs"),
        ("max_channel_sat = 20000000", "max_channel_sat"),
        ("min_onchain_payment_confirmations = 0", "min_onchain_payment_confirmations"),
        ("max_onchain_offers_per_day = -1", "max_onchain_offers_per_day"),
    ]:
        cfg.write_text(f"[lsps1]\nenabled = true\n{bad}\n")
        with pytest.raises(ConfigError, match=key):
            load_settings(cfg)


async def lsps1_orders(lsp: LspProcess) -> list[dict[str, Any]]:
    answer = await lsp.api("GET", "/api/lsps1")
    assert answer["enabled"] is True
    return list(answer["orders"])


async def order_completed(lsp: LspProcess, what: str, timeout: float = 60.0, *, sync: bool = False) -> None:
    """Wait until the LSP's one order is COMPLETED (with `sync`, syncing the LSP's wallet each look)."""

    async def completed() -> bool:
        if sync:
            await lsp.api("POST", "/api/sync")
        return [o["state"] for o in await lsps1_orders(lsp)] == ["COMPLETED"]

    await until(completed, what, timeout)


async def payer_with_channel(chain: Chain, make_node: NodeFactory, lsp: LspProcess) -> Any:
    payer = await make_node("payer")
    await chain.fund(payer, 3_000_000)
    await payer.connect(lsp.node_id, lsp.listen_addr)
    await payer.open_channel(lsp.node_id, 1_500_000)
    await until(lambda: len(chain.raw.mempool_txids()) >= 1, "payer's funding broadcast")
    chain.mine(6)

    async def usable() -> bool:
        await payer.sync()
        await lsp.api("POST", "/api/sync")
        return any(c.is_usable for c in payer.channels())

    await until(usable, "payer's channel usable")
    return payer


@pytest.mark.parametrize("with_lsps2", [False, True], ids=["lsps1", "lsps1+lsps2"])
async def test_ldk_node_buys_a_channel_pays_by_invoice_and_then_receives_over_it(
    chain: Chain, make_node: NodeFactory, tmp_path: Path, with_lsps2: bool
) -> None:
    # With [lsps2] on too, lightning-liquidity serves LSPS2 behind our handler, and ldk-node is
    # given the LSP as both its LSPS1 and its LSPS2 source.
    lsps2 = LSPS2_TERMS if with_lsps2 else None
    lsp = LspProcess(tmp_path, "lsp", chain.url, UNUSED_PUSH, role=with_lsps2, lsps1=TERMS, lsps2=lsps2)
    await lsp.start()
    try:
        await lsp_fund(chain, lsp, 5_000_000)
        payer = await payer_with_channel(chain, make_node, lsp)
        lsps1 = {"node_id": lsp.node_id, "address": lsp.listen_addr, "token": None}
        sources = {"lsps1": lsps1, "lsps2": lsps2_source(lsp)} if with_lsps2 else {"lsps1": lsps1}
        async with ldk_node_peer(tmp_path, chain.url, **sources) as ldk:
            assert await ldk.channels() == []
            order = await ldk.lsps1_request_channel(lsp_balance_sat=500_000, channel_expiry_blocks=1_000)
            bolt11 = order["payment_options"]["bolt11"]
            fee = 1_000 + 500_000 * 10_000 // 1_000_000  # 6_000 sat
            assert (bolt11["state"], bolt11["fee_total_sat"], bolt11["order_total_sat"]) == (
                "EXPECT_PAYMENT",
                str(fee),
                str(fee),
            )
            assert order["order_params"]["lsp_balance_sat"] == "500000"
            assert order["channel_state"] is None
            # On the operator's books before any payment, with the invoice the client was given.
            [booked] = await lsps1_orders(lsp)
            assert (booked["order_id"], booked["client_node_id"]) == (order["order_id"], ldk.node_id)
            assert (booked["state"], booked["payment_state"], booked["total_sat"]) == ("CREATED", "EXPECT_PAYMENT", fee)
            assert booked["invoice"] == bolt11["invoice"]
            # get_order answers the stored order as often as asked.
            for _ in range(2):
                again = await ldk.lsps1_check_order(order["order_id"])
                assert again["payment_options"] == order["payment_options"]

            payment_id = await payer.pay_invoice(bolt11["invoice"])
            sent = await wait_event(payer, "payment_sent", payment_id=payment_id)
            assert isinstance(sent, PaymentSent)

            await until(lambda: len(chain.raw.mempool_txids()) >= 1, "the order's channel funding broadcast", 60)

            await order_completed(lsp, "the order completed")
            [done] = await lsps1_orders(lsp)
            assert (done["payment_state"], done["open_attempts"], done["last_error"]) == ("PAID", 0, None)
            chans = [c for c in await lsp.api("GET", "/api/channels") if c["counterparty_node_id"] == ldk.node_id]
            assert [c["channel_id"] for c in chans] == [done["channel_id"]]
            assert chans[0]["capacity_sat"] == 500_000
            status = await ldk.lsps1_check_order(order["order_id"])
            assert status["payment_options"]["bolt11"]["state"] == "PAID"
            assert status["channel_state"]["funding_outpoint"] == done["funding_outpoint"]

            chain.mine(6)
            await lsp.api("POST", "/api/sync")

            async def ldk_usable() -> bool:
                await ldk.sync()
                await payer.sync()
                return any(c["is_usable"] and c["counterparty_node_id"] == lsp.node_id for c in await ldk.channels())

            await until(ldk_usable, "ldk-node's bought channel usable")
            [ldk_chan] = await ldk.channels()
            assert ldk_chan["channel_value_sat"] == 500_000

            # The bought inbound liquidity: ldk-node receives a payment over it (within the 10% of
            # the channel ldk-node lets in flight to it by default, outside LSPS2 channels).
            amount = 40_000_000
            inv = await ldk.receive_invoice(amount, "over the bought channel")
            await payer.pay_invoice(inv["bolt11"])
            got = await ldk.wait_event("payment_received", payment_hash=inv["payment_hash"], timeout=60)
            assert got["amount_msat"] == amount
            assert len(await ldk.channels()) == 1
            if with_lsps2:
                # LSPS2 still works behind our handler on the same LSP: a JIT invoice's payment
                # opens a second channel and reaches ldk-node less the opening fee.
                jit_amount = 50_000_000
                jit_fee = jit_amount * 50_000 // 1_000_000
                jit = await ldk.receive_via_jit_channel(jit_amount, "a JIT payment", max_lsp_fee_msat=jit_fee)
                await payer.pay_invoice(jit["bolt11"])
                got = await ldk.wait_event("payment_received", payment_hash=jit["payment_hash"], timeout=90)
                assert got["amount_msat"] == jit_amount - jit_fee
                [sale] = (await lsp.api("GET", "/api/lsps2"))["channels"]
                assert sale["client_node_id"] == ldk.node_id
                assert len(await ldk.channels()) == 2
                assert len(await lsps1_orders(lsp)) == 1, "the JIT channel is no LSPS1 order's"
    finally:
        await lsp.stop()


# The same terms with payment on chain offered: two confirmations, orders of 5,000 sat and more.
ONCHAIN_TERMS: dict[str, object] = {
    **TERMS,
    "onchain_payment": True,
    "min_onchain_payment_confirmations": 2,
    "min_onchain_payment_size_sat": 5_000,
}


async def test_ldk_node_buys_a_channel_paid_on_chain_and_coins_sent_after_are_owed_back(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    lsp = LspProcess(tmp_path, "lsp", chain.url, UNUSED_PUSH, role=False, lsps1=ONCHAIN_TERMS)
    await lsp.start()
    try:
        await lsp_fund(chain, lsp, 5_000_000)
        payer = await payer_with_channel(chain, make_node, lsp)
        lsps1 = {"node_id": lsp.node_id, "address": lsp.listen_addr, "token": None}
        async with ldk_node_peer(tmp_path, chain.url, lsps1=lsps1) as ldk:
            order = await ldk.lsps1_request_channel(lsp_balance_sat=500_000, channel_expiry_blocks=1_000)
            fee = 1_000 + 500_000 * 10_000 // 1_000_000  # 6_000 sat
            onchain = order["payment_options"]["onchain"]
            assert (onchain["state"], onchain["order_total_sat"], onchain["min_onchain_payment_confirmations"]) == (
                "EXPECT_PAYMENT",
                str(fee),
                2,
            )
            assert onchain["expires_at"] == order["payment_options"]["bolt11"]["expires_at"]
            address = onchain["address"]
            [booked] = await lsps1_orders(lsp)
            assert (booked["onchain_address"], booked["onchain_min_confirmations"]) == (address, 2)
            assert (booked["paid_by"], booked["onchain_received_sat"], booked["refund_owed_sat"]) == (None, 0, 0)

            # Paid from the chain's own wallet; one confirmation is not enough.
            txid = chain.raw.fund_address(address, fee)
            chain.mine(1)
            await lsp.api("POST", "/api/sync")
            [o] = await lsps1_orders(lsp)
            assert (o["payment_state"], o["onchain_received_sat"]) == ("EXPECT_PAYMENT", 0)
            assert await ldk.channels() == []

            chain.mine(1)
            await lsp.api("POST", "/api/sync")
            await until(lambda: len(chain.raw.mempool_txids()) >= 1, "the order's channel funding broadcast", 60)

            await order_completed(lsp, "the order completed")
            [done] = await lsps1_orders(lsp)
            assert (done["payment_state"], done["paid_by"], done["onchain_received_sat"]) == ("PAID", "onchain", fee)
            [outpoint] = done["onchain_outpoints"]
            assert outpoint.startswith(f"{txid}:")
            assert (done["refund_owed_sat"], done["open_attempts"]) == (0, 0)
            chans = [c for c in await lsp.api("GET", "/api/channels") if c["counterparty_node_id"] == ldk.node_id]
            assert [(c["channel_id"], c["capacity_sat"]) for c in chans] == [(done["channel_id"], 500_000)]
            # ldk-node reads the order paid, both ways, with its channel.
            status = await ldk.lsps1_check_order(order["order_id"])
            assert status["payment_options"]["onchain"]["state"] == "PAID"
            assert status["payment_options"]["bolt11"]["state"] == "PAID"
            assert status["channel_state"]["funding_outpoint"] == done["funding_outpoint"]

            # Its invoice is no longer taken: the payer's HTLC is failed back.
            payment_id = await payer.pay_invoice(order["payment_options"]["bolt11"]["invoice"])
            failed = await wait_event(payer, "payment_failed", payment_id=payment_id)
            assert isinstance(failed, PaymentFailed)
            assert f"failed back: order {order['order_id']} is COMPLETED / PAID" in engine_log(lsp)

            # Coins sent to the address afterwards do not buy a second channel: they are owed back.
            chain.raw.fund_address(address, 7_000)
            chain.mine(2)

            async def owed() -> bool:
                await lsp.api("POST", "/api/sync")
                [o] = await lsps1_orders(lsp)
                return bool(o["refund_owed_sat"] == 7_000)

            await until(owed, "the second payment owed back")
            [after] = await lsps1_orders(lsp)
            assert (after["state"], after["paid_by"], after["onchain_received_sat"]) == (
                "COMPLETED",
                "onchain",
                fee + 7_000,
            )
            assert len(after["onchain_outpoints"]) == 2
            chans = [c for c in await lsp.api("GET", "/api/channels") if c["counterparty_node_id"] == ldk.node_id]
            assert len(chans) == 1, "never opened twice"
            assert "7000 sat received on chain are owed back" in engine_log(lsp)
            # The operator's dashboard says so first thing on its services page.
            page = await lsp.dashboard("/services")
            assert "1 order(s) owed a refund, 7,000 sat in all" in page
            assert f'data-owed="{order["order_id"]}"' in page
            row = page.split(f'data-order="{order["order_id"]}"')[1].split("</tr>")[0]
            assert "7,000 sat" in row and "by onchain" in row
    finally:
        await lsp.stop()


@dataclass
class Away:
    lsp: LspProcess
    ldk: LdkNodePeer
    payer: LightningNode
    lsps1: dict[str, Any]
    order: dict[str, Any]


@asynccontextmanager
async def order_paid_while_away(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> AsyncIterator[Away]:
    """An LSP selling on TERMS; ldk-node orders a 300k channel and goes offline; a payer with a
    channel to the LSP pays the order's invoice."""
    lsp = LspProcess(tmp_path, "lsp", chain.url, UNUSED_PUSH, role=False, lsps1=TERMS)
    await lsp.start()
    ldk = LdkNodePeer(tmp_path, "ldk")
    try:
        await lsp_fund(chain, lsp, 5_000_000)
        payer = await payer_with_channel(chain, make_node, lsp)
        lsps1 = {"node_id": lsp.node_id, "address": lsp.listen_addr, "token": None}
        await ldk.start(chain.url, lsps1=lsps1)
        order = await ldk.lsps1_request_channel(lsp_balance_sat=300_000, channel_expiry_blocks=1_000)
        await ldk.stop()
        payment_id = await payer.pay_invoice(order["payment_options"]["bolt11"]["invoice"])
        assert isinstance(await wait_event(payer, "payment_sent", payment_id=payment_id), PaymentSent)
        yield Away(lsp, ldk, payer, lsps1, order)
    finally:
        await ldk.stop()
        await lsp.stop()


async def test_an_order_paid_while_the_client_is_offline_is_opened_once_it_is_back_across_a_kill9(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with order_paid_while_away(chain, make_node, tmp_path) as away:
        lsp, ldk, lsps1, order = away.lsp, away.ldk, away.lsps1, away.order
        # Paid by someone else while the client is away: taken, nothing to open a channel to.

        async def paid() -> bool:
            [o] = await lsps1_orders(lsp)
            return bool(o["payment_state"] == "PAID")

        await until(paid, "the order booked paid")
        [o] = await lsps1_orders(lsp)
        assert (o["state"], o["channel_id"], o["open_attempts"]) == ("CREATED", None, 0)
        assert chain.raw.mempool_txids() == []

        # The LSP dies before the client is back; the paid order must survive it.
        lsp.kill9()
        await lsp.start()
        await ldk.start(chain.url, lsps1=lsps1)
        await ldk.connect(lsp.node_id, lsp.listen_addr)

        await order_completed(lsp, "the order's channel opened once the client is back", 90)
        [done] = await lsps1_orders(lsp)
        assert (done["payment_state"], done["order_id"]) == ("PAID", order["order_id"])
        chans = [c for c in await lsp.api("GET", "/api/channels") if c["counterparty_node_id"] == ldk.node_id]
        assert [(c["channel_id"], c["capacity_sat"]) for c in chans] == [(done["channel_id"], 300_000)]
        status = await ldk.lsps1_check_order(order["order_id"])
        assert status["payment_options"]["bolt11"]["state"] == "PAID"
        assert status["channel_state"]["funding_outpoint"] == done["funding_outpoint"]
        await until(lambda: len(chain.raw.mempool_txids()) >= 1, "the funding broadcast")
        chain.mine(6)

        async def ldk_usable() -> bool:
            await ldk.sync()
            await lsp.api("POST", "/api/sync")
            return any(c["is_usable"] for c in await ldk.channels())

        await until(ldk_usable, "ldk-node's bought channel usable")
        assert len(await ldk.channels()) == 1, "one channel for one order"


async def test_an_open_the_wallet_cannot_fund_keeps_the_order_paid_and_is_retried(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with order_paid_while_away(chain, make_node, tmp_path) as away:
        lsp, ldk, payer, lsps1 = away.lsp, away.ldk, away.payer, away.lsps1

        async def attempts(n: int) -> bool:
            [o] = await lsps1_orders(lsp)
            return bool(o["payment_state"] == "PAID" and o["open_attempts"] == n)

        await until(lambda: attempts(0), "the order booked paid")
        # Emptying the wallet would take the coins owed to the order: refused, saying so...
        drain = {"address": await payer.new_address(), "send_all": True}
        with pytest.raises(AssertionError, match="owed to 1 paid LSPS1 order"):
            await lsp.api("POST", "/api/onchain/send", drain)
        with pytest.raises(AssertionError, match="owed to 1 paid LSPS1 order"):
            await lsp.api("POST", "/api/channels", {"node_id": payer.node_id, "amount_sat": 4_800_000})
        # ...unless forced. The operator does so: when the client is back, the channel is opened
        # but cannot be funded, and LDK drops it.
        await lsp.api("POST", "/api/onchain/send", {**drain, "force": True})
        chain.mine(1)
        await lsp.api("POST", "/api/sync")
        await ldk.start(chain.url, lsps1=lsps1)
        await ldk.connect(lsp.node_id, lsp.listen_addr)
        await until(lambda: attempts(1), "the failed open counted", 60)
        [o] = await lsps1_orders(lsp)
        # Still owed: not failed, the reason shown to the operator.
        assert (o["state"], o["channel_id"]) == ("CREATED", None)
        assert "closed before it was funded" in o["last_error"]
        assert chain.raw.mempool_txids() == []

        # Coins again: the sweep's next try (a minute after the failure) opens the channel.
        await lsp_fund(chain, lsp, 2_000_000)

        await order_completed(lsp, "the order's channel opened on the retry", 150)
        [done] = await lsps1_orders(lsp)
        assert (done["payment_state"], done["open_attempts"]) == ("PAID", 1)
        chans = [c for c in await lsp.api("GET", "/api/channels") if c["counterparty_node_id"] == ldk.node_id]
        assert [(c["channel_id"], c["capacity_sat"]) for c in chans] == [(done["channel_id"], 300_000)]


def engine_log(lsp: LspProcess) -> str:
    return "".join(p.read_text(errors="replace") for p in lsp.dir.rglob("ldk.log"))


def lapse(lsp: LspProcess, order_id: str) -> None:
    """Move an order's expiry to the past in the LSP's node.sqlite (the LSP runs on)."""
    [db] = list(lsp.dir.rglob("node.sqlite"))
    with sqlite3.connect(db, timeout=10) as conn:
        assert conn.execute("UPDATE lsps1_orders SET expires_at = 1 WHERE order_id = ?", (order_id,)).rowcount == 1


async def test_payments_the_lsp_may_not_take_are_failed_back_to_the_payer_and_nothing_opens(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    lsp = LspProcess(tmp_path, "lsp", chain.url, UNUSED_PUSH, role=False, lsps1=TERMS)
    await lsp.start()
    ldk = LdkNodePeer(tmp_path, "ldk")
    try:
        await lsp_fund(chain, lsp, 5_000_000)
        payer = await payer_with_channel(chain, make_node, lsp)
        lsps1 = {"node_id": lsp.node_id, "address": lsp.listen_addr, "token": None}
        await ldk.start(chain.url, lsps1=lsps1)
        lapsed = await ldk.lsps1_request_channel(lsp_balance_sat=300_000, channel_expiry_blocks=1_000)
        kept = await ldk.lsps1_request_channel(lsp_balance_sat=300_000, channel_expiry_blocks=1_000)
        # The client stays connected: were the payment taken, its channel would open at once.

        # An expired order. The payer's clock is the LSP's (one machine), so it would refuse a
        # truly expired invoice itself: the order lapses in the LSP's books instead, as when the
        # LSP's clock runs ahead of the payer's. LDK still accepts the HTLC (the invoice is
        # valid by the block times it has seen); the LSP must not take it.
        lapse(lsp, lapsed["order_id"])
        payment_id = await payer.pay_invoice(lapsed["payment_options"]["bolt11"]["invoice"])
        failed = await wait_event(payer, "payment_failed", payment_id=payment_id)
        assert isinstance(failed, PaymentFailed)
        assert f"failed back: order {lapsed['order_id']}" in engine_log(lsp)
        by_id = {o["order_id"]: o for o in await lsps1_orders(lsp)}
        assert by_id[lapsed["order_id"]]["payment_state"] == "EXPECT_PAYMENT"
        assert chain.raw.mempool_txids() == []
        assert await ldk.channels() == []

        # LSPS1 turned off: an order's invoice is failed back too, not taken as an ordinary
        # payment with a channel owed that nothing would open.
        await lsp.stop()
        lsp.lsps1 = None
        await lsp.start()
        await payer.connect(lsp.node_id, lsp.listen_addr)
        await until(lambda: any(c.is_usable for c in payer.channels()), "the payer's channel usable again")
        payment_id = await payer.pay_invoice(kept["payment_options"]["bolt11"]["invoice"])
        failed = await wait_event(payer, "payment_failed", payment_id=payment_id)
        assert isinstance(failed, PaymentFailed)
        assert "failed back: LSPS1 is off" in engine_log(lsp)
        assert chain.raw.mempool_txids() == []
        assert [c for c in await lsp.api("GET", "/api/channels") if c["counterparty_node_id"] == ldk.node_id] == []
    finally:
        await ldk.stop()
        await lsp.stop()


async def test_orders_outside_the_terms_or_past_the_client_limit_are_refused(chain: Chain, tmp_path: Path) -> None:
    lsp = LspProcess(tmp_path, "lsp", chain.url, UNUSED_PUSH, role=False, lsps1=TERMS)
    await lsp.start()
    try:
        await lsp_fund(chain, lsp, 5_000_000)
        lsps1 = {"node_id": lsp.node_id, "address": lsp.listen_addr, "token": None}
        async with ldk_node_peer(tmp_path, chain.url, lsps1=lsps1) as ldk:
            # ldk-node checks the sizes against get_info itself, not the lease: the LSP refuses.
            with pytest.raises(LdkNodePeerError):
                await ldk.lsps1_request_channel(lsp_balance_sat=500_000, channel_expiry_blocks=5_000)
            assert await lsps1_orders(lsp) == []
            assert "refused: channel_expiry_blocks must be 144..=4320" in engine_log(lsp)
            # Two unpaid orders per client; the third is refused until one is paid or expires.
            for _ in range(2):
                await ldk.lsps1_request_channel(lsp_balance_sat=200_000, channel_expiry_blocks=144)
            with pytest.raises(LdkNodePeerError):
                await ldk.lsps1_request_channel(lsp_balance_sat=200_000, channel_expiry_blocks=144)
            assert [o["state"] for o in await lsps1_orders(lsp)] == ["CREATED", "CREATED"]
            assert "orders of this client wait for payment (at most 2)" in engine_log(lsp)
            # An order id the client never got is not found (ldk-node reports a failure).
            with pytest.raises(LdkNodePeerError):
                await ldk.lsps1_check_order("00" * 16)
    finally:
        await lsp.stop()
