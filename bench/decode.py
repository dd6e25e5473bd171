"""Decoder throughput: messages per second through the strict decoder (protocol.decode), for a
valid message of each type, the largest valid message, and hostile inputs. Prints a table and
JSON. Run: python -m bench.decode"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from lsp_node import protocol as p
from tests.bad_wire_corpus import CASES, MESSAGE_CLASSES, sample


def rate(tlv_type: int, data: bytes, seconds: float = 0.5) -> float:
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(200):
            with contextlib.suppress(p.ProtocolError):
                p.decode(tlv_type, data)
        n += 200
    return n / elapsed


def main() -> None:
    rows: list[tuple[str, int, float]] = []
    for cls in MESSAGE_CLASSES:
        data = sample(cls).encode()
        rows.append((cls.__name__, len(data), rate(cls.TYPE, data)))
    big = p.DeviceRegister(b"r" * 16, 0, "webhook", "d" * 4096, b"\x02" * 33, 1, "s" * 200).encode()
    rows.append(("DeviceRegister (4 KB device id)", len(big), rate(p.DeviceRegister.TYPE, big)))
    for name in ("shared_reference_bomb", "oversized", "huge_array_count", "nested_5_deep", "cut_in_half"):
        case = next(c for c in CASES if c.name == f"HoldRequest-{name}")
        rows.append((f"refused: {name}", len(case.data), rate(case.tlv_type, case.data)))
    print(f"{'input':<36} {'bytes':>7} {'msgs/s':>10}")
    for name, size, r in rows:
        print(f"{name:<36} {size:>7} {r:>10,.0f}")
    print(json.dumps({name: {"bytes": size, "msgs_per_s": round(r)} for name, size, r in rows}))


if __name__ == "__main__":
    main()
