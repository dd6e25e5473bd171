"""`make demo` runs the whole async payment on its four-node network: every step is printed, the
payment settles, and the processes stop cleanly."""

from __future__ import annotations

import subprocess
import sys

from .lsp_process import ROOT, free_port

STEPS = [
    "starting the embedded regtest chain",
    "LSP_a: dashboard http://127.0.0.1:",
    "LSP_b: dashboard http://127.0.0.1:",
    "B creates a payment request",
    "A asks LSP_a to hold its HTLCs",
    "push receiver: 'message_waiting' for device bob-phone",
    "LSP_a holds the HTLC: hold ",
    "A goes offline too",
    "B comes online",
    "B received 50,000 sat",
    "LSP_a released the HTLC and answered OK",
    "push receiver: 'preimage_waiting' for device alice-phone",
    "A's payment succeeded",
    "done",
]


def test_demo_walks_the_async_payment_to_the_end() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "demo.async_payment",
            "--exit",
            "--port-a",
            str(free_port()),
            "--port-b",
            str(free_port()),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    for want in STEPS:
        assert any(want in line for line in lines), f"missing step {want!r} in:\n{proc.stdout}"
