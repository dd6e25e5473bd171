"""The admin web application: the JSON API under /api (bearer token), served on one listen address."""

from __future__ import annotations

from aiohttp import web

from lsp_node import dashboard
from lsp_node.admin import api
from lsp_node.admin.http import DEFAULT_MAX_BODY_BYTES, MAX_BODY, TOKEN, auth_and_errors
from lsp_node.admin.ops import Ops
from lsp_node.admin.token import TOKEN_RE
from lsp_node.errors import ConfigError
from lsp_node.monitor.metrics import add_metrics_route


def create_app(ops: Ops, token: str, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> web.Application:
    if not TOKEN_RE.fullmatch(token):
        raise ConfigError("the admin token must be 32 to 512 characters A-Z a-z 0-9 _ -")
    app = web.Application(middlewares=[auth_and_errors], client_max_size=max_body_bytes)
    app[TOKEN] = token
    app[MAX_BODY] = max_body_bytes
    api.add_routes(app, ops)
    dashboard.setup(app, ops, token)  # the web pages outside /api/ (sign-in with the same token)
    add_metrics_route(app, ops)  # /metrics: Prometheus text, the same bearer token
    return app


async def serve(app: web.Application, listen: str) -> tuple[web.AppRunner, str]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"admin.listen '{listen}' is not host:port (e.g. 127.0.0.1:9736)")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host.strip("[]"), int(port))
    await site.start()
    bound = runner.addresses[0]
    return runner, f"http://{bound[0]}:{bound[1]}"
