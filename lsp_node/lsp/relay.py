"""Onion messages to a node that is not a peer of ours and not a client (SPEC.md §1.6): LDK forwards
an onion message only to a connected peer, and across the network the next LSP on a LightningRod
message's path (LSP_a -> LSP_b for the pid notice, LSP_b -> LSP_a for the unblock) is usually not
one. If the next node announced where it can be reached, we dial it and then forward; if not, the
message is dropped, as any Lightning node drops a message for a node it cannot reach.

Everything happens off the event path: `offer` only queues and returns, so the event is
acknowledged at once and the loop never waits on a dial. Bounded: `relay_max_dials` dials at
once, each within `relay_dial_timeout_secs` over all the node's addresses, and at most
`relay_max_pending_per_node` messages waiting per node and `relay_max_pending` in total, in
memory only (LDK does not keep onion messages across a restart either). Beyond a bound new
messages are dropped, logged once per node per minute; a failed dial drops its messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum

from lsp_node.errors import LspNodeError
from lsp_node.lsp.context import Role, short

log = logging.getLogger("lsp_node.lsp")

#: Queue-full drops are logged once per node in this many seconds, never per message.
DROP_LOG_EVERY = 60.0
#: Nodes whose last drop line is remembered (oldest forgotten first: it may then log again sooner).
MAX_DROP_LOG_NODES = 4096


def reason(error: LspNodeError, node: str) -> str:
    """An engine error for the log: it names the node in full, logs name it by its short id
    (SPEC.md §11.2). The address it may name is the one the node announced: public."""
    return str(error).replace(node, short(node))


class Offer(Enum):
    """What `Relay.offer` did with a message (for the caller's tests; the log says it too)."""

    QUEUED = "queued"  # waiting for the dial to its node (or for a dial slot)
    OWN_NODE = "own node"  # addressed onward to ourselves: never dialled
    NO_ADDRESS = "no address"  # the node announced no address we know
    FULL = "full"  # a bound was reached


class Relay:
    def __init__(self, role: Role, clock: Callable[[], float] = time.monotonic) -> None:
        self.role = role
        self._clock = clock
        #: node -> messages waiting for it, in arrival order; dict order is the order of dials.
        self._pending: dict[str, list[str]] = {}
        self._total = 0
        self._dialling: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: node -> (time of its last drop line, drops since then)
        self._drops: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._closed = False

    @property
    def pending(self) -> int:
        """Messages waiting for a dial, over all nodes."""
        return self._total

    @property
    def dialling(self) -> frozenset[str]:
        return frozenset(self._dialling)

    def offer(self, node: str, message: str) -> Offer:
        """Take an intercepted onion message for `node` (neither a peer nor a client). Returns at
        once; the dial and the forward happen in a background task."""
        engine, policy = self.role.engine, self.role.policy
        if self._closed:
            return Offer.FULL
        if node == engine.node_id():
            log.info("dropping an onion message addressed onward to this node itself")
            return Offer.OWN_NODE
        waiting = self._pending.get(node)
        if waiting is None and not engine.node_addresses(node):
            log.info("dropping onion message for %s: not a client of this LSP, no announced address", short(node))
            return Offer.NO_ADDRESS
        if self._total >= policy.relay_max_pending or (
            waiting is not None and len(waiting) >= policy.relay_max_pending_per_node
        ):
            self._log_drop(node)
            return Offer.FULL
        if waiting is None:
            waiting = self._pending[node] = []
        waiting.append(message)
        self._total += 1
        self._start_dials()
        return Offer.QUEUED

    def _start_dials(self) -> None:
        if self._closed:
            return
        for node in self._pending:
            if len(self._dialling) >= self.role.policy.relay_max_dials:
                return
            if node in self._dialling:
                continue
            self._dialling.add(node)
            task = asyncio.create_task(self._dial_and_forward(node), name=f"relay-{short(node)}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _dial_and_forward(self, node: str) -> None:
        try:
            failure = await self._dial(node)
            # Taken only now: messages that came while the dial ran go with it.
            messages = self._take(node)
            if failure is not None:
                log.info(
                    "could not reach %s (%.200s): %s onion message(s) dropped", short(node), failure, len(messages)
                )
                return
            for i, message in enumerate(messages):
                try:
                    await self.role.engine.forward_onion_message(message, node)
                except LspNodeError as e:
                    why = reason(e, node)
                    log.info(
                        "relay to %s stopped (%.200s): %s onion message(s) dropped", short(node), why, len(messages) - i
                    )
                    return
            log.info("relayed %s onion message(s) to %s", len(messages), short(node))
        except Exception:
            # A bug here must not leave the node's messages counted for ever or stop other dials.
            log.exception("relay to %s failed", short(node))
            self._take(node)
        finally:
            self._dialling.discard(node)
            # Messages that arrived during the forwards above, and nodes waiting for a slot.
            self._start_dials()

    def _take(self, node: str) -> list[str]:
        messages = self._pending.pop(node, [])
        self._total -= len(messages)
        return messages

    async def _dial(self, node: str) -> str | None:
        """Connect to `node` at its announced addresses in turn, all within the dial deadline;
        None once connected, else why not."""
        engine = self.role.engine
        if engine.is_online(node):
            return None
        addresses = engine.node_addresses(node)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.role.policy.relay_dial_timeout_secs
        why = "no announced address"
        for address in addresses:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(engine.connect(node, address), remaining)
                return None
            except TimeoutError:
                why = f"no connection within {self.role.policy.relay_dial_timeout_secs:g} s"
                break
            except LspNodeError as e:
                why = reason(e, node)
        return why

    def _log_drop(self, node: str) -> None:
        now = self._clock()
        seen = self._drops.get(node)
        dropped = 0
        if seen is not None:
            last, dropped = seen
            if now - last < DROP_LOG_EVERY:
                self._drops[node] = (last, dropped + 1)
                return
        log.warning(
            "relay queue full (%s waiting for %s, %s in all): dropping onion messages for it (%s more since the last line)",
            len(self._pending.get(node, ())),
            short(node),
            self._total,
            dropped,
        )
        self._drops[node] = (now, 0)
        self._drops.move_to_end(node)
        while len(self._drops) > MAX_DROP_LOG_NODES:
            self._drops.popitem(last=False)

    async def idle(self) -> None:
        """Wait until no dial runs and no message waits (its tests; a stop uses `close`)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop every dial; their messages are dropped (onion messages are not kept over a stop)."""
        self._closed = True
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._pending.clear()
        self._total = 0
        self._dialling.clear()
