"""What the operator can see and do, as plain data: one layer under the JSON API, the CLI (through
the API), the dashboard and the metrics, so each shows the same numbers. Reads of SQLite run on the
store's database thread; nothing here blocks the event loop."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from lsp_node.config import Settings
from lsp_node.engine import LightningNode, fields
from lsp_node.errors import InvalidArgumentError
from lsp_node.lsp import LspService
from lsp_node.monitor.samples import SampleStore
from lsp_node.notify import Notifier


@dataclass
class Ops:
    node: LightningNode
    service: LspService | None = None
    notifier: Notifier | None = None
    settings: Settings | None = None
    samples: SampleStore | None = None

    def lsp(self) -> LspService:
        if self.service is None:
            raise InvalidArgumentError("the LSP role is disabled on this node")
        return self.service

    # -- the node -----------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        node = self.node
        return {
            "node_id": node.node_id,
            "listen_addr": node.listen_addr,
            "network": node.network,
            "block_height": node.best_block_height,
            "balance": fields(node.balance()),
            "channels": len(node.channels()),
            "peers": len(node.peers()),
        }

    async def new_address(self) -> str:
        return await self.node.new_address()

    async def sync(self) -> int:
        await self.node.sync()
        return self.node.best_block_height

    async def connect(self, node_id: str, address: str) -> None:
        await self.node.connect(node_id.lower(), address)

    def peers(self) -> list[dict[str, Any]]:
        return [fields(p) for p in self.node.peers()]

    async def open_channel(self, node_id: str, amount_sat: int, push_msat: int = 0, announce: bool = False) -> str:
        if push_msat > amount_sat * 1000:
            raise InvalidArgumentError("field 'push_msat' must not exceed amount_sat * 1000")
        return await self.node.open_channel(node_id.lower(), amount_sat, push_msat=push_msat, announce=announce)

    def channels(self) -> list[dict[str, Any]]:
        return [fields(c) for c in self.node.channels()]

    # -- the LSP role -------------------------------------------------------------------------------

    async def holds(self) -> list[dict[str, Any]]:
        store = self.lsp().store

        def read() -> list[dict[str, Any]]:
            return [
                {**dataclasses.asdict(h), "htlcs": [dataclasses.asdict(x) for x in store.htlcs(h.hold_id)]}
                for h in store.holds()
            ]

        # On the database thread, in one read transaction: the loop does not wait on SQLite.
        return await store.run(read)

    async def mailbox(self) -> list[dict[str, Any]]:
        store = self.lsp().store
        return [dataclasses.asdict(m) for m in await store.run(store.messages)]
