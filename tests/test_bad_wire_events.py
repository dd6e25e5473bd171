"""Refused messages and poison events never stall the LSP's single event queue: a decode error is
a logged refusal and an acknowledged event; a handler that raises is retried briefly and dropped
after a bounded number of attempts counted in lsp.sqlite, across restarts too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lsp_node import app
from lsp_node.config import LspSettings
from lsp_node.lsp import LspService, LspStore
from tests.fake_engine import FakeEngine

from .bad_wire_corpus import CASES, Case


@dataclass(frozen=True)
class FakeEvent:
    id: int
    kind: str = "onion_message_received"


@dataclass
class FakeNode:
    """The engine's event queue as the LSP sees it: the oldest unacknowledged event, again and
    again, until it is acknowledged."""

    queue: list[FakeEvent]
    acked: list[int] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def poll_event(self) -> FakeEvent | None:
        return self.queue[0] if self.queue else None

    async def events(self) -> AsyncIterator[FakeEvent]:
        while True:
            if not self.queue:
                await asyncio.Event().wait()  # the tests never add events to a running queue
            yield self.queue[0]

    async def event_handled(self, event: FakeEvent) -> None:
        assert self.queue and self.queue[0].id == event.id
        self.acked.append(self.queue.pop(0).id)
        self.changed.set()


@pytest.fixture
def store(tmp_path: Path) -> AsyncIterator[LspStore]:
    s = LspStore(tmp_path / "lsp.sqlite")
    yield s
    s.close()


def service(store: LspStore) -> LspService:
    return LspService(FakeEngine(), store, LspSettings(), None)  # type: ignore[arg-type]


async def run_until(node: FakeNode, role: app.LspRole, done: int, timeout: float = 5.0) -> None:
    task = asyncio.create_task(role._events())

    async def acked() -> None:
        while len(node.acked) < done:
            node.changed.clear()
            await node.changed.wait()

    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(acked(), timeout)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_poison_event_is_dropped_after_three_quick_attempts(
    store: LspStore, caplog: pytest.LogCaptureFixture
) -> None:
    node = FakeNode([FakeEvent(1), FakeEvent(2), FakeEvent(3)])
    svc = service(store)
    calls: list[int] = []

    async def handle(event: FakeEvent) -> None:
        calls.append(event.id)
        if event.id == 1:
            raise RuntimeError("boom")

    svc.handle = handle  # type: ignore[method-assign,assignment]
    role = app.LspRole(node, svc, None)  # type: ignore[arg-type]
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, "lsp_node"):
        await run_until(node, role, 3)
    assert node.acked == [1, 2, 3]
    assert calls == [1, 1, 1, 2, 3]
    # 50 ms + 200 ms of backoff, not 3 s: the events behind it wait a quarter of a second.
    assert time.monotonic() - started < 1.0
    assert "dropping onion_message_received event 1 after 3 failed attempts" in caplog.text
    assert store.event_attempts(None) == {}  # the rows go with the acknowledgement


async def test_attempts_survive_restarts_so_a_crash_loop_ends(store: LspStore) -> None:
    """A handler that never returns stands for one that kills the process (OOM): each start
    counts an attempt before trying; the fourth start drops the event without touching it."""
    node = FakeNode([FakeEvent(7, "htlc_intercepted"), FakeEvent(8)])
    svc = service(store)
    calls: list[int] = []

    async def handle(event: FakeEvent) -> None:
        calls.append(event.id)
        if event.id == 7:
            await asyncio.sleep(3600)

    svc.handle = handle  # type: ignore[method-assign,assignment]
    for start in range(1, 4):
        await run_until(node, app.LspRole(node, svc, None), 1, timeout=0.2)  # type: ignore[arg-type]
        assert node.acked == [] and calls == [7] * start
        assert store.event_attempts(7) == {7: start}
    await run_until(node, app.LspRole(node, svc, None), 2)  # type: ignore[arg-type]
    assert node.acked == [7, 8] and calls == [7, 7, 7, 8]
    assert store.event_attempts(None) == {}


async def test_a_handler_that_fails_once_is_retried_and_its_record_forgotten(store: LspStore) -> None:
    node = FakeNode([FakeEvent(1), FakeEvent(2)])
    svc = service(store)
    calls: list[int] = []

    async def handle(event: FakeEvent) -> None:
        calls.append(event.id)
        if calls.count(event.id) == 1 and event.id == 2:
            raise RuntimeError("transient")

    svc.handle = handle  # type: ignore[method-assign,assignment]
    await run_until(node, app.LspRole(node, svc, None), 2)  # type: ignore[arg-type]
    assert node.acked == [1, 2] and calls == [1, 2, 2]
    assert store.event_attempts(None) == {}


@pytest.mark.parametrize("case", CASES[::7], ids=lambda c: c.name)
async def test_the_lsp_refuses_bad_messages_without_reply_or_error(
    store: LspStore, case: Case, caplog: pytest.LogCaptureFixture
) -> None:
    svc = service(store)
    with caplog.at_level(logging.INFO, "lsp_node"):
        await svc.on_message(case.tlv_type, case.data, None, "responder")
    assert svc.engine.replies == []  # type: ignore[attr-defined]
    assert f"refused a message of type {case.tlv_type}" in caplog.text
    assert case.error in caplog.text
    # The reason only, never a dump of the sender's bytes.
    assert len(case.data) < 4 or case.data.hex() not in caplog.text
