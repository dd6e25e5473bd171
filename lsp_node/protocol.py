"""LightningRod wire messages: odd onion-message TLV types whose value is one canonical CBOR map
with small integer keys. SPEC.md is the normative description; this module is its codec."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any, ClassVar, Self

import cbor2

from lsp_node import cbor_strict
from lsp_node.errors import LspNodeError

VERSION = 1
MAX_MESSAGE_BYTES = 32_768
#: Containers nested at most this deep (a message uses 2: the map and a list of byte strings);
#: unknown odd fields may use the rest.
MAX_DEPTH = 4
#: Revision 2 of the signed bytes (SPEC.md §2.9): the LSP a request is for is inside them. Revision
#: 3 changed two fields' shape, not what a signature covers, so the prefix stays (SPEC.md §1.4).
SIGNED_PREFIX = b"lightningrod/v2/"
NODE_ID_BYTES = 33
#: Items a list field may hold unless its message sets a lower bound (`Message.LIST_MAX`).
MAX_LIST_ITEMS = 16
#: Next nodes one hold may name (SPEC.md §2.1): each costs the LSP an intercept SCID and a check.
MAX_NEXT_NODES = 8


class ProtocolError(LspNodeError):
    """A message does not decode, or breaks a rule of SPEC.md."""


class Status(IntEnum):
    OK = 0
    UNSUPPORTED_VERSION = 1
    NOT_A_CLIENT = 2
    BAD_SIGNATURE = 3
    STALE_OR_REPLAYED = 4
    LIMIT_EXCEEDED = 5
    INVALID_REQUEST = 6
    UNKNOWN_HOLD = 7
    WRONG_PID = 8
    ALREADY_RELEASED = 9
    EXPIRED = 10
    INTERNAL = 11
    NEXT_HOP_UNUSABLE = 12
    FORWARD_FAILED = 13
    RELEASED_AWAITING_HTLC = 14


class MessageType(IntEnum):
    HOLD_REQUEST = 65_537
    HOLD_REPLY = 65_539
    PID_NOTICE = 65_541
    PAYMENT_UNBLOCK = 65_543
    UNBLOCK_REPLY = 65_545
    DEVICE_REGISTER = 65_547
    DEVICE_REPLY = 65_549
    MAILBOX_DONE = 65_551
    MAILBOX_ACK = 65_553


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _check_bytes(name: str, v: object, size: int | None) -> bytes:
    if not isinstance(v, bytes) or (size is not None and len(v) != size):
        raise ProtocolError(f"{name} must be {size if size else 'some'} bytes")
    return v


def _check_int(name: str, v: object, lo: int = 0, hi: int = 2**64 - 1) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ProtocolError(f"{name} must be an integer in [{lo}, {hi}]")
    return v


def _check_str(name: str, v: object, max_len: int) -> str:
    if not isinstance(v, str) or len(v) > max_len:
        raise ProtocolError(f"{name} must be a string of at most {max_len} characters")
    return v


@dataclass(frozen=True)
class Message:
    """Base: each field's CBOR key is its position in the dataclass (version is key 0)."""

    TYPE: ClassVar[MessageType]
    # name -> (kind, size or max) ; kinds: b=bytes, i=int, s=str, lb=list of bytes (size: of each),
    # li=list of ints; an "o" prefix makes a field optional (ob, oi, os, oli)
    SCHEMA: ClassVar[dict[str, tuple[str, int | None]]]
    #: list fields holding fewer than MAX_LIST_ITEMS items at most
    LIST_MAX: ClassVar[dict[str, int]] = {}

    @classmethod
    def list_max(cls, name: str) -> int:
        return cls.LIST_MAX.get(name, MAX_LIST_ITEMS)

    def to_map(self) -> dict[int, Any]:
        out: dict[int, Any] = {0: VERSION}
        for key, f in enumerate(fields(self), start=1):
            v = getattr(self, f.name)
            if v is not None:
                out[key] = v
        return out

    def encode(self) -> bytes:
        return cbor2.dumps(self.to_map(), canonical=True)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode untrusted bytes (SPEC.md §1.3); raises ProtocolError and nothing else."""
        m = _decode_map(data)
        version = m.get(0)
        if version != VERSION:
            raise ProtocolError(f"unsupported version {_shown(version)}")
        names = [f.name for f in fields(cls)]
        unknown = [k for k in m if k != 0 and not 1 <= k <= len(names)]
        # Unknown even keys are mandatory-to-understand; unknown odd keys are ignored.
        if any(k % 2 == 0 for k in unknown):
            raise ProtocolError(f"unknown required field(s) {sorted(k for k in unknown if k % 2 == 0)}")
        values: dict[str, Any] = {}
        for key, name in enumerate(names, start=1):
            kind, size = cls.SCHEMA[name]
            v = m.get(key)
            if v is None:
                if kind.startswith("o"):
                    values[name] = None
                    continue
                raise ProtocolError(f"missing field {name}")
            base = kind.removeprefix("o")
            if base == "b":
                values[name] = _check_bytes(name, v, size)
            elif base == "i":
                values[name] = _check_int(name, v)
            elif base == "s":
                values[name] = _check_str(name, v, size or 1024)
            elif base in ("lb", "li"):
                most = cls.list_max(name)
                if not isinstance(v, list) or not 1 <= len(v) <= most:
                    raise ProtocolError(f"{name} must be a list of 1 to {most} items")
                if base == "lb":
                    values[name] = tuple(_check_bytes(name, x, size) for x in v)
                else:
                    values[name] = tuple(_check_int(name, x) for x in v)
            else:  # pragma: no cover - schema error
                raise AssertionError(kind)
        return cls(**values)

    def signed_bytes(self, audience: bytes) -> bytes:
        """What a signature covers: prefix, the node id of the LSP the request is for (so a
        signed request cannot be replayed to another LSP), type, and the map without the
        signature field."""
        if len(audience) != NODE_ID_BYTES:
            raise ProtocolError("the audience of a signature is a 33-byte node id")
        m = self.to_map()
        names = [f.name for f in fields(self)]
        if "signature" in names:
            m.pop(names.index("signature") + 1, None)
        return SIGNED_PREFIX + audience + self.TYPE.to_bytes(4, "big") + cbor2.dumps(m, canonical=True)


@dataclass(frozen=True)
class HoldRequest(Message):
    TYPE = MessageType.HOLD_REQUEST
    SCHEMA = {
        "request_id": ("b", 16),
        "payment_hashes": ("lb", 32),
        "amount_msat": ("i", None),
        "pid_hash": ("b", 32),
        "next_node_ids": ("lb", NODE_ID_BYTES),
        "hold_blocks": ("i", None),
        "client_node_id": ("b", 33),
        "timestamp": ("i", None),
        "signature": ("s", 200),
    }
    # Revision 3: the payer's route decides the next hops; one intercept SCID each (SPEC.md §4.2).
    LIST_MAX = {"next_node_ids": MAX_NEXT_NODES}
    request_id: bytes
    payment_hashes: tuple[bytes, ...]
    amount_msat: int
    pid_hash: bytes
    next_node_ids: tuple[bytes, ...]
    hold_blocks: int
    client_node_id: bytes
    timestamp: int
    signature: str


@dataclass(frozen=True)
class HoldReply(Message):
    TYPE = MessageType.HOLD_REPLY
    SCHEMA = {
        "request_id": ("b", 16),
        "status": ("i", None),
        "intercept_scids": ("oli", None),
        "fee_base_msat": ("oi", None),
        "fee_proportional_millionths": ("oi", None),
        "cltv_expiry_delta": ("oi", None),
        "extra_final_cltv": ("oi", None),
        "unblock_path": ("ob", None),
        "error": ("os", 300),
    }
    #: One SCID per next node of the request, in its order.
    LIST_MAX = {"intercept_scids": MAX_NEXT_NODES}
    request_id: bytes
    status: int
    intercept_scids: tuple[int, ...] | None = None
    fee_base_msat: int | None = None
    fee_proportional_millionths: int | None = None
    cltv_expiry_delta: int | None = None
    extra_final_cltv: int | None = None
    unblock_path: bytes | None = None
    error: str | None = None


@dataclass(frozen=True)
class PidNotice(Message):
    TYPE = MessageType.PID_NOTICE
    SCHEMA = {"payment_hash": ("b", 32), "pid": ("b", 32), "unblock_path": ("b", None)}
    payment_hash: bytes
    pid: bytes
    unblock_path: bytes


@dataclass(frozen=True)
class PaymentUnblock(Message):
    TYPE = MessageType.PAYMENT_UNBLOCK
    SCHEMA = {"pid": ("b", 32), "payment_hash": ("b", 32)}
    pid: bytes
    payment_hash: bytes


@dataclass(frozen=True)
class UnblockReply(Message):
    TYPE = MessageType.UNBLOCK_REPLY
    SCHEMA = {"payment_hash": ("b", 32), "status": ("i", None), "error": ("os", 300)}
    payment_hash: bytes
    status: int
    error: str | None = None


@dataclass(frozen=True)
class DeviceRegister(Message):
    TYPE = MessageType.DEVICE_REGISTER
    SCHEMA = {
        "request_id": ("b", 16),
        "remove": ("i", None),
        "platform": ("s", 32),
        "device_id": ("s", 4096),
        "client_node_id": ("b", 33),
        "timestamp": ("i", None),
        "signature": ("s", 200),
    }
    request_id: bytes
    remove: int
    platform: str
    device_id: str
    client_node_id: bytes
    timestamp: int
    signature: str


@dataclass(frozen=True)
class DeviceReply(Message):
    TYPE = MessageType.DEVICE_REPLY
    SCHEMA = {"request_id": ("b", 16), "status": ("i", None), "expires_at": ("oi", None), "error": ("os", 300)}
    request_id: bytes
    status: int
    expires_at: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class MailboxDone(Message):
    """LSP -> client, after the stored messages of one delivery (SPEC.md §5.3). Sent with a reply
    path whose context names the batch, so only the client that received it can acknowledge."""

    TYPE = MessageType.MAILBOX_DONE
    SCHEMA = {"batch_id": ("b", 16), "count": ("i", None)}
    batch_id: bytes
    count: int


@dataclass(frozen=True)
class MailboxAck(Message):
    """Client -> LSP along the MAILBOX_DONE's reply path: every message of the batch was handled."""

    TYPE = MessageType.MAILBOX_ACK
    SCHEMA = {"batch_id": ("b", 16)}
    batch_id: bytes


MESSAGES: dict[int, type[Message]] = {
    m.TYPE: m
    for m in (
        HoldRequest,
        HoldReply,
        PidNotice,
        PaymentUnblock,
        UnblockReply,
        DeviceRegister,
        DeviceReply,
        MailboxDone,
        MailboxAck,
    )
}


def decode(tlv_type: int, payload: bytes) -> Message:
    cls = MESSAGES.get(tlv_type)
    if cls is None:
        raise ProtocolError(f"unknown message type {tlv_type}")
    return cls.decode(payload)


@dataclass(frozen=True)
class PaymentRequest:
    """What a payee hands a payer: the BOLT11 invoice plus a blinded path to its mailbox at
    its LSP, so the pid can reach it while it is offline. Text form: `lnrod1` + hex(CBOR)."""

    invoice: str
    mailbox_path: bytes

    PREFIX: ClassVar[str] = "lnrod1"

    def encode(self) -> str:
        return self.PREFIX + cbor2.dumps({0: VERSION, 1: self.invoice, 2: self.mailbox_path}, canonical=True).hex()

    @classmethod
    def decode(cls, text: str) -> PaymentRequest:
        """Decode untrusted text (SPEC.md §3): the same rules as a message (§1.3)."""
        if not isinstance(text, str) or len(text) > len(cls.PREFIX) + 2 * MAX_MESSAGE_BYTES:
            raise ProtocolError(
                f"a payment request is a string of at most {len(cls.PREFIX) + 2 * MAX_MESSAGE_BYTES} characters"
            )
        if not text.startswith(cls.PREFIX):
            raise ProtocolError("a payment request starts with lnrod1")
        body = text[len(cls.PREFIX) :]
        # bytes.fromhex would also take upper case and spaces: one text form only.
        if len(body) % 2 or not _LOWER_HEX.fullmatch(body):
            raise ProtocolError("a payment request is lnrod1 followed by lowercase hex")
        m = _decode_map(bytes.fromhex(body))
        if m.get(0) != VERSION:
            raise ProtocolError(f"unsupported payment request version {_shown(m.get(0))}")
        unknown = sorted(k for k in m if k not in (0, 1, 2) and k % 2 == 0)
        if unknown:
            raise ProtocolError(f"unknown required field(s) {unknown}")
        if 1 not in m or 2 not in m:
            raise ProtocolError("missing field " + ("invoice" if 1 not in m else "mailbox_path"))
        return cls(_check_str("invoice", m[1], 4096), _check_bytes("mailbox_path", m[2], None))


_LOWER_HEX = re.compile("[0-9a-f]*")


def _shown(v: object) -> str:
    """A decoded value for an error message: integers as such, anything else by its CBOR type
    only (an error text must not echo what a stranger sent)."""
    if isinstance(v, int):
        return str(v)
    return "(absent)" if v is None else f"(a {_CBOR_TYPE.get(type(v), 'value')}, not an integer)"


_CBOR_TYPE: dict[type, str] = {bytes: "byte string", str: "text string", list: "array", dict: "map"}


def _decode_map(data: bytes) -> dict[int, Any]:
    """§1.3 rules 1 to 3: bounded size, the strict CBOR subset, one map at the top."""
    if not isinstance(data, bytes):
        raise ProtocolError("a message is bytes")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message too large: {len(data)} bytes, at most {MAX_MESSAGE_BYTES}")
    try:
        m = cbor_strict.loads(data, max_depth=MAX_DEPTH, max_size=MAX_MESSAGE_BYTES)
    except cbor_strict.CborError as e:
        raise ProtocolError(str(e)) from None
    if not isinstance(m, dict):
        raise ProtocolError("message must be a CBOR map with integer keys")
    return m
