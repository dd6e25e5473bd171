"""Templates: the jinja2 environment (autoescaped), the filters that format numbers, times, ids and
states for a person, and rendering of a whole page or of its live region alone (`?partial=1`)."""

from __future__ import annotations

import time
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from lsp_node.dashboard import charts
from lsp_node.dashboard.state import session_of

#: Shown for a missing value (an en dash).
NONE = "\u2013"

#: Known states get a colour; any other word is shown as a grey badge.
BADGES = {
    # holds (SPEC.md §5.1) and their HTLCs
    "armed": "info",
    "held": "warn",
    "forwarding": "warn",
    "released": "info",
    "forwarded": "info",
    "settled": "ok",
    "failed": "bad",
    "expired": "muted",
    # channels
    "pending": "info",
    "ready": "info",
    "usable": "ok",
    "closing": "muted",
    # payments and pushes
    "succeeded": "ok",
    "sent": "ok",
    "dead": "bad",
    "inbound": "info",
    "outbound": "info",
    # LSPS1 orders and their payments, LSPS2 JIT channels (SPEC.md §12, §14)
    "created": "info",
    "completed": "ok",
    "expect_payment": "info",
    "paid": "ok",
    "refunded": "muted",
    "sold": "info",
    "opening": "warn",
}


def sat(v: Any) -> str:
    """1234567 -> '1,234,567 sat'."""
    if v is None:
        return NONE
    return f"{int(v):,} sat"


def msat(v: Any) -> str:
    """An msat amount in sat, with the msat after a point only when there are some."""
    if v is None:
        return NONE
    n = int(v)
    whole, rest = divmod(abs(n), 1000)
    sign = "-" if n < 0 else ""
    return f"{sign}{whole:,}.{rest:03d} sat" if rest else f"{sign}{whole:,} sat"


def num(v: Any) -> str:
    if v is None:
        return NONE
    return f"{int(v):,}"


def when(ts: Any) -> str:
    """Unix seconds as local date and time."""
    if ts is None or ts == 0:
        return NONE
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts)))


def ago(ts: Any) -> str:
    """How long ago (or in how long) a unix time is, for a person: '3 min ago', 'in 2 h'."""
    if ts is None or ts == 0:
        return NONE
    delta = time.time() - float(ts)
    future = delta < 0
    d = abs(delta)
    if d < 60:
        text = f"{int(d)} s"
    elif d < 3600:
        text = f"{int(d // 60)} min"
    elif d < 86_400:
        text = f"{d / 3600:.1f} h"
    else:
        text = f"{d / 86_400:.1f} d"
    return f"in {text}" if future else f"{text} ago"


def short(v: Any, head: int = 8, tail: int = 6) -> str:
    """A long hex id shortened for a table: the whole id is in the cell's title."""
    s = str(v) if v is not None else ""
    return s if len(s) <= head + tail + 1 else f"{s[:head]}…{s[-tail:]}"


def badge(state: Any) -> Markup:
    """A state as a coloured pill; "htlc settled" is coloured as "settled"."""
    word = str(state) if state is not None else "unknown"
    tone = BADGES.get(word) or BADGES.get(word.rsplit(" ", 1)[-1], "muted")
    return Markup('<span class="badge {}">{}</span>').format(tone, escape(word))


def setup(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("lsp_node.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(sat=sat, msat=msat, num=num, when=when, ago=ago, short=short, badge=badge)
    env.globals.update(capacity_bar=charts.capacity_bar)


def partial_requested(request: web.Request) -> bool:
    return request.query.get("partial") == "1"


def page(request: web.Request, name: str, ctx: dict[str, Any], *, status: int = 200) -> web.Response:
    """The whole page, or with `?partial=1` only its `live` block: the region the page's script
    swaps in every few seconds. Both come from the one template, so they cannot drift apart."""
    session = session_of(request)
    base = {
        "path": request.path,
        "csrf": session.csrf if session is not None else "",
        "signed_in": session is not None,
        "flashes": session.take_flashes() if session is not None and not partial_requested(request) else [],
        "updated": time.strftime("%H:%M:%S"),
    }
    full = {**base, **ctx}
    if partial_requested(request):
        env = aiohttp_jinja2.get_env(request.app)
        tmpl = env.get_template(name)
        html = "".join(tmpl.blocks["live"](tmpl.new_context(full)))
        return web.Response(text=html, content_type="text/html", status=status)
    return aiohttp_jinja2.render_template(name, request, full, status=status)
