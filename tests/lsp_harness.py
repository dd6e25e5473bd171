"""The LSP role against the fake engine: the fixture's parts and the steps its tests share
(test_lsp_logic.py, test_hold_hops.py). No LDK, no sockets."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lsp_node import protocol as p
from lsp_node.config import LspSettings
from lsp_node.engine import HtlcIntercepted
from lsp_node.lsp import LspService, LspStore
from tests.fake_engine import FakeEngine

CLIENT = "02" + "aa" * 32
STRANGER = "03" + "bb" * 32
NEXT = "02" + "cc" * 32
HASH = bytes.fromhex("11" * 32)
PID = bytes.fromhex("22" * 32)
#: The release's wait for a next node's channel, short so that the tests that wait stay fast.
WAIT = 0.3


@dataclass
class FakeNotifier:
    """The apprise outbox as the role sees it: every client has a device; LSPS5 is off."""

    pushes: list[tuple[str, str]] = field(default_factory=list)
    webhooks: None = None

    async def has_device(self, client_id: str) -> bool:
        return True

    async def enqueue(self, client_id: str, kind: str, now: float | None = None) -> bool:
        self.pushes.append((client_id, kind))
        return True


@dataclass
class Lsp:
    service: LspService
    engine: FakeEngine
    pushes: FakeNotifier
    store: LspStore


def policy(**kw: object) -> LspSettings:
    """The tests' policy: small caps, a short release wait."""
    base: dict[str, object] = dict(
        max_holds_per_client=3, max_held_htlcs_per_client=2, max_held_msat_per_client=10**8, release_wait_secs=WAIT
    )
    return LspSettings(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture
async def lsp(tmp_path: Path) -> AsyncIterator[Lsp]:
    engine = FakeEngine(clients={CLIENT}, channels={NEXT: 10**9})
    store = LspStore(tmp_path / "lsp.sqlite")
    pushes = FakeNotifier()
    service = LspService(engine, store, policy(), pushes)  # type: ignore[arg-type]
    yield Lsp(service, engine, pushes, store)
    store.close()


def request(
    request_id: bytes = b"r" * 16,
    hashes: tuple[bytes, ...] = (HASH,),
    pid: bytes = PID,
    nodes: tuple[str, ...] = (NEXT,),
    **kw: object,
) -> p.HoldRequest:
    fields: dict[str, object] = dict(
        request_id=request_id,
        payment_hashes=hashes,
        amount_msat=1_000_000,
        pid_hash=p.sha256(pid),
        next_node_ids=tuple(bytes.fromhex(n) for n in nodes),
        hold_blocks=144,
        client_node_id=bytes.fromhex(CLIENT),
        timestamp=int(time.time()),
        signature="sig",
    )
    fields.update(kw)
    return p.HoldRequest(**fields)  # type: ignore[arg-type]


def htlc(
    scid: int, intercept_id: str = "i1", payment_hash: bytes = HASH, sender: str = CLIENT, inbound: int = 1_000_000
) -> HtlcIntercepted:
    return HtlcIntercepted(1, intercept_id, scid, payment_hash.hex(), inbound, inbound, sender, 1300)


async def intercept(lsp: Lsp, event: HtlcIntercepted) -> None:
    """LDK intercepts an HTLC (the fake engine records it) and the role handles the event."""
    await lsp.service.holding.on_htlc_intercepted(lsp.engine.intercepted(event))
    await lsp.service.role.drain()  # a forward at a released hold runs beside the event lane


async def armed(lsp: Lsp, **kw: object) -> p.HoldReply:
    reply = await lsp.service.on_hold_request(request(**kw))  # type: ignore[arg-type]
    assert reply.status == p.Status.OK, reply.error
    return reply


def scid(reply: p.HoldReply, i: int = 0) -> int:
    """The intercept SCID of the request's i-th next node."""
    assert reply.intercept_scids is not None
    return reply.intercept_scids[i]


def unblock_context(lsp: Lsp, hold_id: str | None = None) -> bytes:
    if hold_id is None:
        [hold] = lsp.store.holds()
        hold_id = hold.hold_id
    return b"hold:" + bytes.fromhex(hold_id)


async def unblock(lsp: Lsp, pid: bytes = PID, payment_hash: bytes = HASH) -> p.UnblockReply:
    return await lsp.service.on_unblock(p.PaymentUnblock(pid, payment_hash), unblock_context(lsp))


def release_committed_only(lsp: Lsp, pid: bytes = PID, payment_hash: bytes = HASH) -> None:
    """What a kill -9 right after the release commit leaves (hook `after_release`): the hold
    `released`, its HTLCs `forwarding`, nothing handed to LDK."""
    [hold] = [h for h in lsp.store.holds() if payment_hash.hex() in h.payment_hashes]
    decided = lsp.store.call(
        lsp.service.holding._decide_unblock,
        p.PaymentUnblock(pid, payment_hash),
        hold.hold_id,
        lsp.engine.height,
        time.time(),
    )
    assert not isinstance(decided, p.UnblockReply), decided
