"""Push notifications that ask an offline client to come online.

A client registers one or more platform device ids with its LSP. The operator maps every platform
name ("fcm", "apns", "webhook", ...) to an apprise URL template in which ``{device}`` stands for the
device id, e.g. ``json://127.0.0.1:8080/push/{device}`` or ``fcm://APIKEY/{device}``.
``NotificationStore.enqueue`` records that a push is due -- at most one per (client, kind) per
cooldown window -- and ``Notifier`` delivers it.

Modules: ``kinds`` (what a push says), ``ids`` (identifier checks), ``redact`` (log redaction),
``store`` (notify.sqlite), ``settings`` (delivery settings), ``delivery`` (the scheduler),
``webhook`` and ``webhook_store`` (LSPS5 webhook POSTs, queued in the same outbox).
"""

from lsp_node.notify.delivery import Notifier
from lsp_node.notify.kinds import KIND_SENTENCES, KINDS, PUSH_TITLE, Kind, push_body
from lsp_node.notify.settings import NotifierSettings
from lsp_node.notify.store import Device, NotificationStore, NotifyStatus, OutboxEntry, Registration
from lsp_node.notify.webhook import WebhookPolicy, WebhookResult, post_webhook, redact_url

__all__ = [
    "KINDS",
    "KIND_SENTENCES",
    "PUSH_TITLE",
    "Device",
    "Kind",
    "NotificationStore",
    "Notifier",
    "NotifierSettings",
    "NotifyStatus",
    "OutboxEntry",
    "Registration",
    "WebhookPolicy",
    "WebhookResult",
    "post_webhook",
    "push_body",
    "redact_url",
]
