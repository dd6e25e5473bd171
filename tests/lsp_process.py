"""An LSP run the way an operator runs it: `python main.py --config FILE` in its own process,
driven through its admin API."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port nothing listens on now (the OS picks it; the process binds it moments later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LspProcess:
    def __init__(
        self,
        tmp_path: Path,
        name: str,
        esplora_url: str,
        push_url: str,
        *,
        role: bool = True,
        announce: bool = False,
        admin_listen: str = "127.0.0.1:0",
        launcher: list[str] | None = None,
        sections: dict[str, dict[str, object]] | None = None,
        lsps2: dict[str, object] | None = None,
        lsps5: dict[str, object] | None = None,
        lsps1: dict[str, object] | None = None,
        **lsp: object,
    ) -> None:
        """`role=False`: a plain routing node (main.py with the LSP role off). `announce`: listen
        on a fixed free port and announce it (`announce_addresses`), so other nodes can dial it.
        `launcher`: the command before `--config` (default `python main.py`)."""
        self.role = role
        self.dir = tmp_path / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.esplora_url = esplora_url
        self.push_url = push_url
        self.lsp = lsp
        self.listen = f"127.0.0.1:{free_port()}" if announce else "127.0.0.1:0"
        self.announce = [self.listen] if announce else []
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, str] = {}
        self.token = ""
        self.admin_listen = admin_listen
        self.launcher = launcher or [sys.executable, "main.py"]
        # Other config sections, e.g. {"async_payments": {"enabled": True}}.
        self.sections = sections or {}
        # `[lsps2]` keys (enabled is set); None leaves the section out (the service off).
        self.lsps2 = lsps2
        # `[lsps5]` keys likewise.
        self.lsps5 = lsps5
        # `[lsps1]` keys likewise.
        self.lsps1 = lsps1

    @property
    def node_id(self) -> str:
        return self.info["node id"]

    @property
    def listen_addr(self) -> str:
        return self.info["listening on"]

    def _config(self) -> Path:
        lsp_lines = "\n".join(
            f"{k} = {v!r}".replace("'", '"')
            if isinstance(v, str)
            else f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
            for k, v in self.lsp.items()
        )
        cfg = self.dir / "lsp.toml"
        cfg.write_text(
            f"""
[node]
data_dir = "{self.dir / "data"}"
network = "regtest"
listen_addr = "{self.listen}"
sync_interval_secs = 1
announce_addresses = {json.dumps(self.announce)}
[chain]
source = "esplora"
esplora_url = "{self.esplora_url}"
[admin]
listen = "{self.admin_listen}"
[lsp]
enabled = {str(self.role).lower()}
{lsp_lines if self.role else ""}
[notifications]
cooldown_secs = 0
[notifications.templates]
webhook = "{self.push_url}"
"""
        )
        with cfg.open("a") as f:
            for name, keys in self.sections.items():
                f.write(f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items()))
        if self.lsps2 is not None:
            keys = {"enabled": True, **self.lsps2}
            with cfg.open("a") as f:
                f.write("[lsps2]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items()))
        if self.lsps5 is not None:
            keys = {"enabled": True, **self.lsps5}
            with cfg.open("a") as f:
                f.write("[lsps5]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items()))
        if self.lsps1 is not None:
            keys = {"enabled": True, **self.lsps1}
            with cfg.open("a") as f:
                f.write("[lsps1]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items()))
        return cfg

    async def start(self, fault: str | None = None) -> None:
        """Start the LSP; with `fault`, through tests/fault_main.py with that fault installed."""
        cfg = self._config()
        log = open(self.dir / "stderr.log", "a")
        launcher = self.launcher if fault is None else [sys.executable, "-m", "tests.fault_main", fault]
        self.proc = subprocess.Popen(
            [*launcher, "--config", str(cfg)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        self.info = await asyncio.to_thread(self._read_startup)
        # A restarted LSP keeps its port so its clients can reconnect to it.
        self.listen = self.info["listening on"]
        self.token = Path(self.info["admin api"].split("bearer token in ")[1].rstrip(")")).read_text().strip()
        self.admin = self.info["admin api"].split(" ")[0]

    def _read_startup(self) -> dict[str, str]:
        assert self.proc is not None and self.proc.stdout is not None
        info: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"{self.name} exited: {(self.dir / 'stderr.log').read_text()[-3000:]}")
            if line.startswith("running"):
                return info
            key, _, value = line.partition(":")
            info[key.strip()] = value.strip()
        raise AssertionError(f"{self.name} did not start")

    async def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, self.admin + path, json=body, headers={"Authorization": f"Bearer {self.token}"}) as r,
        ):
            data = await r.json()
            if r.status != 200:
                raise AssertionError(f"{self.name} {path}: {r.status} {data}")
            return data

    async def dashboard(self, path: str) -> str:
        """A dashboard page as a signed-in operator's browser gets it (the token's sign-in, then GET)."""
        jar = aiohttp.CookieJar(unsafe=True)  # a bare IP's cookies are kept only so
        async with aiohttp.ClientSession(cookie_jar=jar) as s:
            async with s.post(
                self.admin + "/login", data={"token": self.token}, headers={"Origin": self.admin}, allow_redirects=False
            ) as r:
                if r.status != 303:
                    raise AssertionError(f"{self.name}: dashboard sign-in answered {r.status}")
            async with s.get(self.admin + path, allow_redirects=False) as r:
                if r.status != 200:
                    raise AssertionError(f"{self.name} dashboard {path}: {r.status}")
                return await r.text()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.reap()

    def reap(self) -> int | None:
        """Collect a process that died by itself; returns its exit code."""
        if self.proc is None:
            return None
        code = self.proc.wait(30)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
        return code

    async def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            code = await asyncio.to_thread(self.proc.wait, 60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            if self.proc.stdout:
                self.proc.stdout.close()
            self.proc = None
        tail = (self.dir / "stderr.log").read_text()[-2000:]
        assert code == 0 and "Fatal Python error" not in tail, f"{self.name} did not stop cleanly ({code}): {tail}"
