"""The admin commands of `lsp-node` (`lsp-node info`, `lsp-node channel open ...`): one command per
admin API route, each a table by default and the API's JSON with `--json`.

Every command is one row of `COMMANDS`: its words, the route it calls (path and body built from
the arguments) and how its answer is shown. The API checks every value; the commands only shape
them, so a refusal reads the same here as over HTTP (exit code 1, the API's reason)."""

from __future__ import annotations

import argparse
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from lsp_node.cli import tables
from lsp_node.cli.client import AdminClient, add_client_options

Namespace = argparse.Namespace
Arg = tuple[tuple[str, ...], dict[str, Any]]


def q(value: str) -> str:
    """A value as one path segment: it cannot add segments or a query."""
    return urllib.parse.quote(value, safe="")


def query(a: Namespace, *names: str) -> str:
    params = {n: getattr(a, n) for n in names if getattr(a, n, None) is not None}
    return "?" + urllib.parse.urlencode(params) if params else ""


def page_args(default_limit: int = 50) -> list[Arg]:
    return [
        (
            ("--limit",),
            {"type": int, "default": default_limit, "help": f"rows to show (1..500, default {default_limit})"},
        ),
        (("--offset",), {"type": int, "default": 0, "help": "rows to skip, newest first"}),
    ]


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    help: str
    method: str
    path: Callable[[Namespace], str]
    render: Callable[[Any], str]
    body: Callable[[Namespace], dict[str, Any]] | None = None
    args: list[Arg] = field(default_factory=list)


def fixed(path: str) -> Callable[[Namespace], str]:
    return lambda a: path


# -- how answers are shown ---------------------------------------------------------------------------


def show_info(d: Any) -> str:
    keys = ["node_id", "network", "block_height", "listen_addr", "lsp_role", "channels", "peers"]
    keys += [f"balance.{k}" for k in ("total_sat", "spendable_sat", "confirmed_sat")]
    keys += [f"lightning.{k}" for k in ("outbound_msat", "inbound_msat", "channels_ready")]
    return tables.kv(d, keys)


def show_hold(d: Any) -> str:
    keys = ["hold_id", "state", "client", "amount_msat", "payment_hashes", "created_height", "expires_height"]
    keys += ["failback_height", "block_height", "blocks_left", "released_at", "reason"]
    hops = tables.table(d.get("hops", []), ["next_node", "scid"])
    htlcs = tables.table(
        d.get("htlcs", []), ["intercept_id", "state", "inbound_msat", "outbound_msat", "cltv_expiry", "updated_at"]
    )
    timeline = tables.table(d.get("timeline", []), ["at", "event", "detail"])
    return f"{tables.kv(d, keys)}\n\nnext hops:\n{hops}\n\nHTLCs:\n{htlcs}\n\ntimeline:\n{timeline}"


def show_forwards(d: Any) -> str:
    t = d["totals"]
    head = f"{t['count']} forwards, {t['fees_msat']} msat in fees, {t['amount_msat']} msat forwarded"
    cols = ["id", "created_at", "prev_node_id", "next_node_id", "outbound_amount_msat", "fee_earned_msat"]
    return head + "\n" + tables.table(d["forwards"], cols, ["id", "at", "from", "to", "amount_msat", "fee_msat"])


def show_lsps1(d: Any) -> str:
    head = "LSPS1 on" if d["enabled"] else "LSPS1 off ([lsps1] enabled = false)"
    cols = ["order_id", "client_node_id", "state", "payment_state", "paid_by", "lsp_balance_sat", "total_sat"]
    owed = ["refund_owed_sat", "open_attempts", "channel_id", "last_error"]
    return head + "\n" + tables.table(d["orders"], [*cols, *owed])


def show_async(d: Any) -> str:
    head = "async payments served" if d["enabled"] else "async payments off ([async_payments] enabled = false)"
    kept = tables.table(d["static_invoices"], ["recipient", "slot", "invoice_bytes", "updated_at"])
    cols = ["intercept_id", "counterparty_node_id", "amount_msat", "cltv_expiry", "blocks_left"]
    held = tables.table(d["held_htlcs"], cols, ["intercept_id", "payer", "amount_msat", "cltv_expiry", "blocks_left"])
    return f"{head}\n\nstatic invoices:\n{kept}\n\nheld HTLCs:\n{held}"


def show_lsps2(d: Any) -> str:
    head = "LSPS2 on" if d["enabled"] else "LSPS2 off ([lsps2] enabled = false)"
    cols = ["scid", "client_node_id", "state", "payment_size_msat", "opening_fee_msat", "valid_until", "channel_id"]
    return head + "\n" + tables.table(d["channels"], cols)


def show_lsps5(d: Any) -> str:
    head = "LSPS5 on" if d["enabled"] else "LSPS5 off ([lsps5] enabled = false)"
    hooks = tables.table(d["webhooks"], ["client_id", "app_name", "url", "last_seen"])
    sent = tables.table(d["deliveries"], ["id", "client_id", "method", "status", "attempts", "url", "last_status"])
    return f"{head}\nwebhooks\n{hooks}\ndeliveries\n{sent}"


def one(key: str) -> Callable[[Any], str]:
    return lambda d: str(d[key])


def columns(*cols: str) -> Callable[[Any], str]:
    return lambda rows: tables.table(rows, cols)


def kv(*keys: str) -> Callable[[Any], str]:
    return lambda d: tables.kv(d, list(keys) or None)


CHANNEL_COLUMNS: Final = (
    "channel_id",
    "counterparty_node_id",
    "state",
    "capacity_sat",
    "outbound_capacity_msat",
    "inbound_capacity_msat",
    "short_channel_id",
)
PAYMENT_KEYS: Final = ("payment_id", "status", "direction", "amount_msat", "fee_msat", "failure")


# -- the commands ------------------------------------------------------------------------------------

FORCE_HELP: Final = "spend even coins owed to paid LSPS1 orders not opened yet"

COMMANDS: Final[list[Command]] = [
    Command(("info",), "node id, network, chain height, balances", "GET", fixed("/api/info"), show_info),
    Command(("balances",), "on-chain and Lightning balances", "GET", fixed("/api/balances"), kv()),
    Command(("newaddress",), "a new on-chain address", "POST", fixed("/api/newaddress"), one("address")),
    Command(
        ("send",),
        "send on-chain: ADDRESS AMOUNT_SAT, or ADDRESS --all",
        "POST",
        fixed("/api/onchain/send"),
        one("txid"),
        body=lambda a: (
            ({"address": a.address, "send_all": True} if a.all else {"address": a.address, "amount_sat": a.amount_sat})
            | ({"force": True} if a.force else {})
        ),
        args=[
            (("address",), {}),
            (("amount_sat",), {"type": int, "nargs": "?"}),
            (("--all",), {"action": "store_true", "help": "send the whole spendable balance"}),
            (("--force",), {"action": "store_true", "help": FORCE_HELP}),
        ],
    ),
    Command(
        ("fees",),
        "fee estimates (sat/vB) for 1, 6, 12 and 144 blocks",
        "GET",
        fixed("/api/onchain/fees"),
        lambda d: tables.table([{"blocks": k, "sat_per_vb": v} for k, v in d.items()], ["blocks", "sat_per_vb"]),
    ),
    Command(("sync",), "sync with the chain now", "POST", fixed("/api/sync"), lambda d: f"height {d['block_height']}"),
    Command(("peers",), "connected peers", "GET", fixed("/api/peers"), columns("node_id", "address", "inbound")),
    Command(
        ("connect",),
        "connect to NODE_ID at HOST:PORT",
        "POST",
        fixed("/api/connect"),
        lambda d: f"connected to {d['connected']}",
        body=lambda a: {"node_id": a.node_id, "address": a.address},
        args=[(("node_id",), {}), (("address",), {"metavar": "HOST:PORT"})],
    ),
    Command(
        ("disconnect",),
        "disconnect from NODE_ID",
        "POST",
        lambda a: f"/api/peers/{q(a.node_id)}/disconnect",
        lambda d: f"disconnected from {d['disconnected']}",
        args=[(("node_id",), {})],
    ),
    Command(
        ("channels",),
        "channels with their balances and states",
        "GET",
        fixed("/api/channels"),
        columns(*CHANNEL_COLUMNS),
    ),
    Command(
        ("channel", "open"),
        "open a channel of SAT to NODE_ID (connect first)",
        "POST",
        fixed("/api/channels"),
        lambda d: f"opening; user_channel_id {d['user_channel_id']}",
        body=lambda a: (
            {"node_id": a.node_id, "amount_sat": a.sat, "push_msat": a.push_msat, "announce": a.announce}
            | ({"force": True} if a.force else {})
        ),
        args=[
            (("node_id",), {}),
            (("sat",), {"type": int}),
            (("--push-msat",), {"type": int, "default": 0}),
            (("--announce",), {"action": "store_true", "help": "a public channel"}),
            (("--force",), {"action": "store_true", "help": FORCE_HELP}),
        ],
    ),
    Command(
        ("channel", "close"),
        "close channel ID (cooperatively; --force broadcasts our commitment)",
        "POST",
        lambda a: f"/api/channels/{q(a.channel_id)}/close",
        lambda d: f"closing {d['channel_id']}" + (" (force)" if d["force"] else ""),
        body=lambda a: {"force": a.force},
        args=[(("channel_id",), {}), (("--force",), {"action": "store_true"})],
    ),
    Command(
        ("invoice", "create"),
        "create an invoice of AMOUNT_MSAT (omit for any amount)",
        "POST",
        fixed("/api/invoices"),
        kv("bolt11", "payment_hash", "amount_msat", "expires_at"),
        body=lambda a: {"amount_msat": a.amount_msat, "description": a.description, "expiry_secs": a.expiry},
        args=[
            (("amount_msat",), {"type": int, "nargs": "?"}),
            (("--description",), {"default": ""}),
            (("--expiry",), {"type": int, "default": 3600, "help": "seconds (default 3600)"}),
        ],
    ),
    Command(
        ("invoices",),
        "invoices this node created",
        "GET",
        lambda a: "/api/invoices" + query(a, "limit", "offset"),
        columns("payment_hash", "status", "amount_msat", "description", "expires_at"),
        args=page_args(),
    ),
    Command(
        ("pay",),
        "pay a BOLT11 invoice",
        "POST",
        fixed("/api/pay"),
        kv(*PAYMENT_KEYS),
        body=lambda a: {"bolt11": a.bolt11, "amount_msat": a.amount_msat, "wait_secs": a.wait},
        args=[
            (("bolt11",), {}),
            (("--amount-msat",), {"type": int, "help": "only for an invoice without an amount"}),
            (("--wait",), {"type": int, "default": 30, "help": "seconds to wait for the outcome (0..60)"}),
        ],
    ),
    Command(
        ("keysend",),
        "pay NODE_ID AMOUNT_MSAT without an invoice",
        "POST",
        fixed("/api/keysend"),
        kv(*PAYMENT_KEYS),
        body=lambda a: {"node_id": a.node_id, "amount_msat": a.amount_msat, "wait_secs": a.wait},
        args=[(("node_id",), {}), (("amount_msat",), {"type": int}), (("--wait",), {"type": int, "default": 30})],
    ),
    Command(
        ("payments",),
        "payments sent and received, newest first",
        "GET",
        lambda a: "/api/payments" + query(a, "direction", "status", "limit", "offset"),
        columns("payment_id", "direction", "status", "amount_msat", "fee_msat", "created_at"),
        args=[
            (("--direction",), {"choices": ["inbound", "outbound"]}),
            (("--status",), {"choices": ["pending", "succeeded", "failed"]}),
            *page_args(),
        ],
    ),
    Command(
        ("forwards",),
        "forwarded payments and their fees",
        "GET",
        lambda a: "/api/forwards" + query(a, "limit", "offset"),
        show_forwards,
        args=page_args(),
    ),
    Command(
        ("lsps1",),
        "LSPS1: whether it runs, and the channel orders, newest first",
        "GET",
        lambda a: "/api/lsps1" + query(a, "limit", "offset"),
        show_lsps1,
        args=page_args(),
    ),
    Command(
        ("async",),
        "BOLT async payments: whether served, the static invoices kept",
        "GET",
        fixed("/api/async"),
        show_async,
    ),
    Command(
        ("async", "paths"),
        "blinded paths to this node for recipient NODE_ID (hex; give them to its wallet)",
        "POST",
        fixed("/api/async/paths"),
        one("paths"),
        body=lambda a: {"node_id": a.node_id},
        args=[(("node_id",), {})],
    ),
    Command(
        ("async", "fail"),
        "fail the async-payment HTLC INTERCEPT_ID back to its payer now",
        "POST",
        lambda a: f"/api/async/htlcs/{q(a.intercept_id)}/fail",
        lambda d: tables.kv(d["failed"], ["intercept_id", "counterparty_node_id", "payment_hash", "amount_msat"]),
        args=[(("intercept_id",), {})],
    ),
    Command(
        ("lsps2",),
        "LSPS2: whether it runs, and the JIT channels sold, newest first",
        "GET",
        lambda a: "/api/lsps2" + query(a, "limit", "offset"),
        show_lsps2,
        args=page_args(),
    ),
    Command(
        ("lsps5",),
        "LSPS5: whether it runs, the webhooks per client and the newest deliveries",
        "GET",
        lambda a: "/api/lsps5" + query(a, "limit"),
        show_lsps5,
        args=page_args()[:1],
    ),
    Command(
        ("lsps5", "notify"),
        "LSPS5: notify CLIENT's webhooks now with METHOD (payment_incoming, expiry_soon,"
        " liquidity_management_request, onion_message_incoming)",
        "POST",
        lambda a: f"/api/lsps5/{q(a.client)}/notify",
        kv("client", "method", "outcome"),
        body=lambda a: {
            "method": a.method if a.method.startswith("lsps5.") else f"lsps5.{a.method}",
            **({"timeout": a.timeout} if a.timeout is not None else {}),
        },
        args=[(("client",), {}), (("method",), {}), (("--timeout",), {"type": int, "default": None})],
    ),
    Command(
        ("holds",),
        "holds of the LSP role, newest first",
        "GET",
        lambda a: "/api/holds" + query(a, "state", "limit", "offset"),
        lambda rows: tables.table(
            [{**h, "htlcs": len(h["htlcs"])} for h in rows],
            ["hold_id", "state", "client", "amount_msat", "htlcs", "expires_height", "failback_height"],
        ),
        args=[
            (("--state",), {"choices": ["armed", "held", "released", "settled", "failed", "expired"]}),
            *page_args(100),
        ],
    ),
    Command(
        ("hold", "show"),
        "one hold: HTLCs, next hops, timeline, blocks left",
        "GET",
        lambda a: f"/api/holds/{q(a.hold_id)}",
        show_hold,
        args=[(("hold_id",), {})],
    ),
    Command(
        ("hold", "fail"),
        "fail an armed or held hold back to the payer now",
        "POST",
        lambda a: f"/api/holds/{q(a.hold_id)}/fail",
        kv("hold_id", "previous_state", "state", "htlcs_failed_back", "failed"),
        args=[(("hold_id",), {})],
    ),
    Command(
        ("mailbox",),
        "mailboxes of offline clients: messages, bytes, oldest",
        "GET",
        fixed("/api/mailboxes"),
        columns("client", "messages", "bytes", "oldest_at"),
    ),
    Command(
        ("mailbox", "list"),
        "every message kept, all clients",
        "GET",
        fixed("/api/mailbox"),
        columns("id", "client", "size", "sender", "received_at", "expires_at"),
    ),
    Command(
        ("mailbox", "show"),
        "the messages kept for CLIENT",
        "GET",
        lambda a: f"/api/mailbox/{q(a.client)}",
        columns("id", "size", "sender", "received_at", "expires_at"),
        args=[(("client",), {})],
    ),
    Command(
        ("mailbox", "purge"),
        "delete every message kept for CLIENT",
        "POST",
        lambda a: f"/api/mailbox/{q(a.client)}/purge",
        lambda d: f"purged {d['purged']} messages of {d['client']}",
        args=[(("client",), {})],
    ),
    Command(
        ("devices",),
        "registered push devices",
        "GET",
        fixed("/api/devices"),
        columns("client", "platform", "device", "registered_at", "expires_at", "failures"),
    ),
    Command(
        ("outbox",),
        "the push outbox, newest first",
        "GET",
        lambda a: "/api/outbox" + query(a, "state", "limit", "offset"),
        columns("id", "client", "kind", "state", "attempts", "next_attempt_at", "last_error"),
        args=[(("--state",), {"choices": ["pending", "sent", "dead"]}), *page_args()],
    ),
    Command(
        ("push", "retry"),
        "try push ID of the outbox again now",
        "POST",
        lambda a: f"/api/outbox/{q(str(a.push_id))}/retry",
        kv("id", "client", "kind", "state", "attempts", "next_attempt_at"),
        args=[(("push_id",), {"type": int})],
    ),
    Command(
        ("push", "test"),
        "send a test push to every device of CLIENT",
        "POST",
        fixed("/api/push/test"),
        kv("client", "devices", "queued"),
        body=lambda a: {"client": a.client},
        args=[(("client",), {})],
    ),
    Command(("config",), "the node's effective configuration, secrets redacted", "GET", fixed("/api/config"), kv()),
    Command(
        ("openapi",),
        "the admin API's OpenAPI document (JSON)",
        "GET",
        fixed("/api/openapi.json"),
        lambda d: json.dumps(d, indent=2),
    ),
]


def run(cmd: Command, a: Namespace) -> int:
    client = AdminClient.from_args(a)
    answer = client.call(cmd.method, cmd.path(a), cmd.body(a) if cmd.body else None)
    print(json.dumps(answer, indent=2) if a.json else cmd.render(answer))
    return 0


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """One sub-command per admin route; two-word commands (`channel open`) share a group parser."""
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    parsers: dict[str, argparse.ArgumentParser] = {}

    def parser_for(name: str, help: str) -> argparse.ArgumentParser:
        if name not in parsers:
            parsers[name] = subparsers.add_parser(name, help=help, description=help, allow_abbrev=False)
        return parsers[name]

    for cmd in COMMANDS:
        if len(cmd.words) == 1:
            p = parser_for(cmd.words[0], cmd.help)
        else:
            group = parser_for(cmd.words[0], f"{cmd.words[0]} commands")
            if cmd.words[0] not in groups:
                groups[cmd.words[0]] = group.add_subparsers(
                    dest=f"{cmd.words[0]}_command", metavar="COMMAND", parser_class=type(group)
                )
            p = groups[cmd.words[0]].add_parser(cmd.words[1], help=cmd.help, description=cmd.help, allow_abbrev=False)
        for names, kw in cmd.args:
            p.add_argument(*names, **kw)
        p.add_argument("--json", action="store_true", help="print the API's JSON answer")
        add_client_options(p)
        p.set_defaults(handler=lambda a, c=cmd: run(c, a))
    # A group without a command of its own (`channel`, `hold`...) says what it offers.
    for name in groups:
        p = parsers[name]
        if p.get_default("handler") is None:
            p.set_defaults(handler=lambda a, p=p: _usage(p))


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2
