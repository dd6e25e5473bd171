"""`python main.py ARGS` is `lsp-node run ARGS`: the README's run command from a clone."""

from __future__ import annotations

import sys

from lsp_node.cli import exit_process
from lsp_node.cli import main as lsp_node


def main(argv: list[str]) -> int:
    return lsp_node(["run", *argv])


if __name__ == "__main__":
    exit_process(main(sys.argv[1:]))
