"""The process's Python log: text or JSON lines, on stderr or appended to a file reopened on SIGHUP."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Final, Literal

from lsp_node.errors import ConfigError

LogFormat = Literal["text", "json"]

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, message (+ exc, stack)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, str] = {
            "ts": f"{ts}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # json.dumps escapes newlines, so a traceback stays on its record's one line.
        return json.dumps(line, ensure_ascii=False)


class ReopenableFileHandler(logging.FileHandler):
    """A log file appended to, reopened by path on request: after logrotate renames the file,
    SIGHUP makes new lines go to a new file at the old path."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, mode="a", encoding="utf-8")

    def _open(self) -> io.TextIOWrapper:
        # Mode 0600 from creation: the log names peers and payments, not for every local user.
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)

    def reopen(self) -> None:
        """Open the path afresh, then swap: if the open fails, lines keep going to the old file."""
        fresh = self._open()
        self.acquire()  # no line is written half to each file
        try:
            old, self.stream = self.stream, fresh
        finally:
            self.release()
        if old is not None:
            old.close()


def setup(log_format: LogFormat = "text", log_file: Path | None = None) -> None:
    """Send the Python log to `log_file` (appended; stderr if None) in `log_format`, at INFO.

    Replaces the handlers of a previous call, so a process may log to stderr before its
    configuration is read and switch once it is."""
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handler = ReopenableFileHandler(log_file)
        except OSError as e:
            raise ConfigError(f"cannot open the log file {log_file} (node.log_file): {e.strerror}") from None
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        if old is not None:
            old.close()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # LDK is chatty at INFO; its lines go to data/<network>/ldk.log in full.
    logging.getLogger("lsp_node.ldk").setLevel(logging.WARNING)


def reopen() -> bool:
    """Reopen the log file by its path (SIGHUP, after logrotate). False if the log is not a file.

    A failure to open is reported on stderr and the old file kept: losing the log is worse than
    writing to a renamed file."""
    reopened = False
    for h in logging.getLogger().handlers:
        if isinstance(h, ReopenableFileHandler):
            try:
                h.reopen()
            except OSError as e:
                print(f"cannot reopen the log file {h.baseFilename}: {e.strerror}", file=sys.stderr, flush=True)
                continue
            reopened = True
    return reopened
