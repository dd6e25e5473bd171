"""lsp_node: a Lightning Service Provider node built on LDK, driven from Python asyncio."""

from lsp_node.errors import LspNodeError

__all__ = ["LspNodeError"]
__version__ = "0.1.0"
