"""The shapes of the ids and addresses the admin API and the dashboard accept, defined once so the
two cannot drift apart: each as pattern text (for pydantic's `pattern=`, see `anchored`) and as a
compiled regex (for `fullmatch`). Only ASCII classes: `\\d` would also match other scripts' digits."""

from __future__ import annotations

import re
from typing import Final

#: A 33-byte compressed public key in hex.
NODE_ID: Final = r"0[23][0-9a-fA-F]{64}"
#: 32 bytes in hex: channel ids, payment hashes.
HEX32: Final = r"[0-9a-fA-F]{64}"
#: 16 bytes in hex: hold ids.
HEX16: Final = r"[0-9a-fA-F]{32}"
#: host:port or [v6]:port; the engine resolves and dials it.
PEER_ADDRESS: Final = r"[A-Za-z0-9.\-\[\]:]{1,255}:[0-9]{1,5}"

NODE_ID_RE: Final = re.compile(NODE_ID)
CHANNEL_ID_RE: Final = re.compile(HEX32)
HOLD_ID_RE: Final = re.compile(HEX16)
PEER_ADDRESS_RE: Final = re.compile(PEER_ADDRESS)


def anchored(pattern: str) -> str:
    """The pattern for pydantic's `pattern=`, which searches: anchored at both ends (its regex
    engine's `$` is the end of the text only, unlike Python's, which also allows a final newline)."""
    return f"^{pattern}$"
