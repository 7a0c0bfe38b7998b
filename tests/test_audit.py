"""AuditLog on SQLite and PostgreSQL: what staff did, newest first; bad calls are refused and harm nothing; a
library change carries what its record needs."""
from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import threading

import pytest
from sqlalchemy import text
from test_library import LIBRARY_MD

from bot.config import Settings
from bot.interfaces.audit import ACTIONS, AuditLog, AuditRecord
from bot.interfaces.library import AUDIT_ACTIONS, KnowledgeLibrary
from bot.search.index import KnowledgeIndex

HASH = hashlib.sha256(b"x").hexdigest()


@pytest.fixture
def log(database_url) -> AuditLog:
    return AuditLog(database_url)


def test_records_come_back_newest_first_with_every_field(log):
    first = log.record("upload", "uploads/a.md", HASH, "127.0.0.1")
    second = log.record("login_failed", "", "", "10.0.0.7", detail="第 3 次")
    records = log.list()
    assert [r.id for r in records] == [second, first]
    assert records[1] == AuditRecord(first, records[1].time, "upload", "uploads/a.md", HASH, "127.0.0.1", "")
    assert (records[0].action, records[0].client, records[0].detail) == ("login_failed", "10.0.0.7", "第 3 次")
    stamp = dt.datetime.fromisoformat(records[0].time)
    assert stamp.tzinfo is not None and abs(stamp - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)


def test_the_list_is_limited_to_the_newest(log):
    ids = [log.record("delete", f"uploads/{i}.md", HASH, "c") for i in range(5)]
    assert [r.id for r in log.list(limit=2)] == ids[:-3:-1]
    for bad in (0, -1, "5", 2.0, True):
        with pytest.raises(ValueError, match="limit"):
            log.list(limit=bad)


@pytest.mark.parametrize(("args", "problem"), [
    (("rename", "uploads/a.md", HASH, "c"), "action must be one of"),
    ((None, "uploads/a.md", HASH, "c"), "action must be a string, got NoneType"),
    (("upload", b"uploads/a.md", HASH, "c"), "file must be a string, got bytes"),
    (("upload", "uploads/a.md", "not-a-hash", "c"), "content_hash must be a sha256"),
    (("upload", "uploads/a.md", HASH.upper(), "c"), "content_hash must be a sha256"),
    (("upload", "uploads/a.md", HASH, 127), "client must be a string, got int"),
    (("upload", "uploads/a.md", HASH, "c", ["x"]), "detail must be a string, got list"),
    (("upload", "uploads/a.md", HASH, "c", "x" * 2001), "detail has at most 2000 characters"),
])
def test_a_bad_call_is_refused_and_stored_records_stay(log, args, problem):
    kept = log.record("restore", "articles/b.md", HASH, "c")
    with pytest.raises(ValueError, match=problem):
        log.record(*args)
    assert [r.id for r in log.list()] == [kept]


def test_the_database_is_shared_safely_by_threads_and_stores(log, database_url):
    def write(n: int) -> None:
        for _ in range(20):
            AuditLog(database_url).record("feedback_export", "", "", f"t{n}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(log.list(limit=1000)) == 80
    with log.engine.connect() as conn:
        assert conn.execute(text("SELECT count(DISTINCT id) FROM audit")).scalar() == 80


def test_the_default_file_is_in_the_data_folder(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.audit_db == tmp_path / "data" / "audit.sqlite"
    assert AuditLog(settings.audit_db).list() == []
    with sqlite3.connect(settings.audit_db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_library_change_carries_its_record(fake_scratch_settings, database_url):
    """The web layer records each change from the change alone: action, paths and the hash of the bytes."""
    assert set(AUDIT_ACTIONS.values()) <= set(ACTIONS)
    settings = fake_scratch_settings.with_(database_url=database_url)
    library = KnowledgeLibrary(settings, KnowledgeIndex.open(settings))
    log = AuditLog(settings.audit_db)
    stored = settings.knowledge_dir / "uploads" / "hours.md"
    changes = [library.add_file("hours.md", LIBRARY_MD.encode())]
    written = hashlib.sha256(stored.read_bytes()).hexdigest()
    changes.append(library.add_file("hours.md", LIBRARY_MD.replace("21点", "22点").encode(), replace=True))
    replaced = hashlib.sha256(stored.read_bytes()).hexdigest()
    changes.append(library.delete("wd-test-library-hours"))
    changes.append(library.restore(changes[-1].trash_entry))
    for change in changes:
        for file in change.files:
            log.record(change.audit_action, file.path, file.sha256, "127.0.0.1", change.message())
    assert [(r.action, r.file, r.content_hash) for r in reversed(log.list())] == [
        ("upload", "uploads/hours.md", written), ("replace", "uploads/hours.md", replaced),
        ("delete", "uploads/hours.md", replaced), ("restore", "uploads/hours.md", replaced)]
