"""Knowledge files: .md with front matter or .txt with a title line; a bad file is an error naming it, never a crash."""
from __future__ import annotations

import os
import shutil

import pytest

import bot.knowledge.articles
from bot.knowledge.articles import (KnowledgeError, KnowledgeFolder, knowledge_files, load_knowledge, normalize_body,
                                    parse_article, render_article)
from conftest import SEED_KNOWLEDGE

GOOD_MD = """---
id: good-one
title: 卫东区新建社区食堂
date: 2023-03-06
kind: news
reporters: 记者 李明
---

3月6日，卫东区首家社区食堂开业。

每天可为200余名老人提供午餐。
"""


def write(root, rel, content: str | bytes):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def errors_by_path(load) -> dict[str, KnowledgeError]:
    return {e.path: e for e in load.errors}


def test_markdown_article_fields(tmp_path):
    write(tmp_path, "articles/good.md", GOOD_MD)
    (a,) = load_knowledge(tmp_path).articles
    assert (a.id, a.title, a.date, a.kind, a.reporters, a.path) == (
        "good-one", "卫东区新建社区食堂", "2023-03-06", "news", ("记者 李明",), "articles/good.md")
    assert a.body == "3月6日，卫东区首家社区食堂开业。\n每天可为200余名老人提供午餐。"


def test_txt_article_first_line_is_title(tmp_path):
    write(tmp_path, "notes/Opening Hours.txt", "\ufeff办事大厅开放时间\n\n周一至周五 9:00-17:00。\n  周六上午 9:00-12:00。\n")
    (a,) = load_knowledge(tmp_path).articles
    assert (a.id, a.title, a.path) == ("opening-hours", "办事大厅开放时间", "notes/Opening Hours.txt")
    assert a.body == "周一至周五 9:00-17:00。\n周六上午 9:00-12:00。"


def test_id_defaults_to_file_name(tmp_path):
    write(tmp_path, "a/低保 申请.md", "---\ntitle: 低保申请\n---\n正文。\n")
    assert load_knowledge(tmp_path).articles[0].id == "低保-申请"


def test_raw_readme_hidden_and_other_files_are_skipped(tmp_path):
    write(tmp_path, "raw/page.txt", "这是印刷页面\n不是文章")
    write(tmp_path, "README.md", "# how to edit")
    write(tmp_path, ".drafts/draft.md", GOOD_MD)
    write(tmp_path, "articles/table.csv", "a,b")
    write(tmp_path, "articles/good.md", GOOD_MD)
    load = load_knowledge(tmp_path)
    assert [a.path for a in load.articles] == ["articles/good.md"]
    assert load.errors == []


def test_seed_knowledge_loads_without_errors():
    load = load_knowledge(SEED_KNOWLEDGE)
    assert load.errors == []
    assert len(load.articles) == 11
    assert all(a.date == "2017-07-31" for a in load.articles)


@pytest.mark.parametrize("front_matter, line", [
    ("title: 好标题\nsubtitle: a: b\n", 3),  # "mapping values are not allowed here"
    ("title: 好标题\n\tdate: 2017-07-31\n", 3),  # a tab
    ("id: x\ntitle: \"未闭合的引号\nkind: news\n", 3),  # YAML notices at the end; the quote opens on line 3
])
def test_broken_front_matter_names_file_and_line(tmp_path, front_matter, line):
    write(tmp_path, "articles/bad.md", f"---\n{front_matter}---\n正文。\n")
    (error,) = load_knowledge(tmp_path).errors
    assert error.path == "articles/bad.md"
    assert "front matter" in error.message
    assert error.line == line, str(error)


@pytest.mark.parametrize("text, message", [
    ("没有前言的正文。\n", "missing YAML front matter"),
    ("---\nkind: news\n---\n正文。\n", "no 'title'"),
    ("---\n- 列表\n---\n正文。\n", "no 'title'"),
])
def test_front_matter_without_a_title_is_reported_at_line_1(tmp_path, text, message):
    write(tmp_path, "bad.md", text)
    (error,) = load_knowledge(tmp_path).errors
    assert (error.path, error.line) == ("bad.md", 1)
    assert message in error.message
    assert str(error).startswith("bad.md:1: ")


@pytest.mark.parametrize("text, message", [
    ("---\ntitle: 标题\nkind: video\n---\n正文。\n", "kind must be one of"),
    ("---\ntitle: 标题\ndate: 20170731\n---\n正文。\n", "date must look like YYYY-MM-DD"),
    ("---\ntitle: 标题\n---\n\n   \n", "no body text"),
    ("只有标题\n", "needs a title line and at least one body line"),
])
def test_invalid_values_are_errors(tmp_path, text, message):
    name = "one.txt" if not text.startswith("---") else "one.md"
    write(tmp_path, name, text)
    (error,) = load_knowledge(tmp_path).errors
    assert error.path == name and message in error.message


@pytest.mark.parametrize("date", ["2017-02-30", "2017-13-01"])
def test_impossible_calendar_date_is_an_error_not_a_crash(tmp_path, date):
    """YAML turns an unquoted date into a datetime.date and raises ValueError on an impossible one:
    that must become this file's error while the other files still load."""
    write(tmp_path, "articles/good.md", GOOD_MD)
    write(tmp_path, "articles/bad-date.md", f"---\ntitle: 标题\ndate: {date}\n---\n正文。\n")
    load = load_knowledge(tmp_path)
    assert [a.id for a in load.articles] == ["good-one"]
    assert list(errors_by_path(load)) == ["articles/bad-date.md"]


def test_non_utf8_file_is_an_error_and_others_still_load(tmp_path):
    write(tmp_path, "articles/gbk.md", GOOD_MD.replace("good-one", "gbk").encode("gbk"))
    write(tmp_path, "articles/good.md", GOOD_MD)
    load = load_knowledge(tmp_path)
    assert [a.id for a in load.articles] == ["good-one"]
    error = errors_by_path(load)["articles/gbk.md"]
    assert "not UTF-8" in error.message and "offset" in error.message


@pytest.mark.parametrize("content", ["", "  \n\n\t\n", b""])
def test_empty_file_is_an_error(tmp_path, content):
    write(tmp_path, "empty.md", content)
    write(tmp_path, "empty.txt", content)
    load = load_knowledge(tmp_path)
    assert load.articles == []
    assert {e.path: e.message for e in load.errors} == {"empty.md": "file is empty", "empty.txt": "file is empty"}


def test_duplicate_id_keeps_the_first_and_names_both_files(tmp_path):
    write(tmp_path, "a/first.md", GOOD_MD)
    write(tmp_path, "b/second.md", GOOD_MD.replace("卫东区新建社区食堂", "另一篇"))
    load = load_knowledge(tmp_path)
    assert [(a.path, a.title) for a in load.articles] == [("a/first.md", "卫东区新建社区食堂")]
    (error,) = load.errors
    assert error.path == "b/second.md"
    assert "good-one" in error.message and "a/first.md" in error.message
    assert load.failed_paths == {"b/second.md"}


def test_one_bad_file_among_many(tmp_path):
    shutil.copytree(SEED_KNOWLEDGE, tmp_path / "k")
    write(tmp_path / "k", "articles/zz-broken.md", "---\ntitle: [x\n---\n正文。\n")
    load = load_knowledge(tmp_path / "k")
    assert len(load.articles) == 11
    assert load.failed_paths == {"articles/zz-broken.md"}


def test_files_are_listed_in_path_order_by_part(tmp_path):
    for rel in ("a/x.md", "a-b/x.md", "a/b/y.txt", "b.md", "raw/page.txt", ".hidden/x.md", "a/.x.md.part",
                "README.md", "notes.json"):
        write(tmp_path, rel, GOOD_MD)
    assert [p.relative_to(tmp_path).as_posix() for p in knowledge_files(tmp_path)] == [
        "a/b/y.txt", "a/x.md", "a-b/x.md", "b.md"]


def test_a_folder_parses_only_the_files_that_changed_and_loads_like_load_knowledge(tmp_path, monkeypatch):
    shutil.copytree(SEED_KNOWLEDGE, tmp_path / "k")
    root = tmp_path / "k"
    parsed: list[str] = []
    real = bot.knowledge.articles.read_article_file

    def counted(path, root):
        parsed.append(path.relative_to(root).as_posix())
        return real(path, root)
    monkeypatch.setattr(bot.knowledge.articles, "read_article_file", counted)
    folder = KnowledgeFolder(root)
    assert folder.load() == load_knowledge(root) and len(parsed) == 22  # both read all 11
    parsed.clear()
    assert folder.load() == load_knowledge(root) and len(parsed) == 11  # only load_knowledge read them again
    first, second = sorted(p for p in (root / "articles").iterdir())[:2]
    first.write_text(first.read_text(encoding="utf-8").replace("卫东", "卫东区区", 1), encoding="utf-8")
    second.unlink()
    write(root, "articles/zz-new.md", GOOD_MD)
    write(root, "articles/zz-twin.md", GOOD_MD.replace("卫东区新建社区食堂", "同一编号"))
    stat = first.stat()
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same time, other size: still read again
    parsed.clear()
    load = folder.load()
    assert sorted(parsed) == [f"articles/{first.name}", "articles/zz-new.md", "articles/zz-twin.md"]
    assert load == load_knowledge(root)
    assert f"articles/{second.name}" not in {a.path for a in load.articles}
    assert load.failed_paths == {"articles/zz-twin.md"}  # a duplicate id, as load_knowledge reports it


@pytest.mark.parametrize("front_matter", [
    "id: a\ntitle: 卫东区\ndate: 2023-03-06\nreporters: [记者 李明, 王芳]",
    "title: '引号里的: 冒号'\nsubtitle: \"双引号\\t转义\"\nkind: photo\nreporters:\n  - 甲\n  - 乙",
    "title: 数字标题\nid: 20170731\ndate: '2017-07'",
    "title: [x",  # broken: libyaml rejects it, NoAliasLoader names the line
    "title: ok\ndate: 2017-02-30",  # an impossible date
    "base: &b 卫东\ntitle: *b",  # an alias: refused
])
def test_front_matter_reads_the_same_with_and_without_libyaml(tmp_path, monkeypatch, front_matter):
    write(tmp_path, "a.md", f"---\n{front_matter}\n---\n正文。\n")
    fast = load_knowledge(tmp_path)
    monkeypatch.setattr(bot.knowledge.articles, "FAST_LOADER", None)
    assert fast == load_knowledge(tmp_path)
    if "&" in front_matter:
        assert not fast.articles and "anchors and aliases" in fast.errors[0].message


def test_the_seed_reads_the_same_with_and_without_libyaml(monkeypatch):
    fast = load_knowledge(SEED_KNOWLEDGE)
    monkeypatch.setattr(bot.knowledge.articles, "FAST_LOADER", None)
    assert fast == load_knowledge(SEED_KNOWLEDGE) and len(fast.articles) == 11


def test_normalize_body_drops_blank_lines_and_edge_spaces():
    assert normalize_body("  第一段。 \n\n\n\t第二段。\n  \n") == "第一段。\n第二段。"


def test_render_then_parse_is_identity_for_the_seed():
    for a in load_knowledge(SEED_KNOWLEDGE).articles:
        assert parse_article(render_article(a), a.path) == a
