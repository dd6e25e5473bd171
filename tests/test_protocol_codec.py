"""Property tests of the LightningRod codec (lsp_node/protocol.py): no LDK needed."""

from __future__ import annotations

import contextlib
from dataclasses import fields
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_node import protocol as p

MESSAGES: list[type[p.Message]] = [
    p.HoldRequest,
    p.HoldReply,
    p.PidNotice,
    p.PaymentUnblock,
    p.UnblockReply,
    p.DeviceRegister,
    p.DeviceReply,
]


def field_strategy(kind: str, size: int | None, most: int = p.MAX_LIST_ITEMS) -> st.SearchStrategy[Any]:
    base = kind.removeprefix("o")
    if base == "b":
        value: st.SearchStrategy[Any] = st.binary(min_size=size, max_size=size) if size else st.binary(max_size=300)
    elif base == "i":
        value = st.integers(0, 2**64 - 1)
    elif base == "s":
        value = st.text(max_size=min(size or 1024, 64))
    elif base == "li":
        value = st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=most).map(tuple)
    else:  # "lb"
        value = st.lists(st.binary(min_size=size, max_size=size), min_size=1, max_size=most).map(tuple)
    return st.none() | value if kind.startswith("o") else value


def message_strategy(cls: type[p.Message]) -> st.SearchStrategy[p.Message]:
    return st.builds(cls, **{f.name: field_strategy(*cls.SCHEMA[f.name], cls.list_max(f.name)) for f in fields(cls)})


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 12), st.integers(0, 12))
def test_hold_lists_hold_1_to_8_items(nodes: int, scids: int) -> None:
    """Revision 3: at most 8 next nodes a hold, and as many intercept SCIDs in the reply."""
    req = p.HoldRequest(bytes(16), (bytes(32),), 1, bytes(32), (b"\x02" * 33,) * nodes, 1, b"\x02" * 33, 1, "s")
    reply = p.HoldReply(bytes(16), 0, intercept_scids=(2**64 - 1,) * scids)
    for msg, n, name in ((req, nodes, "next_node_ids"), (reply, scids, "intercept_scids")):
        if 1 <= n <= 8:
            assert p.decode(msg.TYPE, msg.encode()) == msg
        else:
            with pytest.raises(p.ProtocolError, match=f"{name} must be a list of 1 to 8 items"):
                p.decode(msg.TYPE, msg.encode())


any_message = st.one_of(*(message_strategy(c) for c in MESSAGES))


@settings(max_examples=300, deadline=None)
@given(any_message)
def test_every_message_round_trips_canonically(msg: p.Message) -> None:
    data = msg.encode()
    assert p.decode(msg.TYPE, data) == msg
    assert type(msg).decode(data).encode() == data


@settings(max_examples=300, deadline=None)
@given(any_message, st.data())
def test_a_changed_byte_is_rejected_or_decodes_to_exactly_those_bytes(msg: p.Message, data: st.DataObject) -> None:
    raw = bytearray(msg.encode())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    try:
        decoded = p.decode(msg.TYPE, bytes(raw))
    except p.ProtocolError:
        return
    # Anything accepted was canonical: it re-encodes to the same bytes, less the unknown odd keys
    # the decoder ignores.
    m = cbor2.loads(bytes(raw))
    known = {k: v for k, v in m.items() if k == 0 or 1 <= k <= len(fields(decoded))}
    assert decoded.encode() == cbor2.dumps(known, canonical=True)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(MESSAGES), st.binary(max_size=200))
def test_garbage_raises_only_protocol_error(cls: type[p.Message], data: bytes) -> None:
    with contextlib.suppress(p.ProtocolError):
        cls.decode(data)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=100), st.binary(max_size=200))
def test_payment_request_round_trips(invoice: str, path: bytes) -> None:
    req = p.PaymentRequest(invoice, path)
    assert p.PaymentRequest.decode(req.encode()) == req


cbor_values = st.recursive(
    st.integers(-(2**64), 2**64 - 1) | st.binary(max_size=40) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.integers(0, 2**64 - 1), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(cbor_values)
def test_strict_decoder_reads_back_what_cbor2_writes_canonically(value: Any) -> None:
    from lsp_node import cbor_strict

    data = cbor2.dumps(value, canonical=True)
    try:
        decoded = cbor_strict.loads(data, max_depth=p.MAX_DEPTH, max_size=p.MAX_MESSAGE_BYTES)
    except cbor_strict.CborError as e:
        assert "nested deeper" in str(e)  # the only refusal of canonical, tag-free input
        return
    assert decoded == value


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300))
def test_strict_decoder_accepts_only_canonical_bytes_and_raises_only_its_error(data: bytes) -> None:
    from lsp_node import cbor_strict

    try:
        value = cbor_strict.loads(data, max_depth=p.MAX_DEPTH, max_size=p.MAX_MESSAGE_BYTES)
    except cbor_strict.CborError:
        return
    assert cbor2.dumps(value, canonical=True) == data


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_payment_request_text_raises_only_protocol_error(text: str) -> None:
    with contextlib.suppress(p.ProtocolError):
        p.PaymentRequest.decode("lnrod1" + text)
