"""Opens the Python-side SQLite databases (lsp.sqlite, notify.sqlite): pragmas, migrations, and a
dedicated thread per database on which every unit of work runs inside one transaction.

Why a thread: a commit with synchronous=FULL waits for fsync, which must not stall the asyncio loop
that also serves the engine's events, the admin API and pushes. Why one thread: SQLite allows one
writer at a time anyway, and a single connection used by a single thread keeps transactions from
interleaving.

Migrations are sqlite-utils' (`Migrations`, recorded by name in `_sqlite_migrations`), numbered by
position (`m001_...`, `Schema`); a database that records a migration this code does not know was
written by a newer version and is refused rather than guessed at.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlite_utils import Database, Migrations

from lsp_node.errors import StorageError

__all__ = ["Database", "Schema", "Store"]

T = TypeVar("T")
P = ParamSpec("P")


class Schema:
    """Numbered migrations of one database: step i is recorded as `m00i_<function name>`."""

    def __init__(self, name: str, steps: Sequence[Callable[[Database], None]]) -> None:
        self.migrations = Migrations(name)
        self.names: list[str] = []
        for i, step in enumerate(steps, 1):
            label = f"m{i:03d}_{step.__name__}"
            self.migrations(name=label)(step)
            self.names.append(label)

    def applied(self, db: Database) -> list[str]:
        return [m.name for m in self.migrations.applied(db)]

    def apply(self, db: Database, path: Path) -> None:
        unknown = [name for name in self.applied(db) if name not in self.names]
        if unknown:
            raise StorageError(
                f"{path} was written by a newer version of lsp-node: its schema has migrations "
                f"{', '.join(unknown)} of {self.migrations.name!r} that this version does not know; "
                "refusing to open it (run the newer version, or restore a backup)"
            )
        self.migrations.apply(db)


class Store:
    """One SQLite database, its connection and the thread that owns the connection.

    `run` (async, from the loop) and `call` (blocking, from any other context) execute a
    function on the database thread inside one transaction (`Database.atomic`): it commits when
    the function returns and rolls back if it raises. Calls made from inside a unit of work (on
    the database thread) join the open transaction.
    """

    def __init__(self, path: str | Path, schema: Schema, name: str) -> None:
        self.path = Path(path)
        self.name = name
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"db-{name}")
        self._thread: threading.Thread | None = None
        try:
            self.db: Database = self._executor.submit(self._open, schema).result()
        except BaseException:
            self._executor.shutdown()
            raise

    def _open(self, schema: Schema) -> Database:
        self._thread = threading.current_thread()
        try:
            conn = sqlite3.connect(str(self.path), timeout=10.0, check_same_thread=False)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open the {self.name} store {self.path}: {e}") from e
        db = Database(conn)
        try:
            # WAL: readers never block the writer. synchronous=FULL: a commit is on disk when it
            # returns, so whatever is made visible after it (a reply, a forward, an event
            # acknowledgement) survives a crash or power cut.
            db.enable_wal()
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            schema.apply(db, self.path)
        except BaseException as e:
            db.close()
            if isinstance(e, sqlite3.Error):
                raise StorageError(f"cannot initialise the {self.name} store {self.path}: {e}") from e
            raise
        return db

    @property
    def on_db_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _atomic(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            if self.db.conn.in_transaction:
                # A step of the unit of work already open: it commits or rolls back with it (no
                # savepoint: nothing catches a step's error and carries on).
                return fn(*args, **kwargs)
            with self.db.atomic():
                return fn(*args, **kwargs)
        except sqlite3.Error as e:
            raise StorageError(f"{self.name} store: {e}") from e

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """Rows of a SELECT as dicts keyed by column name (on the database thread, in its unit)."""
        cursor = self.db.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(*args)` on the database thread in one transaction; the loop stays free."""
        future = self._executor.submit(functools.partial(self._atomic, fn, *args, **kwargs))
        return await asyncio.wrap_future(future)

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Like `run`, but blocks the caller: for start-up, tests, and code already on the thread."""
        if self.on_db_thread:
            return self._atomic(fn, *args, **kwargs)
        return self._executor.submit(functools.partial(self._atomic, fn, *args, **kwargs)).result()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._executor.submit(self.db.close).result()
        self._executor.shutdown()

    _closed = False
