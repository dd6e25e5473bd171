"""The admin commands of `lsp-node` (`lsp-node info`, ...): one sub-command per admin API route."""

from __future__ import annotations

import argparse


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add one sub-parser per admin command to `subparsers`.

    Each sets `handler=fn` (`set_defaults`) with `fn(args: argparse.Namespace) -> int`, the exit
    code; `lsp_node.cli.client` finds the node from the config and calls its API. Filled in on the
    API branch."""
