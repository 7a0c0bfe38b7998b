"""Residents' 👍/👎 on answers, kept in the database for staff review (one short transaction per write).

Only answers the server itself produced are stored: the page passes its session's Answer, API clients the
``answer_id`` that ``/ask`` issued (``IssuedAnswers``). Nothing a client sends ends up in a citation.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, fields

from sqlalchemy import column, delete, insert, select, table, update

from bot.answer.types import Answer, Citation
from bot.interfaces.database import Database

RATINGS = ("up", "down")
RATING_LABELS = {"up": "👍", "down": "👎"}
MAX_COMMENT = 1000
ISSUED_CAPACITY = 10_000
# Spreadsheet programs run a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

FEEDBACK = table("feedback", *map(column, (
    "id", "created_at", "rating", "question", "condensed_query", "answer", "refused", "citations", "timings_ms",
    "comment")))
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
    citations: tuple[Citation, ...]
    timings_ms: dict
    comment: str
    damaged: bool = False  # some stored field could not be read back (rows written before validation existed)

    @classmethod
    def from_row(cls, row: Mapping) -> "FeedbackRecord":
        citations, damaged = _stored_citations(row["citations"])
        try:
            timings = json.loads(row["timings_ms"])
        except (TypeError, ValueError):
            timings = None
        if not isinstance(timings, dict):
            timings, damaged = {}, True
        return cls(id=row["id"], created_at=str(row["created_at"]), rating=row["rating"] if row["rating"] in RATINGS
                   else "down", question=str(row["question"]), condensed_query=str(row["condensed_query"]),
                   answer=str(row["answer"]), refused=bool(row["refused"]), citations=citations, timings_ms=timings,
                   comment=str(row["comment"]), damaged=damaged)

    def sources_line(self) -> str:
        return "；".join(f"[{c.n}] {c.title}（{c.date or '日期不详'}）" for c in self.citations)


_CITATION_TYPES = {f.name: f.type for f in fields(Citation)}


def _stored_citations(raw) -> tuple[tuple[Citation, ...], bool]:
    """The citations of a stored row, and whether any could not be read (skipped, the row still shows)."""
    try:
        items = json.loads(raw)
    except (TypeError, ValueError):
        return (), True
    if not isinstance(items, list):
        return (), True
    citations = []
    for item in items:
        if not isinstance(item, dict) or set(item) != set(_CITATION_TYPES) or not all(
                type(item[name]) is (int if kind == "int" else str) for name, kind in _CITATION_TYPES.items()):
            return tuple(citations), True
        citations.append(Citation(**item))
    return tuple(citations), False


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class IssuedAnswers:
    """Answers handed to API clients, by an unguessable id, so that feedback names an answer instead of
    sending one. Bounded: the oldest are forgotten first (feedback on them is refused as expired)."""

    def __init__(self, capacity: int = ISSUED_CAPACITY):
        self.capacity = capacity
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, answer: Answer) -> str:
        answer_id = secrets.token_urlsafe(16)
        with self._lock:
            self._answers[answer_id] = answer
            while len(self._answers) > self.capacity:
                self._answers.popitem(last=False)
        return answer_id

    def get(self, answer_id: str) -> Answer | None:
        with self._lock:
            return self._answers.get(answer_id)


def _check_rating(rating: str) -> str:
    if rating not in RATINGS:
        raise ValueError(f"rating must be one of {RATINGS}, got {rating!r}")
    return rating


def _check_comment(comment: str) -> str:
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise ValueError(f"a comment has at most {MAX_COMMENT} characters, got {len(comment)}")
    return comment


def _day(value: str | dt.date | None) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value).strip())


class FeedbackStore(Database):
    BRANCH = "feedback"

    def add(self, rating: str, answer: Answer, comment: str = "") -> int:
        """Store one rating of one answer; returns its id."""
        if not isinstance(answer, Answer):
            raise TypeError(f"feedback needs an Answer the server produced, got {type(answer).__name__}")
        data = answer.to_dict()
        row = {"created_at": dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"), "rating": _check_rating(rating),
               "question": answer.question, "condensed_query": answer.condensed_query, "answer": answer.text,
               "refused": int(answer.refused), "citations": json.dumps(data["citations"], ensure_ascii=False),
               "timings_ms": json.dumps(data["timings_ms"], ensure_ascii=False), "comment": _check_comment(comment)}
        with self._connect() as conn:
            return int(conn.execute(insert(FEEDBACK).values(row).returning(FEEDBACK.c.id)).scalar_one())

    def update(self, feedback_id: int, rating: str | None = None, comment: str | None = None) -> None:
        """Change the rating (the resident clicked the other thumb) or attach the optional comment."""
        changes = {}
        if rating is not None:
            changes["rating"] = _check_rating(rating)
        if comment is not None:
            changes["comment"] = _check_comment(comment)
        if changes:
            with self._connect() as conn:
                conn.execute(update(FEEDBACK).where(FEEDBACK.c.id == feedback_id).values(changes))

    def delete(self, feedback_id: int) -> None:
        """The resident took the rating back."""
        with self._connect() as conn:
            conn.execute(delete(FEEDBACK).where(FEEDBACK.c.id == feedback_id))

    def list(self, only_negative: bool = False, since: str | dt.date | None = None,
             until: str | dt.date | None = None) -> list[FeedbackRecord]:
        """Newest first. ``since``/``until`` are dates, both days included."""
        query = select(FEEDBACK).order_by(FEEDBACK.c.created_at.desc(), FEEDBACK.c.id.desc())
        if only_negative:
            query = query.where(FEEDBACK.c.rating == "down")
        if (start := _day(since)) is not None:
            query = query.where(FEEDBACK.c.created_at >= start.isoformat())
        if (end := _day(until)) is not None:
            query = query.where(FEEDBACK.c.created_at < (end + dt.timedelta(days=1)).isoformat())
        with self._connect() as conn:
            return [FeedbackRecord.from_row(row) for row in conn.execute(query).mappings()]

    def export_csv(self, only_negative: bool = False, since: str | dt.date | None = None,
                   until: str | dt.date | None = None) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_HEADER)
        for r in self.list(only_negative, since, until):
            writer.writerow([csv_cell(v) for v in (
                r.id, r.created_at, RATING_LABELS[r.rating], r.question, r.condensed_query, r.answer,
                "是" if r.refused else "否", r.sources_line(), json.dumps(r.timings_ms, ensure_ascii=False), r.comment)])
        return out.getvalue()
