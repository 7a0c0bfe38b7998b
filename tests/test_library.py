"""KnowledgeLibrary: staff uploads and deletions reach the files and the index; bad files change nothing."""
from __future__ import annotations

import pytest

from bot.search.index import KnowledgeIndex
from bot.interfaces.library import KnowledgeLibrary, LibraryError
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


@pytest.fixture
def index(fake_scratch_settings) -> KnowledgeIndex:
    return KnowledgeIndex.open(fake_scratch_settings)


@pytest.fixture
def library(fake_scratch_settings, index) -> KnowledgeLibrary:
    return KnowledgeLibrary(fake_scratch_settings, index)


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
    with pytest.raises(LibraryError, match=problem):
        library.add_file(name, data, as_page=as_page)
    assert snapshot(library) == before


def test_deleted_article_is_no_longer_retrieved(library, index, fake_scratch_settings):
    question = "卫东区目前低保保障对象一共有多少户、多少人？"
    assert DIBAO_ARTICLE in top_articles(index, question)
    path = fake_scratch_settings.knowledge_dir / library.article(DIBAO_ARTICLE).path
    change = library.delete(DIBAO_ARTICLE)
    assert change.action == "deleted" and change.chunks_removed >= 1
    assert not path.exists()
    assert DIBAO_ARTICLE not in {c.article_id for c in index.chunks()}
    assert DIBAO_ARTICLE not in top_articles(index, question, k=10)
    assert library.article(DIBAO_ARTICLE) is None
    with pytest.raises(LibraryError, match="没有编号"):
        library.delete(DIBAO_ARTICLE)


def test_uploaded_article_can_be_deleted(library, index):
    library.add_file("hours.md", LIBRARY_MD.encode("utf-8"))
    library.delete("wd-test-library-hours")
    assert "wd-test-library-hours" not in top_articles(index, "社区图书馆晚上开放到几点？", k=10)
    assert library.search("夜间开放") == []
