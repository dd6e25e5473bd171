"""The wire's bad-input corpus (tests/bad_wire_corpus.py) at the codec: each case is refused with
its own ProtocolError, quickly, and nothing else is ever raised."""

from __future__ import annotations

import time

import pytest

from lsp_node import protocol as p

from .bad_wire_corpus import CASES, MESSAGE_CLASSES, Case, payment_request_cases, sample


def test_the_corpus_is_large_and_covers_every_message_type() -> None:
    assert len(CASES) + len(payment_request_cases()) >= 300
    assert {c.tlv_type for c in CASES} >= {int(t) for t in p.MessageType}
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda c: c.__name__)
def test_the_samples_the_corpus_mutates_are_valid(cls: type[p.Message]) -> None:
    msg = sample(cls)
    assert p.decode(cls.TYPE, msg.encode()) == msg


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_message_is_refused_with_its_reason(case: Case) -> None:
    started = time.perf_counter()
    with pytest.raises(p.ProtocolError) as refused:
        p.decode(case.tlv_type, case.data)
    assert case.error in str(refused.value)
    # Bounded work: no expansion, no re-encoding (the shared-reference bomb is ~2 KB of bytes
    # that would expand to 2^30 list nodes).
    assert time.perf_counter() - started < 0.5
    # The refusal names a reason, not the sender's bytes.
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize("name,text,error", payment_request_cases(), ids=[c[0] for c in payment_request_cases()])
def test_bad_payment_request_is_refused_with_its_reason(name: str, text: str, error: str) -> None:
    with pytest.raises(p.ProtocolError) as refused:
        p.PaymentRequest.decode(text)
    assert error in str(refused.value)


def test_unknown_odd_keys_are_tolerated_with_nested_values() -> None:
    good = sample(p.PaymentUnblock).encode()
    # key 1001 holding [[b""]] and key 65537 holding a map: ignored, the message decodes.
    extra = bytes([good[0] + 2]) + good[1:] + b"\x19\x03\xe9\x81\x81\x40" + b"\x1a\x00\x01\x00\x01\xa1\x01\x00"
    assert p.decode(p.PaymentUnblock.TYPE, extra) == sample(p.PaymentUnblock)
