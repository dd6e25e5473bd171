"""Checks of the identifiers a client hands the LSP (node id, platform, device id), and what a
log line may show of a client."""

from __future__ import annotations

import re
from typing import Final

from lsp_node.errors import InvalidArgumentError

MAX_DEVICE_ID_LEN: Final = 4096
CLIENT_ID_RE: Final = re.compile(r"^(02|03)[0-9a-f]{64}$")
PLATFORM_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
DEVICE_PLACEHOLDER: Final = "{device}"


def client_tag(client_id: str) -> str:
    """What logs may show of a client: a short prefix of its node id."""
    return client_id[:8]


def check_client_id(client_id: str) -> str:
    if not isinstance(client_id, str):
        raise InvalidArgumentError("client_id must be a hex node id string")
    cid = client_id.lower()
    if not CLIENT_ID_RE.match(cid):
        raise InvalidArgumentError("client_id must be a 33-byte compressed public key in hex (66 characters)")
    return cid


def check_device_id(device_id: str) -> str:
    # The message never echoes the id: it is a secret that could end up in a log.
    if not isinstance(device_id, str):
        raise InvalidArgumentError("device id must be a string")
    if not 1 <= len(device_id) <= MAX_DEVICE_ID_LEN:
        raise InvalidArgumentError(f"device id must be 1 to {MAX_DEVICE_ID_LEN} characters long")
    if not all("!" <= ch <= "~" for ch in device_id):
        raise InvalidArgumentError("device id must be printable ASCII without whitespace")
    return device_id
