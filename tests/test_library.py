"""KnowledgeLibrary: staff uploads and deletions reach the files and the index; bad files change nothing; a preview
says what an upload would change and writes nothing."""
from __future__ import annotations

import fcntl
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import pytest

from bot.search.index import KnowledgeIndex
from bot.interfaces.library import FolderBusy, KnowledgeLibrary, LibraryError
from bot.interfaces.preview import MAX_SHOWN_CHARS, MAX_SHOWN_LINES
from bot.search.retrieval import HybridSearch

LIBRARY_MD = """---
id: wd-test-library-hours
title: 卫东区社区图书馆夜间开放
date: 2018-08-15
reporters: [记者 张明]
---

2018年以来,卫东区社区图书馆每周三和周五晚上开放到21点,全区共有12家社区图书馆参加夜间开放。

夜间开放期间新增图书8600册,居民凭身份证即可免费办理借书证。
"""

PAGE_TXT = """

规范摊点管理 优化市容环境

卫东区设立便民早市疏导点

本报讯(记者张明)8月16日,卫东区在鸿鹰小区附近设立便民早市疏导点,每天早上6点到9点开放,共划定摊位86个。

疏导点由区城市管理局负责日常管理,摊主免费入场经营。



方便群众办事 推行容缺受理

卫东区政务服务中心推出周末办

本报讯(记者李华)8月18日起,卫东区政务服务中心在每周六上午开设周末窗口,可办理社保、户籍等23项业务。

周末窗口开放以来,已为群众办理业务460余件。
"""

DIBAO_ARTICLE = "20170731-09"  # 区民政局实现社会救助“无盲区” in the seed knowledge


def top_articles(index: KnowledgeIndex, question: str, k: int = 3) -> list[str]:
    return [p.chunk.article_id for p in HybridSearch(index)(question, k=k).passages]


def snapshot(library: KnowledgeLibrary) -> tuple[dict[str, bytes], set[str]]:
    """Every file under the knowledge folder and every chunk id in the index."""
    files = {p.relative_to(library.root).as_posix(): p.read_bytes()
             for p in library.root.rglob("*") if p.is_file()}
    return files, {c.id for c in library.index.chunks()}


def test_added_markdown_article_is_stored_and_retrievable(library, index, fake_scratch_settings):
    steps = []
    change = library.add_file("图书馆 夜间开放.md", LIBRARY_MD.encode("utf-8"),
                              progress=lambda fraction, text: steps.append(fraction))
    assert change.action == "added"
    assert [f.article_id for f in change.files] == ["wd-test-library-hours"]
    assert change.chunks_added >= 1
    assert "卫东区社区图书馆夜间开放" in change.message()
    stored = fake_scratch_settings.knowledge_dir / change.files[0].path
    assert stored.parent.name == "uploads" and stored.read_text(encoding="utf-8") == LIBRARY_MD
    assert steps == sorted(steps) and steps[-1] == 1.0
    assert top_articles(index, "社区图书馆晚上开放到几点？")[0] == "wd-test-library-hours"
    assert library.article("wd-test-library-hours").title == "卫东区社区图书馆夜间开放"
    assert [a.id for a in library.search("夜间开放")] == ["wd-test-library-hours"]


def test_page_dump_is_split_into_articles(library, index, fake_scratch_settings):
    change = library.add_file("page-0818.txt", PAGE_TXT.encode("utf-8"), as_page=True)
    titles = [f.title for f in change.files]
    assert titles == ["卫东区设立便民早市疏导点", "卫东区政务服务中心推出周末办"]
    for file in change.files:
        assert file.path.startswith("uploads/")
        assert (fake_scratch_settings.knowledge_dir / file.path).is_file()
    ids = {f.article_id: f.title for f in change.files}
    assert ids[top_articles(index, "便民早市疏导点有多少个摊位？")[0]] == "卫东区设立便民早市疏导点"
    assert ids[top_articles(index, "政务服务中心周末窗口能办哪些业务？")[0]] == "卫东区政务服务中心推出周末办"


def test_reupload_of_the_same_file_replaces_it(library, index):
    library.add_file("hours.md", LIBRARY_MD.encode("utf-8"))
    before = {c.id for c in index.chunks() if c.article_id == "wd-test-library-hours"}
    change = library.add_file("hours.md", LIBRARY_MD.replace("21点", "22点").encode("utf-8"), replace=True)
    assert change.action == "replaced" and change.message().startswith("已替换")
    after = [c for c in index.chunks() if c.article_id == "wd-test-library-hours"]
    assert change.chunks_removed >= 1
    assert not before & {c.id for c in after}
    assert any("22点" in c.text for c in after)
    assert [a.id for a in library.search("夜间开放")] == ["wd-test-library-hours"]


BAD_FILES = [
    ("gbk.md", LIBRARY_MD.encode("gbk"), False, "不是 UTF-8 编码"),
    ("broken.md", b"---\ntitle: [unclosed\nid: x\n---\n\nbody text here\n", False, "格式有误"),
    ("no-front-matter.md", "只有正文，没有 front matter。".encode(), False, "front matter"),
    ("no-title.md", "---\nid: notitle\n---\n\n正文。\n".encode(), False, "title"),
    ("report.pdf", b"%PDF-1.4", False, r"只能上传 \.md 或 \.txt"),
    ("empty.txt", b"   \n", False, "是空的"),
    ("page.md", PAGE_TXT.encode(), True, r"整版文本必须是 \.txt"),
    ("not-a-page.txt", "这一行没有标题也没有署名，只是一句话。".encode(), True, "无法从版面文本"),
    ("dup.md", LIBRARY_MD.replace("wd-test-library-hours", DIBAO_ARTICLE).encode(), False, "已被 articles/"),
]


@pytest.mark.parametrize(("name", "data", "as_page", "problem"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_is_rejected_and_nothing_changes(library, name, data, as_page, problem):
    before = snapshot(library)
    for attempt in (library.add_file, library.preview):  # a preview checks exactly what an upload checks
        with pytest.raises(LibraryError, match=problem):
            attempt(name, data, as_page=as_page)
    assert snapshot(library) == before


def test_deleted_article_is_no_longer_retrieved(library, index, fake_scratch_settings):
    question = "卫东区目前低保保障对象一共有多少户、多少人？"
    assert DIBAO_ARTICLE in top_articles(index, question)
    path = fake_scratch_settings.knowledge_dir / library.article(DIBAO_ARTICLE).path
    change = library.delete(DIBAO_ARTICLE)
    assert change.action == "deleted" and change.chunks_removed >= 1
    assert not path.exists()
    assert [e.article_id for e in library.trash()] == [DIBAO_ARTICLE] == [f.article_id for f in change.files]
    assert DIBAO_ARTICLE not in {c.article_id for c in index.chunks()}
    assert DIBAO_ARTICLE not in top_articles(index, question, k=10)
    assert library.article(DIBAO_ARTICLE) is None
    with pytest.raises(LibraryError, match="没有编号"):
        library.delete(DIBAO_ARTICLE)


def test_chunks_left_by_a_file_that_is_gone_are_deleted_and_counted(library, index, fake_scratch_settings):
    path = fake_scratch_settings.knowledge_dir / library.article(DIBAO_ARTICLE).path
    chunks = sum(c.article_id == DIBAO_ARTICLE for c in index.chunks())
    path.unlink()  # removed by hand, not through the console: its chunks stay until an ingest
    change = library.delete(DIBAO_ARTICLE)
    assert change.chunks_removed == chunks >= 1 and change.files[0].path == ""
    assert f"移除 {chunks} 段" in change.message()
    assert DIBAO_ARTICLE not in {c.article_id for c in index.chunks()}


def test_uploaded_article_can_be_deleted(library, index):
    library.add_file("hours.md", LIBRARY_MD.encode("utf-8"))
    library.delete("wd-test-library-hours")
    assert "wd-test-library-hours" not in top_articles(index, "社区图书馆晚上开放到几点？", k=10)
    assert library.search("夜间开放") == []


# ---- preview -------------------------------------------------------------------------------------------------

LIBRARY_MD_2019 = (LIBRARY_MD.replace("卫东区社区图书馆夜间开放", "卫东区社区图书馆延长夜间开放")
                   .replace("到21点", "到22点")
                   + "\n2019年起周六晚上也开放。\n")


def test_a_worker_starting_up_leaves_another_workers_upload_in_flight_alone(library, index, monkeypatch):
    """Two app processes share the folder: the one starting recovers from crashes, and must not take the other's
    staged file for a crash's leftovers (it deleted it, and the upload failed when it came to rename it)."""
    other = KnowledgeLibrary(library.settings, index)  # its own thread lock, as another process has
    indexing, go_on = threading.Event(), threading.Event()
    real_sync = index.sync

    def held_first_sync(*args, **kwargs):  # the upload waits, its file staged, until the other worker has started
        if not indexing.is_set():
            indexing.set()
            go_on.wait(10)
        return real_sync(*args, **kwargs)

    monkeypatch.setattr(index, "sync", held_first_sync)
    with ThreadPoolExecutor(2) as pool:
        upload = pool.submit(library.add_file, "hours.md", LIBRARY_MD.encode("utf-8"))
        assert indexing.wait(10)
        recovery = pool.submit(other.recover)
        wait([recovery], timeout=0.5)  # room for a recovery that does not wait to do its damage
        go_on.set()
        change = upload.result(10)
        assert recovery.result(10) == []
    assert (library.root / change.files[0].path).read_text(encoding="utf-8") == LIBRARY_MD
    assert "wd-test-library-hours" in {c.article_id for c in index.chunks()}
    assert not list(library.root.rglob(".*"))


def test_a_write_lock_held_too_long_is_refused_and_changes_nothing(library, index, caplog):
    """A process stuck in the middle of a write: staff get a message, a starting worker starts without recovering."""
    impatient = KnowledgeLibrary(library.settings, index, write_wait_seconds=0.2)
    before = snapshot(library)
    stuck = os.open(library.root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(stuck, fcntl.LOCK_EX)
        with pytest.raises(FolderBusy, match="另一个进程正在修改资料"):
            impatient.add_file("hours.md", LIBRARY_MD.encode("utf-8"))
        with pytest.raises(FolderBusy):
            impatient.delete(DIBAO_ARTICLE)
        with caplog.at_level(logging.WARNING, logger="bot.interfaces.library"):
            assert impatient.recover() == []
        assert "recovery skipped" in caplog.text
        assert snapshot(library) == before
    finally:
        os.close(stuck)
    assert impatient.add_file("hours.md", LIBRARY_MD.encode("utf-8")).action == "added"


def test_preview_of_a_new_file_says_so_and_writes_nothing(library):
    before = snapshot(library)
    [change] = library.preview("hours.md", LIBRARY_MD.encode())
    assert (change.path, change.replacing, change.new_id, change.old_title) == \
        ("uploads/hours.md", False, "wd-test-library-hours", "")
    assert change.describe() == "将新增 uploads/hours.md：《卫东区社区图书馆夜间开放》（编号 wd-test-library-hours），正文 2 行。"
    assert snapshot(library) == before and library.trash() == []


def test_preview_of_a_replacement_counts_the_changed_paragraphs(library):
    library.add_file("hours.md", LIBRARY_MD.encode())
    before = snapshot(library)
    [change] = library.preview("hours.md", LIBRARY_MD_2019.encode())
    assert snapshot(library) == before
    assert (change.replacing, change.old_title, change.new_title) == \
        (True, "卫东区社区图书馆夜间开放", "卫东区社区图书馆延长夜间开放")
    assert (change.lines_added, change.lines_removed) == (2, 1)
    assert change.changed_lines[0].startswith("- 2018年以来") and "22点" in change.changed_lines[1]
    assert change.changed_lines[2] == "+ 2019年起周六晚上也开放。"
    assert change.describe() == ("将替换 uploads/hours.md：标题《卫东区社区图书馆夜间开放》→《卫东区社区图书馆延长夜间开放》，"
                                 "正文新增 2 行、删除 1 行。")
    with pytest.raises(LibraryError, match="已经存在"):  # a preview is no licence: replacing still needs replace
        library.add_file("hours.md", LIBRARY_MD_2019.encode())


def test_preview_of_a_page_dump_lists_each_article(library):
    changes = library.preview("page-0818.txt", PAGE_TXT.encode(), as_page=True)
    assert [c.new_title for c in changes] == ["卫东区设立便民早市疏导点", "卫东区政务服务中心推出周末办"]
    assert not any(c.replacing for c in changes)


def test_preview_shows_a_few_clipped_lines_of_a_long_change(library):
    library.add_file("hours.md", LIBRARY_MD.encode())
    body = "\n\n".join(f"第{i}条：" + "夜间开放期间的安排" * 10 for i in range(20))
    [change] = library.preview("hours.md", LIBRARY_MD.split("\n\n2018")[0].encode() + b"\n\n" + body.encode())
    assert (change.lines_added, change.lines_removed) == (20, 2)
    assert len(change.changed_lines) == MAX_SHOWN_LINES
    assert all(len(line) <= MAX_SHOWN_CHARS for line in change.changed_lines)
    assert change.changed_lines[-1].endswith("…")


def test_preview_names_a_changed_id_and_an_unreadable_old_file(library):
    library.add_file("hours.md", LIBRARY_MD.encode())
    [change] = library.preview("hours.md", LIBRARY_MD.replace("wd-test-library-hours", "wd-hours-2019").encode())
    assert change.describe() == ("将替换 uploads/hours.md：标题《卫东区社区图书馆夜间开放》不变，编号 wd-test-library-hours → "
                                 "wd-hours-2019，正文新增 0 行、删除 0 行。")
    (library.root / "uploads" / "broken.md").write_text("no front matter\n", encoding="utf-8")
    [change] = library.preview("broken.md", LIBRARY_MD.replace("wd-test-library-hours", "wd-broken").encode())
    assert change.replacing and change.old_title == "" and change.lines_removed == 0
    assert change.describe().startswith("将替换 uploads/broken.md：原文件无法读取，换为《卫东区社区图书馆夜间开放》，正文新增 2 行")
