"""Dashboard sessions and sign-in throttling, in memory: a restart signs everyone out, which is what
an operator expects of a token-protected page on loopback.

A session id is 256 random bits in an HttpOnly cookie; the session holds its CSRF token (another
256 bits, put in every form) and one-shot messages for the next page. Sessions end after an idle
time and after an absolute lifetime, whichever comes first; their number is bounded (the least
recently used goes first) so that sign-ins cannot grow memory."""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

Clock = Callable[[], float]

#: The longest message kept for the next page (one line under the header).
MAX_FLASH_CHARS: Final = 300
MAX_FLASHES: Final = 5


@dataclass
class Session:
    id: str
    csrf: str
    created: float
    last_seen: float
    flashes: list[tuple[str, str]] = field(default_factory=list)

    def flash(self, kind: str, text: str) -> None:
        """Keep a message ("ok" or "error") for the next page the session sees."""
        if len(self.flashes) < MAX_FLASHES:
            self.flashes.append((kind, text[:MAX_FLASH_CHARS]))

    def take_flashes(self) -> list[tuple[str, str]]:
        out, self.flashes = self.flashes, []
        return out


class Sessions:
    def __init__(self, *, ttl_secs: float, idle_secs: float, max_sessions: int, clock: Clock = time.monotonic) -> None:
        self.ttl = ttl_secs
        self.idle = min(idle_secs, ttl_secs)
        self.max = max_sessions
        self.clock = clock
        # Least recently used first.
        self._by_id: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_id)

    def _alive(self, s: Session, now: float) -> bool:
        return now - s.created < self.ttl and now - s.last_seen < self.idle

    def _prune(self, now: float) -> None:
        for sid in [sid for sid, s in self._by_id.items() if not self._alive(s, now)]:
            del self._by_id[sid]

    def create(self) -> Session:
        now = self.clock()
        self._prune(now)
        while len(self._by_id) >= self.max:
            self._by_id.popitem(last=False)
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        self._by_id[s.id] = s
        return s

    def get(self, sid: str | None) -> Session | None:
        """The live session of this id, touched (its idle time starts again); None otherwise."""
        if not sid:
            return None
        s = self._by_id.get(sid)
        if s is None:
            return None
        now = self.clock()
        if not self._alive(s, now):
            del self._by_id[sid]
            return None
        s.last_seen = now
        self._by_id.move_to_end(sid)
        return s

    def delete(self, sid: str) -> None:
        self._by_id.pop(sid, None)


def client_key(address: str) -> str:
    """The throttle's key for a remote address: an IPv4 address itself, an IPv6 address its /64
    (one host usually holds a whole /64 and could otherwise take a fresh address per guess)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginLimiter:
    """Failed sign-ins per remote address (see `client_key`), as token buckets: `burst` failures at
    once, then one more every `refill_secs`. A guesser is slowed at its own address only: a shared
    bucket for all addresses would let anyone lock the operator out by failing on purpose, and the
    token (at least 32 characters of 64 symbols, 192 bits) is out of reach of guessing anyway. The
    table of addresses is bounded; when it is full, full buckets are forgotten first (they carry no
    information), then the oldest."""

    def __init__(
        self,
        *,
        burst: int,
        refill_secs: float = 60.0,
        max_addresses: int = 4096,
        clock: Clock = time.monotonic,
    ) -> None:
        self.burst = float(burst)
        self.refill = refill_secs
        self.max_addresses = max_addresses
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def _level(self, bucket: tuple[float, float], now: float) -> float:
        tokens, at = bucket
        return min(self.burst, tokens + (now - at) / self.refill)

    def retry_after(self, address: str) -> float:
        """Seconds before `address` may try again; 0 when it may try now."""
        bucket = self._buckets.get(client_key(address))
        if bucket is None:
            return 0.0
        return max(0.0, (1.0 - self._level(bucket, self.clock())) * self.refill)

    def failed(self, address: str) -> None:
        now = self.clock()
        key = client_key(address)
        level = self._level(self._buckets.get(key, (self.burst, now)), now)
        self._buckets[key] = (max(level - 1.0, 0.0), now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.max_addresses:
            for k in [k for k, b in self._buckets.items() if self._level(b, now) >= self.burst]:
                del self._buckets[k]
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
