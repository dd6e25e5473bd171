"""Bad input to the embedded regtest chain's Esplora server (engine/chain/src/server.rs): each
request gets its specific refusal, and the server keeps serving afterwards."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest

from .conftest import Chain

H = "00" * 32
LIMIT = 2 * 1024 * 1024  # axum's default body limit
# One byte over: the server then has read the whole body when it refuses, so it closes cleanly
# (with unread bytes left, the kernel resets the connection and the 413 may be lost).
BIG = LIMIT + 1
MAINNET = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
MINE = '{"blocks": n, "address": optional string}'
FUND = '{"address": "bcrt1...", "amount_sat": n}'

# (method, path, body, status, text the answer contains)
CASES: list[tuple[str, str, bytes | None, int, str]] = [
    ("GET", "/tx/zz", None, 400, "Invalid txid"),
    ("GET", "/tx/" + "g" * 64, None, 400, "Invalid txid"),
    ("GET", "/tx/" + "0" * 63, None, 400, "Invalid txid"),
    ("GET", "/tx/" + "0" * 66, None, 400, "Invalid txid"),
    ("GET", "/tx/" + "0" * 10_000, None, 400, "Invalid txid"),
    ("GET", "/tx/" + H, None, 404, "Transaction not found"),
    ("GET", "/tx/" + H + "/raw", None, 404, "Transaction not found"),
    ("GET", "/tx/" + H + "/hex", None, 404, "Transaction not found"),
    ("GET", "/tx/zz/status", None, 400, "Invalid txid"),
    ("GET", "/tx/" + H + "/outspend/abc", None, 400, "Invalid output index"),
    ("GET", "/tx/" + H + "/outspend/-1", None, 400, "Invalid output index"),
    ("GET", "/tx/" + H + "/outspend/99999999999", None, 400, "Invalid output index"),
    ("GET", "/block/zz", None, 400, "Invalid block hash"),
    ("GET", "/block/zz/header", None, 400, "Invalid block hash"),
    ("GET", "/block/" + H, None, 404, "Block not found"),
    ("GET", "/block/" + H + "/raw", None, 404, "Block not found"),
    ("GET", "/block/" + H + "/txid/x", None, 400, "Invalid index"),
    ("GET", "/block-height/-1", None, 400, "Invalid height"),
    ("GET", "/block-height/99999999999999999999", None, 400, "Invalid height"),
    ("GET", "/block-height/5000", None, 404, "Block not found"),
    ("GET", "/blocks/abc", None, 400, "Invalid height"),
    ("GET", "/scripthash/zz/txs", None, 400, "Invalid scripthash (want 64 hex chars)"),
    ("GET", "/scripthash/" + "0" * 63 + "/txs", None, 400, "Invalid scripthash"),
    ("GET", "/scripthash/zz/txs/mempool", None, 400, "Invalid scripthash"),
    ("GET", "/scripthash/zz/txs/chain/" + H, None, 400, "Invalid scripthash"),
    ("GET", "/nope", None, 404, ""),
    ("GET", "/../etc/passwd", None, 404, ""),
    ("GET", "/regtest/mine", None, 405, ""),
    ("POST", "/blocks/tip/height", b"", 405, ""),
    ("POST", "/tx", b"", 400, "TX decode failed"),
    ("POST", "/tx", b"zz", 400, "TX decode failed: Invalid character"),
    ("POST", "/tx", b"\xff\xfe", 400, "body is not hex text"),
    ("POST", "/tx", b"00", 400, "TX decode failed"),
    ("POST", "/tx", b"000", 400, "Odd number of digits"),
    ("POST", "/tx", b"0" * BIG, 413, "length limit exceeded"),
    ("POST", "/regtest/mine", b"{", 400, "invalid JSON body (expected " + MINE),
    ("POST", "/regtest/mine", b'{"blocks": -1}', 400, "expected u32"),
    ("POST", "/regtest/mine", b'{"blocks": "x"}', 400, "invalid type: string"),
    ("POST", "/regtest/mine", b'{"blocks": 1.5}', 400, "invalid type: floating point"),
    ("POST", "/regtest/mine", b'{"blocks": 4294967296}', 400, "expected u32"),
    ("POST", "/regtest/mine", b'{"blocks": 100000}', 400, "at most 10000 blocks per call"),
    ("POST", "/regtest/mine", b'{"blocks": 1, "address": "' + MAINNET.encode() + b'"}', 400, "not a regtest address"),
    ("POST", "/regtest/mine", b'{"blocks": 1, "address": "nope"}', 400, "invalid address"),
    ("POST", "/regtest/mine", b"[" * 10_000 + b"]" * 10_000, 400, "invalid JSON body"),
    ("POST", "/regtest/mine", b'{"blocks": 1}' + b" " * (BIG - 13), 413, "length limit exceeded"),
    ("POST", "/regtest/fund", b"{}", 400, "missing field `address`"),
    ("POST", "/regtest/fund", b"", 400, "invalid JSON body (expected " + FUND),
    ("POST", "/regtest/fund", b'{"address": "nope", "amount_sat": 1}', 400, "invalid address"),
    ("POST", "/regtest/fund", b'{"address": "' + MAINNET.encode() + b'", "amount_sat": 1}', 400, "not a regtest"),
    ("POST", "/regtest/fund", b'{"address": "bcrt1q", "amount_sat": -5}', 400, "expected u64"),
    ("POST", "/regtest/fund", b'{"address": 5, "amount_sat": 1}', 400, "expected a string"),
    ("POST", "/regtest/fund", b'{"address": "bcrt1q", "amount_sat": 1e30}', 400, "floating point"),
    ("POST", "/regtest/fund", b'{"address": "bcrt1q", "amount_sat": 18446744073709551616}', 400, "invalid JSON"),
]


async def declared_too_large(url: str, path: str, body: bytes) -> tuple[int, str]:
    """Send an oversized body while reading the answer: the server refuses once the limit is
    passed and closes before the body is fully written (a race for an HTTP client library)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        answer = await asyncio.wait_for(reader.readexactly(length), 10)
        return int(head.split()[1]), answer.decode()
    finally:
        writer.close()


@pytest.mark.parametrize(
    "method,path,body,status,text", CASES, ids=[f"{i:02d}-{m}{p[:30]}" for i, (m, p, *_) in enumerate(CASES)]
)
async def test_bad_request_to_the_chain_server_is_refused(
    chain: Chain, method: str, path: str, body: bytes | None, status: int, text: str
) -> None:
    async with aiohttp.ClientSession() as s:
        if status == 413:
            assert body is not None
            got, answer = await declared_too_large(chain.url, path, body)
            assert got == status and text in answer
        else:
            async with s.request(method, chain.url + path, data=body) as r:
                assert r.status == status
                assert text in await r.text()
        # Still serving: a normal request right after.
        height = chain.raw.height
        async with s.post(chain.url + "/regtest/mine", data=b'{"blocks": 1}') as r:
            assert r.status == 200
        async with s.get(chain.url + "/blocks/tip/height") as r:
            assert r.status == 200
            tip = int(await r.text())
            assert tip == height + 1
