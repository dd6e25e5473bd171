"""Sign-in with the admin token and sign-out. The token is compared in constant time; failures are
throttled per remote address (per /64 for IPv6, see `LoginLimiter`); a success gets a new random
session id in an HttpOnly, SameSite=Strict cookie (Secure over https), never the token itself."""

from __future__ import annotations

import hmac
import logging
import math

from aiohttp import web

from lsp_node.dashboard.forms import read_form
from lsp_node.dashboard.render import page
from lsp_node.dashboard.security import redirect
from lsp_node.dashboard.state import COOKIE, DASHBOARD, session_of

log = logging.getLogger("lsp_node.dashboard")

#: The longest token a form may carry (the token file allows 512 characters).
MAX_TOKEN_CHARS = 512


def _login_page(request: web.Request, error: str | None, status: int) -> web.Response:
    return page(request, "login.html", {"error": error}, status=status)


async def login_form(request: web.Request) -> web.Response:
    if session_of(request) is not None:
        return redirect("/")
    return _login_page(request, None, 200)


async def login(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    address = request.remote or "unknown"
    # The form is read first: from the throttle's check to the failure's record there is no
    # await, so concurrent guesses cannot all pass the check before any of them is counted.
    form = await read_form(request)
    wait = dash.limiter.retry_after(address)
    if wait > 0:
        response = _login_page(request, f"Too many failed sign-ins: try again in {math.ceil(wait)} s.", 429)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    supplied = form.get("token")
    ok = isinstance(supplied, str) and 0 < len(supplied) <= MAX_TOKEN_CHARS
    if ok:
        assert isinstance(supplied, str)
        ok = hmac.compare_digest(supplied.strip().encode("utf-8", "surrogateescape"), dash.token.encode())
    if not ok:
        dash.limiter.failed(address)
        log.warning("dashboard: failed sign-in from %s", address)
        return _login_page(request, "Wrong admin token.", 401)
    old = session_of(request)
    if old is not None:
        dash.sessions.delete(old.id)
    session = dash.sessions.create()
    log.info("dashboard: signed in from %s", address)
    response = redirect("/")
    response.set_cookie(
        COOKIE,
        session.id,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        max_age=int(dash.sessions.ttl),
    )
    return response


async def logout(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    session = session_of(request)
    if session is not None:
        dash.sessions.delete(session.id)
    response = redirect("/login")
    response.del_cookie(COOKIE, path="/")
    return response
