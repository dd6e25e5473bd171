"""Routes of the Lightning node itself: identity and balances, the on-chain wallet, peers,
channels, invoices, payments and forwards."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import Field, StringConstraints, model_validator

from lsp_node.admin.http import (
    MAX_CHANNEL_SAT,
    MAX_MSAT,
    MAX_SAT,
    MIN_CHANNEL_SAT,
    Body,
    Hex32,
    Inputs,
    NodeId,
    Page,
    PathParams,
    PeerAddress,
    Route,
)
from lsp_node.admin.ops import Ops

# Bech32 (any case) or base58 characters; the engine checks the checksum and the network.
BitcoinAddress = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{14,90}$")]
# BOLT11: "ln", the currency and amount, "1", then bech32 data; bounded like any input.
Bolt11 = Annotated[str, StringConstraints(pattern=r"^(ln|LN)[A-Za-z0-9]{10,7000}$")]
#: The longest a payment started here may be waited for before the answer (seconds).
MAX_WAIT_SECS: Final = 60


class ConnectBody(Body):
    node_id: NodeId
    address: PeerAddress


# Spends that would take coins owed to paid LSPS1 orders are refused (400, InsufficientFundsError) unless forced.
FORCE_DOC: Final = "spend even coins owed to paid LSPS1 orders not opened yet"


class OpenChannelBody(Body):
    node_id: NodeId
    amount_sat: int = Field(ge=MIN_CHANNEL_SAT, le=MAX_CHANNEL_SAT)
    push_msat: int = Field(default=0, ge=0, le=MAX_CHANNEL_SAT * 1000)
    announce: bool = False
    force: bool = Field(default=False, description=FORCE_DOC)


class CloseChannelBody(Body):
    force: bool = Field(default=False, description="broadcast our latest commitment instead of negotiating")


class SendOnchainBody(Body):
    PATTERNS: ClassVar[dict[str, str]] = {"address": "a Bitcoin address of this node's network"}
    address: BitcoinAddress
    amount_sat: int | None = Field(default=None, ge=546, le=MAX_SAT, description="omit with send_all")
    send_all: bool = Field(default=False, description="send the whole spendable balance (no amount_sat)")
    force: bool = Field(default=False, description=FORCE_DOC)

    @model_validator(mode="after")
    def _one_amount(self) -> SendOnchainBody:
        # Draining the wallet must be asked for by name, never by a forgotten field.
        if (self.amount_sat is None) != self.send_all:
            raise ValueError("give either amount_sat or send_all: true")
        return self


class InvoiceBody(Body):
    amount_msat: int | None = Field(default=None, ge=1, le=MAX_MSAT, description="omit for any amount")
    description: str = Field(default="", max_length=639)  # BOLT11's limit for a description
    expiry_secs: int = Field(default=3600, ge=60, le=365 * 86400)


class PayBody(Body):
    PATTERNS: ClassVar[dict[str, str]] = {"bolt11": "a BOLT11 invoice (ln...)"}
    bolt11: Bolt11
    amount_msat: int | None = Field(default=None, ge=1, le=MAX_MSAT, description="only for an invoice without one")
    wait_secs: int = Field(default=30, ge=0, le=MAX_WAIT_SECS, description="wait this long at most for the outcome")


class KeysendBody(Body):
    node_id: NodeId
    amount_msat: int = Field(ge=1, le=MAX_MSAT)
    wait_secs: int = Field(default=30, ge=0, le=MAX_WAIT_SECS)


class PaymentsQuery(Page):
    direction: Literal["inbound", "outbound"] | None = None
    status: Literal["pending", "succeeded", "failed"] | None = None


class NodePath(PathParams):
    node_id: NodeId


class ChannelPath(PathParams):
    channel_id: Hex32


async def info(ops: Ops, i: Inputs) -> Any:
    return ops.info()


async def balances(ops: Ops, i: Inputs) -> Any:
    info = ops.info()
    return {"onchain": info["balance"], "lightning": info["lightning"]}


async def new_address(ops: Ops, i: Inputs) -> Any:
    return {"address": await ops.new_address()}


async def send_onchain(ops: Ops, i: Inputs) -> Any:
    b = i.get(SendOnchainBody)
    return {"txid": await ops.send_onchain(b.address, b.amount_sat, force=b.force)}


async def fees(ops: Ops, i: Inputs) -> Any:
    return ops.fee_estimates()


async def sync(ops: Ops, i: Inputs) -> Any:
    return {"block_height": await ops.sync()}


async def connect(ops: Ops, i: Inputs) -> Any:
    b = i.get(ConnectBody)
    await ops.connect(b.node_id, b.address)
    return {"connected": b.node_id.lower()}


async def disconnect(ops: Ops, i: Inputs) -> Any:
    node_id = i.get(NodePath).node_id.lower()
    await ops.disconnect(node_id)
    return {"disconnected": node_id}


async def peers(ops: Ops, i: Inputs) -> Any:
    return ops.peers()


async def open_channel(ops: Ops, i: Inputs) -> Any:
    b = i.get(OpenChannelBody)
    return {"user_channel_id": await ops.open_channel(b.node_id, b.amount_sat, b.push_msat, b.announce, force=b.force)}


async def channels(ops: Ops, i: Inputs) -> Any:
    return ops.channels()


async def close_channel(ops: Ops, i: Inputs) -> Any:
    channel_id, force = i.get(ChannelPath).channel_id.lower(), i.get(CloseChannelBody).force
    if force:
        await ops.force_close_channel(channel_id)
    else:
        await ops.close_channel(channel_id)
    return {"channel_id": channel_id, "closing": True, "force": force}


async def create_invoice(ops: Ops, i: Inputs) -> Any:
    b = i.get(InvoiceBody)
    return await ops.create_invoice(b.amount_msat, b.description, b.expiry_secs)


async def invoices(ops: Ops, i: Inputs) -> Any:
    q = i.get(Page)
    return await ops.invoices(q.limit, q.offset)


async def pay(ops: Ops, i: Inputs) -> Any:
    b = i.get(PayBody)
    return await ops.pay_invoice(b.bolt11, b.amount_msat, b.wait_secs)


async def keysend(ops: Ops, i: Inputs) -> Any:
    b = i.get(KeysendBody)
    return await ops.keysend(b.node_id, b.amount_msat, b.wait_secs)


async def payments(ops: Ops, i: Inputs) -> Any:
    q = i.get(PaymentsQuery)
    return await ops.payments(q.direction, q.status, q.limit, q.offset)


async def forwards(ops: Ops, i: Inputs) -> Any:
    q = i.get(Page)
    return {"totals": await ops.forward_totals(), "forwards": await ops.forwards(q.limit, q.offset)}


NODE: Final = "02" + "ab" * 32
ROUTES: Final[list[Route]] = [
    Route("GET", "/api/info", info, "Node id, network, chain height, balances, counts of channels and peers"),
    Route("GET", "/api/balances", balances, "On-chain wallet balance and Lightning outbound/inbound capacity"),
    Route("POST", "/api/newaddress", new_address, "A new on-chain address of the node's wallet"),
    Route(
        "POST",
        "/api/onchain/send",
        send_onchain,
        "Send on-chain from the node's wallet (an amount, or the whole balance with send_all)",
        SendOnchainBody,
        example={"address": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "amount_sat": 50_000},
    ),
    Route("GET", "/api/onchain/fees", fees, "Fee estimates in sat/vB for 1, 6, 12 and 144 blocks"),
    Route("POST", "/api/sync", sync, "Sync the wallet and the Lightning node with the chain now"),
    Route("GET", "/api/peers", peers, "Connected peers"),
    Route(
        "POST",
        "/api/connect",
        connect,
        "Connect to a peer",
        ConnectBody,
        example={"node_id": NODE, "address": "127.0.0.1:9735"},
    ),
    Route("POST", "/api/peers/{node_id}/disconnect", disconnect, "Disconnect a connected peer", params=NodePath),
    Route("GET", "/api/channels", channels, "Channels with their balances and states"),
    Route(
        "POST",
        "/api/channels",
        open_channel,
        "Open a channel",
        OpenChannelBody,
        example={"node_id": NODE, "amount_sat": 100_000, "push_msat": 0, "announce": False},
    ),
    Route(
        "POST",
        "/api/channels/{channel_id}/close",
        close_channel,
        "Close a channel cooperatively, or force-close it with force: true",
        CloseChannelBody,
        params=ChannelPath,
        example={"force": False},
    ),
    Route(
        "POST",
        "/api/invoices",
        create_invoice,
        "Create a BOLT11 invoice",
        InvoiceBody,
        example={"amount_msat": 20_000_000, "description": "coffee", "expiry_secs": 3600},
    ),
    Route("GET", "/api/invoices", invoices, "Invoices this node created, newest first", query=Page),
    Route(
        "POST",
        "/api/pay",
        pay,
        "Pay a BOLT11 invoice; waits up to wait_secs for the outcome",
        PayBody,
        example={"bolt11": "lnbcrt200u1pexample", "wait_secs": 30},
    ),
    Route(
        "POST",
        "/api/keysend",
        keysend,
        "Pay a node without an invoice (spontaneous payment); waits up to wait_secs",
        KeysendBody,
        example={"node_id": NODE, "amount_msat": 1_000_000, "wait_secs": 30},
    ),
    Route(
        "GET",
        "/api/payments",
        payments,
        "Payments sent and received, newest first, by direction and status (never a preimage)",
        query=PaymentsQuery,
    ),
    Route("GET", "/api/forwards", forwards, "Forwarded payments, newest first, with their fees and totals", query=Page),
]
