"""LightningRod beyond the happy path: MPP, refusals, expiry, and kill -9 at the worst moments.
Each LSP is its own main.py process; phones use the reference client."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import pytest

from lsp_node import protocol as p
from lsp_node.client import Client, HoldRefused
from lsp_node.errors import PeerError

from .conftest import Chain, NodeFactory
from .lightningrod_net import Net, build_net, until


async def hold_states(net: Net) -> list[str]:
    return [str(h["state"]) for h in await net.holds()]


async def is_held(net: Net) -> bool:
    return await hold_states(net) == ["held"]


async def only_hold(net: Net) -> dict[str, Any]:
    holds = await net.holds()
    assert len(holds) == 1
    return holds[0]


async def test_mpp_parts_are_held_and_released_together(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    async with build_net(chain, make_node, tmp_path, alice_channels=2) as net:
        # 1.5M sat cannot fit one of A's two 1M sat channels: the payment goes in parts.
        request = await net.b.create_payment_request(1_500_000_000, "big")
        held = await net.a.pay_held(request.invoice)

        async def two_parts_held() -> bool:
            holds = await net.holds()
            return len(holds) == 1 and len([h for h in holds[0]["htlcs"] if h["state"] == "held"]) >= 2

        await until(two_parts_held, "both parts held")
        assert net.b.events == [] or all(e.kind != "payment_received" for e in net.b.events)
        await net.a.send_pid(request, held)
        received = await net.b.wait_for("payment_received", payment_hash=held.payment_hash)
        assert received.amount_msat == 1_500_000_000
        hold = await only_hold(net)
        assert {h["state"] for h in hold["htlcs"]} <= {"forwarded", "settled"}
        assert len(hold["htlcs"]) >= 2
        await net.a.wait_for("payment_sent", payment_hash=held.payment_hash)


async def test_refusals_release_nothing(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    async with build_net(chain, make_node, tmp_path) as net:
        request = await net.b.create_payment_request(30_000_000, "refusals")
        held = await net.a.pay_held(request.invoice)
        await until(lambda: hold_states(net), "hold armed")

        await until(lambda: is_held(net), "HTLC held")
        path = held.hold.unblock_path
        assert path is not None

        # Wrong pid: refused, still held, B not paid.
        await net.b.send_unblock(path, os.urandom(32), held.payment_hash)
        await until(lambda: held.payment_hash in net.b.unblock_replies, "reply to the wrong pid")
        assert net.b.unblock_replies[held.payment_hash].status == p.Status.WRONG_PID
        assert await hold_states(net) == ["held"]

        # A hold request sent twice (its reply lost) gets the same hold; the same request id with
        # another pid is a replay.
        retry_hash = (await net.b.create_payment_request(1_000_000, "retry")).invoice
        retry_info = net.alice.decode_invoice(retry_hash)
        first = p.HoldRequest(
            os.urandom(16),
            (bytes.fromhex(retry_info.payment_hash),),
            1_000_000,
            p.sha256(b"pid-1"),
            (bytes.fromhex(net.lsp_b.node_id),),
            144,
            bytes.fromhex(net.alice.node_id),
            int(time.time()),
            "",
        )
        first = dataclasses.replace(first, signature=net.a._sign(first))
        r1, r2 = await net.a._request(first), await net.a._request(first)
        assert isinstance(r1, p.HoldReply) and isinstance(r2, p.HoldReply)
        assert r1.status == r2.status == p.Status.OK and r1.intercept_scids == r2.intercept_scids
        other_pid = dataclasses.replace(first, pid_hash=p.sha256(b"pid-2"), signature="")
        other_pid = dataclasses.replace(other_pid, signature=net.a._sign(other_pid))
        r3 = await net.a._request(other_pid)
        assert isinstance(r3, p.HoldReply) and r3.status == p.Status.STALE_OR_REPLAYED

        # Hold request from a node that is not LSP_a's client (B is LSP_b's).
        with pytest.raises(HoldRefused) as refused:
            await net.b.request_hold(
                [held.payment_hash], 30_000_000, [net.bob.node_id], os.urandom(32), 144, lsp=net.lsp_a.node_id
            )
        assert refused.value.status == p.Status.NOT_A_CLIENT

        # An HTLC on the hold's intercept SCID for a payment the hold does not cover: failed.
        other = await net.b.create_payment_request(5_000_000, "not held")
        stray = await net.a.pay_held(other.invoice, hold=held.hold, next_nodes=list(held.next_nodes))
        failed = await net.a.wait_for("payment_failed", payment_hash=stray.payment_hash)
        assert failed.reason
        assert sorted(len(h["htlcs"]) for h in await net.holds()) == [0, 1]

        # The right pid releases; the same unblock again is refused as a replay.
        await net.b.send_unblock(path, held.pid, held.payment_hash)
        await net.b.wait_for("payment_received", payment_hash=held.payment_hash)
        await until(lambda: net.b.unblock_replies.get(held.payment_hash) is not None, "reply to the right pid")
        assert net.b.unblock_replies[held.payment_hash].status == p.Status.OK
        await net.b.send_unblock(path, held.pid, held.payment_hash)
        await until(lambda: held.payment_hash in net.b.unblock_replies, "reply to the replay")
        assert net.b.unblock_replies[held.payment_hash].status == p.Status.ALREADY_RELEASED
        received = [e for e in net.b.events if e.kind == "payment_received"]
        assert len(received) == 1
        assert all(e.payment_hash != stray.payment_hash for e in received)


async def test_hold_fails_back_before_expiry_without_force_close(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with build_net(chain, make_node, tmp_path) as net:
        request = await net.b.create_payment_request(20_000_000, "never released")
        held = await net.a.pay_held(request.invoice, hold_blocks=144)

        await until(lambda: is_held(net), "HTLC held")
        hold = await only_hold(net)
        failback = int(hold["failback_height"])
        htlc_cltv = int(hold["htlcs"][0]["cltv_expiry"])
        assert failback == htlc_cltv - 72 - 39 - 6
        # Mine to just before the fail-back height: still held, A warned it must stay online.
        while chain.raw.height < failback - 1:
            chain.mine(min(50, failback - 1 - chain.raw.height))
            await net.lsp_a.api("POST", "/api/sync")
        await until(lambda: "hold_expiring" in net.pushes.kinds_for("alice-phone"), "expiry warning to A")
        assert await hold_states(net) == ["held"]
        chain.mine(1)
        await net.lsp_a.api("POST", "/api/sync")
        failed = await net.a.wait_for("payment_failed", payment_hash=held.payment_hash)
        assert failed.payment_hash == held.payment_hash
        assert await hold_states(net) == ["failed"]
        # Nothing was force-closed: A's channel to LSP_a is still open and usable.
        await net.alice.sync()
        assert [c.is_usable for c in net.alice.channels()] == [True]
        assert all(c["is_usable"] for c in await net.lsp_a.api("GET", "/api/channels"))
        assert chain.raw.mempool_txids() == []


async def test_lsp_a_killed_while_holding(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    async with build_net(chain, make_node, tmp_path) as net:
        request = await net.b.create_payment_request(25_000_000, "survives kill -9")
        await net.phone_offline("bob")
        held = await net.a.pay_with_hold(request)

        await until(lambda: is_held(net), "HTLC held")
        net.lsp_a.kill9()
        await net.lsp_a.start()
        assert await hold_states(net) == ["held"]
        await net.links_up()
        b = await net.restart_phone("bob")
        await b.wait_for("payment_received", payment_hash=held.payment_hash)
        await net.a.wait_for("payment_sent", payment_hash=held.payment_hash)


async def test_lsp_b_killed_with_full_mailbox(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    async with build_net(chain, make_node, tmp_path) as net:
        requests = [await net.b.create_payment_request(10_000_000 + i, f"mail {i}") for i in range(3)]
        await net.phone_offline("bob")
        held = [await net.a.pay_with_hold(r) for r in requests]

        async def all_mail() -> bool:
            return len(await net.lsp_b.api("GET", "/api/mailbox")) == 3

        await until(all_mail, "three pid notices in LSP_b's mailbox")
        net.lsp_b.kill9()
        await net.lsp_b.start()
        await net.links_up()
        assert len(await net.lsp_b.api("GET", "/api/mailbox")) == 3
        b = await net.restart_phone("bob")
        for h in held:
            await b.wait_for("payment_received", payment_hash=h.payment_hash)

        async def acknowledged() -> bool:
            return await net.lsp_b.api("GET", "/api/mailbox") == []

        await until(acknowledged, "B's MAILBOX_ACK empties the mailbox")


async def test_mail_is_redelivered_until_the_client_acknowledges(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with build_net(chain, make_node, tmp_path) as net:
        request = await net.b.create_payment_request(12_000_000, "mail until acked")
        await net.phone_offline("bob")
        held = await net.a.pay_with_hold(request)

        async def mail() -> int:
            return len(await net.lsp_b.api("GET", "/api/mailbox"))

        await until(lambda: mail_is(mail, 1), "pid notice in LSP_b's mailbox")
        # B comes online, gets its mail (and is paid) but drops off before acknowledging it.
        b = await net.restart_phone("bob", ack_mail=False)
        await b.wait_for("payment_received", payment_hash=held.payment_hash)
        await until(lambda: len(b.mail_batches) == 1, "MAILBOX_DONE at B")
        assert await mail() == 1  # handed to LDK is not received: kept
        await net.phone_offline("bob")
        # Next connection: the same notice again, then the ack deletes it.
        b = await net.restart_phone("bob")
        await until(lambda: held.payment_hash in b.unblock_replies, "B handled the redelivered notice")
        assert b.unblock_replies[held.payment_hash].status == p.Status.ALREADY_RELEASED
        await until(lambda: mail_is(mail, 0), "mail deleted after B's ack")
        assert [e.kind for e in b.events].count("payment_received") == 0  # paid once, before


async def test_lsp_b_killed_before_the_mail_ack_redelivers(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with build_net(chain, make_node, tmp_path) as net:
        await net.lsp_b.stop()
        await net.lsp_b.start(fault="crash_after_mail_delivery")
        await net.links_up()
        request = await net.b.create_payment_request(11_000_000, "crash before the ack")
        await net.phone_offline("bob")
        held = await net.a.pay_with_hold(request)

        async def mail() -> int:
            return len(await net.lsp_b.api("GET", "/api/mailbox"))

        await until(lambda: mail_is(mail, 1), "pid notice in LSP_b's mailbox")
        # B connects; LSP_b delivers, then dies before B's ack can arrive.
        bob = await net.make_node("bob")
        b = Client(bob, net.lsp_b.node_id)
        b.start()
        with contextlib.suppress(PeerError):  # the connection may die with LSP_b
            await bob.connect(net.lsp_b.node_id, net.lsp_b.listen_addr)
        await until(lambda: net.lsp_b.proc is not None and net.lsp_b.proc.poll() is not None, "LSP_b crashed")
        assert net.lsp_b.reap() == 137
        await b.stop()
        await bob.stop()
        await net.lsp_b.start()
        await net.links_up()
        assert await mail() == 1  # nothing was acknowledged: the notice is still stored
        b = await net.restart_phone("bob")
        await until(lambda: len(b.mail_batches) >= 1, "the notice delivered again")
        await until(lambda: mail_is(mail, 0), "mail deleted after B's ack")
        await net.a.wait_for("payment_sent", payment_hash=held.payment_hash)


async def mail_is(mail: Any, n: int) -> bool:
    return bool(await mail() == n)


async def test_crash_between_unblock_and_forward_releases_once(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with build_net(chain, make_node, tmp_path) as net:
        # LSP_a will die right after committing the release, before forwarding anything.
        await net.lsp_a.stop()
        await net.lsp_a.start(fault="crash_after_release")
        await net.links_up()
        request = await net.b.create_payment_request(15_000_000, "crash")
        await net.phone_offline("bob")
        held = await net.a.pay_with_hold(request)

        await until(lambda: is_held(net), "HTLC held")
        b = await net.restart_phone("bob")
        await until(
            lambda: net.lsp_a.proc is not None and net.lsp_a.proc.poll() is not None, "LSP_a crashed on release"
        )
        assert net.lsp_a.reap() == 137
        await net.lsp_a.start()
        await net.links_up()
        received = await b.wait_for("payment_received", payment_hash=held.payment_hash)
        assert received.amount_msat == 15_000_000
        await net.a.wait_for("payment_sent", payment_hash=held.payment_hash)
        hold = await only_hold(net)
        assert hold["state"] in ("released", "settled")
        assert [e.kind for e in net.b.events].count("payment_received") == 1
        assert net.bob.channels()[0].outbound_capacity_msat <= 15_000_000


async def test_crash_after_ldk_forward_still_pays_once(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    async with build_net(chain, make_node, tmp_path) as net:
        # LSP_a dies right after LDK accepted the forward, before it is recorded (or persisted).
        await net.lsp_a.stop()
        await net.lsp_a.start(fault="crash_after_ldk_forward")
        await net.links_up()
        request = await net.b.create_payment_request(14_000_000, "crash after forward")
        await net.phone_offline("bob")
        held = await net.a.pay_with_hold(request)
        await until(lambda: is_held(net), "HTLC held")
        b = await net.restart_phone("bob")
        await until(lambda: net.lsp_a.proc is not None and net.lsp_a.proc.poll() is not None, "LSP_a crashed")
        assert net.lsp_a.reap() == 137
        await net.lsp_a.start()
        await net.links_up()
        received = await b.wait_for("payment_received", payment_hash=held.payment_hash)
        assert received.amount_msat == 14_000_000
        await net.a.wait_for("payment_sent", payment_hash=held.payment_hash)
        assert [e.kind for e in net.b.events].count("payment_received") == 1
        # The intent recorded before the crash lets start-up book the forward LDK made: settled.
        await until(lambda: hold_states_are(net, ["settled"]), "hold settled at LSP_a")


async def hold_states_are(net: Net, states: list[str]) -> bool:
    return await hold_states(net) == states


async def test_crash_after_fail_back_commit_still_fails_back(
    chain: Chain, make_node: NodeFactory, tmp_path: Path
) -> None:
    async with build_net(chain, make_node, tmp_path) as net:
        await net.lsp_a.stop()
        await net.lsp_a.start(fault="crash_after_fail_back")
        await net.links_up()
        request = await net.b.create_payment_request(16_000_000, "crash after fail-back")
        held = await net.a.pay_held(request.invoice, hold_blocks=144)
        await until(lambda: is_held(net), "HTLC held")
        failback = int((await only_hold(net))["failback_height"])
        while chain.raw.height < failback:
            chain.mine(min(50, failback - chain.raw.height))
            with contextlib.suppress(Exception):  # the LSP dies during one of these syncs
                await net.lsp_a.api("POST", "/api/sync")
        await until(lambda: net.lsp_a.proc is not None and net.lsp_a.proc.poll() is not None, "LSP_a crashed")
        assert net.lsp_a.reap() == 137
        await net.lsp_a.start()
        assert await hold_states(net) == ["failed"]

        async def settled_down() -> bool:
            chans = await net.lsp_a.api("GET", "/api/channels")
            return bool(chain.raw.mempool_txids()) or all(c["is_usable"] for c in chans)

        await until(settled_down, "LSP_a's channels usable again, or a force-close broadcast")
        if not chain.raw.mempool_txids():
            # LDK's ChannelManager was persisted with the fail (or before it): the fail is redone
            # or replayed off-chain, no channel closes.
            await net.links_up()
            failed = await net.a.wait_for("payment_failed", payment_hash=held.payment_hash)
            assert failed.payment_hash == held.payment_hash
            return
        # The kill came inside LDK's write window (a channel monitor already updated, the
        # ChannelManager not yet written): LDK force-closes that channel at start (SPEC.md §11.3).
        # The payer still gets its HTLC back, on-chain once the HTLC expires.
        closing = [
            c for c in await net.lsp_a.api("GET", "/api/channels") if c["counterparty_node_id"] == net.alice.node_id
        ]
        assert all(c["state"] == "closing" for c in closing), closing

        async def refunded() -> bool:
            chain.mine(6)
            await net.alice.sync()
            return any(e.kind == "payment_failed" and e.payment_hash == held.payment_hash for e in net.a.events)

        await until(refunded, "the payer's HTLC timed out on-chain", 180)


async def test_holding_fee_is_stated_and_charged(chain: Chain, make_node: NodeFactory, tmp_path: Path) -> None:
    async with build_net(chain, make_node, tmp_path, fee_base_msat=5_000, fee_proportional_millionths=1_000) as net:
        request = await net.b.create_payment_request(40_000_000, "with a holding fee")
        held = await net.a.pay_with_hold(request)
        assert (held.hold.fee_base_msat, held.hold.fee_proportional_millionths) == (5_000, 1_000)
        sent = await net.a.wait_for("payment_sent", payment_hash=held.payment_hash)
        await net.b.wait_for("payment_received", payment_hash=held.payment_hash)
        # LSP_a's holding fee on the 40k sat it forwards: 5 sat + 0.1% (about 40 sat).
        hop_fee = 5_000 + (40_000_000 + 1_000) * 1_000 // 1_000_000
        assert sent.fee_paid_msat >= hop_fee
