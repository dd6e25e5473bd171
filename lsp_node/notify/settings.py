"""Delivery settings of the push outbox (retries, backoff, timeouts, batching), validated."""

from __future__ import annotations

from dataclasses import dataclass

from lsp_node.errors import ConfigError


@dataclass(frozen=True)
class NotifierSettings:
    max_attempts: int = 8
    backoff_base_secs: float = 2.0
    backoff_cap_secs: float = 600.0
    request_timeout_secs: float = 10.0
    #: Upper bound on how long ``run`` sleeps when nothing is due (new enqueues through ``notify`` wake it).
    poll_interval_secs: float = 30.0
    #: How often ``run`` purges expired devices and old outbox rows.
    purge_interval_secs: float = 3600.0
    #: Outbox rows handled per ``deliver_due`` round, and device sends in flight at once.
    batch_size: int = 100
    max_concurrent_sends: int = 16

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1")
        if self.backoff_base_secs <= 0 or self.backoff_cap_secs < self.backoff_base_secs:
            raise ConfigError("backoff_base_secs must be positive and at most backoff_cap_secs")
        if self.request_timeout_secs <= 0:
            raise ConfigError("request_timeout_secs must be positive")
        if self.poll_interval_secs <= 0 or self.purge_interval_secs <= 0:
            raise ConfigError("poll_interval_secs and purge_interval_secs must be positive")
        if self.batch_size < 1 or self.max_concurrent_sends < 1:
            raise ConfigError("batch_size and max_concurrent_sends must be at least 1")

    def backoff(self, attempts: int) -> float:
        """Delay before the next try after ``attempts`` failed attempts (1 -> base, 2 -> 2*base, ...)."""
        exp = min(max(attempts - 1, 0), 32)
        return float(min(self.backoff_base_secs * (2**exp), self.backoff_cap_secs))
