"""`lsp-node run`: load the configuration, start the node, print its identity, run until a signal."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from lsp_node import logs
from lsp_node.admin.ops import redact_url
from lsp_node.app import StartupInfo, run
from lsp_node.cli.client import DEFAULT_CONFIG, config_file
from lsp_node.config import load_settings


def add_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the LSP node until SIGINT or SIGTERM",
        description="Run the LSP node. Options override the config file and the environment (LSP_SECTION__KEY).",
        allow_abbrev=False,
    )
    p.add_argument("--config", type=Path, help=f"TOML config file (default: {DEFAULT_CONFIG} if present)")
    p.add_argument("--data-dir", help="overrides node.data_dir")
    p.add_argument("--network", help="overrides node.network")
    p.add_argument("--listen", help="overrides node.listen_addr (host:port)")
    p.add_argument("--esplora-url", help="use this Esplora server instead of the embedded chain")
    p.add_argument("--log-level", help="overrides node.log_level")
    p.add_argument("--admin-listen", help="overrides admin.listen (host:port)")
    p.add_argument("--log-file", help="overrides node.log_file (append the log there; SIGHUP reopens it)")
    p.add_argument("--log-format", help="overrides node.log_format (text | json)")
    p.set_defaults(handler=run_command)


def overrides_from(a: argparse.Namespace) -> tuple[Path | None, dict[str, Any]]:
    """The config file to read and the command line's overrides, as nested dicts of settings."""
    # Each option that names a [node] key directly: option attribute -> key.
    node_keys = {
        "data_dir": "data_dir",
        "network": "network",
        "listen": "listen_addr",
        "log_level": "log_level",
        "log_file": "log_file",
        "log_format": "log_format",
    }
    overrides: dict[str, Any] = {}
    node = {key: getattr(a, opt) for opt, key in node_keys.items() if getattr(a, opt)}
    if node:
        overrides["node"] = node
    if a.admin_listen:
        overrides["admin"] = {"listen": a.admin_listen}
    if a.esplora_url:
        overrides["chain"] = {"source": "esplora", "esplora_url": a.esplora_url}
    return config_file(a.config), overrides


def print_ready(info: StartupInfo) -> None:
    print(f"node id:        {info.node_id}", flush=True)
    print(f"listening on:   {info.listen_addr}", flush=True)
    print(f"chain height:   {info.chain_height}", flush=True)
    print(f"wallet address: {info.wallet_address}", flush=True)
    print(f"esplora:        {redact_url(info.esplora_url)}", flush=True)
    print(f"admin api:      {info.admin_url} (bearer token in {info.admin_token_file})", flush=True)
    print("running; press Ctrl-C to stop", flush=True)


def run_command(a: argparse.Namespace) -> int:
    """Run the node until SIGINT/SIGTERM; a configuration error is raised (ConfigError, exit 2)."""
    # On stderr until the configuration says where the log goes.
    logs.setup()
    config, overrides = overrides_from(a)
    settings = load_settings(config, overrides)
    logs.setup(settings.node.log_format, settings.node.log_file)
    asyncio.run(run(settings, print_ready))
    print("stopped", flush=True)
    return 0
