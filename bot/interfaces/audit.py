"""Who changed the knowledge (or tried the staff door) and when: an append-only log in the database for staff review.

Times are local with their UTC offset (ISO 8601, e.g. ``2024-05-01T09:30:00+08:00``): staff read them as their
clock shows, and the offset keeps them unambiguous across a change of server zone. Order is by id, which is
insertion order whatever the clock did.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import column, insert, select, table

from bot.interfaces.database import Database

ACTIONS = ("upload", "replace", "delete", "restore", "feedback_export", "login_failed", "login_locked")
MAX_LIST = 10_000
# Bounds keep one careless caller from filling the disk; a file path or a client address is far shorter.
FIELD_LIMITS = {"file": 1000, "client": 200, "detail": 2000}
SHA256 = re.compile(r"[0-9a-f]{64}")

AUDIT = table("audit", *map(column, ("id", "time", "action", "file", "content_hash", "client", "detail")))


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
    def from_row(cls, row: Mapping) -> "AuditRecord":
        return cls(**row)


def _text(name: str, value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"audit {name} must be a string, got {type(value).__name__}")
    if name in FIELD_LIMITS and len(value) > FIELD_LIMITS[name]:
        raise ValueError(f"audit {name} has at most {FIELD_LIMITS[name]} characters, got {len(value)}")
    return value


class AuditLog(Database):
    BRANCH = "audit"

    def record(self, action: str, file: str, content_hash: str, client: str, detail: str = "") -> int:
        """Store one event; returns its id. Everything is checked before the database is opened."""
        if _text("action", action) not in ACTIONS:
            raise ValueError(f"audit action must be one of {ACTIONS}, got {action!r}")
        if _text("content_hash", content_hash) and not SHA256.fullmatch(content_hash):
            raise ValueError(f"audit content_hash must be a sha256 in lower-case hex or empty, got {content_hash!r}")
        row = {"time": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "action": action,
               "file": _text("file", file), "content_hash": content_hash, "client": _text("client", client),
               "detail": _text("detail", detail)}
        with self._connect() as conn:
            return int(conn.execute(insert(AUDIT).values(row).returning(AUDIT.c.id)).scalar_one())

    def list(self, limit: int = 200) -> list[AuditRecord]:
        """The newest ``limit`` events, newest first."""
        if type(limit) is not int or not 1 <= limit <= MAX_LIST:
            raise ValueError(f"audit list limit must be a whole number from 1 to {MAX_LIST}, got {limit!r}")
        with self._connect() as conn:
            rows = conn.execute(select(AUDIT).order_by(AUDIT.c.id.desc()).limit(limit)).mappings().all()
        return [AuditRecord.from_row(row) for row in rows]
