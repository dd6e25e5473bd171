"""Which LightningRod events wake a client over LSPS5, and that one event makes one wake-up: the
role against the fake engine, with the real push outbox (notify.sqlite) deciding between apprise
(the client has a registered device) and LSPS5 (it has none), and keeping our per-(client,
method) cooldown. The real engine's half is tests/test_lsps5_e2e.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lsp_node import protocol as p
from lsp_node.engine import ClientWanted, PaymentForwarded
from lsp_node.lsp import LspService, LspStore
from lsp_node.notify import NotificationStore, Notifier, NotifierSettings, WebhookPolicy
from tests.fake_engine import FakeEngine
from tests.lsp_harness import (
    CLIENT,
    NEXT,
    STRANGER,
    FakeNotifier,
    Lsp,
    armed,
    htlc,
    policy,
    scid,
    unblock,
)

TEMPLATES = {"webhook": "json://127.0.0.1:9/push/{device}"}
OTHER = "03" + "77" * 32


@dataclass
class Wake:
    service: LspService
    engine: FakeEngine
    store: NotificationStore
    calls: list[tuple[str, str, int | None]]

    def lsp(self, lsp_store: LspStore) -> Lsp:
        return Lsp(self.service, self.engine, FakeNotifier(), lsp_store)


def build(engine: FakeEngine, lsp_store: LspStore, nstore: NotificationStore, cooldown: float) -> LspService:
    lsps5 = WebhookPolicy(notify_cooldown_secs=cooldown)
    notifier = Notifier(nstore, TEMPLATES, NotifierSettings(), lsps5)
    return LspService(engine, lsp_store, policy(), notifier)


@pytest.fixture(params=[3600.0])
async def wake(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Wake]:
    calls: list[tuple[str, str, int | None]] = []
    engine = FakeEngine(clients={CLIENT, OTHER}, channels={NEXT: 10**9}, lsps5_calls=calls)
    lsp_store = LspStore(tmp_path / "lsp.sqlite")
    nstore = NotificationStore(tmp_path / "notify.sqlite", TEMPLATES)
    try:
        yield Wake(build(engine, lsp_store, nstore, request.param), engine, nstore, calls)
    finally:
        nstore.close()
        lsp_store.close()


async def test_a_client_with_a_device_gets_one_apprise_push_and_no_webhook(wake: Wake) -> None:
    wake.store.register_device(CLIENT, "webhook", "phone-1")
    await wake.service.role.notify(CLIENT, "message_waiting")
    assert [(e.kind, e.delivery) for e in wake.store.outbox(CLIENT)] == [("message_waiting", "apprise")]
    assert wake.calls == []


async def test_a_client_without_a_device_gets_one_lsps5_notification_and_no_push(wake: Wake) -> None:
    await wake.service.mailbox.on_message_for_offline_peer(CLIENT, "01")
    assert wake.calls == [(CLIENT, "lsps5.onion_message_incoming", wake.engine.height)]
    assert wake.store.outbox() == []
    # A stranger's mail is dropped: nobody is woken.
    await wake.service.mailbox.on_message_for_offline_peer(STRANGER, "02")
    assert len(wake.calls) == 1 and wake.store.outbox() == []


@pytest.mark.parametrize("wake", [0.0], indirect=True)
async def test_the_kinds_map_to_the_blip55_methods(wake: Wake) -> None:
    role = wake.service.role
    await role.notify(CLIENT, "preimage_waiting", 900)
    await role.notify(CLIENT, "hold_expiring", 1234)
    await role.notify(CLIENT, "message_waiting")
    await role.notify(CLIENT, "hold_failed")
    await role.notify(CLIENT, "test")
    # A payer's fulfil waiting in its channel is a deadline (the HTLC's expiry), not an incoming
    # payment; a failed hold and a test push have no LSPS5 method (and no device: nothing).
    assert wake.calls == [
        (CLIENT, "lsps5.expiry_soon", 900),
        (CLIENT, "lsps5.expiry_soon", 1234),
        (CLIENT, "lsps5.onion_message_incoming", wake.engine.height),
    ]
    assert wake.store.outbox() == []


@pytest.mark.parametrize("wake", [0.0], indirect=True)
async def test_a_settled_payment_waiting_for_its_offline_payer_names_the_htlc_expiry(wake: Wake) -> None:
    lsp = wake.lsp(wake.service.store)
    reply = await armed(lsp)
    assert (await unblock(lsp)).status == p.Status.RELEASED_AWAITING_HTLC
    event = htlc(scid(reply))
    await lsp.service.holding.on_htlc_intercepted(event)
    await lsp.service.role.drain()
    await lsp.service.holding.on_payment_forwarded(PaymentForwarded(2, None, None, CLIENT, None, 0, 1_000_000, False))
    [h] = lsp.store.htlcs(lsp.store.holds()[0].hold_id)
    assert h.state == "settled"
    assert wake.calls == [(CLIENT, "lsps5.expiry_soon", h.cltv_expiry)]


async def test_a_connected_client_is_not_woken_over_lsps5(wake: Wake) -> None:
    wake.engine.online.add(CLIENT)
    await wake.service.role.notify(CLIENT, "hold_expiring", 1234)
    assert wake.calls == []
    assert await wake.service.role.notify_lsps5(CLIENT, "lsps5.liquidity_management_request") == "online"


async def test_our_cooldown_is_per_method_and_survives_a_reconnect_and_a_restart(wake: Wake, tmp_path: Path) -> None:
    role = wake.service.role
    await role.notify(CLIENT, "message_waiting")
    # The client connects and disconnects (lightning-liquidity's own cooldown would be reset).
    wake.engine.online.add(CLIENT)
    wake.engine.online.discard(CLIENT)
    await role.notify(CLIENT, "message_waiting")
    assert wake.calls == [(CLIENT, "lsps5.onion_message_incoming", wake.engine.height)]
    # Another method, another client: their own cooldowns.
    await role.notify(CLIENT, "hold_expiring", 1234)
    await role.notify(OTHER, "message_waiting")
    assert len(wake.calls) == 3
    # A restart: a new notifier over the same notify.sqlite keeps the cooldown.
    restarted = build(wake.engine, wake.service.store, wake.store, 3600.0)
    assert await restarted.role.notify_lsps5(CLIENT, "lsps5.onion_message_incoming") == "cooldown"
    assert len(wake.calls) == 3


async def test_lightning_liquiditys_refusal_starts_no_cooldown_of_ours(wake: Wake) -> None:
    wake.engine.lsps5_outcome = "cooldown"
    assert await wake.service.role.notify_lsps5(CLIENT, "lsps5.onion_message_incoming") == "cooldown"
    wake.engine.lsps5_outcome = "queued"
    assert await wake.service.role.notify_lsps5(CLIENT, "lsps5.onion_message_incoming") == "queued"
    assert len(wake.calls) == 2


async def test_lsps5_off_asks_nothing(tmp_path: Path) -> None:
    calls: list[tuple[str, str, int | None]] = []
    engine = FakeEngine(clients={CLIENT}, channels={NEXT: 10**9}, lsps5_calls=calls)
    lsp_store = LspStore(tmp_path / "lsp.sqlite")
    nstore = NotificationStore(tmp_path / "notify.sqlite", TEMPLATES)
    try:
        service = LspService(engine, lsp_store, policy(), Notifier(nstore, TEMPLATES))
        await service.role.notify(CLIENT, "message_waiting")
        assert calls == [] and nstore.outbox() == []
    finally:
        nstore.close()
        lsp_store.close()


async def test_a_jit_payment_waiting_for_its_client_wakes_it_once_its_way_and_each_time(wake: Wake) -> None:
    # The engine's ClientWanted for an LSPS2 payment: a client with a device gets the apprise
    # push `payment_incoming`, one without gets lsps5.payment_incoming, never both.
    wake.store.register_device(CLIENT, "webhook", "phone-1")
    await wake.service.handle(ClientWanted(1, CLIENT, "payment_incoming"))
    assert [(e.kind, e.delivery) for e in wake.store.outbox(CLIENT)] == [("payment_incoming", "apprise")]
    assert wake.calls == []
    for event_id in (2, 3):
        await wake.service.handle(ClientWanted(event_id, OTHER, "payment_incoming"))
    # Each payment may wake (our per-method cooldown does not hold this one back), unlike a
    # reminder such as onion_message_incoming.
    assert wake.calls == [(OTHER, "lsps5.payment_incoming", wake.engine.height)] * 2
    assert wake.store.outbox(OTHER) == []
    # Back before the event is handled (or the event replayed later): nobody is woken.
    wake.engine.online.add(OTHER)
    await wake.service.handle(ClientWanted(4, OTHER, "payment_incoming"))
    assert len(wake.calls) == 2 and wake.store.outbox(OTHER) == []
