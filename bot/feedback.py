"""Residents' 👍/👎 on answers, kept in SQLite for staff review (WAL, one short transaction per write)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .answer import Answer

RATINGS = ("up", "down")
RATING_LABELS = {"up": "👍", "down": "👎"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    rating TEXT NOT NULL,
    question TEXT NOT NULL,
    condensed_query TEXT NOT NULL,
    answer TEXT NOT NULL,
    refused INTEGER NOT NULL,
    citations TEXT NOT NULL,
    timings_ms TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS feedback_created ON feedback (created_at);
"""
CSV_HEADER = ["编号", "时间", "评价", "问题", "检索用语", "回答", "是否拒答", "引用来源", "耗时(毫秒)", "评论"]


@dataclass(frozen=True)
class FeedbackRecord:
    id: int
    created_at: str  # local time, "YYYY-MM-DD HH:MM:SS"
    rating: str
    question: str
    condensed_query: str
    answer: str
    refused: bool
    citations: list[dict]
    timings_ms: dict
    comment: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "FeedbackRecord":
        return cls(id=row["id"], created_at=row["created_at"], rating=row["rating"], question=row["question"],
                   condensed_query=row["condensed_query"], answer=row["answer"], refused=bool(row["refused"]),
                   citations=json.loads(row["citations"]), timings_ms=json.loads(row["timings_ms"]),
                   comment=row["comment"])

    def sources_line(self) -> str:
        return "；".join(f"[{c['n']}] {c['title']}（{c.get('date') or '日期不详'}）" for c in self.citations)


def _check_rating(rating: str) -> str:
    if rating not in RATINGS:
        raise ValueError(f"rating must be one of {RATINGS}, got {rating!r}")
    return rating


def _day(value: str | dt.date | None) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value).strip())


class FeedbackStore:
    """Thread-safe: every call opens its own connection, so threads never share one."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)

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

    def add(self, rating: str, answer: Answer | dict, comment: str = "") -> int:
        """Store one rating of one answer; returns its id."""
        data = answer.to_dict() if isinstance(answer, Answer) else dict(answer)
        row = (dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"), _check_rating(rating), str(data.get("question", "")),
               str(data.get("condensed_query", "")), str(data.get("text", "")), int(bool(data.get("refused"))),
               json.dumps(data.get("citations") or [], ensure_ascii=False),
               json.dumps(data.get("timings_ms") or {}, ensure_ascii=False), comment.strip())
        with self._connect() as conn:
            cursor = conn.execute(
                "INSERT INTO feedback (created_at, rating, question, condensed_query, answer, refused, citations,"
                " timings_ms, comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            return int(cursor.lastrowid)

    def update(self, feedback_id: int, rating: str | None = None, comment: str | None = None) -> None:
        """Change the rating (the resident clicked the other thumb) or attach the optional comment."""
        with self._connect() as conn:
            if rating is not None:
                conn.execute("UPDATE feedback SET rating = ? WHERE id = ?", (_check_rating(rating), feedback_id))
            if comment is not None:
                conn.execute("UPDATE feedback SET comment = ? WHERE id = ?", (comment.strip(), feedback_id))

    def delete(self, feedback_id: int) -> None:
        """The resident took the rating back."""
        with self._connect() as conn:
            conn.execute("DELETE FROM feedback WHERE id = ?", (feedback_id,))

    def list(self, only_negative: bool = False, since: str | dt.date | None = None,
             until: str | dt.date | None = None) -> list[FeedbackRecord]:
        """Newest first. ``since``/``until`` are dates, both days included."""
        clauses, params = [], []
        if only_negative:
            clauses.append("rating = 'down'")
        if (start := _day(since)) is not None:
            clauses.append("created_at >= ?")
            params.append(start.isoformat())
        if (end := _day(until)) is not None:
            clauses.append("created_at < ?")
            params.append((end + dt.timedelta(days=1)).isoformat())
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT * FROM feedback {where} ORDER BY created_at DESC, id DESC", params)
            return [FeedbackRecord.from_row(row) for row in rows.fetchall()]

    def export_csv(self, only_negative: bool = False, since: str | dt.date | None = None,
                   until: str | dt.date | None = None) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_HEADER)
        for r in self.list(only_negative, since, until):
            writer.writerow([r.id, r.created_at, RATING_LABELS[r.rating], r.question, r.condensed_query, r.answer,
                             "是" if r.refused else "否", r.sources_line(),
                             json.dumps(r.timings_ms, ensure_ascii=False), r.comment])
        return out.getvalue()
