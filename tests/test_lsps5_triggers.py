"""Which LightningRod pushes also ask the LSPS5 service for a notification, and that one event
makes one call of each kind (the role against the fake engine; the real engine's half is
tests/test_lsps5_e2e.py)."""

from __future__ import annotations

from pathlib import Path

from lsp_node.lsp import LspService, LspStore
from tests.fake_engine import FakeEngine
from tests.lsp_harness import CLIENT, NEXT, STRANGER, Lsp, lsp, policy

__all__ = ["lsp"]


async def test_a_message_for_an_offline_client_pushes_once_on_each_protocol(lsp: Lsp) -> None:
    lsp.engine.lsps5_calls = []
    await lsp.service.mailbox.on_message_for_offline_peer(CLIENT, "01")
    assert lsp.pushes.pushes == [(CLIENT, "message_waiting")]
    assert lsp.engine.lsps5_calls == [(CLIENT, "lsps5.onion_message_incoming", lsp.engine.height)]
    # A stranger's mail is dropped: neither protocol is asked.
    await lsp.service.mailbox.on_message_for_offline_peer(STRANGER, "02")
    assert len(lsp.pushes.pushes) == 1 and len(lsp.engine.lsps5_calls) == 1


async def test_the_kinds_map_to_the_blip55_methods(lsp: Lsp) -> None:
    lsp.engine.lsps5_calls = []
    role = lsp.service.role
    await role.notify(CLIENT, "preimage_waiting")
    await role.notify(CLIENT, "hold_expiring", 1234)
    await role.notify(CLIENT, "hold_failed")
    await role.notify(CLIENT, "test")
    assert lsp.engine.lsps5_calls == [
        (CLIENT, "lsps5.payment_incoming", lsp.engine.height),
        (CLIENT, "lsps5.expiry_soon", 1234),
    ]
    # Every kind still reaches the apprise outbox once.
    assert [k for _, k in lsp.pushes.pushes] == ["preimage_waiting", "hold_expiring", "hold_failed", "test"]


async def test_lsps5_is_asked_even_without_an_apprise_platform(tmp_path: Path) -> None:
    engine = FakeEngine(clients={CLIENT}, channels={NEXT: 10**9}, lsps5_calls=[])
    store = LspStore(tmp_path / "lsp.sqlite")
    try:
        service = LspService(engine, store, policy(), None)
        await service.role.notify(CLIENT, "message_waiting")
        assert engine.lsps5_calls == [(CLIENT, "lsps5.onion_message_incoming", engine.height)]
    finally:
        store.close()
