"""The bad-input corpus of the LightningRod wire: for every message type, hostile encodings of an
otherwise valid message, each with the refusal the codec must give (a substring of the
ProtocolError's message). Shared by the codec tests, the live-LSP tests and `make fuzz` (seeds)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import cbor2

from lsp_node import protocol as p

NODE = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")


@dataclass(frozen=True)
class Case:
    name: str
    tlv_type: int
    data: bytes
    error: str


def sample(cls: type[p.Message]) -> p.Message:
    """A valid message of each type, every optional field present."""
    values: dict[str, Any] = {}
    for f in fields(cls):
        kind, size = cls.SCHEMA[f.name]
        base = kind.removeprefix("o")
        if f.name == "client_node_id":
            values[f.name] = NODE
        elif f.name == "next_node_ids":
            values[f.name] = (NODE,)
        elif base == "li":
            values[f.name] = (1000 + len(values),)
        elif base == "b":
            values[f.name] = bytes([len(values) + 1]) * (size or 40)
        elif base == "i":
            values[f.name] = 0 if f.name in ("status", "remove") else 1000 + len(values)
        elif base == "s":
            values[f.name] = "x" * min(size or 20, 20)
        else:
            values[f.name] = (b"\x11" * (size or 32),)
    return cls(**values)


def _head(major: int, arg: int) -> bytes:
    if arg < 24:
        return bytes([major << 5 | arg])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if arg < 1 << (8 * size):
            return bytes([major << 5 | info]) + arg.to_bytes(size, "big")
    raise ValueError(arg)


def _map(items: list[tuple[bytes, bytes]], header: bytes | None = None) -> bytes:
    """A map from already-encoded (key, value) pairs, in the order given."""
    return (header if header is not None else _head(5, len(items))) + b"".join(k + v for k, v in items)


def _items(msg: p.Message) -> list[tuple[bytes, bytes]]:
    return [(cbor2.dumps(k), cbor2.dumps(v)) for k, v in sorted(msg.to_map().items())]


def _replace(items: list[tuple[bytes, bytes]], key: int, value: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, value if k == cbor2.dumps(key) else v) for k, v in items]


def _shared_reference_bomb() -> bytes:
    """The attack of the issue: nested lists sharing one list, so 22 KB expand exponentially."""
    leaf: list[Any] = [b"A" * 8]
    for _ in range(30):
        leaf = [leaf, leaf]
    return cbor2.dumps({0: 1, 1: leaf}, value_sharing=True)


def message_cases(cls: type[p.Message]) -> list[Case]:
    t = int(cls.TYPE)
    msg = sample(cls)
    good = msg.encode()
    items = _items(msg)
    names = [f.name for f in fields(cls)]
    first_bytes = next(i for i, n in enumerate(names, 1) if cls.SCHEMA[n][0] == "b")
    cases: list[tuple[str, bytes, str]] = [
        # Tags: shared references (28/29), a self-referencing map, and harmless-looking ones.
        ("tag28_around_map", b"\xd8\x1c" + good, "tags are not allowed"),
        ("tag29_value", _map(_replace(items, first_bytes, b"\xd8\x1d\x00")), "tags are not allowed"),
        ("self_referencing_map", b"\xd8\x1c\xa2\x00\x01\x01\xd8\x1d\x00", "tags are not allowed"),
        ("shared_reference_bomb", _shared_reference_bomb(), "tags are not allowed"),
        ("self_describe_tag", b"\xd9\xd9\xf7" + good, "tags are not allowed"),
        ("bignum_tag", _map(_replace(items, 0, b"\xc2\x41\x01")), "tags are not allowed"),
        ("datetime_tag", _map(_replace(items, first_bytes, b"\xc1\x1a\x00\x01\x00\x00")), "tags are not allowed"),
        # Indefinite lengths.
        ("indefinite_map", b"\xbf" + b"".join(k + v for k, v in items) + b"\xff", "indefinite-length"),
        ("indefinite_bytes", _map(_replace(items, first_bytes, b"\x5f\x41\x01\xff")), "indefinite-length"),
        ("indefinite_text_key", _map([*items, (b"\x7f\x61a\xff", b"\x00")]), "indefinite-length"),
        ("stray_break", good + b"\xff", "trailing bytes"),
        ("break_as_value", _map(_replace(items, first_bytes, b"\xff")), "indefinite-length"),
        # Floats, booleans, null, undefined and simple values.
        ("version_double", _map(_replace(items, 0, b"\xfb\x3f\xf0" + bytes(6))), "floats are not allowed"),
        ("version_single", _map(_replace(items, 0, b"\xfa\x3f\x80\x00\x00")), "floats are not allowed"),
        ("version_half", _map(_replace(items, 0, b"\xf9\x3c\x00")), "floats are not allowed"),
        ("version_true", _map(_replace(items, 0, b"\xf5")), "booleans are not allowed"),
        ("field_false", _map(_replace(items, first_bytes, b"\xf4")), "booleans are not allowed"),
        ("field_null", _map(_replace(items, first_bytes, b"\xf6")), "null is not allowed"),
        ("field_undefined", _map(_replace(items, first_bytes, b"\xf7")), "undefined is not allowed"),
        ("simple_value", _map(_replace(items, first_bytes, b"\xf0")), "simple values are not allowed"),
        ("simple_value_long", _map(_replace(items, first_bytes, b"\xf8\x20")), "simple values are not allowed"),
        ("reserved_info", _map(_replace(items, first_bytes, b"\x1c")), "reserved additional information"),
        # Non-canonical heads.
        ("version_not_shortest", _map(_replace(items, 0, b"\x18\x01")), "not in shortest form"),
        ("version_uint16", _map(_replace(items, 0, b"\x19\x00\x01")), "not in shortest form"),
        ("key_not_shortest", _map([(b"\x18\x00", items[0][1]), *items[1:]]), "not in shortest form"),
        ("map_header_not_shortest", _map(items, b"\xb8" + bytes([len(items)])), "not in shortest form"),
        ("map_header_uint16", _map(items, b"\xb9" + len(items).to_bytes(2, "big")), "not in shortest form"),
        (
            "bytes_length_not_shortest",
            _map(_replace(items, first_bytes, b"\x59\x00\x02\x01\x02")),
            "not in shortest form",
        ),
        ("uint64_small", _map(_replace(items, 0, b"\x1b" + (1).to_bytes(8, "big"))), "not in shortest form"),
        # Map keys.
        ("duplicate_key", _map([*items, items[-1]]), "duplicate map key"),
        ("duplicate_version", _map([items[0], *items]), "duplicate map key 0"),
        ("keys_reversed", _map(items[::-1]), "map keys out of order"),
        (
            "key_order_swapped",
            # Two neighbouring keys swapped (the version and the only field of a two-key message).
            _map([items[0], items[2], items[1], *items[3:]] if len(items) > 2 else [items[1], items[0]]),
            "map keys out of order",
        ),
        ("text_key", _map([*items, (b"\x61k", b"\x00")]), "map keys must be unsigned integers"),
        ("bytes_key", _map([*items, (b"\x41k", b"\x00")]), "map keys must be unsigned integers"),
        ("array_key", _map([*items, (b"\x80", b"\x00")]), "map keys must be unsigned integers"),
        ("negative_key_first", _map([(b"\x20", b"\x00"), *items]), "map keys must be unsigned integers"),
        # Framing: truncation, trailing bytes, size.
        ("empty", b"", "truncated"),
        ("one_byte", good[:1], "truncated"),
        ("cut_in_half", good[: len(good) // 2], "truncated"),
        ("last_byte_missing", good[:-1], "truncated"),
        ("trailing_zero", good + b"\x00", "trailing bytes"),
        ("two_maps", good + good, "trailing bytes"),
        ("oversized", _map([*items, (b"\x19\x03\xe9", _head(2, 32_768) + bytes(32_768))]), "message too large"),
        ("huge_array_count", _map([*items, (b"\x19\x03\xe9", b"\x9b" + b"\xff" * 8)]), "array longer than the input"),
        ("huge_map_count", b"\xbb" + b"\xff" * 8, "map longer than the input"),
        (
            "huge_bytes_length",
            _map(_replace(items, first_bytes, b"\x5b" + b"\xff" * 8)),
            "string longer than the input",
        ),
        ("head_truncated", _map([*items, (b"\x19\x03\xe9", b"\x1b\x00")]), "truncated"),
        # Nesting and text.
        ("nested_5_deep", _map([*items, (b"\x19\x03\xe9", b"\x81\x81\x81\x81\x00")]), "nested deeper than 4"),
        ("nested_maps_deep", _map([*items, (b"\x19\x03\xe9", b"\xa1\x01\xa1\x01\xa1\x01\xa1\x01\x00")]), "nested"),
        ("bad_utf8", _map([*items, (b"\x19\x03\xe9", b"\x62\xc3\x28")]), "not valid UTF-8"),
        ("utf8_surrogate", _map([*items, (b"\x19\x03\xe9", b"\x63\xed\xa0\x80")]), "not valid UTF-8"),
        # Shape and version.
        ("top_level_array", cbor2.dumps([1, 2]), "must be a CBOR map"),
        ("top_level_int", b"\x01", "must be a CBOR map"),
        ("top_level_bytes", b"\x41\x01", "must be a CBOR map"),
        ("version_2", _map(_replace(items, 0, b"\x02")), "unsupported version 2"),
        ("version_0", _map(_replace(items, 0, b"\x00")), "unsupported version 0"),
        ("version_negative", _map(_replace(items, 0, b"\x20")), "unsupported version -1"),
        ("version_bytes", _map(_replace(items, 0, b"\x41\x01")), "unsupported version (a byte string"),
        ("version_absent", _map(items[1:]), "unsupported version (absent)"),
        ("unknown_even_key", _map([*items, (b"\x18\x64", b"\x00")]), "unknown required field(s) [100]"),
        ("negative_key_last", _map([*items, (b"\x21", b"\x00")]), "map keys must be unsigned integers"),
    ]
    for i, name in enumerate(names, 1):
        kind, size = cls.SCHEMA[name]
        base = kind.removeprefix("o")
        if not kind.startswith("o"):
            cases.append(
                (f"missing_{name}", _map([kv for kv in items if kv[0] != cbor2.dumps(i)]), f"missing field {name}")
            )
        if base == "b":
            cases.append((f"{name}_as_int", _map(_replace(items, i, b"\x01")), f"{name} must be"))
            cases.append((f"{name}_as_text", _map(_replace(items, i, b"\x61a")), f"{name} must be"))
            if size:
                for n in (0, size - 1, size + 1):
                    cases.append(
                        (f"{name}_{n}_bytes", _map(_replace(items, i, cbor2.dumps(bytes(n)))), f"{name} must be")
                    )
        elif base == "i":
            cases.append((f"{name}_negative", _map(_replace(items, i, b"\x20")), f"{name} must be an integer"))
            cases.append((f"{name}_min_negative", _map(_replace(items, i, b"\x3b" + b"\xff" * 8)), f"{name} must be"))
            cases.append((f"{name}_as_bytes", _map(_replace(items, i, b"\x41\x01")), f"{name} must be an integer"))
            cases.append((f"{name}_as_true", _map(_replace(items, i, b"\xf5")), "booleans are not allowed"))
            cases.append((f"{name}_as_float", _map(_replace(items, i, b"\xf9\x3c\x00")), "floats are not allowed"))
        elif base == "s":
            cases.append((f"{name}_as_bytes", _map(_replace(items, i, b"\x41a")), f"{name} must be a string"))
            limit = size or 1024
            cases.append((f"{name}_too_long", _map(_replace(items, i, cbor2.dumps("y" * (limit + 1)))), "at most"))
        else:
            # Lists: of byte strings (`size` bytes each) or of unsigned integers; 1..list_max items.
            most = cls.list_max(name)
            refusal = f"list of 1 to {most}"
            item = b"\x11" * (size or 32) if base == "lb" else 7
            too_many = cbor2.dumps([item] * (most + 1))
            cases.append((f"{name}_empty_list", _map(_replace(items, i, b"\x80")), refusal))
            cases.append((f"{name}_{most + 1}_items", _map(_replace(items, i, too_many)), refusal))
            # The revision-2 shape of a list field is its single item, not in a list.
            cases.append((f"{name}_not_a_list", _map(_replace(items, i, cbor2.dumps(item))), refusal))
            if base == "lb":
                short_item = cbor2.dumps([bytes((size or 32) - 1)])
                cases.append(
                    (f"{name}_item_{(size or 32) - 1}_bytes", _map(_replace(items, i, short_item)), f"{name} must")
                )
            else:
                cases.append(
                    (f"{name}_item_negative", _map(_replace(items, i, b"\x81\x20")), f"{name} must be an integer")
                )
                cases.append(
                    (f"{name}_item_as_bytes", _map(_replace(items, i, b"\x81\x41\x01")), f"{name} must be an integer")
                )
                cases.append(
                    (f"{name}_item_as_true", _map(_replace(items, i, b"\x81\xf5")), "booleans are not allowed")
                )
    return [Case(f"{cls.__name__}-{name}", t, data, error) for name, data, error in cases]


def type_cases() -> list[Case]:
    good = sample(p.PaymentUnblock).encode()
    return [
        Case(f"tlv_type-{t}", t, good, f"unknown message type {t}")
        for t in (0, 1, 65535, 65536, 65538, 65540, 65792, 131073, 2**32 - 1, -1)
    ]


def payment_request_cases() -> list[tuple[str, str, str]]:
    """(name, text, refusal) for `PaymentRequest.decode`."""
    good = cbor2.dumps({0: 1, 1: "lnbcrt1x", 2: b"\x02" * 40}, canonical=True)
    prefix = p.PaymentRequest.PREFIX
    return [
        ("no_prefix", good.hex(), "starts with lnrod1"),
        ("upper_prefix", "LNROD1" + good.hex(), "starts with lnrod1"),
        ("upper_hex", prefix + good.hex().upper(), "lowercase hex"),
        ("spaces", prefix + " ".join(good.hex()[i : i + 2] for i in range(0, len(good.hex()), 2)), "lowercase hex"),
        ("odd_digits", prefix + good.hex()[:-1], "lowercase hex"),
        ("not_hex", prefix + "zz", "lowercase hex"),
        ("too_long", prefix + "00" * 40_000, "at most"),
        ("tag28", prefix + (b"\xd8\x1c" + good).hex(), "tags are not allowed"),
        ("bomb", prefix + _shared_reference_bomb().hex(), "tags are not allowed"),
        ("indefinite", prefix + (b"\xbf" + good[1:] + b"\xff").hex(), "indefinite-length"),
        ("version_true", prefix + cbor2.dumps({0: True, 1: "x", 2: b""}).hex(), "booleans are not allowed"),
        ("version_float", prefix + cbor2.dumps({0: 1.0, 1: "x", 2: b""}).hex(), "floats are not allowed"),
        ("version_2", prefix + cbor2.dumps({0: 2, 1: "x", 2: b""}, canonical=True).hex(), "version 2"),
        ("non_canonical_order", prefix + cbor2.dumps({0: 1, 2: b"", 1: "x"}).hex(), "out of order"),
        ("missing_invoice", prefix + cbor2.dumps({0: 1, 2: b""}, canonical=True).hex(), "missing field invoice"),
        ("missing_path", prefix + cbor2.dumps({0: 1, 1: "x"}, canonical=True).hex(), "missing field mailbox_path"),
        ("unknown_even", prefix + cbor2.dumps({0: 1, 1: "x", 2: b"", 4: 0}, canonical=True).hex(), "unknown required"),
        ("invoice_bytes", prefix + cbor2.dumps({0: 1, 1: b"x", 2: b""}, canonical=True).hex(), "invoice must be"),
        ("path_text", prefix + cbor2.dumps({0: 1, 1: "x", 2: "p"}, canonical=True).hex(), "mailbox_path must be"),
        ("invoice_too_long", prefix + cbor2.dumps({0: 1, 1: "i" * 4097, 2: b""}, canonical=True).hex(), "at most"),
        ("trailing", prefix + (good + b"\x00").hex(), "trailing bytes"),
        ("truncated", prefix + good[:-3].hex(), "truncated"),
        ("empty", prefix, "truncated"),
        ("array", prefix + cbor2.dumps([1]).hex(), "must be a CBOR map"),
    ]


MESSAGE_CLASSES: list[type[p.Message]] = list(p.MESSAGES.values())
CASES: list[Case] = [c for cls in MESSAGE_CLASSES for c in message_cases(cls)] + type_cases()
