"""Routes of the LightningRod LSP role (holds, mailbox), of push notifications (devices, the
outbox, a test push) and of the effective configuration."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import Field, StringConstraints

from lsp_node.admin.http import MAX_LIMIT, Body, Hex16, Hex32, Inputs, NodeId, Page, PathParams, Route
from lsp_node.admin.ops import Ops


class HoldsQuery(Page):
    # The states of lsp/holds.py (a test checks they agree).
    state: Literal["armed", "held", "released", "settled", "failed", "expired"] | None = None
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)


class OutboxQuery(Page):
    state: Literal["pending", "sent", "dead"] | None = None


class HoldPath(PathParams):
    hold_id: Hex16


class ClientPath(PathParams):
    client: NodeId


class HeldHtlcPath(PathParams):
    intercept_id: Hex32


class PushPath(PathParams):
    # Text in the path: digits only, then a number (no sign, no leading "+", at most 18 digits).
    push_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]


class TestPushBody(Body):
    client: NodeId


class Lsps5NotifyBody(Body):
    # bLIP-55's methods the LSP may send (webhook_registered is lightning-liquidity's own).
    method: Literal[
        "lsps5.payment_incoming",
        "lsps5.expiry_soon",
        "lsps5.liquidity_management_request",
        "lsps5.onion_message_incoming",
    ]
    #: The block height `lsps5.expiry_soon` names (default: the current height).
    timeout: int | None = Field(default=None, ge=0, le=10_000_000)


async def holds(ops: Ops, i: Inputs) -> Any:
    q = i.get(HoldsQuery)
    return await ops.holds(q.state, q.limit, q.offset)


async def hold(ops: Ops, i: Inputs) -> Any:
    return await ops.hold(i.get(HoldPath).hold_id)


async def fail_hold(ops: Ops, i: Inputs) -> Any:
    return await ops.fail_hold(i.get(HoldPath).hold_id)


async def mailbox(ops: Ops, i: Inputs) -> Any:
    return await ops.mailbox()


async def mailboxes(ops: Ops, i: Inputs) -> Any:
    return await ops.mailbox_clients()


async def client_mailbox(ops: Ops, i: Inputs) -> Any:
    return await ops.mailbox(i.get(ClientPath).client)


async def purge_mailbox(ops: Ops, i: Inputs) -> Any:
    client = i.get(ClientPath).client.lower()
    return {"client": client, "purged": await ops.purge_mailbox(client)}


async def devices(ops: Ops, i: Inputs) -> Any:
    return await ops.devices()


async def outbox(ops: Ops, i: Inputs) -> Any:
    q = i.get(OutboxQuery)
    return await ops.outbox(q.state, q.limit, q.offset)


async def retry_push(ops: Ops, i: Inputs) -> Any:
    return await ops.retry_push(int(i.get(PushPath).push_id))


async def test_push(ops: Ops, i: Inputs) -> Any:
    return await ops.test_push(i.get(TestPushBody).client)


async def lsps2(ops: Ops, i: Inputs) -> Any:
    q = i.get(Page)
    return await ops.lsps2(q.limit, q.offset)


async def lsps5(ops: Ops, i: Inputs) -> Any:
    return await ops.lsps5(i.get(Page).limit)


async def lsps5_notify(ops: Ops, i: Inputs) -> Any:
    b = i.get(Lsps5NotifyBody)
    return await ops.lsps5_notify(i.get(ClientPath).client, b.method, b.timeout)


async def lsps1(ops: Ops, i: Inputs) -> Any:
    q = i.get(Page)
    return await ops.lsps1(q.limit, q.offset)


async def config(ops: Ops, i: Inputs) -> Any:
    return ops.config()


class RecipientBody(Body):
    node_id: NodeId


async def async_payments(ops: Ops, i: Inputs) -> Any:
    return await ops.async_payments()


async def async_paths(ops: Ops, i: Inputs) -> Any:
    return ops.async_recipient_paths(i.get(RecipientBody).node_id)


async def fail_held_async(ops: Ops, i: Inputs) -> Any:
    return await ops.fail_held_async_htlc(i.get(HeldHtlcPath).intercept_id)


CLIENT: Final = "03" + "cd" * 32
ROUTES: Final[list[Route]] = [
    Route("GET", "/api/holds", holds, "Holds, newest first, by state, with their HTLCs", query=HoldsQuery, lsp=True),
    Route(
        "GET",
        "/api/holds/{hold_id}",
        hold,
        "One hold: its HTLCs, next hops, timeline and the blocks left before its fail-back",
        params=HoldPath,
        lsp=True,
    ),
    Route(
        "POST",
        "/api/holds/{hold_id}/fail",
        fail_hold,
        "Fail an armed or held hold back to the payer now (the hold state machine's OPERATOR_FAIL)",
        params=HoldPath,
        lsp=True,
    ),
    Route("GET", "/api/mailbox", mailbox, "Every message kept for offline clients (sizes, not bodies)", lsp=True),
    Route("GET", "/api/mailboxes", mailboxes, "Per client: messages kept, bytes, oldest arrival", lsp=True),
    Route(
        "GET", "/api/mailbox/{client}", client_mailbox, "The messages kept for one client", params=ClientPath, lsp=True
    ),
    Route(
        "POST",
        "/api/mailbox/{client}/purge",
        purge_mailbox,
        "Delete every message kept for one client",
        params=ClientPath,
        lsp=True,
    ),
    Route("GET", "/api/devices", devices, "Registered push devices (device ids shortened)"),
    Route("GET", "/api/outbox", outbox, "The push outbox, newest first, by state", query=OutboxQuery),
    Route("POST", "/api/outbox/{push_id}/retry", retry_push, "Try a pending or dead push again now", params=PushPath),
    Route(
        "POST",
        "/api/push/test",
        test_push,
        "Send a test push to every device of a client",
        TestPushBody,
        example={"client": CLIENT},
    ),
    Route("GET", "/api/lsps1", lsps1, "LSPS1: whether it runs, and the channel orders, newest first", query=Page),
    Route("GET", "/api/lsps2", lsps2, "LSPS2: whether it runs, and the JIT channels sold, newest first", query=Page),
    Route(
        "GET",
        "/api/lsps5",
        lsps5,
        "LSPS5: whether it runs, the webhooks per client (URLs as scheme and host) and the newest deliveries",
        query=Page,
    ),
    Route(
        "POST",
        "/api/lsps5/{client}/notify",
        lsps5_notify,
        "LSPS5: notify a client's webhooks now (e.g. liquidity_management_request); the cooldowns apply",
        Lsps5NotifyBody,
        params=ClientPath,
        example={"method": "lsps5.liquidity_management_request"},
        lsp=True,
    ),
    Route("GET", "/api/config", config, "The effective configuration, secrets redacted"),
    Route(
        "GET",
        "/api/async",
        async_payments,
        "BOLT async payments: whether served, the static invoices kept, the HTLCs held for recipients",
    ),
    Route(
        "POST",
        "/api/async/htlcs/{intercept_id}/fail",
        fail_held_async,
        "Fail an HTLC held for an async payment back to its payer now",
        params=HeldHtlcPath,
        lsp=True,
    ),
    Route(
        "POST",
        "/api/async/paths",
        async_paths,
        "Blinded paths to this node for an async-payment recipient (hex; give them to its wallet)",
        RecipientBody,
        example={"node_id": CLIENT},
    ),
]
