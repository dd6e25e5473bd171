"""Bad input to the admin API of a real running LSP (`python main.py`, LSP_a of a LightningRod
network: A -> LSP_a -> LSP_b -> B): every route times missing or wrong authentication, malformed,
oversized, wrongly typed and out-of-range bodies. Each case asserts the status and the reason and
that the answer shows no internals; after the whole corpus a normal held payment through that LSP
settles exactly once and moves the balances.

One network serves every case (a module-scoped fixture on a module-scoped event loop): building it
takes about half a minute, the cases take milliseconds each. The cases are plain (synchronous)
tests so each is reported by name; the blocking HTTP calls they make run while the module's loop
is idle, and the LSPs are separate processes, so nothing waits on that loop meanwhile."""

from __future__ import annotations

import http.client
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from lsp_node import protocol as p
from lsp_node.engine import PaymentReceived, PaymentSent

from .lightningrod_net import Net, build_net, own_chain, until
from .lsp_process import LspProcess

ROUTES = [
    ("GET", "/api/info"),
    ("POST", "/api/newaddress"),
    ("POST", "/api/sync"),
    ("POST", "/api/connect"),
    ("GET", "/api/peers"),
    ("POST", "/api/channels"),
    ("GET", "/api/channels"),
    ("GET", "/api/holds"),
    ("GET", "/api/mailbox"),
    # Issue 9: the operator's routes (their own cases are in test_admin_api.py).
    ("GET", "/api/balances"),
    ("POST", "/api/onchain/send"),
    ("GET", "/api/onchain/fees"),
    ("POST", "/api/peers/02" + "ab" * 32 + "/disconnect"),
    ("POST", "/api/channels/" + "cd" * 32 + "/close"),
    ("POST", "/api/invoices"),
    ("GET", "/api/invoices"),
    ("POST", "/api/pay"),
    ("POST", "/api/keysend"),
    ("GET", "/api/payments"),
    ("GET", "/api/forwards"),
    ("GET", "/api/holds/" + "ab" * 16),
    ("POST", "/api/holds/" + "ab" * 16 + "/fail"),
    ("GET", "/api/mailboxes"),
    ("GET", "/api/mailbox/02" + "ab" * 32),
    ("POST", "/api/mailbox/02" + "ab" * 32 + "/purge"),
    ("GET", "/api/devices"),
    ("GET", "/api/outbox"),
    ("POST", "/api/outbox/1/retry"),
    ("POST", "/api/push/test"),
    ("GET", "/api/config"),
    ("GET", "/api/openapi.json"),
    # Issue 10: LSPS2, LSPS5.
    ("GET", "/api/lsps2"),
    ("GET", "/api/lsps5"),
    ("POST", "/api/lsps5/02" + "ab" * 32 + "/notify"),
]
NODE = "02" + "ab" * 32
UNKNOWN_NODE = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
GOOD_TOKEN = "<token>"  # replaced by the process's real token
AMOUNT_MSAT = 20_000_000


@dataclass
class Admin:
    host: str
    port: int
    token: str
    lsp: LspProcess

    def call(
        self, method: str, path: str, body: bytes | None = None, auth: str | None = "Bearer <token>"
    ) -> tuple[int, dict[str, object]]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if auth is not None:
            headers["Authorization"] = auth.replace(GOOD_TOKEN, self.token)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            raw = r.read()
        finally:
            conn.close()
        assert r.getheader("Content-Type", "").startswith("application/json"), raw[:200]
        text = raw.decode()
        for internal in ("Traceback", 'File "', "lsp_node.", "site-packages", "pydantic", "errors.pydantic.dev"):
            assert internal not in text, text
        return r.status, json.loads(text)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Net]:
    tmp = tmp_path_factory.mktemp("admin")
    async with own_chain(tmp) as (chain, make_node), build_net(chain, make_node, tmp) as n:
        yield n


@pytest.fixture(scope="module")
def admin(net: Net) -> Admin:
    url = net.lsp_a.admin.removeprefix("http://")
    host, _, port = url.rpartition(":")
    return Admin(host, int(port), net.lsp_a.token, net.lsp_a)


AUTH_CASES = {
    "no header": None,
    "wrong token": "Bearer " + "x" * 43,
    "basic scheme": "Basic <token>",
    "empty bearer": "Bearer ",
    "token minus one char": "Bearer <token>"[:-2] + ">",  # replaced below
    "lower-case scheme": "bearer <token>",
}


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("case", list(AUTH_CASES))
def test_unauthenticated_requests_are_refused(admin: Admin, method: str, path: str, case: str) -> None:
    auth = AUTH_CASES[case]
    if case == "token minus one char":
        auth = "Bearer " + admin.token[:-1]
    status, body = admin.call(method, path, b'{"node_id": "' + NODE.encode() + b'"}', auth=auth)
    assert status == 401
    assert "missing or wrong bearer token" in str(body["error"])


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


CONNECT_CASES: dict[str, tuple[bytes | None, int, str]] = {
    "no body": (None, 400, "needs a JSON object body"),
    "empty body": (b"", 400, "needs a JSON object body"),
    "whitespace body": (b"  \n", 400, "needs a JSON object body"),
    "not json": (b"node_id=02ab", 400, "not valid JSON"),
    "truncated json": (b'{"node_id": "02', 400, "not valid JSON"),
    "invalid utf-8": (b'{"node_id": "\xff\xfe"}', 400, "not valid JSON"),
    "array": (b"[]", 400, "must be a JSON object"),
    "string": (b'"hello"', 400, "must be a JSON object"),
    "number": (b"42", 400, "must be a JSON object"),
    "null": (b"null", 400, "must be a JSON object"),
    "deeply nested array": (deep(20_000), 400, "nested too deeply"),
    "deeply nested field": (b'{"node_id": ' + deep(20_000) + b"}", 400, "nested too deeply"),
    "missing node_id": (b'{"address": "127.0.0.1:9735"}', 400, "missing field 'node_id'"),
    "missing address": (json.dumps({"node_id": NODE}).encode(), 400, "missing field 'address'"),
    "node_id number": (b'{"node_id": 2, "address": "127.0.0.1:1"}', 400, "field 'node_id'"),
    "node_id not hex": (json.dumps({"node_id": "02" + "zz" * 32, "address": "h:1"}).encode(), 400, "33-byte"),
    "node_id too short": (json.dumps({"node_id": NODE[:-2], "address": "h:1"}).encode(), 400, "33-byte"),
    "node_id prefix 04": (json.dumps({"node_id": "04" + NODE[2:], "address": "h:1"}).encode(), 400, "33-byte"),
    "address without port": (json.dumps({"node_id": NODE, "address": "127.0.0.1"}).encode(), 400, "host:port"),
    "address injection": (json.dumps({"node_id": NODE, "address": "h:1/x?y"}).encode(), 400, "host:port"),
    "address too long": (json.dumps({"node_id": NODE, "address": "a" * 300 + ":1"}).encode(), 400, "host:port"),
    "address list": (json.dumps({"node_id": NODE, "address": ["h:1"]}).encode(), 400, "field 'address'"),
    "unknown field": (json.dumps({"node_id": NODE, "address": "h:1", "x": 1}).encode(), 400, "unknown field 'x'"),
    "oversized": (json.dumps({"node_id": NODE, "address": "h:1", "pad": "x" * 70_000}).encode(), 413, "larger than"),
    "unreachable peer": (json.dumps({"node_id": NODE, "address": "127.0.0.1:1"}).encode(), 400, ""),
}


@pytest.mark.parametrize("case", list(CONNECT_CASES))
def test_connect_bad_bodies(admin: Admin, case: str) -> None:
    body, want, reason = CONNECT_CASES[case]
    status, answer = admin.call("POST", "/api/connect", body)
    assert status == want, answer
    assert reason in str(answer["error"])
    if case == "unreachable peer":
        assert answer["kind"] == "PeerError"


def channel(**kw: object) -> bytes:
    return json.dumps({"node_id": UNKNOWN_NODE, "amount_sat": 100_000, **kw}).encode()


CHANNEL_CASES: dict[str, tuple[bytes | None, int, str]] = {
    "no body": (None, 400, "needs a JSON object body"),
    "not json": (b"amount_sat=5", 400, "not valid JSON"),
    "array": (b"[1, 2]", 400, "must be a JSON object"),
    "deeply nested": (b'{"amount_sat": ' + deep(30_000) + b"}", 400, "nested too deeply"),
    "negative amount": (channel(amount_sat=-1), 400, "greater than or equal to 1000"),
    "zero amount": (channel(amount_sat=0), 400, "greater than or equal to 1000"),
    "dust amount": (channel(amount_sat=999), 400, "greater than or equal to 1000"),
    "huge amount": (channel(amount_sat=10**30), 400, "less than or equal to 16777215"),
    "just over the max": (channel(amount_sat=16_777_216), 400, "less than or equal to 16777215"),
    "amount as string": (channel(amount_sat="100000"), 400, "field 'amount_sat'"),
    "amount as float": (channel(amount_sat=100000.5), 400, "field 'amount_sat'"),
    "amount as bool": (channel(amount_sat=True), 400, "field 'amount_sat'"),
    "amount null": (channel(amount_sat=None), 400, "field 'amount_sat'"),
    "amount object": (channel(amount_sat={"v": 1}), 400, "field 'amount_sat'"),
    "amount NaN": (b'{"node_id": "' + UNKNOWN_NODE.encode() + b'", "amount_sat": NaN}', 400, "field 'amount_sat'"),
    "amount Infinity": (
        b'{"node_id": "' + UNKNOWN_NODE.encode() + b'", "amount_sat": Infinity}',
        400,
        "field 'amount_sat'",
    ),
    "missing amount": (json.dumps({"node_id": UNKNOWN_NODE}).encode(), 400, "missing field 'amount_sat'"),
    "missing node_id": (json.dumps({"amount_sat": 100_000}).encode(), 400, "missing field 'node_id'"),
    "bad node_id": (channel(node_id="not-a-key"), 400, "33-byte"),
    "negative push": (channel(push_msat=-5), 400, "field 'push_msat'"),
    "push over amount": (channel(push_msat=100_000_001), 400, "must not exceed amount_sat"),
    "push as string": (channel(push_msat="0"), 400, "field 'push_msat'"),
    "announce as string": (channel(announce="yes"), 400, "field 'announce'"),
    "announce as int": (channel(announce=1), 400, "field 'announce'"),
    "unknown field": (channel(amount_msat=5), 400, "unknown field 'amount_msat'"),
    "oversized": (channel(memo="x" * 100_000), 413, "larger than"),
    "not a peer": (channel(), 400, ""),
}


@pytest.mark.parametrize("case", list(CHANNEL_CASES))
def test_open_channel_bad_bodies(admin: Admin, case: str) -> None:
    body, want, reason = CHANNEL_CASES[case]
    status, answer = admin.call("POST", "/api/channels", body)
    assert status == want, answer
    assert reason in str(answer["error"])
    if case == "not a peer":
        assert str(answer["kind"]).endswith("Error") and answer["kind"] != "InvalidArgumentError"


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_oversized_bodies_get_413_on_every_route(admin: Admin, method: str, path: str) -> None:
    status, answer = admin.call(method, path, b"x" * 70_000)
    assert status == 413
    assert answer["error"] == "request body larger than 65536 bytes"


@pytest.mark.parametrize(
    ("method", "path", "want", "reason"),
    [
        ("GET", "/api/nope", 404, "Not Found"),
        ("GET", "/api/", 404, "Not Found"),  # "/" is the dashboard (tests/test_dashboard.py)
        ("POST", "/api/info", 405, "Method Not Allowed"),
        ("DELETE", "/api/channels", 405, "Method Not Allowed"),
        ("GET", "/api/connect", 405, "Method Not Allowed"),
        ("PUT", "/api/holds", 405, "Method Not Allowed"),
    ],
)
def test_unknown_routes_and_methods(admin: Admin, method: str, path: str, want: int, reason: str) -> None:
    status, answer = admin.call(method, path)
    assert (status, answer["error"]) == (want, reason)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_held_payment_completes_after_the_corpus(net: Net) -> None:
    """Last in the module: after every case above, LSP_a still serves its admin API and still does
    its job, a held payment A -> LSP_a -> LSP_b -> B that settles exactly once."""
    assert net.lsp_a.proc is not None and net.lsp_a.proc.poll() is None
    info = await net.lsp_a.api("GET", "/api/info")
    assert info["network"] == "regtest"
    assert str((await net.lsp_a.api("POST", "/api/newaddress"))["address"]).startswith("bcrt1")
    # The corpus left no state behind: no hold, no mail, no stray peer or channel.
    assert await net.holds() == []
    assert await net.lsp_a.api("GET", "/api/mailbox") == []
    peers = {peer["node_id"] for peer in await net.lsp_a.api("GET", "/api/peers")}
    assert peers == {net.alice.node_id, net.lsp_b.node_id}
    assert len(await net.lsp_a.api("GET", "/api/channels")) == 2

    alice_before = net.alice.channels()[0].outbound_capacity_msat
    bob_before = net.bob.channels()[0].inbound_capacity_msat
    request = await net.b.create_payment_request(AMOUNT_MSAT, "after the admin corpus")
    held = await net.a.pay_with_hold(request, hold_blocks=144)
    received = await net.b.wait_for("payment_received", payment_hash=held.payment_hash)
    assert isinstance(received, PaymentReceived) and received.amount_msat == AMOUNT_MSAT
    await until(lambda: held.payment_hash in net.b.unblock_replies, "LSP_a's answer to the unblock")
    # The unblock may overtake the HTLC (onion messages need no commitment dance).
    assert net.b.unblock_replies[held.payment_hash].status in (p.Status.OK, p.Status.RELEASED_AWAITING_HTLC)
    sent = await net.a.wait_for("payment_sent", payment_hash=held.payment_hash)
    assert isinstance(sent, PaymentSent) and sent.fee_paid_msat is not None
    fee = sent.fee_paid_msat

    async def settled() -> bool:
        return [h["state"] for h in await net.holds()] == ["settled"]

    await until(settled, "hold settled at LSP_a")
    await until(lambda: all(c.pending_htlcs == 0 for c in net.alice.channels() + net.bob.channels()), "no HTLC left")

    # Exactly once: one hold, one receipt at B, one success at A.
    def count(events: list[object], kind: str) -> int:
        return sum(
            getattr(e, "kind", None) == kind and getattr(e, "payment_hash", None) == held.payment_hash for e in events
        )

    assert count(list(net.b.events), "payment_received") == 1
    assert count(list(net.a.events), "payment_sent") == 1
    # Balances: B's side of its channel gained the amount, A's lost the amount and the fees.
    assert bob_before - net.bob.channels()[0].inbound_capacity_msat == AMOUNT_MSAT
    assert alice_before - net.alice.channels()[0].outbound_capacity_msat >= AMOUNT_MSAT + fee
    assert "Traceback" not in (net.lsp_a.dir / "stderr.log").read_text()
