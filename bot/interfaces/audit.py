"""Who changed the knowledge (or tried the staff door) and when: an append-only SQLite log for staff review.

Times are local with their UTC offset (ISO 8601, e.g. ``2024-05-01T09:30:00+08:00``): staff read them as their
clock shows, and the offset keeps them unambiguous across a change of server zone. Order is by id, which is
insertion order whatever the clock did.
"""
from __future__ import annotations

import datetime as dt
import re
import sqlite3
from dataclasses import dataclass

from bot.interfaces.sqlite import SqliteFile

ACTIONS = ("upload", "replace", "delete", "restore", "feedback_export", "login_failed", "login_locked")
MAX_LIST = 10_000
# Bounds keep one careless caller from filling the disk; a file path or a client address is far shorter.
FIELD_LIMITS = {"file": 1000, "client": 200, "detail": 2000}
SHA256 = re.compile(r"[0-9a-f]{64}")

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    action TEXT NOT NULL,
    file TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    client TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class AuditRecord:
    id: int
    time: str  # local time with UTC offset, ISO 8601 to the second
    action: str  # one of ACTIONS
    file: str  # path in the knowledge folder, "" where no file is concerned (logins)
    content_hash: str  # sha256 (hex) of the bytes written or removed, "" where none
    client: str
    detail: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "AuditRecord":
        return cls(**{key: row[key] for key in row.keys()})


def _text(name: str, value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"audit {name} must be a string, got {type(value).__name__}")
    if name in FIELD_LIMITS and len(value) > FIELD_LIMITS[name]:
        raise ValueError(f"audit {name} has at most {FIELD_LIMITS[name]} characters, got {len(value)}")
    return value


class AuditLog(SqliteFile):
    SCHEMA = SCHEMA

    def record(self, action: str, file: str, content_hash: str, client: str, detail: str = "") -> int:
        """Store one event; returns its id. Everything is checked before the database is opened."""
        if _text("action", action) not in ACTIONS:
            raise ValueError(f"audit action must be one of {ACTIONS}, got {action!r}")
        if _text("content_hash", content_hash) and not SHA256.fullmatch(content_hash):
            raise ValueError(f"audit content_hash must be a sha256 in lower-case hex or empty, got {content_hash!r}")
        row = (dt.datetime.now().astimezone().isoformat(timespec="seconds"), action, _text("file", file),
               content_hash, _text("client", client), _text("detail", detail))
        with self._connect() as conn:
            cursor = conn.execute("INSERT INTO audit (time, action, file, content_hash, client, detail)"
                                  " VALUES (?, ?, ?, ?, ?, ?)", row)
            return int(cursor.lastrowid)

    def list(self, limit: int = 200) -> list[AuditRecord]:
        """The newest ``limit`` events, newest first."""
        if type(limit) is not int or not 1 <= limit <= MAX_LIST:
            raise ValueError(f"audit list limit must be a whole number from 1 to {MAX_LIST}, got {limit!r}")
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [AuditRecord.from_row(row) for row in rows]
