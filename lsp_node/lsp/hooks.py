"""Named hook points of the LSP role. Production registers nothing; a test launcher registers
callables (e.g. to crash the process at an exact point) before the LSP starts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

#: Fired right after a release is committed and before any held HTLC is forwarded.
AFTER_RELEASE: Final = "after_release"
#: Fired right after LDK accepted a forward and before it is recorded as `forwarded` (and, most
#: likely, before LDK persisted it): start-up must find the released hold and forward again.
AFTER_LDK_FORWARD: Final = "after_ldk_forward"
#: Fired right after failed-back HTLCs are committed as `failed`, before LDK persisted the failure.
AFTER_FAIL_BACK: Final = "after_fail_back"
#: Fired right after a mailbox delivery (messages and MAILBOX_DONE handed to LDK), before any ack.
AFTER_MAIL_DELIVERY: Final = "after_mail_delivery"

_hooks: dict[str, list[Callable[[], None]]] = {}


def register(name: str, fn: Callable[[], None]) -> None:
    _hooks.setdefault(name, []).append(fn)


def clear() -> None:
    _hooks.clear()


def fire(name: str) -> None:
    for fn in _hooks.get(name, ()):
        fn()
