"""Checks of the identifiers a client hands the LSP (node id, platform, device id), and what a
log line may show of a client.

A device id is put into the operator's apprise URL, and apprise re-parses that URL: in an FCM
target list ``#`` makes a topic (a broadcast) and ``,`` ``;`` ``/`` separate several targets, and
URL-quoting does not help because apprise unquotes before it splits. So every device id is checked
against an allow-list of its platform's token alphabet (SPEC.md §7.1) before it is stored or used;
nothing outside ``[A-Za-z0-9_.:-]`` is ever accepted on any platform.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from lsp_node.errors import InvalidArgumentError

CLIENT_ID_RE: Final = re.compile(r"^(02|03)[0-9a-f]{64}$")
PLATFORM_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
DEVICE_PLACEHOLDER: Final = "{device}"


class DeviceFormat:
    """The allowed shape of a device id on one kind of platform."""

    def __init__(self, name: str, pattern: str, max_len: int, description: str) -> None:
        self.name = name
        self.regex = re.compile(pattern)
        self.max_len = max_len
        self.description = description

    def check(self, device_id: object) -> str:
        # The messages never echo the id: it is a secret that could end up in a log.
        if not isinstance(device_id, str):
            raise InvalidArgumentError("device id must be a string")
        if not 1 <= len(device_id) <= self.max_len:
            raise InvalidArgumentError(f"a {self.name} device id is 1 to {self.max_len} characters long")
        # fullmatch, not match: `$` would accept a trailing newline.
        if not self.regex.fullmatch(device_id):
            raise InvalidArgumentError(f"not a valid {self.name} device id: {self.description}")
        return device_id


#: The device id formats, by name (SPEC.md §7.1 documents the same table).
DEVICE_FORMATS: Final[Mapping[str, DeviceFormat]] = {
    # An FCM registration token: "<instance id>:<token>" (today ~160 characters), or a legacy
    # token without the instance id; base64url characters only.
    "fcm": DeviceFormat(
        "fcm",
        r"[A-Za-z0-9_-]{8,4096}(?::[A-Za-z0-9_-]{8,4096})?",
        4096,
        "letters, digits, '-' and '_', optionally two such parts joined by one ':'",
    ),
    # An APNs device token: 32 bytes in hex today; Apple says it may grow, so up to 100 bytes.
    "apns": DeviceFormat("apns", r"(?:[0-9A-Fa-f]{2}){32,100}", 200, "64 to 200 hex digits"),
    # Webhooks (json://, form://), ntfy topics, gotify, ...: an opaque token. No '/', '%', '#',
    # ',', '?', '@' or whitespace, and a first character that is not '.' (so no '..' segment).
    "token": DeviceFormat(
        "token",
        r"[A-Za-z0-9_-][A-Za-z0-9_.:-]{0,511}",
        512,
        "letters, digits, '-', '_', '.' and ':' (not starting with '.')",
    ),
}


def device_format(platform: str, template: str | None = None) -> DeviceFormat:
    """The format of a platform's device ids: by its name (``fcm``, ``apns``), else by the
    scheme of its URL template (``fcm://``), else an opaque token."""
    if platform in ("fcm", "apns"):
        return DEVICE_FORMATS[platform]
    if template is not None and template.lower().startswith("fcm://"):
        return DEVICE_FORMATS["fcm"]
    return DEVICE_FORMATS["token"]


def client_tag(client_id: str) -> str:
    """What logs may show of a client: the first 8 hex characters of its node id (SPEC.md §7.3)."""
    return client_id[:8]


def check_client_id(client_id: str) -> str:
    if not isinstance(client_id, str):
        raise InvalidArgumentError("client_id must be a hex node id string")
    cid = client_id.lower()
    if not CLIENT_ID_RE.match(cid):
        raise InvalidArgumentError("client_id must be a 33-byte compressed public key in hex (66 characters)")
    return cid


def check_device_id(device_id: str, fmt: DeviceFormat | None = None) -> str:
    """Check a device id against its platform's format (an opaque token if none is given)."""
    return (fmt or DEVICE_FORMATS["token"]).check(device_id)
