"""The operator's surface: the admin JSON API (bearer token), on loopback by default."""

from lsp_node.admin.app import create_app, serve
from lsp_node.admin.http import DEFAULT_MAX_BODY_BYTES
from lsp_node.admin.ops import Ops
from lsp_node.admin.token import TOKEN_RE, load_or_create_token

__all__ = ["DEFAULT_MAX_BODY_BYTES", "TOKEN_RE", "Ops", "create_app", "load_or_create_token", "serve"]
