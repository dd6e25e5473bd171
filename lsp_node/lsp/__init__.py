"""The LSP role of the LightningRod protocol: holds for payers, the mailbox for offline payees,
device registration and push notifications. Driven by engine events; see SPEC.md."""

from lsp_node.lsp.holds import ACTIVE, ARMED, EXPIRED, FAILED, HELD, RELEASED, SETTLED, HoldEvent, IllegalTransition
from lsp_node.lsp.port import EnginePort, LdkEngine
from lsp_node.lsp.service import LspService
from lsp_node.lsp.store import HeldHtlc, Hold, HoldHop, LspStore, MailboxEntry

__all__ = [
    "ACTIVE",
    "ARMED",
    "EXPIRED",
    "FAILED",
    "HELD",
    "RELEASED",
    "SETTLED",
    "EnginePort",
    "HeldHtlc",
    "Hold",
    "HoldEvent",
    "HoldHop",
    "IllegalTransition",
    "LdkEngine",
    "LspService",
    "LspStore",
    "MailboxEntry",
]
