"""How an admin command reaches a running node: the admin URL and token from the same configuration
as `lsp-node run` (file, environment, command line), then one JSON call per request."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Final

from lsp_node.admin.token import TOKEN_RE
from lsp_node.config import Settings, load_settings
from lsp_node.errors import ConfigError, LspNodeError

#: Where `run` and the admin commands look for a config file when no --config is given.
DEFAULT_CONFIG: Final = Path("config/lsp.toml")
#: The largest answer read from the API: far above any real one, so a wrong URL cannot exhaust memory.
MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024


class AdminError(LspNodeError):
    """The admin API could not be reached or refused the request (`lsp-node` exits with 1)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def config_file(given: Path | None) -> Path | None:
    """The config file to read: the one given, else config/lsp.toml if there is one, else none."""
    if given is None and DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG
    return given


def add_client_options(p: argparse.ArgumentParser) -> None:
    """The options every admin command takes to find the node (the rest comes from the config)."""
    g = p.add_argument_group("finding the node")
    g.add_argument("--config", type=Path, help=f"TOML config file of the node (default: {DEFAULT_CONFIG} if present)")
    g.add_argument("--data-dir", help="overrides node.data_dir (where admin.token is)")
    g.add_argument("--network", help="overrides node.network")
    g.add_argument("--admin-url", help="the admin API's URL (default: from admin.listen), e.g. http://127.0.0.1:9736")
    g.add_argument("--token-file", type=Path, help="the admin token file (default: <data_dir>/<network>/admin.token)")


def admin_url(settings: Settings) -> str:
    """The URL to reach `admin.listen` from this machine."""
    host, _, port = settings.admin.listen.rpartition(":")
    if port == "0":
        raise ConfigError("admin.listen has port 0 (any free port): pass --admin-url, which the node prints at start")
    # A wildcard listen address is reached on loopback.
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "::": "[::1]"}.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def read_token(path: Path) -> str:
    """The token the node wrote; never created here (only the node makes one)."""
    try:
        token = path.read_bytes().decode("ascii", errors="replace").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"no admin token at {path}: start the node once (lsp-node run), or pass --token-file"
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read the admin token file {path}: {e.strerror}") from None
    if not TOKEN_RE.fullmatch(token):
        raise ConfigError(f"the admin token file {path} does not hold a valid token")
    return token


class AdminClient:
    """Calls to one node's admin API with its bearer token (blocking: the CLI has no event loop)."""

    def __init__(self, url: str, token: str, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_args(cls, a: argparse.Namespace) -> AdminClient:
        """The client for the node that the options of `add_client_options` and the config name."""
        node: dict[str, Any] = {}
        if getattr(a, "data_dir", None):
            node["data_dir"] = a.data_dir
        if getattr(a, "network", None):
            node["network"] = a.network
        settings = load_settings(config_file(getattr(a, "config", None)), {"node": node} if node else {})
        url = getattr(a, "admin_url", None) or admin_url(settings)
        token_file = getattr(a, "token_file", None) or settings.network_dir / "admin.token"
        return cls(url, read_token(token_file))

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The decoded JSON answer of `method path` (path from /api/...); AdminError unless 2xx."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with _OPENER.open(req, timeout=self.timeout) as r:
                raw = r.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as e:
            raise AdminError(f"{method} {path}: {e.code} {_reason(e)}", e.code) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise AdminError(
                f"cannot reach the admin API at {self.url} ({reason}); is `lsp-node run` running?"
            ) from None
        if len(raw) > MAX_ANSWER_BYTES:
            raise AdminError(f"{method} {path}: the answer is larger than {MAX_ANSWER_BYTES} bytes")
        try:
            return json.loads(raw) if raw.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise AdminError(f"{method} {path}: the answer is not JSON (is {self.url} the admin API?)") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: urllib would send the bearer token on to wherever it points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


#: No proxy (the environment's http_proxy would see the token in clear) and no redirects.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _reason(e: urllib.error.HTTPError) -> str:
    """The API's own sentence ({"error": ...}) if it sent one, else the HTTP reason."""
    try:
        doc = json.loads(e.read(65_536))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])
    return str(e.reason)
