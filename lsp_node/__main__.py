"""`python -m lsp_node ...` is `lsp-node ...`."""

from lsp_node.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
