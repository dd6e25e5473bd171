"""What a push says: the kinds, their fixed sentences, the body and title. Pushes carry only the
kind and a fixed sentence -- never a payment hash, amount, node id, device id or URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from lsp_node.errors import InvalidArgumentError

Kind = Literal["message_waiting", "preimage_waiting", "hold_expiring", "hold_failed", "payment_incoming", "test"]

#: The human sentence sent with each kind. The push body is ``"<kind>: <sentence>"``.
KIND_SENTENCES: Final[Mapping[str, str]] = {
    "message_waiting": "A message is waiting for you. Please open your wallet.",
    "preimage_waiting": "A payment you sent needs you online to finish. Please open your wallet.",
    "hold_expiring": "A pending payment will expire soon. Please open your wallet.",
    "hold_failed": "A payment you sent could not be delivered. Please open your wallet.",
    # An LSPS2 payment to the client waits for it to connect (its JIT channel opens then).
    "payment_incoming": "A payment to you is waiting. Please open your wallet.",
    # The operator's check that pushes reach the client's device (admin API); asks for nothing.
    "test": "This is a test notification from your LSP. No action is needed.",
}
KINDS: Final[frozenset[str]] = frozenset(KIND_SENTENCES)

PUSH_TITLE: Final = "LSP"


def push_body(kind: str) -> str:
    """The exact body pushed for ``kind``: the kind string, a colon and a fixed sentence."""
    try:
        return f"{kind}: {KIND_SENTENCES[kind]}"
    except KeyError:
        raise InvalidArgumentError(f"unknown notification kind {kind!r}; expected one of {sorted(KINDS)}") from None


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidArgumentError(f"unknown notification kind {kind!r}; expected one of {sorted(KINDS)}")
    return kind
