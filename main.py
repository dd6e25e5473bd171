"""Run the LSP node: `python main.py [--config config/lsp.toml] [--data-dir DIR] ...`."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from lsp_node.app import StartupInfo, run
from lsp_node.config import load_settings
from lsp_node.errors import ConfigError, LspNodeError


class _Parser(argparse.ArgumentParser):
    """An unknown option is a ConfigError that suggests the closest valid one (like a config key)."""

    def error(self, message: str) -> NoReturn:
        known = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
        hints = []
        for word in message.split():
            if word.startswith("-") and word.split("=")[0] not in known:
                close = difflib.get_close_matches(word.split("=")[0], known, n=1)
                if close:
                    hints.append(f"did you mean {close[0]}?")
        raise ConfigError(f"command line: {message}" + ("; " + " ".join(hints) if hints else ""))


def parse_args(argv: list[str]) -> tuple[Path | None, dict[str, Any]]:
    p = _Parser(description="LightningRod LSP node", allow_abbrev=False)
    p.add_argument("--config", type=Path, help="TOML config file (default: config/lsp.toml if present)")
    p.add_argument("--data-dir", help="overrides node.data_dir")
    p.add_argument("--network", help="overrides node.network")
    p.add_argument("--listen", help="overrides node.listen_addr (host:port)")
    p.add_argument("--esplora-url", help="use this Esplora server instead of the embedded chain")
    p.add_argument("--log-level", help="overrides node.log_level")
    p.add_argument("--admin-listen", help="overrides admin.listen (host:port)")
    a = p.parse_args(argv)
    node: dict[str, Any] = {}
    chain: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    if a.data_dir:
        node["data_dir"] = a.data_dir
    if a.network:
        node["network"] = a.network
    if a.listen:
        node["listen_addr"] = a.listen
    if a.log_level:
        node["log_level"] = a.log_level
    if a.admin_listen:
        overrides["admin"] = {"listen": a.admin_listen}
    if a.esplora_url:
        chain.update(source="esplora", esplora_url=a.esplora_url)
    if node:
        overrides["node"] = node
    if chain:
        overrides["chain"] = chain
    config = a.config
    if config is None and Path("config/lsp.toml").is_file():
        config = Path("config/lsp.toml")
    return config, overrides


def print_ready(info: StartupInfo) -> None:
    print(f"node id:        {info.node_id}", flush=True)
    print(f"listening on:   {info.listen_addr}", flush=True)
    print(f"chain height:   {info.chain_height}", flush=True)
    print(f"wallet address: {info.wallet_address}", flush=True)
    print(f"esplora:        {info.esplora_url}", flush=True)
    print(f"admin api:      {info.admin_url} (bearer token in {info.admin_token_file})", flush=True)
    print("running; press Ctrl-C to stop", flush=True)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # LDK is chatty at INFO; its lines go to data/<network>/ldk.log in full.
    logging.getLogger("lsp_node.ldk").setLevel(logging.WARNING)
    try:
        config, overrides = parse_args(argv)
        settings = load_settings(config, overrides)
        asyncio.run(run(settings, print_ready))
    except LspNodeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is durable once main() returns (the node persisted on stop, SQLite commits
    # are synchronous). Skipping interpreter finalisation avoids a race in which a tokio thread
    # of the engine drops a Python object while CPython tears itself down.
    os._exit(code)
