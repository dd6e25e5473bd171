"""The web dashboard, served by the admin app outside `/api/` and `/metrics`: server-rendered pages
(jinja2, autoescaped; CSS and the small live-update script from the package, no CDN) over the same
`Ops` as the JSON API, behind a sign-in with the admin token."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

from lsp_node.admin.ops import Ops
from lsp_node.config import AdminSettings
from lsp_node.dashboard import actions, auth, render, views
from lsp_node.dashboard.security import guard
from lsp_node.dashboard.sessions import LoginLimiter, Sessions
from lsp_node.dashboard.state import DASHBOARD, Dashboard

STATIC_DIR: Final = Path(__file__).parent / "static"

__all__ = ["setup"]


def setup(app: web.Application, ops: Ops, token: str, settings: AdminSettings | None = None) -> None:
    """Add the dashboard's routes and guard to `app` (before it starts); its settings are
    `settings`, else the node's `[admin]` section, else the defaults."""
    node_settings = getattr(ops, "settings", None)  # a route listing may build the app without Ops
    s = settings or (node_settings.admin if node_settings is not None else AdminSettings())
    if not s.dashboard:
        return
    app[DASHBOARD] = Dashboard(
        ops,
        token,
        Sessions(ttl_secs=s.session_ttl_secs, idle_secs=s.session_idle_secs, max_sessions=s.max_sessions),
        LoginLimiter(burst=s.login_max_failures),
    )
    app.middlewares.append(guard)
    render.setup(app)
    r = app.router
    r.add_get("/login", auth.login_form)
    r.add_post("/login", auth.login)
    r.add_post("/logout", auth.logout)
    r.add_get("/", views.overview)
    r.add_get("/channels", views.channels_page)
    r.add_post("/channels/open", actions.open_channel)
    r.add_post("/channels/{how:close|force-close}", actions.close_channel)
    r.add_get("/holds", views.holds_page)
    r.add_get("/holds/{hold_id}", views.hold_page)
    r.add_post("/holds/{hold_id}/fail", actions.fail_hold)
    r.add_get("/mailbox", views.mailbox_page)
    r.add_post("/mailbox/purge", actions.purge_mailbox)
    r.add_get("/devices", views.devices_page)
    r.add_post("/devices/test-push", actions.test_push)
    r.add_post("/outbox/{push_id}/retry", actions.retry_push)
    r.add_get("/payments", views.payments_page)
    r.add_get("/services", views.services_page)
    r.add_static("/static/", STATIC_DIR, append_version=False)
