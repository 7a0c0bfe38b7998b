"""The SQLite files the app keeps in ``settings.data_dir`` (feedback, audit): WAL, one connection per call."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SqliteFile:
    """Thread-safe: every call opens its own connection, so threads never share one. Subclasses set ``SCHEMA``
    (idempotent statements, run when the file is opened)."""

    SCHEMA = ""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(self.SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            with conn:  # one transaction: committed on success, rolled back on error
                yield conn
        finally:
            conn.close()

    def journal_mode(self) -> str:
        with self._connect() as conn:
            return conn.execute("PRAGMA journal_mode").fetchone()[0]
