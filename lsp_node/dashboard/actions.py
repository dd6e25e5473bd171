"""The dashboard's buttons and forms: each a POST (the guard has checked the session, its CSRF
token and the Origin before these run) that calls one `Ops` operation, keeps a message for the
next page and redirects there (303), so a reload never repeats the action. Form fields are
checked here strictly; a bad value or a refused operation becomes a message, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from lsp_node.admin.http import MAX_CHANNEL_SAT, MIN_CHANNEL_SAT
from lsp_node.admin.patterns import CHANNEL_ID_RE, HOLD_ID_RE, NODE_ID_RE, PEER_ADDRESS_RE
from lsp_node.dashboard.forms import Form, FormError, number, read_form, text, whole
from lsp_node.dashboard.render import short
from lsp_node.dashboard.security import redirect
from lsp_node.dashboard.state import DASHBOARD, session_of
from lsp_node.errors import LspNodeError

log = logging.getLogger("lsp_node.dashboard")

#: The largest push id a path may carry (outbox ids are SQLite rowids).
MAX_PUSH_ID: Final = 10**18


async def _act(request: web.Request, back: str, work: Callable[[Form], Awaitable[str]], what: str) -> web.Response:
    """Run `work` on the form; its sentence (or the error's) is shown on the page at `back`."""
    session = session_of(request)
    assert session is not None  # the guard lets no POST without a session through
    form = await read_form(request)  # already read by the guard's CSRF check
    try:
        session.flash("ok", await work(form))
    except FormError as e:
        session.flash("error", f"{what}: {e}")
    except LspNodeError as e:
        session.flash("error", f"{what}: {e}")
    except Exception:
        # The details go to the log only; the page says what failed, not how.
        log.exception("dashboard: %s failed", what)
        session.flash("error", f"{what} failed; the LSP's log has the details")
    return redirect(back)


async def open_channel(request: web.Request) -> web.Response:
    ops = request.app[DASHBOARD].ops

    async def work(form: Form) -> str:
        node_id = text(form, "node_id", NODE_ID_RE, "a 33-byte public key in hex (66 characters)").lower()
        address = text(form, "address", PEER_ADDRESS_RE, "host:port", required=False)
        amount = whole(form, "amount_sat", MIN_CHANNEL_SAT, MAX_CHANNEL_SAT)
        announce = form.get("announce") == "1"
        if address:
            await ops.connect(node_id, address)
        await ops.open_channel(node_id, amount, 0, announce)
        return f"Opening a channel of {amount:,} sat to {short(node_id)}; it is usable once its funding confirms."

    return await _act(request, "/channels", work, "Open channel")


async def close_channel(request: web.Request) -> web.Response:
    ops = request.app[DASHBOARD].ops
    force = request.match_info["how"] == "force-close"

    async def work(form: Form) -> str:
        channel_id = text(form, "channel_id", CHANNEL_ID_RE, "a channel id (64 hex characters)").lower()
        if force:
            await ops.force_close_channel(channel_id)
            return f"Force-closing channel {short(channel_id)}: our funds come back after the to_self_delay."
        await ops.close_channel(channel_id)
        return f"Closing channel {short(channel_id)} cooperatively."

    return await _act(request, "/channels", work, "Force-close" if force else "Close")


async def fail_hold(request: web.Request) -> web.Response:
    ops = request.app[DASHBOARD].ops
    hold_id = request.match_info["hold_id"].lower()
    if not HOLD_ID_RE.fullmatch(hold_id):
        raise web.HTTPNotFound(reason="no such hold")

    async def work(form: Form) -> str:
        done = await ops.fail_hold(hold_id)
        n = int(done.get("htlcs_failed_back", 0))
        return (
            f"Hold {short(hold_id)} failed back by hand: {n} HTLC{'' if n == 1 else 's'} returned to the payer;"
            f" the hold is {done.get('state', 'unchanged')}."
        )

    return await _act(request, f"/holds/{hold_id}", work, "Fail back")


async def purge_mailbox(request: web.Request) -> web.Response:
    ops = request.app[DASHBOARD].ops

    async def work(form: Form) -> str:
        client = text(form, "client", NODE_ID_RE, "a client's node id (66 hex characters)").lower()
        n = await ops.purge_mailbox(client)
        return f"Purged {n:,} message{'s' if n != 1 else ''} kept for {short(client)}."

    return await _act(request, "/mailbox", work, "Purge")


async def retry_push(request: web.Request) -> web.Response:
    ops = request.app[DASHBOARD].ops
    push_id = number(request.match_info["push_id"], 1, MAX_PUSH_ID)
    if push_id is None:
        raise web.HTTPNotFound(reason="no such push")

    async def work(form: Form) -> str:
        await ops.retry_push(push_id)
        return f"Push {push_id} is queued to be sent again."

    return await _act(request, "/devices", work, "Retry")


async def test_push(request: web.Request) -> web.Response:
    ops = request.app[DASHBOARD].ops

    async def work(form: Form) -> str:
        client = text(form, "client", NODE_ID_RE, "a client's node id (66 hex characters)").lower()
        await ops.test_push(client)
        return f"A test push to {short(client)} is queued."

    return await _act(request, "/devices", work, "Test push")
