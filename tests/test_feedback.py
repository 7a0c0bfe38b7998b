"""FeedbackStore on SQLite and PostgreSQL: round trip, filters, CSV export, concurrent writers; WAL for SQLite."""
from __future__ import annotations

import csv
import datetime as dt
import io
import sqlite3
import threading

import pytest
from sqlalchemy import text

from bot.answer.types import Answer, Citation
from bot.config import Settings
from bot.interfaces.feedback import CSV_HEADER, FeedbackStore


def make_answer(question: str = "卫东区目前有多少低保户？", refused: bool = False) -> Answer:
    citations = [] if refused else [Citation(
        n=1, article_id="20170731-09", title="区民政局实现社会救助“无盲区”", date="2017-07-31",
        text="目前保障对象共3622户、5635人。", chunk_id="abc", passage_start=0, passage_end=16,
        sentence_start=0, sentence_end=16)]
    return Answer(question=question, text="目前保障对象共3622户、5635人。[1]", refused=refused, citations=citations,
                  condensed_query=question.rstrip("？"), timings_ms={"retrieve": 12.5, "total": 30.0})


def backdate(store: FeedbackStore, feedback_id: int, when: str) -> None:
    """Tests need rows from other days; the store itself always stamps 'now'."""
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE feedback SET created_at = :when WHERE id = :id"), {"when": when, "id": feedback_id})


@pytest.fixture
def store(database_url) -> FeedbackStore:
    return FeedbackStore(database_url)


def test_the_default_is_an_sqlite_file_in_wal_mode(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    FeedbackStore(settings.feedback_db)
    assert settings.feedback_db == tmp_path / "data" / "feedback.sqlite"
    with sqlite3.connect(settings.feedback_db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_round_trip_keeps_everything(store):
    answer = make_answer()
    feedback_id = store.add("down", answer, comment="  数字好像过时了  ")
    [record] = store.list()
    assert record.id == feedback_id
    assert record.rating == "down"
    assert record.question == answer.question
    assert record.condensed_query == answer.condensed_query
    assert record.answer == answer.text
    assert record.refused is False
    assert record.citations[0].article_id == "20170731-09"
    assert record.citations[0].sentence_end == 16
    assert record.timings_ms == {"retrieve": 12.5, "total": 30.0}
    assert record.comment == "数字好像过时了"
    assert dt.datetime.strptime(record.created_at, "%Y-%m-%d %H:%M:%S").date() == dt.date.today()


def test_only_an_answer_the_server_made_is_stored(store):
    store.add("up", make_answer(refused=True))
    [record] = store.list()
    assert record.refused is True
    assert record.citations == ()
    with pytest.raises(TypeError, match="Answer"):
        store.add("up", make_answer().to_dict())
    assert len(store.list()) == 1


def test_update_and_delete(store):
    feedback_id = store.add("up", make_answer())
    store.update(feedback_id, rating="down")
    store.update(feedback_id, comment="其实没回答我的问题")
    [record] = store.list()
    assert (record.rating, record.comment) == ("down", "其实没回答我的问题")
    store.delete(feedback_id)
    assert store.list() == []


def test_rejects_unknown_rating(store):
    with pytest.raises(ValueError):
        store.add("meh", make_answer())
    assert store.list() == []


def test_filters_by_rating_and_dates(store):
    old_down = store.add("down", make_answer("旧的差评"))
    backdate(store, old_down, "2026-01-05 09:00:00")
    old_up = store.add("up", make_answer("旧的好评"))
    backdate(store, old_up, "2026-01-20 23:59:59")
    new_down = store.add("down", make_answer("新的差评"))

    assert [r.id for r in store.list()] == [new_down, old_up, old_down]  # newest first
    assert [r.id for r in store.list(only_negative=True)] == [new_down, old_down]
    assert [r.id for r in store.list(since="2026-01-06", until="2026-01-20")] == [old_up]  # both days included
    assert [r.id for r in store.list(only_negative=True, until=dt.date(2026, 1, 31))] == [old_down]
    assert [r.id for r in store.list(since=dt.date.today())] == [new_down]


def test_csv_export_has_header_and_rows(store):
    store.add("down", make_answer(), comment="来源不对")
    store.add("up", make_answer("窝沟封闭免费吗？"))
    rows = list(csv.reader(io.StringIO(store.export_csv())))
    assert rows[0] == CSV_HEADER
    assert len(rows) == 3
    down = next(r for r in rows[1:] if r[2] == "👎")
    assert down[3] == "卫东区目前有多少低保户？"
    assert "区民政局实现社会救助“无盲区”" in down[7]
    assert down[9] == "来源不对"
    only_negative = list(csv.reader(io.StringIO(store.export_csv(only_negative=True))))
    assert len(only_negative) == 2


def test_concurrent_writes_from_threads_all_land(store):
    threads, per_thread = 8, 25
    errors = []

    def write(worker: int) -> None:
        try:
            for i in range(per_thread):
                store.add("down" if i % 2 else "up", make_answer(f"问题 {worker}-{i}"), comment=str(i))
        except Exception as exc:  # collected: an exception in a thread would otherwise be lost
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(w,)) for w in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert errors == []
    records = store.list()
    assert len(records) == threads * per_thread
    assert len({r.id for r in records}) == threads * per_thread
    assert {r.question for r in records} == {f"问题 {w}-{i}" for w in range(threads) for i in range(per_thread)}
