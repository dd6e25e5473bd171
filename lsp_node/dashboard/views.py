"""The dashboard's pages (GET only, nothing here changes state). Each gathers its data from `Ops`,
`summary(ops)` and the sample store, the one view of the node the API, CLI and metrics share,
and renders a template; `?partial=1` answers the page's live region alone."""

from __future__ import annotations

import re
import time
from typing import Any, Final

from aiohttp import web

from lsp_node.admin.patterns import HOLD_ID_RE
from lsp_node.dashboard import charts
from lsp_node.dashboard.forms import number
from lsp_node.dashboard.render import msat, page
from lsp_node.dashboard.state import DASHBOARD
from lsp_node.errors import LspNodeError
from lsp_node.lsp.holds import STATES as HOLD_STATES
from lsp_node.monitor.summary import summary

PAGE_SIZE: Final = 50
#: LSPS1 orders looked through for refunds owed: the newest, as many as the engine answers at once.
#: Older owed orders are in `GET /api/lsps1` (paged) and `lsp-node lsps1`; the page says how many it read.
OWED_SCAN: Final = 500
MAX_OFFSET: Final = 1_000_000
#: An amount in a hold timeline's detail ("25001000 msat in"), shown as the rest of the page shows
#: amounts ("25,001 sat in").
DETAIL_MSAT_RE: Final = re.compile(r"\b([0-9]{1,24}) msat\b")
#: The charts' time windows a person can pick (query `window`), in seconds.
WINDOWS: Final = {"15m": 900, "1h": 3600, "6h": 21_600, "24h": 86_400, "7d": 604_800}
DEFAULT_WINDOW: Final = "1h"
OUTBOX_STATES: Final = ("pending", "sent", "dead")
PAYMENT_DIRECTIONS: Final = ("inbound", "outbound")
PAYMENT_STATUSES: Final = ("pending", "succeeded", "failed")
ROLE_OFF: Final = "The LSP role is disabled on this node (config [lsp] enabled = false): no holds, mailbox or pushes."

#: Charts of the overview: title, unit, counts (whole numbers) or not, and the series as
#: (name in the sample store, label, divisor to the unit, colour or None).
CHARTS: Final[list[tuple[str, str, bool, list[tuple[str, str, float, int | None]]]]] = [
    (
        "Balances",
        "sat",
        False,
        [
            ("onchain_sat", "on-chain", 1, None),
            ("outbound_msat", "outbound", 1000, None),
            ("inbound_msat", "inbound", 1000, None),
        ],
    ),
    ("Held HTLCs", "count", True, [("held_htlcs", "held HTLCs", 1, 2), ("holds_active", "active holds", 1, 4)]),
    ("Forwards", "count", True, [("forwards_total", "forwards", 1, None)]),
    ("Forwarding fees", "sat", False, [("forward_fees_msat_total", "fees earned", 1000, 1)]),
    ("Mailbox depth", "messages", True, [("mailbox_messages", "messages", 1, 4)]),
    ("Pushes", "count", True, [("pushes_sent_total", "sent", 1, 1), ("pushes_failed_total", "failed", 1, 3)]),
]


def choice(request: web.Request, name: str, allowed: tuple[str, ...] | list[str]) -> str | None:
    """An optional query parameter that must be one of `allowed`; anything else is a 400."""
    v = request.query.get(name)
    if v is None or v == "":
        return None
    if v not in allowed:
        raise web.HTTPBadRequest(reason=f"{name} must be one of {', '.join(allowed)}")
    return v


def offset_of(request: web.Request) -> int:
    n = number(request.query.get("offset", "0"), 0, MAX_OFFSET)
    if n is None:
        raise web.HTTPBadRequest(reason=f"offset must be a whole number from 0 to {MAX_OFFSET}")
    return n


def amounts_for_people(detail: str) -> str:
    """'25001000 msat in' -> '25,001 sat in'."""
    return DETAIL_MSAT_RE.sub(lambda m: msat(m.group(1)), detail)


async def chart_svgs(request: web.Request, window_name: str) -> list[Any]:
    """The overview's charts over the chosen window, from the recorded samples."""
    ops = request.app[DASHBOARD].ops
    window = float(WINDOWS[window_name])
    now = time.time()
    names = [name for _, _, _, lines in CHARTS for name, _, _, _ in lines]
    store = ops.samples
    series: dict[str, list[tuple[float, float]]] = {}
    if store is not None:
        series = await store.run(store.series, names, now - window)
    out = []
    for title, unit, whole, specs in CHARTS:
        lines = [
            charts.Line(label, [(t, v / divisor) for t, v in series.get(name, [])], colour)
            for name, label, divisor, colour in specs
        ]
        out.append(charts.line_chart(title, lines, unit=unit, whole=whole, now=now, window=window))
    return out


async def overview(request: web.Request) -> web.Response:
    ops = request.app[DASHBOARD].ops
    window = choice(request, "window", list(WINDOWS)) or DEFAULT_WINDOW
    numbers = await summary(ops)  # the balances and counts the API and /metrics show
    channels = ops.channels()
    ctx = {
        "info": ops.info(),
        "summary": numbers,
        # Usable (ready and the peer connected), which is not the API's `channels_ready`.
        "channels_usable": sum(1 for c in channels if c["is_usable"]),
        "channel_count": len(channels),
        "role": ops.service is not None,
        "charts": await chart_svgs(request, window),
        "window": window,
        "windows": list(WINDOWS),
        "hold_states": HOLD_STATES,
    }
    return page(request, "overview.html", ctx)


async def channels_page(request: web.Request) -> web.Response:
    ops = request.app[DASHBOARD].ops
    channels = sorted(ops.channels(), key=lambda c: (c["state"] != "usable", c["counterparty_node_id"]))
    ctx = {"channels": channels, "peers": ops.peers(), "summary": await summary(ops)}
    return page(request, "channels.html", ctx)


async def holds_page(request: web.Request) -> web.Response:
    ops = request.app[DASHBOARD].ops
    state = choice(request, "state", HOLD_STATES)
    offset = offset_of(request)
    numbers = await summary(ops)
    ctx: dict[str, Any] = {
        "state": state,
        "states": HOLD_STATES,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "height": numbers["block_height"],
        "counts": numbers["holds_by_state"],
    }
    if ops.service is None:
        ctx.update(role_off=ROLE_OFF, holds=[])
    else:
        ctx.update(role_off=None, holds=await ops.holds(state=state, limit=PAGE_SIZE, offset=offset))
    return page(request, "holds.html", ctx)


async def hold_page(request: web.Request) -> web.Response:
    ops = request.app[DASHBOARD].ops
    hold_id = request.match_info["hold_id"]
    if not HOLD_ID_RE.fullmatch(hold_id):
        raise web.HTTPNotFound(reason="no such hold")
    if ops.service is None:
        raise web.HTTPNotFound(reason="no such hold (the LSP role is disabled)")
    try:
        hold = await ops.hold(hold_id)
    except LspNodeError:
        raise web.HTTPNotFound(reason="no such hold") from None
    hold["timeline"] = [{**ev, "detail": amounts_for_people(str(ev["detail"]))} for ev in hold["timeline"]]
    return page(request, "hold.html", {"hold": hold, "active": hold["state"] in ("armed", "held", "released")})


async def mailbox_page(request: web.Request) -> web.Response:
    ops = request.app[DASHBOARD].ops
    if ops.service is None:
        return page(request, "mailbox.html", {"role_off": ROLE_OFF, "clients": []})
    clients = await ops.mailbox_clients()
    return page(request, "mailbox.html", {"role_off": None, "clients": clients})


async def devices_page(request: web.Request) -> web.Response:
    ops = request.app[DASHBOARD].ops
    state = choice(request, "state", OUTBOX_STATES)
    offset = offset_of(request)
    ctx: dict[str, Any] = {"state": state, "states": OUTBOX_STATES, "offset": offset, "page_size": PAGE_SIZE}
    if ops.service is None:
        ctx.update(role_off=ROLE_OFF, devices=[], outbox=[], push_on=False)
    elif ops.notifier is None:
        ctx.update(role_off=None, devices=[], outbox=[], push_on=False)
    else:
        ctx.update(
            role_off=None,
            push_on=True,
            devices=await ops.devices(),
            outbox=await ops.outbox(state=state, limit=PAGE_SIZE, offset=offset),
        )
    return page(request, "devices.html", ctx)


async def services_page(request: web.Request) -> web.Response:
    """The services for existing wallets: LSPS1 orders (refunds owed first), LSPS2 JIT channels,
    LSPS5 webhooks (host only) and HTLCs held for async payments."""
    ops = request.app[DASHBOARD].ops
    # Refunds owed are counted over the newest OWED_SCAN orders, the table shows a page of them.
    scanned = await ops.lsps1(limit=OWED_SCAN)
    owed = [o for o in scanned["orders"] if o["refund_owed_sat"]]
    ctx = {
        "lsps1": {**scanned, "orders": scanned["orders"][:PAGE_SIZE]},
        "owed": owed,
        "owed_sat": sum(o["refund_owed_sat"] for o in owed),
        "scanned": len(scanned["orders"]),
        "lsps2": await ops.lsps2(limit=PAGE_SIZE),
        "lsps5": await ops.lsps5(limit=PAGE_SIZE),
        # The held HTLCs only: the page shows no static invoices, and it refreshes every 5 s.
        "async_payments": ops.held_async_htlcs(),
    }
    return page(request, "services.html", ctx)


async def payments_page(request: web.Request) -> web.Response:
    ops = request.app[DASHBOARD].ops
    direction = choice(request, "direction", PAYMENT_DIRECTIONS)
    status = choice(request, "status", PAYMENT_STATUSES)
    offset = offset_of(request)
    ctx = {
        "direction": direction,
        "status": status,
        "directions": PAYMENT_DIRECTIONS,
        "statuses": PAYMENT_STATUSES,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "payments": await ops.payments(direction=direction, status=status, limit=PAGE_SIZE, offset=offset),
        "forwards": await ops.forwards(limit=PAGE_SIZE, offset=0),
        "forward_totals": await ops.forward_totals(),
    }
    return page(request, "payments.html", ctx)
