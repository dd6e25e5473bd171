"""Log redaction for third-party loggers: apprise logs the full URL at debug level, urllib3 the
path. A filter on those loggers removes URLs and the device ids of the deliveries in flight before
any handler sees the record."""

from __future__ import annotations

import collections
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterable
from typing import Final

from lsp_node.notify.ids import DEVICE_PLACEHOLDER

_URL_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,31}://\S+")
_REDACTED: Final = "<redacted>"
_TOKEN_RE: Final = re.compile(r"[^\s\"'<>()\[\]]*%[0-9A-Fa-f]{2}[^\s\"'<>()\[\]]*")
_THIRD_PARTY_LOGGERS: Final = (
    "apprise",
    "urllib3",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "urllib3.poolmanager",
    "requests",
)


class _Secrets:
    """Strings (device ids, URLs, hosts) of the deliveries in flight; counted, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def add(self, items: Iterable[str]) -> None:
        with self._lock:
            self._counts.update(items)

    def remove(self, items: Iterable[str]) -> None:
        with self._lock:
            self._counts.subtract(items)
            for key in [k for k, v in self._counts.items() if v <= 0]:
                del self._counts[key]

    def snapshot(self) -> list[str]:
        with self._lock:
            # Longest first, so a URL is redacted before the device id inside it.
            return sorted(self._counts, key=len, reverse=True)


#: Secrets of the deliveries in flight, registered by the delivery thread while it may log them.
IN_FLIGHT = _Secrets()


class _RedactingFilter(logging.Filter):
    """Rewrites a record so that it holds no URL and none of the in-flight secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed third-party record: drop it rather than risk a leak
            return False
        secrets = IN_FLIGHT.snapshot()
        redacted = _URL_RE.sub(_REDACTED, message)
        for secret in secrets:
            if secret in redacted:
                redacted = redacted.replace(secret, _REDACTED)
        if secrets:
            # A library may re-encode a path differently from us: drop any token that decodes to one.
            def token(m: re.Match[str]) -> str:
                decoded = urllib.parse.unquote(m.group(0))
                return _REDACTED if any(s in decoded for s in secrets) else m.group(0)

            redacted = _TOKEN_RE.sub(token, redacted)
        record.msg = redacted
        record.args = None
        # Tracebacks of request errors quote the URL; they are of no use without it.
        record.exc_info = None
        record.exc_text = None
        return True


_filter_lock = threading.Lock()
_filter_installed = False


def install_redaction() -> None:
    global _filter_installed
    with _filter_lock:
        if _filter_installed:
            return
        flt = _RedactingFilter()
        for name in _THIRD_PARTY_LOGGERS:
            logging.getLogger(name).addFilter(flt)
        _filter_installed = True


def secrets_for(device_id: str, url: str, template: str) -> list[str]:
    """What must not appear in a log line while ``url`` is being called."""
    parts = urllib.parse.urlsplit(url)
    bare = urllib.parse.urlsplit(template.replace(DEVICE_PLACEHOLDER, ""))
    out = [device_id, urllib.parse.quote(device_id, safe=""), url, urllib.parse.unquote(url)]
    pieces = (
        parts.netloc,
        parts.hostname or "",
        parts.path,
        urllib.parse.unquote(parts.path),
        bare.path.rstrip("/"),  # the operator's part of the path, e.g. a webhook token
    )
    out.extend(p for p in pieces if len(p) >= 4)
    return out
