"""The admin API of real running LSPs (`python main.py`, A -> LSP_a -> LSP_b -> B): every route with
its real effect (an invoice paid over the network shows on both sides, a forward shows at the
routing LSPs with its fee, a hold failed by hand fails the payer's payment, a purge empties a
mailbox, a test push reaches the push receiver, channels close), bad input on each new route (4xx
with a reason), and the OpenAPI document against the routes the app serves.

One network serves the module (a module-scoped fixture on a module-scoped event loop); the tests
run in file order and later ones build on the state earlier ones left, as an operator's session
would."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import jsonschema
import pytest
import pytest_asyncio

from lsp_node.admin import create_app
from lsp_node.admin.api import ROUTES
from lsp_node.admin.api_lsp import HoldsQuery
from lsp_node.admin.openapi import document
from lsp_node.admin.ops import Ops, redact_url
from lsp_node.engine import PaymentFailed, PaymentSent
from lsp_node.lsp.holds import STATES

from .lightningrod_net import Net, build_net, confirm_channel, own_chain, until
from .lsp_process import LspProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

AMOUNT_MSAT = 20_000_000
DOC: dict[str, Any] = document(ROUTES)


def body_schema(method: str, path: str) -> dict[str, Any]:
    """The documented schema of a route's body, with the document's components to resolve refs."""
    ref = DOC["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return {**DOC["components"]["schemas"][ref.rsplit("/", 1)[1]], "components": DOC["components"]}


async def call(
    lsp: LspProcess, method: str, path: str, body: dict[str, Any] | None = None, template: str | None = None
) -> tuple[int, Any]:
    """One request; a body is first checked against the route's documented schema (`template`: the
    documented path when `path` has its parameters filled in), so every body these tests send is
    an example the OpenAPI document accepts."""
    if body is not None:
        jsonschema.validate(body, body_schema(method, template or path))
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, lsp.admin + path, json=body, headers={"Authorization": f"Bearer {lsp.token}"}) as r,
    ):
        text = await r.text()
        for internal in ("Traceback", "lsp_node.", "pydantic"):
            assert internal not in text, text
        return r.status, json.loads(text)


async def ok(lsp: LspProcess, method: str, path: str, body: dict[str, Any] | None = None, **kw: Any) -> Any:
    status, answer = await call(lsp, method, path, body, **kw)
    assert status == 200, answer
    return answer


async def refused(lsp: LspProcess, method: str, path: str, body: Any = None) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, lsp.admin + path, json=body, headers={"Authorization": f"Bearer {lsp.token}"}) as r,
    ):
        answer = await r.json()
        assert 400 <= r.status < 500, answer
        return r.status, str(answer["error"])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Net]:
    tmp = tmp_path_factory.mktemp("admin_api")
    async with own_chain(tmp) as (chain, make_node), build_net(chain, make_node, tmp) as n:
        yield n


async def test_the_openapi_document_lists_exactly_the_app_routes() -> None:
    app = create_app(cast(Ops, None), "t" * 43)
    served = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        # The JSON API; the dashboard's pages and /metrics are documented in the README.
        if r.method != "HEAD" and r.resource is not None and r.resource.canonical.startswith("/api/")
    }
    documented = {(m.upper(), path) for path, ops in DOC["paths"].items() for m in ops}
    assert documented == served
    assert ("GET", "/api/openapi.json") in documented
    assert DOC["openapi"] == "3.1.0"
    # Every documented example is valid against its own schema, and every body route has one.
    for path, ops in DOC["paths"].items():
        for method, op in ops.items():
            if "requestBody" in op:
                media = op["requestBody"]["content"]["application/json"]
                assert "example" in media, (method, path)
                jsonschema.validate(media["example"], body_schema(method, path))
    # The hold states the API filters by are the state machine's.
    assert set(HoldsQuery.model_json_schema()["properties"]["state"]["anyOf"][0]["enum"]) == set(STATES)


async def test_the_served_document_needs_the_token_and_matches(net: Net) -> None:
    async with aiohttp.ClientSession() as s, s.get(net.lsp_a.admin + "/api/openapi.json") as r:
        assert r.status == 401
    served = await ok(net.lsp_a, "GET", "/api/openapi.json")
    assert served == json.loads(json.dumps(DOC))


async def test_info_balances_fees_and_sync(net: Net) -> None:
    info = await ok(net.lsp_a, "GET", "/api/info")
    assert info["node_id"] == net.lsp_a.node_id and info["lsp_role"] is True
    chans = await ok(net.lsp_a, "GET", "/api/channels")
    assert info["lightning"]["outbound_msat"] == sum(c["outbound_capacity_msat"] for c in chans) > 0
    assert info["lightning"]["channels_ready"] == len(chans) == 2
    balances = await ok(net.lsp_a, "GET", "/api/balances")
    assert balances == {"onchain": info["balance"], "lightning": info["lightning"]}
    assert balances["onchain"]["spendable_sat"] > 1_000_000
    fees = await ok(net.lsp_a, "GET", "/api/onchain/fees")
    assert sorted(fees, key=int) == ["1", "6", "12", "144"] and all(
        isinstance(v, int) and v >= 1 for v in fees.values()
    )
    assert (await ok(net.lsp_a, "POST", "/api/sync"))["block_height"] == net.chain.raw.height


async def test_send_onchain_reaches_the_mempool(net: Net) -> None:
    to = (await ok(net.lsp_b, "POST", "/api/newaddress"))["address"]
    before = (await ok(net.lsp_a, "GET", "/api/balances"))["onchain"]["total_sat"]
    sent = await ok(net.lsp_a, "POST", "/api/onchain/send", {"address": to, "amount_sat": 50_000})
    assert sent["txid"] in net.chain.raw.mempool_txids()
    net.chain.mine(1)
    await ok(net.lsp_a, "POST", "/api/sync")
    after = (await ok(net.lsp_a, "GET", "/api/balances"))["onchain"]["total_sat"]
    assert before - after > 50_000  # the amount and the fee


async def test_an_invoice_paid_over_the_network_shows_on_both_sides(net: Net) -> None:
    inv = await ok(net.lsp_b, "POST", "/api/invoices", {"amount_msat": AMOUNT_MSAT, "description": "admin api"})
    assert inv["bolt11"].startswith("lnbcrt") and len(inv["payment_hash"]) == 64
    listed = await ok(net.lsp_b, "GET", "/api/invoices?limit=5")
    assert listed[0]["payment_hash"] == inv["payment_hash"] and listed[0]["status"] == "pending"
    assert listed[0]["description"] == "admin api"
    paid = await ok(net.lsp_a, "POST", "/api/pay", {"bolt11": inv["bolt11"], "wait_secs": 30})
    assert paid["status"] == "succeeded" and paid["amount_msat"] == AMOUNT_MSAT and "preimage" not in paid
    out = await ok(net.lsp_a, "GET", "/api/payments?direction=outbound&status=succeeded")
    assert [p["payment_hash"] for p in out] == [inv["payment_hash"]]

    async def received() -> bool:
        rows = await ok(net.lsp_b, "GET", "/api/payments?direction=inbound&limit=1")
        return bool(rows) and rows[0]["payment_hash"] == inv["payment_hash"] and rows[0]["status"] == "succeeded"

    await until(received, "the invoice paid at LSP_b")
    assert (await ok(net.lsp_b, "GET", "/api/invoices"))[0]["status"] == "succeeded"
    for lsp in (net.lsp_a, net.lsp_b):
        assert "preimage" not in json.dumps(await ok(lsp, "GET", "/api/payments"))


async def test_keysend_arrives(net: Net) -> None:
    sent = await ok(net.lsp_a, "POST", "/api/keysend", {"node_id": net.lsp_b.node_id, "amount_msat": 1_234_000})
    assert sent["status"] == "succeeded", sent

    async def arrived() -> bool:
        rows = await ok(net.lsp_b, "GET", "/api/payments?direction=inbound&status=succeeded&limit=1")
        return bool(rows) and rows[0]["payment_id"] == sent["payment_id"] and rows[0]["amount_msat"] == 1_234_000

    await until(arrived, "the keysend at LSP_b")


async def test_a_forward_shows_at_each_routing_lsp_with_its_fee(net: Net) -> None:
    before = {x.name: (await ok(x, "GET", "/api/forwards"))["totals"] for x in (net.lsp_a, net.lsp_b)}
    bolt11 = await net.bob.create_invoice(AMOUNT_MSAT, "routed", 3600)
    payment_hash = net.bob.decode_invoice(bolt11).payment_hash
    await net.alice.pay_invoice(bolt11)
    sent = await net.a.wait_for("payment_sent", payment_hash=payment_hash)
    assert isinstance(sent, PaymentSent) and sent.fee_paid_msat is not None

    async def booked() -> bool:
        totals = [(await ok(x, "GET", "/api/forwards"))["totals"] for x in (net.lsp_a, net.lsp_b)]
        return all(
            t["count"] == before[x.name]["count"] + 1 for t, x in zip(totals, (net.lsp_a, net.lsp_b), strict=True)
        )

    await until(booked, "the forward booked at both LSPs")
    fees = 0
    for lsp, prev, nxt in (
        (net.lsp_a, net.alice.node_id, net.lsp_b.node_id),
        (net.lsp_b, net.lsp_a.node_id, net.bob.node_id),
    ):
        page = await ok(lsp, "GET", "/api/forwards?limit=1")
        [f] = page["forwards"]
        assert (f["prev_node_id"], f["next_node_id"]) == (prev, nxt)
        assert page["totals"]["fees_msat"] - before[lsp.name]["fees_msat"] == f["fee_earned_msat"]
        assert page["totals"]["amount_msat"] - before[lsp.name]["amount_msat"] == f["outbound_amount_msat"]
        fees += f["fee_earned_msat"]
    # What A paid in fees is what the two LSPs earned, to the msat.
    assert fees == sent.fee_paid_msat
    assert (await ok(net.lsp_b, "GET", "/api/forwards?limit=1"))["forwards"][0]["outbound_amount_msat"] == AMOUNT_MSAT


async def test_a_hold_failed_by_hand_fails_the_payers_payment_and_the_mailbox_purge(net: Net) -> None:
    request = await net.b.create_payment_request(AMOUNT_MSAT, "to be failed by hand")
    await net.phone_offline("bob")
    held = await net.a.pay_with_hold(request, hold_blocks=144)

    async def one_held() -> bool:
        return len(await ok(net.lsp_a, "GET", "/api/holds?state=held")) == 1

    await until(one_held, "a held hold at LSP_a")
    [h] = await ok(net.lsp_a, "GET", "/api/holds?state=held&limit=1")
    assert await ok(net.lsp_a, "GET", "/api/holds?state=armed") == []
    assert "pid_hash" not in h and len(h["htlcs"]) >= 1
    detail = await ok(net.lsp_a, "GET", f"/api/holds/{h['hold_id']}")
    assert detail["state"] == "held" and detail["hops"][0]["next_node"] == net.lsp_b.node_id
    assert detail["blocks_left"] == detail["failback_height"] - net.chain.raw.height > 0
    assert [e["event"] for e in detail["timeline"]][:2] == ["armed", "htlc held"]

    # B is offline: LSP_b keeps the pid notice in its mailbox and pushes B.
    async def mail() -> bool:
        return bool(await ok(net.lsp_b, "GET", "/api/mailboxes"))

    await until(mail, "mail kept for B")
    [box] = await ok(net.lsp_b, "GET", "/api/mailboxes")
    assert box["client"] == net.bob.node_id and box["messages"] >= 1 and box["bytes"] > 0
    entries = await ok(net.lsp_b, "GET", f"/api/mailbox/{net.bob.node_id}")
    assert len(entries) == box["messages"] and "message" not in entries[0]
    assert len(await ok(net.lsp_b, "GET", "/api/mailbox")) == box["messages"]
    purged = await ok(net.lsp_b, "POST", f"/api/mailbox/{net.bob.node_id}/purge")
    assert purged == {"client": net.bob.node_id, "purged": box["messages"]}
    assert await ok(net.lsp_b, "GET", "/api/mailboxes") == []
    assert await ok(net.lsp_b, "GET", f"/api/mailbox/{net.bob.node_id}") == []

    failed = await ok(net.lsp_a, "POST", f"/api/holds/{h['hold_id']}/fail")
    assert failed == {
        "hold_id": h["hold_id"],
        "previous_state": "held",
        "state": "failed",
        "htlcs_failed_back": len(h["htlcs"]),
        "failed": True,
    }
    event = await net.a.wait_for("payment_failed", payment_hash=held.payment_hash)
    assert isinstance(event, PaymentFailed)
    after = await ok(net.lsp_a, "GET", f"/api/holds/{h['hold_id']}")
    assert after["state"] == "failed" and after["reason"] == "failed back by the operator"
    assert {x["state"] for x in after["htlcs"]} == {"failed"} and after["blocks_left"] is None
    status, why = await refused(net.lsp_a, "POST", f"/api/holds/{h['hold_id']}/fail")
    assert (status, why) == (400, "the hold is already failed")
    await net.restart_phone("bob")


async def test_devices_outbox_test_push_and_retry(net: Net) -> None:
    devices = await ok(net.lsp_a, "GET", "/api/devices")
    assert [(d["client"], d["platform"], d["device"]) for d in devices] == [(net.alice.node_id, "webhook", "alice-…")]
    pushes_before = len(net.pushes.pushes)
    queued = await ok(net.lsp_a, "POST", "/api/push/test", {"client": net.alice.node_id})
    assert queued == {"client": net.alice.node_id, "devices": 1, "queued": True}
    await until(lambda: "test" in net.pushes.kinds_for("alice-phone"), "the test push at the receiver")
    assert len(net.pushes.pushes) == pushes_before + 1

    async def sent() -> bool:
        rows = await ok(net.lsp_a, "GET", "/api/outbox?state=sent&limit=1")
        return bool(rows) and rows[0]["kind"] == "test"

    await until(sent, "the test push marked sent")
    [row] = await ok(net.lsp_a, "GET", "/api/outbox?state=sent&limit=1")
    assert row["client"] == net.alice.node_id and row["attempts"] == 1 and row["last_error"] is None
    # A failed delivery: the receiver is down, the row stays pending with its error; a retry by
    # hand makes it due at once with a fresh round of attempts, and it is tried again.
    port = int(net.pushes.url.split(":")[2].split("/")[0])
    await net.pushes.stop()
    try:
        await ok(net.lsp_a, "POST", "/api/push/test", {"client": net.alice.node_id})

        async def failed_once() -> bool:
            rows = await ok(net.lsp_a, "GET", "/api/outbox?state=pending")
            return bool(rows) and rows[0]["attempts"] >= 1

        await until(failed_once, "a failed delivery")
        [pending] = await ok(net.lsp_a, "GET", "/api/outbox?state=pending")
        assert pending["last_error"] == "delivery failed on webhook"
        retried = await ok(net.lsp_a, "POST", f"/api/outbox/{pending['id']}/retry")
        assert retried["id"] == pending["id"] and retried["state"] == "pending" and retried["attempts"] == 0
        assert retried["next_attempt_at"] <= time.time()

        async def tried_again() -> bool:
            rows = await ok(net.lsp_a, "GET", "/api/outbox?state=pending")
            return bool(rows) and rows[0]["id"] == pending["id"] and rows[0]["attempts"] >= 1

        await until(tried_again, "the retried push tried again")
    finally:
        await restart_receiver(net, port)

    async def delivered() -> bool:
        rows = await ok(net.lsp_a, "GET", "/api/outbox?limit=1")
        return rows[0]["id"] == pending["id"] and rows[0]["state"] == "sent"

    await until(delivered, "the push sent once the receiver is back")
    assert net.pushes.kinds_for("alice-phone").count("test") == 2
    status, why = await refused(net.lsp_a, "POST", f"/api/outbox/{pending['id']}/retry")
    assert (status, why) == (400, "the push was sent already")
    assert "alice-phone" not in json.dumps(await ok(net.lsp_a, "GET", "/api/devices"))


async def restart_receiver(net: Net, port: int) -> None:
    from aiohttp import web

    async def push(request: web.Request) -> web.Response:
        net.pushes.pushes.append((request.match_info["device"], json.loads(await request.text())))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/push/{device}", push)
    net.pushes.runner = web.AppRunner(app, access_log=None)
    await net.pushes.runner.setup()
    await web.TCPSite(net.pushes.runner, "127.0.0.1", port).start()


async def test_credentials_in_urls_are_redacted() -> None:
    assert redact_url("https://user:pw@esplora.example:3000/api") == "https://<redacted>@esplora.example:3000/api"
    assert redact_url("https://esplora.example/api") == "https://esplora.example/api"
    assert redact_url("https://esplora.example/api?key=s3cret&x=1") == "https://esplora.example/api?<redacted>"
    assert redact_url(None) is None


async def test_config_is_redacted(net: Net) -> None:
    cfg = await ok(net.lsp_a, "GET", "/api/config")
    assert cfg["lsp"]["enabled"] is True and cfg["node"]["network"] == "regtest"
    assert cfg["notifications"]["templates"] == {"webhook": "<redacted>"}
    assert "push/{device}" not in json.dumps(cfg) and net.lsp_a.token not in json.dumps(cfg)


async def test_peers_disconnect_and_reconnect(net: Net) -> None:
    peers = {p["node_id"] for p in await ok(net.lsp_a, "GET", "/api/peers")}
    assert net.lsp_b.node_id in peers
    gone = await ok(net.lsp_a, "POST", f"/api/peers/{net.lsp_b.node_id}/disconnect")
    assert gone == {"disconnected": net.lsp_b.node_id}

    async def disconnected() -> bool:
        return all(p["node_id"] != net.lsp_b.node_id for p in await ok(net.lsp_a, "GET", "/api/peers"))

    await until(disconnected, "LSP_b gone from LSP_a's peers", 10)
    body = {"node_id": net.lsp_b.node_id, "address": net.lsp_b.listen_addr}
    await ok(net.lsp_a, "POST", "/api/connect", body)
    await net.links_up()


async def test_channels_open_close_and_force_close(net: Net) -> None:
    opened = []
    for _ in range(2):
        body = {"node_id": net.lsp_b.node_id, "amount_sat": 200_000}
        opened.append((await ok(net.lsp_a, "POST", "/api/channels", body))["user_channel_id"])
    await confirm_channel(net.chain, [net.lsp_a, net.lsp_b], [])
    chans = {c["user_channel_id"]: c for c in await ok(net.lsp_a, "GET", "/api/channels")}
    coop, force = (chans[u]["channel_id"] for u in opened)
    assert all(chans[u]["state"] == "usable" for u in opened)
    mempool = set(net.chain.raw.mempool_txids())
    closing = await ok(
        net.lsp_a, "POST", f"/api/channels/{coop}/close", {"force": False}, template="/api/channels/{channel_id}/close"
    )
    assert closing == {"channel_id": coop, "closing": True, "force": False}
    forced = await ok(
        net.lsp_a, "POST", f"/api/channels/{force}/close", {"force": True}, template="/api/channels/{channel_id}/close"
    )
    assert forced == {"channel_id": force, "closing": True, "force": True}

    async def both_closing() -> bool:
        states = {c["channel_id"]: c["state"] for c in await ok(net.lsp_a, "GET", "/api/channels")}
        # Closing while the closing transactions are negotiated or unconfirmed, then gone.
        return all(states.get(c, "closed") in ("closing", "closed") for c in (coop, force))

    await until(both_closing, "both channels closing")
    await until(lambda: len(set(net.chain.raw.mempool_txids()) - mempool) >= 2, "two closing transactions broadcast")
    net.chain.mine(1)
    await ok(net.lsp_a, "POST", "/api/sync")

    async def closed() -> bool:
        ids = {c["channel_id"] for c in await ok(net.lsp_a, "GET", "/api/channels")}
        return not ids & {coop, force}

    await until(closed, "both channels closed")
    status, why = await refused(net.lsp_a, "POST", f"/api/channels/{coop}/close", {"force": False})
    assert (status, why) == (404, "no open channel with that id")


NODE = "02" + "ab" * 32
HOLD = "ab" * 16
BAD_INPUTS: dict[str, tuple[str, str, Any, int, str]] = {
    "send: no amount": ("POST", "/api/onchain/send", {"address": "bcrt1qxyz0000000000"}, 400, "amount_sat or send_all"),
    "send: both": (
        "POST",
        "/api/onchain/send",
        {"address": "bcrt1qxyz0000000000", "amount_sat": 1000, "send_all": True},
        400,
        "amount_sat or send_all",
    ),
    "send: dust": ("POST", "/api/onchain/send", {"address": "bcrt1qxyz0000000000", "amount_sat": 5}, 400, "amount_sat"),
    "send: address with a slash": (
        "POST",
        "/api/onchain/send",
        {"address": "bc/1", "amount_sat": 1000},
        400,
        "Bitcoin address",
    ),
    "send: address of another network": (
        "POST",
        "/api/onchain/send",
        {"address": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "amount_sat": 1000},
        400,
        "",
    ),
    "invoice: zero": ("POST", "/api/invoices", {"amount_msat": 0}, 400, "amount_msat"),
    "invoice: huge": ("POST", "/api/invoices", {"amount_msat": 10**22}, 400, "amount_msat"),
    "invoice: long description": ("POST", "/api/invoices", {"description": "x" * 640}, 400, "description"),
    "invoice: expiry too short": ("POST", "/api/invoices", {"expiry_secs": 1}, 400, "expiry_secs"),
    "invoices: limit 0": ("GET", "/api/invoices?limit=0", None, 400, "query parameter 'limit'"),
    "pay: not an invoice": ("POST", "/api/pay", {"bolt11": "hello"}, 400, "BOLT11 invoice"),
    "pay: garbage invoice": ("POST", "/api/pay", {"bolt11": "lnbcrt1" + "q" * 40}, 400, "invalid invoice"),
    "pay: wait too long": ("POST", "/api/pay", {"bolt11": "lnbcrt1" + "q" * 40, "wait_secs": 61}, 400, "wait_secs"),
    "keysend: no amount": ("POST", "/api/keysend", {"node_id": NODE}, 400, "missing field 'amount_msat'"),
    "keysend: bad node": ("POST", "/api/keysend", {"node_id": "03zz", "amount_msat": 1}, 400, "33-byte"),
    "payments: bad direction": ("GET", "/api/payments?direction=sideways", None, 400, "query parameter 'direction'"),
    "payments: bad status": ("GET", "/api/payments?status=lost", None, 400, "query parameter 'status'"),
    "payments: limit 501": ("GET", "/api/payments?limit=501", None, 400, "query parameter 'limit'"),
    "payments: negative offset": ("GET", "/api/payments?offset=-1", None, 400, "query parameter 'offset'"),
    "payments: limit not a number": ("GET", "/api/payments?limit=ten", None, 400, "query parameter 'limit'"),
    "payments: unknown parameter": ("GET", "/api/payments?sort=asc", None, 400, "unknown query parameter 'sort'"),
    "payments: repeated parameter": ("GET", "/api/payments?limit=1&limit=2", None, 400, "repeated"),
    "forwards: limit 0": ("GET", "/api/forwards?limit=0", None, 400, "query parameter 'limit'"),
    "info: a query": ("GET", "/api/info?x=1", None, 400, "takes no query parameters"),
    "balances: a query": ("GET", "/api/balances?x=1", None, 400, "takes no query parameters"),
    "fees: a query": ("GET", "/api/onchain/fees?blocks=3", None, 400, "takes no query parameters"),
    "mailboxes: a query": ("GET", "/api/mailboxes?client=x", None, 400, "takes no query parameters"),
    "devices: a query": ("GET", "/api/devices?all=1", None, 400, "takes no query parameters"),
    "config: a query": ("GET", "/api/config?secrets=1", None, 400, "takes no query parameters"),
    "openapi: a query": ("GET", "/api/openapi.json?v=2", None, 400, "takes no query parameters"),
    "outbox: limit too big": ("GET", "/api/outbox?limit=100000", None, 400, "query parameter 'limit'"),
    "disconnect: bad node": ("POST", "/api/peers/02ab/disconnect", None, 400, "path parameter 'node_id'"),
    "disconnect: not a peer": ("POST", f"/api/peers/{NODE}/disconnect", None, 404, "not connected"),
    "close: bad id": ("POST", "/api/channels/xyz/close", {"force": False}, 400, "path parameter 'channel_id'"),
    "close: unknown channel": ("POST", f"/api/channels/{'cd' * 32}/close", {"force": True}, 404, "no open channel"),
    "close: force as text": ("POST", f"/api/channels/{'cd' * 32}/close", {"force": "yes"}, 400, "field 'force'"),
    "close: no body": ("POST", f"/api/channels/{'cd' * 32}/close", None, 400, "needs a JSON object body"),
    "holds: bad state": ("GET", "/api/holds?state=lost", None, 400, "query parameter 'state'"),
    "hold: bad id": ("GET", "/api/holds/1234", None, 400, "16-byte hold id"),
    "hold: unknown": ("GET", f"/api/holds/{HOLD}", None, 404, "no hold with that id"),
    "hold fail: unknown": ("POST", f"/api/holds/{HOLD}/fail", None, 404, "no hold with that id"),
    "hold fail: path injection": ("POST", "/api/holds/..%2F..%2Finfo/fail", None, 400, "path parameter 'hold_id'"),
    "mailbox: bad client": ("GET", "/api/mailbox/bob", None, 400, "path parameter 'client'"),
    "purge: bad client": ("POST", "/api/mailbox/02ab/purge", None, 400, "path parameter 'client'"),
    "outbox: bad state": ("GET", "/api/outbox?state=lost", None, 400, "query parameter 'state'"),
    "retry: not a number": ("POST", "/api/outbox/x1/retry", None, 400, "path parameter 'push_id'"),
    "retry: negative": ("POST", "/api/outbox/-1/retry", None, 400, "path parameter 'push_id'"),
    "retry: unknown": ("POST", "/api/outbox/999999/retry", None, 404, "no push with that id"),
    "test push: no device": ("POST", "/api/push/test", {"client": NODE}, 400, "no registered device"),
    "test push: bad client": ("POST", "/api/push/test", {"client": "alice"}, 400, "33-byte"),
    "test push: extra field": (
        "POST",
        "/api/push/test",
        {"client": NODE, "url": "json://x"},
        400,
        "unknown field 'url'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_bad_input_gets_4xx_with_a_reason(net: Net, case: str) -> None:
    method, path, body, want, reason = BAD_INPUTS[case]
    status, why = await refused(net.lsp_a, method, path, body)
    assert status == want, why
    assert reason in why
