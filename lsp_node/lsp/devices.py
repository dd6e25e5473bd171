"""Device registration (DEVICE_REGISTER, SPEC.md §7.1): a client names the push token its LSP
uses to ask it to come online."""

from __future__ import annotations

import time

from lsp_node import protocol as p
from lsp_node.errors import LspNodeError
from lsp_node.lsp.context import NOT_AUTHENTICATED, Role


class Devices:
    def __init__(self, role: Role) -> None:
        self.role = role

    async def on_device_register(self, msg: p.DeviceRegister) -> p.DeviceReply:
        status = self.role.authenticate(msg)
        if status != p.Status.OK:
            return p.DeviceReply(msg.request_id, int(status), error=NOT_AUTHENTICATED)
        store = self.role.store
        client = msg.client_node_id.hex()
        if not await store.run(store.mark_request_seen, client, msg.request_id.hex(), time.time()):
            return p.DeviceReply(msg.request_id, int(p.Status.STALE_OR_REPLAYED), error="request id already used")
        notifier = self.role.notifier
        if notifier is None:
            return p.DeviceReply(msg.request_id, int(p.Status.INVALID_REQUEST), error="this LSP sends no notifications")
        devices = notifier.store
        try:
            if msg.remove:
                await devices.run(devices.remove_device, client, msg.platform, msg.device_id)
                return p.DeviceReply(msg.request_id, int(p.Status.OK))
            reg = await devices.run(devices.register_device, client, msg.platform, msg.device_id)
        except LspNodeError as e:
            return p.DeviceReply(msg.request_id, int(p.Status.INVALID_REQUEST), error=str(e))
        return p.DeviceReply(msg.request_id, int(p.Status.OK), expires_at=int(reg.expires_at))
