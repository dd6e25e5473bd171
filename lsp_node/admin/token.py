"""The admin token file: generated on first start (mode 0600, written atomically), never logged."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Final

from lsp_node.errors import ConfigError

#: What a token file must hold: what `secrets.token_urlsafe` makes, at least 32 characters.
TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]{32,512}")


def _write_atomically(path: Path, text: str) -> None:
    """Write `path` so that a crash leaves either no file or the whole token: a temporary file
    (0600 from its creation), fsync, rename, fsync of the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def load_or_create_token(path: Path) -> str:
    """The admin token: read from `path`, or generated and written there on first start.

    An empty or malformed file is refused rather than trusted: an empty token would open the API
    to requests without a header.
    """
    fix = f"delete {path} to have a new token generated on the next start, or write one of 32 to 512 characters A-Z a-z 0-9 _ -"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        try:
            _write_atomically(path, token)
        except OSError as e:
            raise ConfigError(f"cannot write the admin token file {path}: {e.strerror}") from None
        return token
    except OSError as e:
        raise ConfigError(f"cannot read the admin token file {path}: {e.strerror}") from None
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"the admin token file {path} is not ASCII text; {fix}") from None
    if not token:
        raise ConfigError(f"the admin token file {path} is empty; {fix}")
    if not TOKEN_RE.fullmatch(token):
        # The message never quotes the file's content: it may be a real secret.
        raise ConfigError(f"the admin token file {path} does not hold a valid token; {fix}")
    return token
