"""Coverage-guided fuzzing (atheris, libFuzzer) of the decoders of untrusted input: outside CI,
run by `make fuzz`. One target per process:

    python fuzz/fuzz_decoders.py {cbor|message|payment_request} [libFuzzer flags] [corpus dirs]

A crash is any exception other than the decoder's own refusal, or an accepted input that breaks
the decoder's promise: the strict CBOR decoder accepts only canonical bytes (so cbor2's canonical
encoding of what it returned gives the input back), and an accepted message re-encodes to a
message that decodes to itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import cbor2

    from lsp_node import cbor_strict
    from lsp_node import protocol as p

TYPES = sorted(p.MESSAGES)


def fuzz_cbor(data: bytes) -> None:
    try:
        value = cbor_strict.loads(data, max_depth=p.MAX_DEPTH, max_size=p.MAX_MESSAGE_BYTES)
    except cbor_strict.CborError:
        return
    if cbor2.dumps(value, canonical=True) != data:
        raise AssertionError(f"accepted non-canonical CBOR {data.hex()}")


def fuzz_message(data: bytes) -> None:
    if not data:
        return
    tlv_type = TYPES[data[0] % len(TYPES)]
    try:
        msg = p.decode(tlv_type, data[1:])
    except p.ProtocolError:
        return
    if p.decode(tlv_type, msg.encode()) != msg:
        raise AssertionError(f"accepted message does not round-trip: {data.hex()}")


def fuzz_payment_request(data: bytes) -> None:
    # Both the text layer (prefix, hex) and the CBOR under it: half the inputs are well-formed hex.
    text = data.decode("latin-1") if data[:1] == b"t" else p.PaymentRequest.PREFIX + data.hex()
    try:
        req = p.PaymentRequest.decode(text)
    except p.ProtocolError:
        return
    if p.PaymentRequest.decode(req.encode()) != req:
        raise AssertionError(f"accepted payment request does not round-trip: {text}")


TARGETS = {"cbor": fuzz_cbor, "message": fuzz_message, "payment_request": fuzz_payment_request}


def write_seeds(target: str, directory: Path) -> None:
    """Seed corpus: the valid samples and every case of the bad-wire corpus."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.bad_wire_corpus import CASES, MESSAGE_CLASSES, payment_request_cases, sample

    directory.mkdir(parents=True, exist_ok=True)
    seeds: list[bytes] = []
    for cls in MESSAGE_CLASSES:
        good = sample(cls).encode()
        seeds.append(good if target != "message" else bytes([TYPES.index(cls.TYPE)]) + good)
    for case in CASES:
        if target == "message" and case.tlv_type in TYPES:
            seeds.append(bytes([TYPES.index(case.tlv_type)]) + case.data)
        elif target == "cbor":
            seeds.append(case.data)
    if target == "payment_request":
        seeds += [b"t" + text.encode("latin-1", "replace") for _, text, _ in payment_request_cases()]
    for i, seed in enumerate(seeds):
        if len(seed) <= 4096:
            (directory / f"seed-{i:04d}").write_bytes(seed)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: {sys.argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer flags] [corpus dirs]")
    target = sys.argv.pop(1)
    corpus = [a for a in sys.argv[1:] if not a.startswith("-")]
    if corpus:
        write_seeds(target, Path(corpus[0]))
    atheris.Setup(sys.argv, TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
