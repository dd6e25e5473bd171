"""SPEC.md's test vectors, checked against the codec in lsp_node/protocol.py.

The vectors are the fenced ```vector blocks of SPEC.md (one JSON object each; the format is
described in SPEC.md §10). For every valid vector, encoding the stated fields must give exactly the
stated hex and decoding the hex must give exactly the stated fields; every invalid vector must be
rejected with ProtocolError. The document and the code cannot drift apart silently."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from lsp_node import protocol as p

SPEC = Path(__file__).resolve().parent.parent / "SPEC.md"
_BLOCK = re.compile(r"^```vector\n(.*?)^```", re.S | re.M)


def _load() -> list[dict[str, Any]]:
    vectors = [json.loads(m.group(1)) for m in _BLOCK.finditer(SPEC.read_text(encoding="utf-8"))]
    names = [v["name"] for v in vectors]
    assert len(names) == len(set(names)), "vector names must be unique"
    return vectors


VECTORS = _load()
MESSAGES = [v for v in VECTORS if "type" in v and "fields" in v]
INVALID = [v for v in VECTORS if "error" in v]
PAYMENT_REQUESTS = [v for v in VECTORS if "text" in v]


def _hex(value: str | list[str]) -> bytes:
    """A hex string, or a list of hex chunks to concatenate."""
    return bytes.fromhex(value if isinstance(value, str) else "".join(value))


def _to_message(cls: type[p.Message], spec_fields: dict[str, Any]) -> p.Message:
    names = [f.name for f in fields(cls)]
    assert list(spec_fields) == names, f"{cls.__name__}: SPEC.md must list exactly the fields {names}"
    values: dict[str, Any] = {}
    for name, v in spec_fields.items():
        kind = cls.SCHEMA[name][0].removeprefix("o")
        if v is None:
            values[name] = None
        elif kind == "b":
            values[name] = _hex(v)
        elif kind == "lb":
            values[name] = tuple(bytes.fromhex(x) for x in v)
        elif kind == "li":
            values[name] = tuple(v)
        else:
            values[name] = v
    return cls(**values)


def _id(v: dict[str, Any]) -> str:
    return str(v["name"])


def test_spec_has_every_message_type_and_the_required_invalid_vectors() -> None:
    assert {v["type"] for v in MESSAGES} >= {int(t) for t in p.MessageType}
    names = {v["name"] for v in INVALID}
    assert {"non_canonical_key_order", "unknown_even_key", "wrong_version"} <= names
    assert PAYMENT_REQUESTS
    assert any("signed_bytes" in v for v in MESSAGES if v["type"] == p.MessageType.HOLD_REQUEST)
    assert any("signed_bytes" in v for v in MESSAGES if v["type"] == p.MessageType.DEVICE_REGISTER)


def test_spec_type_table_matches_code() -> None:
    """§2's catalogue names every MessageType with its number, and every Status code."""
    text = SPEC.read_text(encoding="utf-8")
    for t in p.MessageType:
        assert re.search(rf"\|\s*{int(t)}\s*\|\s*`{t.name}`", text), t.name
        assert t % 2 == 1 and 65_537 <= t <= 65_791
    for s in p.Status:
        assert re.search(rf"\|\s*{int(s)}\s*\|\s*`{s.name}`", text), s.name


@pytest.mark.parametrize("v", MESSAGES, ids=_id)
def test_valid_vector(v: dict[str, Any]) -> None:
    cls = p.MESSAGES[v["type"]]
    expected = _hex(v["hex"])
    decoded = p.decode(v["type"], expected)
    assert isinstance(decoded, cls)
    msg = _to_message(cls, v["fields"])
    assert decoded == msg, "decoding the hex must give exactly the stated fields"
    if "signed_bytes" in v:
        assert msg.signed_bytes(_hex(v["audience"])) == _hex(v["signed_bytes"])
    if v["name"] == "unknown_odd_key_ignored":
        # Tolerated input: not canonical output of the encoder, but decodes to the stated fields.
        assert msg.encode() != expected and p.decode(v["type"], msg.encode()) == msg
    else:
        assert msg.encode() == expected, "encoding the stated fields must give exactly the hex"


@pytest.mark.parametrize("v", INVALID, ids=_id)
def test_invalid_vector(v: dict[str, Any]) -> None:
    with pytest.raises(p.ProtocolError) as e:
        p.decode(v["type"], _hex(v["hex"]))
    assert v["error"] in str(e.value)


@pytest.mark.parametrize("v", PAYMENT_REQUESTS, ids=_id)
def test_payment_request_vector(v: dict[str, Any]) -> None:
    text = "".join(v["text"]) if isinstance(v["text"], list) else v["text"]
    req = p.PaymentRequest(v["fields"]["invoice"], _hex(v["fields"]["mailbox_path"]))
    assert req.encode() == text
    assert p.PaymentRequest.decode(text) == req
    _parse_blinded_path(req.mailbox_path)


def test_synthetic_paths_follow_the_documented_layout() -> None:
    for v in MESSAGES:
        path = v["fields"].get("unblock_path")
        if path is not None:
            _parse_blinded_path(_hex(path))


def _parse_blinded_path(b: bytes) -> int:
    """SPEC.md §3's layout of LDK's BlindedMessagePath encoding; returns the number of hops."""
    assert b[0] in (2, 3), "introduction node id (this code never emits the SCID form)"
    pos = 33
    assert b[pos] in (2, 3), "blinding point"
    pos += 33
    hops = b[pos]
    pos += 1
    for _ in range(hops):
        assert b[pos] in (2, 3), "blinded node id"
        pos += 33
        n = int.from_bytes(b[pos : pos + 2], "big")
        pos += 2 + n
    assert pos == len(b), "the path must be consumed exactly"
    return hops


# -- a real signature ------------------------------------------------------------------------------
# An independent implementation of lightning `signmessage` (RFC 6979 deterministic ECDSA, low S,
# recoverable, zbase32), so the signature vector does not depend on a running node.

_P = 2**256 - 2**32 - 977
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)
_ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769"


def _add(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % _P == 0:
        return None
    if a == b:
        lam = 3 * a[0] * a[0] * pow(2 * a[1], -1, _P) % _P
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, _P) % _P
    x = (lam * lam - a[0] - b[0]) % _P
    return x, (lam * (a[0] - x) - a[1]) % _P


def _mul(k: int) -> tuple[int, int]:
    r, pt = None, _G
    while k:
        if k & 1:
            r = _add(r, pt)
        pt = _add(pt, pt)  # type: ignore[assignment]
        k >>= 1
    assert r is not None
    return r


def _compressed(pt: tuple[int, int]) -> bytes:
    return bytes([2 + (pt[1] & 1)]) + pt[0].to_bytes(32, "big")


def _rfc6979(d: int, h: bytes) -> int:
    x, v, k = d.to_bytes(32, "big"), b"\x01" * 32, b"\x00" * 32
    k = hmac.new(k, v + b"\x00" + x + h, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    k = hmac.new(k, v + b"\x01" + x + h, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    while True:
        v = hmac.new(k, v, hashlib.sha256).digest()
        n = int.from_bytes(v, "big")
        if 1 <= n < _N:
            return n
        k = hmac.new(k, v + b"\x00", hashlib.sha256).digest()
        v = hmac.new(k, v, hashlib.sha256).digest()


def _zbase32(b: bytes) -> str:
    bits = "".join(f"{x:08b}" for x in b)
    bits += "0" * (-len(bits) % 5)
    return "".join(_ZBASE32[int(bits[i : i + 5], 2)] for i in range(0, len(bits), 5))


def sign_message(message: bytes, secret: int) -> str:
    h = hashlib.sha256(hashlib.sha256(b"Lightning Signed Message:" + message).digest()).digest()
    k = _rfc6979(secret, h)
    r_pt = _mul(k)
    r = r_pt[0] % _N
    s = pow(k, -1, _N) * (int.from_bytes(h, "big") + r * secret) % _N
    recid = (r_pt[1] & 1) | (2 if r_pt[0] >= _N else 0)
    if s > _N // 2:
        s, recid = _N - s, recid ^ 1
    return _zbase32(bytes([31 + recid]) + r.to_bytes(32, "big") + s.to_bytes(32, "big"))


SIGNED = [v for v in MESSAGES if "secret_key" in v]


def test_fixed_node_ids_are_what_spec_says() -> None:
    assert _compressed(_G).hex() == "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    hold = next(v for v in MESSAGES if v["name"] == "hold_request")["fields"]
    assert _hex(hold["client_node_id"]) == _compressed(_mul(1))
    assert [_hex(n) for n in hold["next_node_ids"]] == [_compressed(_mul(2)), _compressed(_mul(10))]
    assert _hex(hold["pid_hash"]) == p.sha256(b"\x22" * 32)
    assert _hex(next(v for v in MESSAGES if v["name"] == "hold_request")["audience"]) == _compressed(_mul(3))


@pytest.mark.parametrize("v", SIGNED, ids=_id)
def test_signature_vector(v: dict[str, Any]) -> None:
    msg = _to_message(p.MESSAGES[v["type"]], v["fields"])
    secret = int(v["secret_key"], 16)
    assert msg.client_node_id == _compressed(_mul(secret))  # type: ignore[attr-defined]
    audience = _hex(v["audience"])
    assert sign_message(msg.signed_bytes(audience), secret) == msg.signature  # type: ignore[attr-defined]
    from lsp_node.engine import LightningNode

    node_id = msg.client_node_id.hex()  # type: ignore[attr-defined]
    assert LightningNode.verify_message(msg.signed_bytes(audience), msg.signature, node_id)  # type: ignore[attr-defined]
    # The same request does not verify for any other LSP (audience, SPEC.md §2.9).
    other = _compressed(_mul(9))
    assert not LightningNode.verify_message(msg.signed_bytes(other), msg.signature, node_id)  # type: ignore[attr-defined]
    # The placeholder signature of the unsigned vector covers the same bytes and does not verify.
    placeholder = next(x for x in MESSAGES if x["name"] == v["name"].removesuffix("_signed"))
    unsigned = _to_message(p.MESSAGES[placeholder["type"]], placeholder["fields"])
    assert unsigned.signed_bytes(audience) == msg.signed_bytes(audience)
    assert not LightningNode.verify_message(unsigned.signed_bytes(audience), unsigned.signature, node_id)  # type: ignore[attr-defined]
