"""The `lsp-node` command: `run` (the node itself) and the admin commands, one sub-command each."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from typing import NoReturn, cast

from lsp_node.errors import LspNodeError

__all__ = ["CommandParser", "build_parser", "exit_process", "main"]


class CommandParser(argparse.ArgumentParser):
    """A usage error is a ConfigError that suggests the closest valid option or command (like a
    misspelled config key), reported by `main` as `error: ...` with exit code 2."""

    def error(self, message: str) -> NoReturn:
        from lsp_node.errors import ConfigError

        known = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
        hints = []
        for word in message.split():
            if word.startswith("-") and word.split("=")[0] not in known:
                close = difflib.get_close_matches(word.split("=")[0], known, n=1)
                if close:
                    hints.append(f"did you mean {close[0]}?")
        if (wrong := re.search(r"invalid choice: '([^']*)'", message)) and (sub := _subcommands(self)):
            close = difflib.get_close_matches(wrong[1], list(sub), n=1)
            if close:
                hints.append(f"did you mean {close[0]}?")
        raise ConfigError(f"command line: {message}" + ("; " + " ".join(hints) if hints else ""))


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-command parsers of `parser` by name (empty for a sub-command's own parser)."""
    return {
        name: sub
        for a in parser._actions
        if isinstance(a, argparse._SubParsersAction)
        for name, sub in a.choices.items()
    }


def build_parser() -> CommandParser:
    """The whole command line: `run` and every admin command (added by `admin_commands`)."""
    from lsp_node.cli import admin_commands, run

    parser = CommandParser(
        prog="lsp-node",
        description="LightningRod LSP node: `lsp-node run` starts the node; the other commands talk to a "
        "running node's admin API.",
        allow_abbrev=False,
    )
    # Every sub-command's parser is a CommandParser (the hint on a typo); the commands' modules
    # need only the ArgumentParser interface.
    subparsers = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser),
    )
    run.add_command(subparsers)
    admin_commands.add_commands(subparsers)
    return parser


def exit_process(code: int) -> NoReturn:
    """End the process at once once a `run` is over.

    Everything is durable by then (the node persisted on stop, SQLite commits are synchronous).
    Skipping interpreter finalisation avoids a race in which a tokio thread of the engine drops a
    Python object while CPython tears itself down."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Run `lsp-node ARGV` and return its exit code (0 success, 2 usage or configuration error;
    a command may return 1 for a failed operation).

    With `argv` None (the console script, `python -m lsp_node`) this is the process's entry point:
    a finished `run` then ends the process itself (see `exit_process`). With an explicit `argv` it
    returns, and the caller owns the process's end (main.py, tests)."""
    from lsp_node.cli.client import AdminError

    entry_point = argv is None
    args_list = sys.argv[1:] if argv is None else argv
    try:
        parser = build_parser()
        if not args_list:
            parser.print_help(sys.stderr)
            return 2
        args, extra = parser.parse_known_args(args_list)
        if extra:
            # Reported by the sub-command's parser, which knows its own options for the hint.
            _subcommands(parser).get(args.command or "", parser).error(f"unrecognized arguments: {' '.join(extra)}")
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        code: int = args.handler(args)
    except AdminError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except LspNodeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    if entry_point and args.command == "run":
        exit_process(code)
    return code
