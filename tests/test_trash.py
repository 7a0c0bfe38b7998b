"""Deleting moves an article's file to the trash (in the database, SQLite or PostgreSQL); restoring puts it back
and indexes it, from any worker; refusals change nothing; a SIGKILL at any step of either leaves the file in
exactly one place once ``recover`` ran, with the index agreeing; an older version's trash folder is adopted."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_library import DIBAO_ARTICLE, LIBRARY_MD, PAGE_TXT, snapshot, top_articles

from bot.config import ROOT, Settings
from bot.interfaces.library import KnowledgeLibrary, LibraryError
from bot.interfaces.trash import RESTORING, SETTLED, Trash
from bot.search.index import KnowledgeIndex

DIBAO_QUESTION = "卫东区目前低保保障对象一共有多少户、多少人？"
HOURS_ID = "wd-test-library-hours"


def state(library: KnowledgeLibrary) -> tuple:
    """Knowledge files, chunk ids and every trash entry with its state and bytes."""
    trash = Trash(library.settings.trash_db)
    entries = [(SETTLED, entry) for entry in trash.entries()] + trash.pending()
    return snapshot(library), [(kind, entry, trash.data(entry)) for kind, entry in entries]


@pytest.fixture
def library(fake_scratch_settings, database_url, index) -> KnowledgeLibrary:
    return KnowledgeLibrary(fake_scratch_settings.with_(database_url=database_url), index)


def test_a_deleted_article_waits_in_the_trash_and_comes_back(library, index):
    rel = library.article(DIBAO_ARTICLE).path
    original = (library.root / rel).read_bytes()
    title = library.article(DIBAO_ARTICLE).title

    deleted = library.delete(DIBAO_ARTICLE)
    assert not (library.root / rel).exists()
    assert DIBAO_ARTICLE not in {c.article_id for c in index.chunks()}
    assert DIBAO_ARTICLE not in top_articles(index, DIBAO_QUESTION, k=10)
    [entry] = library.trash()
    assert (entry.entry_id, entry.article_id, entry.title, entry.path) == \
        (deleted.trash_entry, DIBAO_ARTICLE, title, rel)
    assert entry.sha256 == hashlib.sha256(original).hexdigest() == deleted.files[0].sha256
    assert dt.datetime.fromisoformat(entry.deleted_at).tzinfo is not None
    assert deleted.audit_action == "delete" and "回收站" in deleted.message()
    assert state(library)[1] == [(SETTLED, entry, original)]

    restored = library.restore(entry.entry_id)
    assert (library.root / rel).read_bytes() == original
    assert restored.action == "restored" and restored.audit_action == "restore"
    assert restored.message().startswith("已恢复 1 篇文章") and restored.chunks_added >= 1
    assert restored.files[0].sha256 == entry.sha256 and restored.trash_entry == entry.entry_id
    assert DIBAO_ARTICLE in top_articles(index, DIBAO_QUESTION)
    assert library.trash() == [] and state(library)[1] == []
    with pytest.raises(LibraryError, match="回收站里没有"):
        library.restore(entry.entry_id)


def test_an_article_deleted_through_one_worker_is_restored_through_another(library, index, tmp_path):
    """Workers share the knowledge folder, the index and the database, each with a data folder of its own."""
    other = KnowledgeLibrary(library.settings.with_(data_dir=tmp_path / "other-data"), index)
    original = (library.root / library.article(DIBAO_ARTICLE).path).read_bytes()
    deleted = library.delete(DIBAO_ARTICLE)
    assert [e.entry_id for e in other.trash()] == [deleted.trash_entry]
    other.restore(deleted.trash_entry)
    assert (library.root / deleted.files[0].path).read_bytes() == original
    assert library.trash() == [] and DIBAO_ARTICLE in top_articles(index, DIBAO_QUESTION)
    with pytest.raises(LibraryError, match="回收站里没有"):
        library.restore(deleted.trash_entry)


def test_an_entry_leaves_a_state_once(library):
    """Two workers that read the same entry: only the first one's change of state takes effect."""
    entry_id = library.delete(DIBAO_ARTICLE).trash_entry
    first, second = Trash(library.settings.trash_db), Trash(library.settings.trash_db)
    assert first.move(entry_id, SETTLED, RESTORING)
    assert not second.move(entry_id, SETTLED, RESTORING)
    assert not second.drop(entry_id, SETTLED)
    assert first.drop(entry_id, RESTORING) and not second.drop(entry_id, RESTORING)
    assert state(library)[1] == []


def test_the_trash_lists_the_newest_deletion_first(library):
    library.add_file("hours.md", LIBRARY_MD.encode())
    library.delete(DIBAO_ARTICLE)
    library.delete(HOURS_ID)
    assert [e.article_id for e in library.trash()] == [HOURS_ID, DIBAO_ARTICLE]


def test_deleting_one_article_of_a_printed_page_keeps_the_others(library, index):
    change = library.add_file("page-0818.txt", PAGE_TXT.encode(), as_page=True)
    market, weekend = change.files
    library.delete(market.article_id)
    assert [e.path for e in library.trash()] == [market.path]
    assert not (library.root / market.path).exists() and (library.root / weekend.path).is_file()
    assert top_articles(index, "政务服务中心周末窗口能办哪些业务？")[0] == weekend.article_id
    assert market.article_id not in {c.article_id for c in index.chunks()}


def test_restore_is_refused_when_the_path_was_taken_again(library):
    library.add_file("hours.md", LIBRARY_MD.encode())
    library.delete(HOURS_ID)
    library.add_file("hours.md", LIBRARY_MD.replace(HOURS_ID, "wd-other-hours").encode())
    before = state(library)
    with pytest.raises(LibraryError, match="无法恢复《卫东区社区图书馆夜间开放》：uploads/hours.md 已有同名文件"):
        library.restore(library.trash()[0].entry_id)
    assert state(library) == before


def test_restore_is_refused_when_the_id_now_belongs_to_another_file(library):
    library.add_file("hours.md", LIBRARY_MD.encode())
    library.delete(HOURS_ID)
    library.add_file("hours-2018.md", LIBRARY_MD.encode())
    before = state(library)
    with pytest.raises(LibraryError, match=f"文章编号「{HOURS_ID}」现已被 uploads/hours-2018.md 使用"):
        library.restore(library.trash()[0].entry_id)
    assert state(library) == before


@pytest.mark.parametrize("entry_id", ["../../knowledge", "", "20240101-000000-000000-abcdef", None])
def test_an_unknown_entry_is_refused(library, entry_id):
    library.delete(DIBAO_ARTICLE)
    before = state(library)
    with pytest.raises(LibraryError, match="回收站里没有"):
        library.restore(entry_id)
    assert state(library) == before


def test_a_failed_index_write_leaves_delete_and_restore_undone(library, index, monkeypatch):
    real_sync = index.sync

    def break_once():
        def broken(load, progress=True, paths=None):
            monkeypatch.setattr(index, "sync", real_sync)
            real_sync(load, progress=progress, paths=paths)  # written, then the connection "drops"
            raise ConnectionError("chroma went away")
        monkeypatch.setattr(index, "sync", broken)

    before = state(library)
    break_once()
    with pytest.raises(ConnectionError):
        library.delete(DIBAO_ARTICLE)
    assert state(library) == before

    library.delete(DIBAO_ARTICLE)
    in_trash = state(library)
    break_once()
    with pytest.raises(ConnectionError):
        library.restore(library.trash()[0].entry_id)
    assert state(library) == in_trash


def old_entry(folder: Path, article_id: str, rel: str, data: bytes) -> str:
    """A trash entry as versions before the database kept it: a folder with the file and manifest.json."""
    folder.mkdir(parents=True)
    (folder / Path(rel).name).write_bytes(data)
    manifest = {"article_id": article_id, "title": "旧版本删除的文章", "path": rel,
                "deleted_at": "2024-01-01T08:00:00+08:00", "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return folder.name.strip(".").split(".")[0]


def test_an_older_versions_trash_folder_moves_into_the_database(library, index):
    folder = library.settings.trash_dir
    rel = library.article(DIBAO_ARTICLE).path
    original = (library.root / rel).read_bytes()
    settled = old_entry(folder / "20240101-000000-000000-aaaaaa", HOURS_ID, "uploads/hours.md", LIBRARY_MD.encode())
    # That version was killed while deleting the low-income article: its file is still in the knowledge folder.
    deleting = old_entry(folder / ".20240102-000000-000000-bbbbbb.deleting", DIBAO_ARTICLE, rel, original)
    (folder / ".20240103-000000-000000-cccccc.part").mkdir()  # half written: nothing to keep
    (folder / "20240104-000000-000000-dddddd").mkdir()  # unreadable: left for someone to look at

    assert library.recover() == [rel]
    assert [(e.entry_id, e.article_id) for e in library.trash()] == [(deleting, DIBAO_ARTICLE), (settled, HOURS_ID)]
    assert not (library.root / rel).exists() and DIBAO_ARTICLE not in {c.article_id for c in index.chunks()}
    assert [p.name for p in folder.iterdir()] == ["20240104-000000-000000-dddddd"]
    library.restore(deleting)
    assert (library.root / rel).read_bytes() == original
    library.restore(settled)
    assert (library.root / "uploads" / "hours.md").read_text(encoding="utf-8") == LIBRARY_MD
    assert library.recover() == [] and library.trash() == []


# ---- SIGKILL at every step ---------------------------------------------------------------------------------

# The child kills itself just before its Nth change to the knowledge folder (a rename, a removal), to the index
# (a sync) or to the trash (a transaction): every point between two steps of delete-then-restore is reached once.
KILLER = """
import os, signal, sys
sys.path.insert(0, sys.argv[3])
import fakes  # registers the hash embeddings the index was built with
from bot.config import Settings
from bot.search.index import KnowledgeIndex
from bot.interfaces.library import KnowledgeLibrary
from bot.interfaces.trash import Trash

settings = Settings.from_env()
watched = str(settings.knowledge_dir)
kill_at, calls = int(sys.argv[1]), 0

def step():
    global calls
    calls += 1
    if calls == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

def watch(name):
    real = getattr(os, name)
    def watched_call(path, *args, **kwargs):
        if str(path).startswith(watched):
            step()
        return real(path, *args, **kwargs)
    setattr(os, name, watched_call)

for name in ("replace", "rename", "unlink"):
    watch(name)
def before(cls, name):
    real = getattr(cls, name)
    def stepped(self, *args, **kwargs):
        step()
        return real(self, *args, **kwargs)
    setattr(cls, name, stepped)

before(KnowledgeIndex, "sync")
for name in ("put", "move", "drop"):
    before(Trash, name)

library = KnowledgeLibrary(settings, KnowledgeIndex.open(settings))
change = library.delete(sys.argv[2])
library.restore(change.trash_entry)
print("done", flush=True)
"""


def killed_at(settings: Settings, step: int) -> bool:
    """Runs delete-then-restore of the low-income article, killed before ``step``; False when it finished."""
    env = {**os.environ, "BOT_KNOWLEDGE_DIR": str(settings.knowledge_dir), "BOT_INDEX_DIR": str(settings.index_dir),
           "BOT_DATA_DIR": str(settings.data_dir), "BOT_EMBEDDING": settings.embedding,
           "BOT_DATABASE_URL": settings.database_url}
    env.pop("BOT_CHROMA_HOST", None)
    child = subprocess.run([sys.executable, "-c", KILLER, str(step), DIBAO_ARTICLE, str(Path(__file__).parent)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if child.returncode == 0:
        assert child.stdout.strip() == "done"
        return False
    assert child.returncode == -signal.SIGKILL, child.stderr
    return True


# Eight kill points: put, sync, unlink, settle (delete); mark, sync, rename, drop (restore); the ninth run finishes.
# PostgreSQL is killed at one point a state the trash can be left in (the steps between are the same code).
KILL_STEPS = {"sqlite": range(1, 10), "postgresql": (2, 4, 6, 8)}


@pytest.mark.slow
def test_sigkill_during_delete_or_restore_never_loses_the_file(fake_scratch_settings, database_url):
    settings = fake_scratch_settings.with_(database_url=database_url)
    rel = "articles/20170731-09.md"
    original = (settings.knowledge_dir / rel).read_bytes()
    steps = KILL_STEPS[database_url.partition(":")[0]]
    for step in steps:
        if not killed_at(settings, step):
            assert step == 9, f"delete-then-restore finished before kill point {step}"
            break
        library = KnowledgeLibrary(settings, KnowledgeIndex.open(settings))
        library.recover()
        on_disk = (settings.knowledge_dir / rel).exists()
        trashed = [e for e in library.trash() if e.path == rel]
        assert on_disk != bool(trashed), f"step {step}: the file must be in exactly one place"
        indexed = DIBAO_ARTICLE in {c.article_id for c in library.index.chunks()}
        listed = any(a.id == DIBAO_ARTICLE for a in library.articles())
        assert on_disk == indexed == listed, f"step {step}"
        assert not [p for p in settings.knowledge_dir.rglob(".*")]
        assert Trash(settings.trash_db).pending() == [], f"step {step}"
        if on_disk:
            assert (settings.knowledge_dir / rel).read_bytes() == original
        else:
            assert trashed[0].sha256 == hashlib.sha256(original).hexdigest()
            library.restore(trashed[0].entry_id)  # the next run starts where this one did
    else:
        assert 9 not in steps, "delete-then-restore never finished"
    assert (settings.knowledge_dir / rel).read_bytes() == original
