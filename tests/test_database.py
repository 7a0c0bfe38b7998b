"""The stores' database: BOT_DATABASE_URL, files from before Alembic adopted with their rows, workers starting at
once, and a bad URL or an unreachable server stopping the app with one line that hides the password."""
from __future__ import annotations

import logging
import sqlite3
import threading
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from bot.answer.types import Answer
from bot.config import Settings
from bot.interfaces.audit import AuditLog
from bot.interfaces.database import DatabaseOpenError
from bot.interfaces.feedback import FeedbackStore
from bot.interfaces.trash import Trash

# What versions before Alembic ran on every open of feedback.sqlite and audit.sqlite, verbatim.
OLD_FEEDBACK_SCHEMA = """
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
OLD_AUDIT_SCHEMA = """
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
PASSWORD = "geheim-2017"
UNREACHABLE = f"postgresql://bot:{PASSWORD}@127.0.0.1:1/weidong"  # nothing listens on port 1


def versions(store) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def test_the_url_comes_from_the_environment_and_serves_all_three_stores(monkeypatch, tmp_path):
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BOT_DATABASE_URL", raising=False)
    default = Settings.from_env()
    assert (default.feedback_db, default.audit_db, default.trash_db) == (
        tmp_path / "feedback.sqlite", tmp_path / "audit.sqlite", tmp_path / "trash.sqlite")
    monkeypatch.setenv("BOT_DATABASE_URL", UNREACHABLE)
    shared = Settings.from_env()
    assert shared.database_url == shared.feedback_db == shared.audit_db == shared.trash_db == UNREACHABLE


def test_files_from_before_alembic_are_adopted_with_their_rows(tmp_path):
    feedback_file, audit_file = tmp_path / "feedback.sqlite", tmp_path / "audit.sqlite"
    with sqlite3.connect(feedback_file) as conn:
        conn.executescript(OLD_FEEDBACK_SCHEMA)
        conn.execute("INSERT INTO feedback (created_at, rating, question, condensed_query, answer, refused, citations,"
                     " timings_ms, comment) VALUES ('2026-01-05 09:00:00', 'down', '旧问题', '旧问题', '旧回答', 0,"
                     " '[]', '{}', '旧评论')")
    with sqlite3.connect(audit_file) as conn:
        conn.executescript(OLD_AUDIT_SCHEMA)
        conn.execute("INSERT INTO audit (time, action, file, content_hash, client, detail)"
                     " VALUES ('2026-01-05T09:00:00+08:00', 'delete', 'uploads/a.md', '', '127.0.0.1', '')")

    feedback, audit = FeedbackStore(feedback_file), AuditLog(audit_file)
    [old] = feedback.list()
    assert (old.id, old.question, old.comment, old.damaged) == (1, "旧问题", "旧评论", False)
    assert feedback.add("up", Answer(question="新问题", text="新回答", refused=True)) == 2
    assert [(r.id, r.action) for r in audit.list()] == [(1, "delete")]
    assert audit.record("restore", "uploads/a.md", "", "127.0.0.1") == 2
    assert (versions(feedback), versions(audit)) == (["feedback_0001"], ["audit_0001"])
    with sqlite3.connect(feedback_file) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'feedback'"
                            ).fetchall() == [("feedback_created",)]


def test_workers_opening_a_new_database_at_once_all_succeed(database_url):
    """Every worker migrates at its start: on PostgreSQL the advisory lock lets one go first, on SQLite the
    write lock does; the others then find the tables at their head."""
    workers, barrier, errors = 6, threading.Barrier(6), []

    def start() -> None:
        barrier.wait()
        try:
            for store in (FeedbackStore, AuditLog, Trash):
                store(database_url)
        except Exception as exc:  # collected: an exception in a thread would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert versions(Trash(database_url)) == ["audit_0001", "feedback_0001", "trash_0001"]


@pytest.mark.parametrize(("url", "problem"), [
    (f"postgres//bot:{PASSWORD}@db.internal/weidong", "the database URL ***@db.internal/weidong is not a URL"),
    (f"postgresql://bot:{PASSWORD}@db.internal:port/weidong", "the database URL postgresql://***@db.internal:port/"),
    (f"mysql://bot:{PASSWORD}@db.internal/weidong", "mysql://bot:***@db.internal/weidong names mysql: only"),
    (UNREACHABLE, "cannot open the database postgresql+psycopg://bot:***@127.0.0.1:1/weidong: connection failed"),
])
def test_a_bad_url_is_one_line_naming_it_without_the_password(url, problem):
    with pytest.raises(DatabaseOpenError) as raised:
        FeedbackStore(url)
    message = str(raised.value)
    assert problem in message and PASSWORD not in message and "\n" not in message


def test_the_app_stops_with_that_line_not_a_traceback(monkeypatch, caplog, tmp_path):
    import app

    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BOT_DATABASE_URL", UNREACHABLE)
    monkeypatch.setattr("bot.answer.assistant.Assistant", lambda settings: SimpleNamespace(index=None))
    with caplog.at_level(logging.ERROR):
        assert app.main([]) == 2
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage().startswith("cannot open the database postgresql+psycopg://bot:***@127.0.0.1:1/")
    assert record.exc_info is None and PASSWORD not in caplog.text


def test_missing_postgresql_fails_naming_the_package(monkeypatch):
    import postgres_helpers

    monkeypatch.setattr(postgres_helpers.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(postgres_helpers.shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="apt-get install postgresql"):
        postgres_helpers.server_binaries()
