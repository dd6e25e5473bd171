"""The node's numbers at one moment, as plain data: holds, held HTLCs, the mailbox, the push outbox
and the push attempts counted so far, balances and the chain. The dashboard's overview, the
recorded samples and /metrics all read this.

Each store is read in one unit of work on its own database thread (so its numbers agree with each
other and the loop never waits on SQLite); the engine's numbers are in memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from lsp_node.admin.ops import Ops
from lsp_node.lsp.holds import ACTIVE, HELD, STATES
from lsp_node.lsp.store import LspStore
from lsp_node.notify.store import PUSH_RESULTS, NotificationStore

#: The push outbox's states (notify_outbox.status).
PUSH_STATES: Final = ("pending", "sent", "dead")


@dataclass(frozen=True)
class LspNumbers:
    holds_by_state: dict[str, int]
    held_htlcs: int
    held_msat: int
    mailbox_messages: int
    mailbox_bytes: int
    mailbox_clients: int


@dataclass(frozen=True)
class PushNumbers:
    by_state: dict[str, int]
    #: Pushes that are failing now: given up ('dead'), or still pending after a failed attempt (a
    #: gauge: it falls when a retry succeeds or old rows are deleted).
    failures: int
    #: Attempts at pushes ever made, by result (`PUSH_RESULTS`): counters, they never fall.
    attempts: dict[str, int]


def read_lsp(store: LspStore) -> LspNumbers:
    """On the LSP store's thread, in one read transaction."""
    db = store.db
    by_state = {s: 0 for s in STATES}
    for state, n in db.execute("SELECT state, COUNT(*) FROM lsp_holds GROUP BY state"):
        by_state[str(state)] = int(n)
    # Held means still ours: the HTLC arrived and waits for the payee's unblock. What it carries
    # in is what the LSP has at stake (the outbound amount is smaller by the hold's fee).
    held, held_msat = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(inbound_msat), 0) FROM lsp_hold_htlcs WHERE state = ?", (HELD,)
    ).fetchone()
    messages, size, clients = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(size), 0), COUNT(DISTINCT client) FROM lsp_mailbox"
    ).fetchone()
    return LspNumbers(by_state, int(held), int(held_msat), int(messages), int(size), int(clients))


def read_pushes(store: NotificationStore) -> PushNumbers:
    """On the notification store's thread, in one read transaction."""
    by_state = {s: 0 for s in PUSH_STATES}
    for status, n in store.db.execute("SELECT status, COUNT(*) FROM notify_outbox GROUP BY status"):
        by_state[str(status)] = int(n)
    [failures] = store.db.execute(
        "SELECT COUNT(*) FROM notify_outbox WHERE status = 'dead' OR (status = 'pending' AND attempts > 0)"
    ).fetchone()
    return PushNumbers(by_state, int(failures), store.attempt_counts())


async def summary(ops: Ops) -> dict[str, Any]:
    """The contract's summary (see module doc); zeros for the LSP role's numbers when it is off,
    and for the pushes when no notification templates are configured."""
    if ops.service is not None:
        store = ops.service.store
        lsp = await store.run(read_lsp, store)
    else:
        lsp = LspNumbers({s: 0 for s in STATES}, 0, 0, 0, 0, 0)
    if ops.notifier is not None:
        nstore = ops.notifier.store
        pushes = await nstore.run(read_pushes, nstore)
    else:
        pushes = PushNumbers({s: 0 for s in PUSH_STATES}, 0, dict.fromkeys(PUSH_RESULTS, 0))
    node = ops.node
    channels = node.channels()
    return {
        "holds_by_state": lsp.holds_by_state,
        "holds_active": sum(lsp.holds_by_state[s] for s in ACTIVE),
        "held_htlcs": lsp.held_htlcs,
        "held_msat": lsp.held_msat,
        "mailbox_messages": lsp.mailbox_messages,
        "mailbox_bytes": lsp.mailbox_bytes,
        "mailbox_clients": lsp.mailbox_clients,
        "pushes": pushes.by_state,
        "push_failures": pushes.failures,
        "push_attempts": pushes.attempts,
        "onchain_sat": node.balance().total_sat,
        "outbound_msat": sum(c.outbound_capacity_msat for c in channels),
        "inbound_msat": sum(c.inbound_capacity_msat for c in channels),
        "capacity_sat": sum(c.capacity_sat for c in channels),
        "channels": len(channels),
        "block_height": node.best_block_height,
    }
