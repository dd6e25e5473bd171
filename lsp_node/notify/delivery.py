"""Delivery of the push outbox: apprise pushes to every unexpired device of a client, and LSPS5
webhook POSTs (one signed notification to one URL, `webhook`). The scheduler sends due pushes, retrying failed devices with exponential backoff (base 2 s, doubling,
capped at 10 min) until ``max_attempts``; then the push is 'dead' (or 'sent' if at least one device
got it) and a warning is logged. Our log lines carry only a client id prefix, the platform and the
kind; third-party loggers are redacted (`redact`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import Mapping

import apprise

from lsp_node.errors import ConfigError, InvalidArgumentError, StorageError
from lsp_node.notify.ids import check_device_id, client_tag, device_format
from lsp_node.notify.kinds import PUSH_TITLE, push_body
from lsp_node.notify.redact import IN_FLIGHT, install_redaction, secrets_for
from lsp_node.notify.settings import NotifierSettings
from lsp_node.notify.store import Device, NotificationStore, OutboxEntry
from lsp_node.notify.urls import check_template, render_url
from lsp_node.notify.webhook import WebhookPolicy, post_webhook
from lsp_node.notify.webhook_store import STALE_AFTER_SECS

log = logging.getLogger("lsp_node.notify")


def _load_apprise_plugins() -> None:
    """Load apprise's plugins now, once, rather than lazily inside the first delivery.

    Some plugins import deprecated stdlib modules (``imghdr`` on 3.11+); that warning is apprise's
    business, not ours, and would otherwise surface (or, under ``-W error``, fail) at the first push.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        apprise.Apprise.instantiate("json://localhost")


_load_apprise_plugins()


def _check_plugin(platform: str, template: str) -> None:
    """Refuse to start with a platform whose apprise plugin is disabled or does not take the URL:
    apprise would otherwise drop every push to it silently (fcm:// needs `cryptography`)."""
    sample = {"fcm": "a" * 22 + ":" + "b" * 140, "apns": "ab" * 32, "token": "sample-device"}
    url = render_url(template, sample[device_format(platform, template).name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        scheme = template.split("://", 1)[0]
        hint = " (apprise needs the 'cryptography' package for fcm://)" if scheme.lower() == "fcm" else ""
        raise ConfigError(
            f"notifications.templates.{platform}: apprise cannot send to {scheme}:// URLs on this system"
            f" or does not accept this one{hint}"
        )


def _now(now: float | None) -> float:
    return time.time() if now is None else float(now)


class Notifier:
    """Delivers the store's due pushes through apprise."""

    def __init__(
        self,
        store: NotificationStore,
        templates: Mapping[str, str],
        settings: NotifierSettings | None = None,
        webhooks: WebhookPolicy | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or NotifierSettings()
        #: The `[lsps5]` sending rules; None: LSPS5 is off and webhook rows are given up.
        self.webhooks = webhooks
        for platform, template in templates.items():
            check_template(platform, template)
            _check_plugin(platform, template)
        missing = store.platforms - set(templates)
        if missing:
            raise ConfigError(f"no URL template for notification platforms {sorted(missing)}")
        self._templates = dict(templates)
        self._wake = asyncio.Event()
        self._stopping = False
        self._sem: asyncio.Semaphore | None = None
        self._inflight: set[int] = set()
        self.deliveries_ok = 0
        self.deliveries_failed = 0
        install_redaction()

    # -- API for the rest of the LSP ---------------------------------------------------------------

    def notify(self, client_id: str, kind: str, now: float | None = None) -> bool:
        """Enqueue a push (see ``NotificationStore.enqueue``) and wake ``run``."""
        created = self.store.enqueue(client_id, kind, now)
        if created:
            self._wake.set()
        return created

    async def enqueue(self, client_id: str, kind: str, now: float | None = None) -> bool:
        """`notify` for code on the loop: the store's transaction runs on its own thread."""
        created = await self.store.run(self.store.enqueue, client_id, kind, now)
        if created:
            self._wake.set()
        return created

    async def enqueue_webhook(
        self, client_id: str, app_name: str, url: str, method: str, headers: list[tuple[str, str]], body: str
    ) -> bool:
        """Queue one signed LSPS5 notification (see `WebhookOutbox.enqueue_webhook`) and wake `run`."""
        limits = self.webhooks.limits if self.webhooks is not None else None
        created = await self.store.run(
            self.store.enqueue_webhook, client_id, app_name, url, method, headers, body, limits=limits
        )
        if created:
            self._wake.set()
        return created

    async def has_device(self, client_id: str) -> bool:
        """Whether the client's pushes go through apprise (it has an unexpired device)."""
        return await self.store.run(self.store.has_device, client_id)

    async def lsps5_cooling_down(self, client_id: str, method: str) -> bool:
        """Whether our per-(client, method) LSPS5 cooldown holds (False when LSPS5 is off)."""
        if self.webhooks is None:
            return False
        cooldown = self.webhooks.notify_cooldown_secs
        return await self.store.run(self.store.lsps5_cooling_down, client_id, method, cooldown)

    async def lsps5_notified(self, client_id: str, method: str) -> None:
        """Start the (client, method) cooldown: the engine has been asked to notify."""
        await self.store.run(self.store.lsps5_notified, client_id, method)

    def wake(self) -> None:
        """Look at the outbox now (a push made due by hand, e.g. the operator's retry)."""
        self._wake.set()

    def status(self, now: float | None = None) -> dict[str, int]:
        s = self.store.status(now)
        return {
            "pending": s.pending,
            "sent": s.sent,
            "dead": s.dead,
            "devices": s.devices,
            "clients": s.clients,
            "deliveries_ok": self.deliveries_ok,
            "deliveries_failed": self.deliveries_failed,
        }

    def stop(self) -> None:
        """Ask ``run`` to return after its current round."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Deliver due pushes until ``stop`` is called or the task is cancelled."""
        self._stopping = False
        next_purge = 0.0
        while not self._stopping:
            now = time.time()
            if now >= next_purge:
                try:
                    await self.store.run(self.store.purge_expired, now)
                except StorageError:
                    log.exception("notify: purge failed")
                next_purge = now + self.settings.purge_interval_secs
            try:
                await self.deliver_due(now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notify: delivery round failed")
            due = await self.store.run(self.store.next_due_at)
            wait = self.settings.poll_interval_secs
            if due is not None:
                wait = min(wait, max(due - time.time(), 0.0))
            self._wake.clear()
            if self._stopping:
                break
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
            else:
                await asyncio.sleep(0)

    async def deliver_due(self, now: float | None = None) -> int:
        """One round: attempt every due push; return how many pushes were completed (marked 'sent')."""
        t = _now(now)
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.settings.max_concurrent_sends)
        due = await self.store.run(self.store.due, t, self.settings.batch_size)
        entries = [e for e in due if e.id not in self._inflight]
        if not entries:
            return 0
        ids = {e.id for e in entries}
        self._inflight |= ids
        try:
            results = await asyncio.gather(*(self._deliver_entry(e, t) for e in entries))
        finally:
            self._inflight -= ids
        return sum(1 for r in results if r)

    # -- internals ---------------------------------------------------------------------------------

    async def _deliver_entry(self, entry: OutboxEntry, now: float) -> bool:
        if entry.delivery == "webhook":
            return await self._deliver_webhook(entry, now)
        tag = client_tag(entry.client_id)
        devices = await self.store.run(self.store.devices, entry.client_id, now)
        if not devices:
            await self.store.run(self.store.mark_dead, entry.id, now, "no registered device")
            log.warning("notify: %s for client %s dropped: no registered device", entry.kind, tag)
            return False
        done = await self.store.run(self.store.delivered_to, entry.id)
        todo = [d for d in devices if (d.platform, d.device_id) not in done]
        body = push_body(entry.kind)
        outcomes = await asyncio.gather(*(self._send_one(d, entry.kind, body) for d in todo))
        failed_platforms: list[str] = []
        await self.store.run(self._record_deliveries, entry.id, list(zip(todo, outcomes, strict=True)), now)
        for device, ok in zip(todo, outcomes, strict=True):
            if ok:
                self.deliveries_ok += 1
            else:
                self.deliveries_failed += 1
                failed_platforms.append(device.platform)
        delivered_any = bool(done) or any(outcomes)
        if not failed_platforms:
            await self.store.run(self.store.mark_sent, entry.id, now)
            log.info("notify: %s pushed to client %s (%d devices)", entry.kind, tag, len(devices))
            return True
        attempts = entry.attempts + 1
        error = "delivery failed on " + ",".join(sorted(set(failed_platforms)))
        if attempts >= self.settings.max_attempts:
            if delivered_any:
                await self.store.run(self.store.mark_sent, entry.id, now)
                log.warning(
                    "notify: %s for client %s reached only some devices after %d attempts; failing: %s",
                    entry.kind,
                    tag,
                    attempts,
                    ",".join(failed_platforms),
                )
                return True
            await self.store.run(self.store.mark_dead, entry.id, now, error)
            log.warning("notify: %s for client %s is dead after %d attempts (%s)", entry.kind, tag, attempts, error)
            return False
        delay = self.settings.backoff(attempts)
        await self.store.run(self.store.mark_failed, entry.id, now, now + delay, error)
        log.info(
            "notify: %s for client %s attempt %d failed on %s; retry in %.0f s",
            entry.kind,
            tag,
            attempts,
            ",".join(failed_platforms),
            delay,
        )
        return False

    async def _deliver_webhook(self, entry: OutboxEntry, now: float) -> bool:
        """One LSPS5 POST; retried with the same backoff and attempts as an apprise push."""
        tag = client_tag(entry.client_id)
        payload = await self.store.run(self.store.webhook_payload, entry.id)
        if payload is None or self.webhooks is None:
            why = "LSPS5 is off" if payload is not None else "no payload"
            await self.store.run(self.store.mark_dead, entry.id, now, why)
            return False
        age = now - payload.signed_at
        if age > STALE_AFTER_SECS:
            # Receivers refuse a timestamp older than 10 minutes: sending it only wastes a POST.
            why = f"stale: signed {age / 60:.0f} minutes ago (bLIP-55 receivers refuse past 10)"
            await self.store.run(self.store.mark_dead, entry.id, now, why)
            log.info("notify: %s webhook for client %s given up unsent: %s", entry.kind, tag, why)
            return False
        async with self._semaphore():
            result = await post_webhook(payload.url, payload.headers, payload.body, self.webhooks)
        await self.store.run(self.store.set_webhook_status, entry.id, result.status)
        # The log names the client only: a client may hide a secret in the URL's host as well.
        if result.ok:
            self.deliveries_ok += 1
            await self.store.run(self.store.mark_sent, entry.id, now)
            log.info("notify: %s posted to a webhook of client %s", entry.kind, tag)
            return True
        self.deliveries_failed += 1
        attempts = entry.attempts + 1
        if result.permanent or attempts >= self.settings.max_attempts:
            await self.store.run(self.store.mark_dead, entry.id, now, result.error)
            log.warning("notify: %s webhook for client %s given up: %s", entry.kind, tag, result.error)
            return False
        delay = self.settings.backoff(attempts)
        await self.store.run(self.store.mark_failed, entry.id, now, now + delay, result.error)
        log.info(
            "notify: %s webhook for client %s attempt %d failed: %s; retry in %.0f s",
            entry.kind,
            tag,
            attempts,
            result.error,
            delay,
        )
        return False

    def _semaphore(self) -> asyncio.Semaphore:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.settings.max_concurrent_sends)
        return self._sem

    def _record_deliveries(self, outbox_id: int, outcomes: list[tuple[Device, bool]], now: float) -> None:
        for device, ok in outcomes:
            self.store.record_delivery(outbox_id, device, ok, now)

    def _url_for(self, device: Device) -> str:
        """The checked URL for a device; InvalidArgumentError if it must not be sent to."""
        # Checked again here, not only at registration: a row may predate a stricter format, or
        # the operator may have moved the platform to another template.
        check_device_id(device.device_id, self.store.formats.get(device.platform))
        timeout = f"{self.settings.request_timeout_secs:g}"
        return render_url(self._templates[device.platform], device.device_id, {"cto": timeout, "rto": timeout})

    @staticmethod
    def _send_blocking(url: str, secrets: list[str], body: str) -> bool:
        # The secrets are registered for redaction exactly while this thread may log them, even if
        # the awaiting coroutine has given up on it.
        IN_FLIGHT.add(secrets)
        try:
            a = apprise.Apprise()
            if not a.add(url):
                raise ConfigError("apprise refused the URL")  # the message never quotes the URL
            try:
                return bool(a.notify(body=body, title=PUSH_TITLE))
            finally:
                a.clear()
        finally:
            IN_FLIGHT.remove(secrets)

    async def _send_one(self, device: Device, kind: str, body: str) -> bool:
        assert self._sem is not None
        try:
            url = self._url_for(device)
        except InvalidArgumentError as e:
            log.warning(
                "notify: %s to client %s on %s refused: %s", kind, client_tag(device.client_id), device.platform, e
            )
            return False
        secrets = secrets_for(device.device_id, url, self._templates[device.platform])
        tag = client_tag(device.client_id)
        try:
            async with self._sem:
                # The per-request timeouts are in the URL; this bounds the whole call as well.
                return await asyncio.wait_for(
                    asyncio.to_thread(self._send_blocking, url, secrets, body),
                    timeout=2 * self.settings.request_timeout_secs + 5,
                )
        except TimeoutError:
            log.warning("notify: %s to client %s on %s timed out", kind, tag, device.platform)
            return False
        except ConfigError:
            log.warning("notify: URL template of platform %s is not accepted by apprise", device.platform)
            return False
        except Exception as e:
            # Only the type: the message of a request error quotes the URL.
            log.warning("notify: %s to client %s on %s raised %s", kind, tag, device.platform, type(e).__name__)
            return False
