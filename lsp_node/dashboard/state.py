"""The dashboard's state on the admin app (its Ops, the token, sessions, the sign-in throttle) and
the session of a request, found from its cookie."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiohttp import web

from lsp_node.admin.ops import Ops
from lsp_node.dashboard.sessions import LoginLimiter, Session, Sessions

COOKIE: Final = "lsp_session"


@dataclass
class Dashboard:
    ops: Ops
    token: str
    sessions: Sessions
    limiter: LoginLimiter


DASHBOARD: web.AppKey[Dashboard] = web.AppKey("dashboard", Dashboard)


def session_of(request: web.Request) -> Session | None:
    """The live session whose id the request's cookie carries (looking it up also keeps it alive)."""
    return request.app[DASHBOARD].sessions.get(request.cookies.get(COOKIE))
