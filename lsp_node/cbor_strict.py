"""A strict decoder for the protocol's CBOR subset (SPEC.md §1.3), for untrusted bytes.

Why not cbor2.loads: a general decoder accepts tags (28/29 shared references let 22 KB expand to
gigabytes, and can build self-referencing maps), floats, booleans and indefinite lengths, and the
only way to check canonical form afterwards is to re-encode the untrusted value. This decoder
accepts only what the protocol uses and checks canonical form on the bytes as it reads them, so
its memory is bounded by the input and its work is one pass over it.

The subset: unsigned and negative integers, byte strings, UTF-8 text strings, arrays and maps with
definite lengths; map keys are unsigned integers in strictly ascending order
(RFC 8949 §4.2.1); every head in its shortest form; no tags, no floats, no simple values
(false/true/null included); no trailing bytes; containers nested at most `max_depth` deep.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CborError", "loads"]

# The smallest argument each long head form may carry; anything below has a shorter form.
_MIN_ARG = {24: 24, 25: 0x100, 26: 0x1_0000, 27: 0x1_0000_0000}
_MAJOR7 = {
    20: "CBOR booleans are not allowed",
    21: "CBOR booleans are not allowed",
    22: "CBOR null is not allowed",
    23: "CBOR undefined is not allowed",
    25: "CBOR floats are not allowed",
    26: "CBOR floats are not allowed",
    27: "CBOR floats are not allowed",
    31: "not canonical CBOR: indefinite-length items are not allowed",  # a stray break byte
}


class CborError(ValueError):
    """The bytes are not one well-formed, canonical item of the protocol's CBOR subset."""


class _Reader:
    __slots__ = ("data", "end", "max_depth", "pos")

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.end = len(data)
        self.max_depth = max_depth
        self.pos = 0

    def fail(self, what: str, at: int) -> CborError:
        return CborError(f"{what} (byte {at})")

    def head(self) -> tuple[int, int]:
        """Read one head: (major type, argument); refuses tags, simple values, floats, indefinite
        lengths, reserved forms and arguments not in their shortest form."""
        at = self.pos
        if at >= self.end:
            raise self.fail("malformed CBOR: truncated", at)
        initial = self.data[at]
        major, info = initial >> 5, initial & 0x1F
        if major == 6:
            raise self.fail("CBOR tags are not allowed", at)
        if major == 7:
            raise self.fail(_MAJOR7.get(info, "CBOR simple values are not allowed"), at)
        if info < 24:
            self.pos = at + 1
            return major, info
        if info == 31:
            raise self.fail("not canonical CBOR: indefinite-length items are not allowed", at)
        if info > 27:
            raise self.fail("malformed CBOR: reserved additional information", at)
        size = 1 << (info - 24)
        stop = at + 1 + size
        if stop > self.end:
            raise self.fail("malformed CBOR: truncated", at)
        arg = int.from_bytes(self.data[at + 1 : stop], "big")
        if arg < _MIN_ARG[info]:
            raise self.fail("not canonical CBOR: integer or length not in shortest form", at)
        self.pos = stop
        return major, arg

    def item(self, depth: int) -> Any:
        at = self.pos
        major, arg = self.head()
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major in (2, 3):
            stop = self.pos + arg
            if stop > self.end:
                raise self.fail("malformed CBOR: truncated: string longer than the input", at)
            raw = self.data[self.pos : stop]
            self.pos = stop
            if major == 2:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise self.fail("malformed CBOR: text string is not valid UTF-8", at) from None
        if depth >= self.max_depth:
            raise self.fail(f"CBOR nested deeper than {self.max_depth}", at)
        remaining = self.end - self.pos
        if major == 4:
            # Every item takes at least one byte: a count beyond that is a lie, refused before
            # any work is done for it.
            if arg > remaining:
                raise self.fail("malformed CBOR: truncated: array longer than the input", at)
            return [self.item(depth + 1) for _ in range(arg)]
        if arg * 2 > remaining:
            raise self.fail("malformed CBOR: truncated: map longer than the input", at)
        out: dict[int, Any] = {}
        previous = b""
        for _ in range(arg):
            key_at = self.pos
            key_major, key_arg = self.head()
            # Unsigned only: for them RFC 8949's bytewise order and RFC 7049's length-first order
            # (cbor2's canonical=True) agree; with negative keys they do not (found by fuzzing).
            if key_major != 0:
                raise self.fail("CBOR map keys must be unsigned integers", key_at)
            encoded = self.data[key_at : self.pos]
            key = key_arg
            if encoded == previous:
                raise self.fail(f"not canonical CBOR: duplicate map key {key}", key_at)
            if encoded < previous:
                raise self.fail("not canonical CBOR: map keys out of order", key_at)
            previous = encoded
            out[key] = self.item(depth + 1)
        return out


def loads(data: bytes, *, max_depth: int, max_size: int) -> Any:
    """Decode exactly one item filling `data`. Raises CborError, never anything else; the
    containers of the top level count as depth 1."""
    if not isinstance(data, bytes):
        raise CborError("CBOR input must be bytes")
    if len(data) > max_size:
        raise CborError(f"CBOR input of {len(data)} bytes is larger than {max_size}")
    reader = _Reader(data, max_depth)
    value = reader.item(0)
    if reader.pos != reader.end:
        raise reader.fail(f"not canonical CBOR: {reader.end - reader.pos} trailing bytes", reader.pos)
    return value
