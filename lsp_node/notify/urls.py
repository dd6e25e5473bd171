"""The operator's push URL templates: checked when the configuration is loaded, and every URL
rendered from one re-parsed and compared with it before anything is sent.

A template may hold an API key, so no message here quotes it or the URL made from it.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any, Final

from apprise.utils.parse import parse_url

from lsp_node.errors import ConfigError, InvalidArgumentError
from lsp_node.notify.ids import DEVICE_PLACEHOLDER, PLATFORM_RE

# Stands in for the placeholder while a template is parsed: letters and digits only, so that no
# parser treats it as a delimiter; lower-case because schemes and hosts are compared lower-cased.
_MARK: Final = "lsproddevicemark7"


@dataclass(frozen=True)
class _Shape:
    """What a device id must not change in a URL."""

    scheme: str
    netloc: str
    host: str
    port: int | None
    user: str | None
    password: str | None
    path: str


def _shape(url: str, what: str) -> _Shape:
    """The URL as both urllib and apprise read it; they must agree on the authority."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidArgumentError(f"{what} is not a valid URL") from None
    parsed: dict[str, Any] | None = parse_url(url, verify_host=False)  # type: ignore[no-untyped-call]
    if not parsed or not parts.scheme:
        raise InvalidArgumentError(f"{what} is not a valid URL")
    ap_port = parsed.get("port")
    if (
        str(parsed.get("schema", "")).lower() != parts.scheme.lower()
        or str(parsed.get("host") or "").lower() != (parts.hostname or "").lower()
        or (ap_port is not None and int(ap_port) != port)
        or (parsed.get("user") or None) != (parts.username or None)
        or (parsed.get("password") or None) != (parts.password or None)
    ):
        raise InvalidArgumentError(f"{what} is read differently by apprise and by urllib")
    return _Shape(
        parts.scheme.lower(),
        parts.netloc,
        (parts.hostname or "").lower(),
        port,
        parts.username,
        parts.password,
        parts.path,
    )


def check_template(platform: str, template: object) -> str:
    """Refuse a template in which a device id could reach anything but the path or query."""
    if not isinstance(platform, str) or not PLATFORM_RE.fullmatch(platform):
        raise ConfigError(
            f"notifications.templates: invalid platform name {platform!r} (lower-case letters, digits, '_', '.', '-')"
        )
    where = f"notifications.templates.{platform}"
    if not isinstance(template, str):
        raise ConfigError(f"{where} must be a string (an apprise URL)")
    n = template.count(DEVICE_PLACEHOLDER)
    if n != 1:
        raise ConfigError(f"{where} must contain {DEVICE_PLACEHOLDER} exactly once (found {n})")
    if _MARK in template or any(ch.isspace() for ch in template):
        raise ConfigError(f"{where} contains whitespace or a reserved word")
    marked = template.replace(DEVICE_PLACEHOLDER, _MARK)
    try:
        parts = urllib.parse.urlsplit(marked)
        shape = _shape(marked, where)
    except (ValueError, InvalidArgumentError):
        raise ConfigError(f"{where} is not a URL of the form scheme://host[:port]/path") from None
    if _MARK in parts.scheme or _MARK in parts.netloc:
        raise ConfigError(
            f"{where}: {DEVICE_PLACEHOLDER} may appear only in the path or the query,"
            " never in the scheme, host, port or credentials"
        )
    if _MARK in parts.fragment:
        raise ConfigError(f"{where}: {DEVICE_PLACEHOLDER} may not appear after '#'")
    if not shape.host:
        raise ConfigError(f"{where} has no host")
    if _MARK in parts.path and not parts.path.split(_MARK)[0].endswith("/"):
        # `/push{device}` would let an id extend the operator's own path segment.
        raise ConfigError(f"{where}: {DEVICE_PLACEHOLDER} must be a whole path segment (put '/' before it)")
    return template


def render_url(template: str, device_id: str, extra_query: dict[str, str] | None = None) -> str:
    """The URL for one device: the quoted id put in, then re-parsed and compared with the template.

    Raises InvalidArgumentError (naming the part that changed, never the URL) if the id moved the
    scheme, host, port, credentials or the path prefix.
    """
    url = template.replace(DEVICE_PLACEHOLDER, urllib.parse.quote(device_id, safe=""))
    if extra_query:
        query = urllib.parse.urlsplit(url).query
        keys = {k for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)}
        extra = [f"{k}={v}" for k, v in extra_query.items() if k not in keys]
        if extra:
            url += ("&" if "?" in url else "?") + "&".join(extra)
    want = _shape(template.replace(DEVICE_PLACEHOLDER, _MARK), "the push URL template")
    got = _shape(url, "the rendered push URL")
    for name in ("scheme", "host", "port", "user", "password"):
        if getattr(want, name) != getattr(got, name):
            raise InvalidArgumentError(f"the device id changed the push URL's {name}; not sent")
    prefix = want.path.split(_MARK)[0]
    if not got.path.startswith(prefix):
        raise InvalidArgumentError("the device id changed the push URL's path; not sent")
    if _MARK not in want.path and got.path != want.path:
        raise InvalidArgumentError("the device id changed the push URL's path; not sent")
    if any(seg in (".", "..") for seg in got.path.split("/")):
        # HTTP clients resolve dot segments before sending: `/push/..` would go to `/`.
        raise InvalidArgumentError("the device id made a '.' or '..' path segment; not sent")
    if urllib.parse.urlsplit(url).fragment:
        raise InvalidArgumentError("the device id added a fragment to the push URL; not sent")
    return url
