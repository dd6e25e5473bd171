"""The dashboard's guard, one middleware for every path outside `/api/` and `/metrics`: the
session from its cookie, the redirect to /login (401 for the live fragments), the CSRF token and
Origin check of every state-changing request, and the security headers of every answer.

GET never changes state, so only other methods are checked; a refused request gets 403 with the
reason in plain text, before its handler runs, and a body that is no readable form gets 400."""

from __future__ import annotations

import hmac
import html
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from lsp_node.admin.http import API_PREFIXES
from lsp_node.dashboard.forms import FORM_TYPES, BadForm, read_form
from lsp_node.dashboard.render import partial_requested
from lsp_node.dashboard.sessions import Session
from lsp_node.dashboard.state import session_of
from lsp_node.errors import LspNodeError, NodeNotRunningError

log = logging.getLogger("lsp_node.dashboard")

#: Reachable without a session.
PUBLIC: Final = frozenset({"/login"})
STATIC_PREFIX: Final = "/static/"
SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
#: Scripts, styles and images from this origin only; no inline script or style, no framing, forms
#: post only here.
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def origin_problem(request: web.Request) -> str | None:
    """Why this request may come from another site's page, or None. Browsers send Origin with
    every POST; Referer is the fallback for the few that strip it."""
    expected = own_origin(request)
    origin = request.headers.get("Origin")
    if origin is not None:
        return None if origin == expected else "the request comes from another origin than this dashboard"
    referer = request.headers.get("Referer")
    if referer is None:
        return "a state-changing request needs an Origin or Referer header"
    if referer == expected or referer.startswith(expected + "/"):
        return None
    return "the request comes from another origin than this dashboard"


async def csrf_problem(request: web.Request, session: Session) -> str | None:
    if request.content_type not in FORM_TYPES:
        return "a state-changing request must be a form post"
    form = await read_form(request)  # BadForm: 400
    supplied = form.get("csrf")
    if not isinstance(supplied, str) or not supplied:
        return "the form's CSRF token is missing"
    if not hmac.compare_digest(supplied.encode("utf-8", "surrogateescape"), session.csrf.encode()):
        return "the form's CSRF token is wrong (reload the page)"
    return None


def forbidden(reason: str) -> web.Response:
    return web.Response(status=403, text=f"403 Forbidden: {reason}\n", content_type="text/plain")


def harden(response: web.StreamResponse, *, static: bool) -> None:
    h = response.headers
    h["Content-Security-Policy"] = CSP
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "same-origin"
    h["X-Content-Type-Options"] = "nosniff"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    if not static:
        # Pages show the node's balances and peers: no copy in any cache or back/forward store.
        h["Cache-Control"] = "no-store"


def redirect(location: str) -> web.Response:
    """303 See Other: after a form post the browser GETs the page (a reload does not post again)."""
    return web.Response(status=303, headers={"Location": location})


def error_page(status: int, reason: str) -> web.Response:
    """A short HTML page for a refused or failed page request; the reason is escaped."""
    text = html.escape(f"{status} {reason}")
    body = (
        '<!doctype html><html lang="en"><meta charset="utf-8"><title>' + text + "</title>"
        '<link rel="stylesheet" href="/static/dashboard.css"><main class="narrow"><h1>' + text + "</h1>"
        '<p><a href="/">Back to the overview</a></p></main></html>'
    )
    return web.Response(status=status, text=body, content_type="text/html")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(API_PREFIXES):
        return await handler(request)
    static = request.path.startswith(STATIC_PREFIX)
    response = await _guarded(request, handler, static)
    harden(response, static=static)
    return response


async def _guarded(request: web.Request, handler: Handler, static: bool) -> web.StreamResponse:
    session = session_of(request)
    routed = request.match_info.http_exception is None
    try:
        if static or not routed:
            pass  # public files, and 404/405 below
        elif request.method not in SAFE_METHODS:
            problem = origin_problem(request)
            if problem is None and request.path not in PUBLIC:
                problem = "not signed in" if session is None else await csrf_problem(request, session)
            if problem is not None:
                log.info("dashboard: refused %s %s: %s", request.method, request.path, problem)
                return forbidden(problem)
        elif session is None and request.path not in PUBLIC:
            if partial_requested(request):
                return web.Response(status=401, text="401 Unauthorized: sign in again\n", content_type="text/plain")
            return redirect("/login")
        return await handler(request)
    except BadForm as e:
        return web.Response(status=400, text=f"400 Bad Request: {e}\n", content_type="text/plain")
    except web.HTTPRequestEntityTooLarge:
        return error_page(413, "the form is too large")
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error_page(e.status, e.reason)
    except NodeNotRunningError as e:
        return error_page(503, str(e))
    except LspNodeError as e:
        # Our own errors are sentences meant for the operator (errors.py); nothing else is shown.
        return error_page(400, str(e))
