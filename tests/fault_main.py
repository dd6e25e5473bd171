"""Test launcher: `python -m tests.fault_main FAULT main.py-arguments...` runs the LSP like
main.py, with a fault installed through the LSP role's named hooks. Production code has no fault
branch; only this file knows the faults."""

from __future__ import annotations

import os
import sys

import main
from lsp_node.lsp import hooks


def _crash() -> None:
    # Die like kill -9: no cleanup, no flush of anything not yet durable.
    os._exit(137)


FAULTS = {
    # Between the durable release and the forwards, which restart reconciliation must complete once.
    "crash_after_release": (hooks.AFTER_RELEASE, _crash),
    # LDK accepted the forward, we have not recorded it: the forward must happen exactly once.
    "crash_after_ldk_forward": (hooks.AFTER_LDK_FORWARD, _crash),
    # `failed` committed, LDK's ChannelManager maybe not yet: the payer must still get its HTLC back.
    "crash_after_fail_back": (hooks.AFTER_FAIL_BACK, _crash),
    # Mail handed to LDK, not acknowledged: after the restart it must be delivered again.
    "crash_after_mail_delivery": (hooks.AFTER_MAIL_DELIVERY, _crash),
}

if __name__ == "__main__":
    hook, action = FAULTS[sys.argv[1]]
    hooks.register(hook, action)
    code = main.main(sys.argv[2:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
