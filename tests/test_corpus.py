"""The xinhua news sample: every line becomes an article, nothing is lost, no date is invented."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.knowledge.corpus import parse_line, read_corpus, write_corpus_knowledge
from bot.knowledge.articles import load_knowledge, normalize_body, parse_article, render_article
from conftest import XINHUA

ID = re.compile(r"xinhua-(part-\d+)-(\d+)")


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def corpus_lines() -> dict[str, str]:
    """{"part-1.txt:12": line} for every non-blank line, read independently of bot.corpus."""
    lines = {}
    for path in sorted(XINHUA.glob("part-*.txt")):
        for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
            if line.strip():
                lines[f"{path.name}:{n}"] = line
    return lines


@pytest.fixture(scope="module")
def lines() -> dict[str, str]:
    return corpus_lines()


@pytest.fixture(scope="module")
def articles() -> dict[str, object]:
    return {a.id: a for a in read_corpus(XINHUA)}


def article_at(articles, where: str):
    name, line_no = where.split(":")
    return articles[f"xinhua-{name.removesuffix('.txt')}-{line_no}"]


def test_every_line_becomes_one_article(lines, articles):
    assert len(lines) == 3860
    assert len(articles) == len(lines)  # the dict would have collapsed duplicate ids
    assert {a.source_file for a in articles.values()} == set(lines)


def test_articles_are_well_formed(articles):
    for a in articles.values():
        stem, line_no = ID.fullmatch(a.id).groups()
        assert a.source_file == f"{stem}.txt:{line_no}"
        assert a.title.strip() and len(a.title) <= 40, a.id
        assert a.title == " ".join(a.title.split()), a.id
        assert a.body.strip() and a.body == normalize_body(a.body), a.id
        assert a.kind == "news"
        if a.date:
            assert dt.date.fromisoformat(a.date), a.id


def test_no_text_is_lost(lines, articles):
    """Evidence strings are searched in the passages: the body must keep every word after the line's prefix."""
    for where, line in lines.items():
        body = squeeze(article_at(articles, where).body)
        assert squeeze(line).endswith(body), where
        assert len(body) >= len(squeeze(line.partition("，正文：")[2])), where


def test_long_lines_are_split_into_paragraphs(articles):
    bodies = [a.body for a in articles.values() if len(a.body) > 600]
    assert bodies
    assert all("\n" in body for body in bodies)


@pytest.mark.parametrize("where, date, title_start, body_start", [
    ("part-1.txt:1", "2023-07-28", "7月27日晚，中国驻德国大使馆", "人民网柏林7月28日电"),  # [ 2023-07-28 16：40 ]
    ("part-1.txt:4", "", "参考消息网8月16日报道", "参考消息网8月16日报道"),  # 08/16  13:50 (no year)
    ("part-1.txt:6", "", "世名科技", "世名科技(12.340"),  # 07-20 22:43 (no year)
    ("part-1.txt:21", "", "进入暑期和旅游旺季", "本报北京7月26日电"),  # leading ，正文： (dateline is no date)
    ("part-1.txt:229", "2023-07-26", "当地时间25日", "当地时间25日"),  # 2023/07/26 ，
    ("part-1.txt:996", "2023-07-26", "韩国国家报勋部24日表示", "【环球时报驻韩国特约记者"),  # 发布时间：
    ("part-2.txt:1", "2023-07-25", "崂山区中韩街道打造“张村河之夜”", "原标题：崂山区"),  # 原标题：
    ("part-2.txt:16", "2023-08-03", "民族要复兴，乡村必振兴。", "民族要复兴"),  # 23-08-03 21:32
    ("part-2.txt:47", "2023-08-15", "今年第7号台风“兰恩”15日连续两次登陆日本", "新华社东京8月15日电"),  # 202308/15
    ("part-2.txt:58", "2023-07-25", "今早", "今早，在福冈游泳世锦赛"),  # 2023年07月25日，
    ("part-2.txt:60", "", "北京大学校友网截屏。", "北京大学校友网截屏。"),  # 来源：中国青年报客户端，
    ("part-2.txt:102", "2023-08-07", "综述：法国多地打破高温纪录", "新华社巴黎8月6日电"),  # 华夏经纬网 > 新闻 >
])
def test_line_shapes(articles, where, date, title_start, body_start):
    a = article_at(articles, where)
    assert a.date == date
    assert a.date_basis == ("corpus line timestamp" if date else "")
    assert a.title.startswith(title_start), a.title
    assert a.body.startswith(body_start), a.body[:40]


@pytest.mark.parametrize("line, date, body", [
    ("2023年07月25日，今早，比赛开始。", "2023-07-25", "今早，比赛开始。"),
    ("07-25 14:25，海上风电并网。", "", "海上风电并网。"),
    ("来源：中国青年报客户端，北京大学校友网截屏。", "", "北京大学校友网截屏。"),
    ("华夏经纬网 > 新闻 > 港澳新闻\xa0\xa02023-07-29 10:35:11  ，正文：澳门失业率为2.8%。", "2023-07-29",
     "澳门失业率为2.8%。"),
    ("2023-02-30 10:00，正文：日期不存在。", "", "日期不存在。"),
    ("7月25日，记者从市里获悉。", "", "7月25日，记者从市里获悉。"),  # a dateline is text, not a prefix
])
def test_prefix_without_or_with_body_mark(line, date, body):
    a = parse_line(line, "part-9", 3)
    assert (a.id, a.date, a.body) == ("xinhua-part-9-3", date, body)


def test_original_title_printed_twice_is_taken_once():
    a = parse_line("2023-07-24 10:00，正文：原标题：活久见！男子含着蟑螂下馆子活久见！男子含着蟑螂下馆子 近日北京发生一起案件。",
                   "part-1", 1)
    assert a.title == "活久见！男子含着蟑螂下馆子"


def test_long_first_sentence_is_cut_at_a_clause_not_inside_a_number():
    a = parse_line("，正文：" + "今年上半年全市规模以上工业增加值同比增长12.5%，其中高技术制造业增加值增长23.4%，"
                   "装备制造业增长15.1%，拉动作用明显。", "part-1", 1)
    assert a.title == "今年上半年全市规模以上工业增加值同比增长12.5%"


def test_line_that_is_only_a_prefix_keeps_its_words():
    a = parse_line("2023-07-27 09:00，正文：", "part-1", 1)
    assert a.title and squeeze(a.body) == "2023-07-2709:00，正文："


def test_line_of_punctuation_still_gets_a_title():
    a = parse_line("，正文：，，，：：", "part-2", 7)
    assert a.title == "part-2 第7条" and a.body == "，，，：："


MESSY = st.text(st.sampled_from(list("，。！？；：、“”《》【】（）()[]-/:;,.!?'\"#>%0123456789 \t\xa0\u3000\u200b\r\x0c\x85"
                                     "\u2028\ufeff正文原标题来源年月日卫东区ab")), min_size=1, max_size=80)


@settings(max_examples=300, deadline=None)
@given(st.one_of(MESSY, st.text(min_size=1, max_size=80)))
def test_any_line_becomes_an_article_that_survives_its_file(line):
    """Whatever a line holds, it yields a titled article whose .md file loads back unchanged."""
    line = line.replace("\n", " ")
    a = parse_line(line, "part-1", 1)
    if not line.strip():
        assert a is None
        return
    assert a.title and a.body and squeeze(line).endswith(squeeze(a.body))
    loaded = parse_article(render_article(a), f"{a.id}.md")
    assert (loaded.id, loaded.title, loaded.body, loaded.date) == (a.id, a.title, a.body, a.date)


@pytest.mark.parametrize("line", ["", "   ", "\t\xa0 "])
def test_blank_lines_are_skipped(line):
    assert parse_line(line, "part-1", 1) is None


@pytest.fixture
def small_corpus(tmp_path):
    """Three parts (part-10 sorts after part-2), a blank line, a duplicate line, a stray CR and a bad byte."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "part-1.txt").write_bytes("2023-07-01，正文：第一篇。\n\n07-02 10:00，正文：第二篇。\n".encode())
    (corpus / "part-2.txt").write_bytes("，正文：重复的一行。\n，正文：重复的一行。\n".encode()
                                        + "，正文：有回车\r的一行。\n".encode() + b"\xff\xfe broken \xe4\xbd\n")
    (corpus / "part-10.txt").write_bytes("2023-08-01，正文：最后一篇。".encode())
    (corpus / "README.md").write_text("not a part", encoding="utf-8")
    return corpus


def test_read_corpus_order_ids_and_limit(small_corpus):
    ids = [a.id for a in read_corpus(small_corpus)]
    assert ids == ["xinhua-part-1-1", "xinhua-part-1-3", "xinhua-part-2-1", "xinhua-part-2-2", "xinhua-part-2-3",
                   "xinhua-part-2-4", "xinhua-part-10-1"]
    assert [a.id for a in read_corpus(small_corpus, limit=3)] == ids[:3]
    assert list(read_corpus(small_corpus, limit=0)) == []


def test_read_corpus_survives_odd_bytes(small_corpus):
    by_id = {a.id: a for a in read_corpus(small_corpus)}
    assert by_id["xinhua-part-2-1"].body == by_id["xinhua-part-2-2"].body == "重复的一行。"
    assert squeeze(by_id["xinhua-part-2-3"].body) == "有回车的一行。"
    assert "broken" in by_id["xinhua-part-2-4"].body


def test_written_knowledge_loads_back_unchanged(tmp_path, articles):
    """The whole corpus as a knowledge folder: no file fails to load and nothing changes on the way."""
    out = tmp_path / "xinhua"
    assert write_corpus_knowledge(XINHUA, out) == len(articles)
    load = load_knowledge(tmp_path)
    assert load.errors == []
    assert len(load.articles) == len(articles)
    for loaded in load.articles:
        original = articles[loaded.id]
        assert loaded.path == f"xinhua/{loaded.id}.md"
        assert (loaded.title, loaded.body, loaded.date, loaded.date_basis, loaded.kind, loaded.source_file) == (
            original.title, original.body, original.date, original.date_basis, original.kind, original.source_file)


def test_write_corpus_knowledge_limit(tmp_path):
    assert write_corpus_knowledge(XINHUA, tmp_path, limit=4) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"xinhua-part-1-{n}.md" for n in range(1, 5)]
