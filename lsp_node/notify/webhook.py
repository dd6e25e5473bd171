"""LSPS5 webhook POSTs (bLIP-55): the client chose the URL, so it is hostile input aimed at the
LSP's network. HTTPS only unless ``allow_http``; the host is resolved at send time and every
address it resolves to must be public unless ``allow_private_destinations`` (loopback, private,
link-local, multicast, reserved, unspecified, shared, and the IPv4 addresses hidden in IPv6 forms);
the connection goes to the addresses that were checked (aiohttp asks our resolver, once), redirects
are not followed, the response body is not read, everything is bounded by a timeout. The URL is a
secret: it is never logged, and errors name only what went wrong."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from lsp_node.notify.webhook_store import WebhookLimits

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class WebhookPolicy:
    """The operator's `[lsps5]` rules for sending and queueing."""

    allow_http: bool = False
    allow_private_destinations: bool = False
    request_timeout_secs: float = 10.0
    #: Extra trusted certificate authorities (PEM), added to the system's.
    ca_file: Path | None = None
    #: What clients can make the outbox hold.
    limits: WebhookLimits = field(default_factory=WebhookLimits)
    #: Our own cooldown per (client, method), kept in notify.sqlite: a reconnect does not reset
    #: it (lightning-liquidity's 60 s one, any method, is reset by one).
    notify_cooldown_secs: float = 3600.0


@dataclass(frozen=True)
class WebhookResult:
    ok: bool
    #: The HTTP status, or None if no answer came.
    status: int | None
    #: Why it failed (never the URL); empty when ok.
    error: str
    #: A failure that trying again cannot fix (a refused destination): the push is given up.
    permanent: bool = False


class RefusedDestination(OSError):
    """The URL or an address it resolves to is not allowed by the policy (an OSError, so aiohttp
    hands it back as the cause of its connector error)."""


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    # IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96) carry one in the low bits.
    if int(ip) >> 32 == 0 or ip in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_allowed(ip: IpAddress) -> bool:
    """Whether an address is a public unicast one (after unwrapping IPv4 hidden in IPv6)."""
    if isinstance(ip, ipaddress.IPv6Address):
        v4 = _embedded_v4(ip)
        if v4 is not None and not address_allowed(v4):
            return False
        # Site-local (fec0::/10) is deprecated, but is_global does not exclude it and some
        # networks still route it internally.
        if ip.is_site_local:
            return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved and not ip.is_unspecified


#: A host label that a URL parser (WHATWG, curl, inet_aton) may read as a number: decimal, octal
#: or hex. A host whose last label is one is an IPv4 address in some spelling, never a name.
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)


def _numeric_host(host: str) -> bool:
    """Whether `host` is an IPv4 address in a spelling `ipaddress` does not take (127.1,
    2130706433, 0x7f.1, 127.000.000.001, a trailing dot): libraries differ in how they read
    those, so they are refused whatever they would mean rather than guessed at."""
    labels = host.split(".")
    if labels and labels[-1] == "":
        labels = labels[:-1]
    return bool(labels) and _NUMERIC_LABEL.fullmatch(labels[-1]) is not None


class CheckedResolver(AbstractResolver):
    """Resolves through the system, then refuses the host if any address is not allowed: a name
    with one public and one private address must not be a way in."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        except OSError as e:
            raise OSError(f"cannot resolve the webhook host: {e.strerror or type(e).__name__}") from None
        except UnicodeError:
            # The IDNA codec refuses the name (an empty or over-long label): it never will resolve.
            raise RefusedDestination("the webhook host is not a valid name") from None
        out: list[ResolveResult] = []
        for fam, _, proto, _, sockaddr in infos:
            ip = ipaddress.ip_address(sockaddr[0])
            if not self.allow_private and not address_allowed(ip):
                raise RefusedDestination("the webhook host resolves to a non-public address")
            out.append({"hostname": host, "host": str(ip), "port": port, "family": fam, "proto": proto, "flags": 0})
        if not out:
            raise OSError("the webhook host resolves to nothing")
        return out

    async def close(self) -> None:
        return None


def check_url(url: str, policy: WebhookPolicy) -> URL:
    """What can be checked before resolving: the scheme, a host, an IP literal's address. The
    URL is parsed as aiohttp will use it (yarl applies IDNA, so "127。0。0。1" or a full-width
    digit becomes a plain IP literal, which aiohttp connects to without asking the resolver):
    the checks see the host aiohttp connects to, and the caller sends this parsed URL."""
    try:
        parsed = URL(url)
        host = parsed.raw_host
        _ = parsed.port  # a bad port raises here
    except (ValueError, UnicodeError):
        raise RefusedDestination("the webhook URL does not parse") from None
    scheme = parsed.scheme.lower()
    if scheme != "https" and not (scheme == "http" and policy.allow_http):
        raise RefusedDestination(f"{scheme or 'no'} scheme is not allowed for webhooks")
    if not host:
        raise RefusedDestination("the webhook URL has no host")
    if not (host.isascii() and host.isprintable()):
        raise RefusedDestination("the webhook URL's host has characters no name or address has")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if _numeric_host(host):
            raise RefusedDestination("the webhook URL's host is a number that is not a dotted-quad address") from None
        return parsed
    if not policy.allow_private_destinations and not address_allowed(ip):
        raise RefusedDestination("the webhook URL names a non-public address")
    return parsed


def _ssl_context(policy: WebhookPolicy) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if policy.ca_file is not None:
        ctx.load_verify_locations(cafile=str(policy.ca_file))
    return ctx


def redact_url(url: str) -> str:
    """What the operator may see of a webhook URL: its scheme and host (path and query are the
    client's secret, and so are credentials in it)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
    except ValueError:
        return "(unparseable)"
    return f"{parts.scheme}://{host}"


async def post_webhook(url: str, headers: list[tuple[str, str]], body: str, policy: WebhookPolicy) -> WebhookResult:
    """POST one signed notification; never raises for what the network or the URL does."""
    try:
        target = check_url(url, policy)
        ctx = await asyncio.to_thread(_ssl_context, policy)
    except RefusedDestination as e:
        return WebhookResult(False, None, str(e), permanent=True)
    except (OSError, ssl.SSLError) as e:
        return WebhookResult(False, None, f"cannot load the CA file: {type(e).__name__}")
    connector = aiohttp.TCPConnector(
        resolver=CheckedResolver(policy.allow_private_destinations), use_dns_cache=False, ssl=ctx, force_close=True
    )
    timeout = aiohttp.ClientTimeout(total=policy.request_timeout_secs)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session,
            session.post(target, data=body.encode(), headers=dict(headers), allow_redirects=False) as resp,
        ):
            status = resp.status
            # The body is not read: closing drops the connection with whatever it holds.
            resp.close()
    except RefusedDestination as e:
        return WebhookResult(False, None, str(e), permanent=True)
    except TimeoutError:
        return WebhookResult(False, None, "timed out")
    except aiohttp.InvalidUrlClientError:
        # aiohttp refuses the URL itself (e.g. a numeric host we did not catch): the same URL
        # is refused again on every retry.
        return WebhookResult(False, None, "the webhook URL is refused by the HTTP client", permanent=True)
    except aiohttp.ClientConnectorError as e:
        if isinstance(e.os_error, RefusedDestination):
            return WebhookResult(False, None, str(e.os_error), permanent=True)
        return WebhookResult(False, None, f"cannot connect: {type(e.os_error).__name__}")
    except (aiohttp.ClientError, OSError, ssl.SSLError, ValueError) as e:
        # The class only: aiohttp's messages quote the URL.
        return WebhookResult(False, None, f"request failed: {type(e).__name__}")
    return _outcome(status)


def _outcome(status: int) -> WebhookResult:
    """Only a 200 is a delivery (bLIP-55's receiver answers 200). A server error may pass, so it
    is tried again; any other answer (a redirect we do not follow, a 4xx, an odd 2xx) is the
    receiver's considered refusal, which the same POST would meet again: given up."""
    if status == 200:
        return WebhookResult(True, status, "")
    return WebhookResult(False, status, f"HTTP {status}", permanent=status < 500)
