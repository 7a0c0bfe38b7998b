"""Chunking for Chinese: sentence-aware passages with one sentence of overlap, never cutting a number or a name."""
from __future__ import annotations

import re
from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.knowledge.chunking import MAX_CHARS, MIN_CHARS, OVERLAP_MAX_CHARS, Chunk, chunk_article, split_sentences
from bot.knowledge.corpus import read_corpus
from bot.knowledge.articles import Article, load_knowledge
from conftest import SEED_KNOWLEDGE, XINHUA

SENTENCE_END = re.compile(r"[。！？；!?;…][”’」』）)》\"']*$")


@pytest.fixture(scope="module")
def seed_articles() -> list[Article]:
    return load_knowledge(SEED_KNOWLEDGE).articles


@pytest.fixture(scope="module")
def news_articles() -> list[Article]:
    return list(islice(read_corpus(XINHUA), 300))


def article(body: str, **fields) -> Article:
    return Article(**{"id": "a", "title": "标题", "date": "2023-07-25", "kind": "news", "path": "a.md",
                      "body": body, **fields})


def filler(n: int, char: str = "甲") -> str:
    return char * n


def boundaries(chunks) -> set[int]:
    return {c.start for c in chunks} | {c.end for c in chunks}


def assert_well_formed(a: Article) -> None:
    """Slices of the body, in order, covering every non-space character, each overlapping the previous by at
    most one sentence."""
    chunks = chunk_article(a)
    assert chunks
    covered = set()
    for prev, chunk in zip([None] + chunks, chunks):
        assert chunk.text == a.body[chunk.start:chunk.end] and chunk.text.strip() == chunk.text
        covered.update(range(chunk.start, chunk.end))
        if prev is not None:
            assert prev.start <= chunk.start and prev.end < chunk.end
            assert chunk.start <= prev.end or not a.body[prev.end:chunk.start].strip()
            overlap = a.body[chunk.start:prev.end]
            assert len(overlap) <= OVERLAP_MAX_CHARS
            assert len(split_sentences(overlap)) <= 1
    assert all(i in covered for i, ch in enumerate(a.body) if not ch.isspace())


def test_chunks_carry_article_fields_and_offsets(seed_articles):
    for a in seed_articles:
        for chunk in chunk_article(a):
            assert (chunk.article_id, chunk.title, chunk.date, chunk.kind, chunk.path) == (
                a.id, a.title, a.date, a.kind, a.path)
            meta = chunk.metadata()
            assert (meta["start"], meta["end"], meta["article_id"]) == (chunk.start, chunk.end, a.id)


def test_a_chunk_read_back_from_its_index_record_is_the_chunk_written(seed_articles):
    for a in seed_articles:
        for chunk in chunk_article(a):
            assert Chunk.from_record(chunk.id, chunk.text, chunk.metadata()) == chunk


def test_indexed_text_is_title_then_passage_and_stored_text_is_the_passage(seed_articles):
    chunk = chunk_article(seed_articles[0])[0]
    assert chunk.indexed_text == f"{seed_articles[0].title}\n{chunk.text}"
    assert not chunk.text.startswith(seed_articles[0].title)


def test_seed_and_news_chunks_are_well_formed(seed_articles, news_articles):
    for a in seed_articles + news_articles:
        assert_well_formed(a)


def test_chunks_end_at_sentence_ends(seed_articles):
    for a in seed_articles:
        for chunk in chunk_article(a):
            at_paragraph_end = chunk.end == len(a.body) or a.body[chunk.end] == "\n"
            assert SENTENCE_END.search(chunk.text) or at_paragraph_end, chunk.text[-20:]


def test_consecutive_chunks_share_one_sentence():
    sentences = [f"第{n}句话说明了第{n}件事情，内容比较具体，字数也足够多。" for n in range(1, 30)]
    a = article("".join(sentences))
    chunks = chunk_article(a)
    assert len(chunks) > 2
    for prev, chunk in zip(chunks, chunks[1:]):
        shared = a.body[chunk.start:prev.end]
        assert shared in sentences


def test_long_last_sentence_is_not_repeated():
    long_sentence = filler(OVERLAP_MAX_CHARS + 30) + "。"
    a = article(filler(200, "乙") + "。" + long_sentence + filler(300, "丙") + "。")
    chunks = chunk_article(a)
    assert len(chunks) == 3
    assert all(prev.end <= chunk.start for prev, chunk in zip(chunks, chunks[1:]))


def test_closing_quote_stays_with_its_sentence():
    body = filler(300) + "。他说：“今天的会议很重要。”" + filler(200, "乙") + "。"
    chunks = chunk_article(article(body))
    quote_end = body.index("。”") + 2
    assert quote_end in boundaries(chunks)
    assert quote_end - 1 not in boundaries(chunks)


def test_short_article_is_one_chunk():
    a = article("卫东区今年新建社区食堂12家。")
    (chunk,) = chunk_article(a)
    assert (chunk.start, chunk.end, chunk.text) == (0, len(a.body), a.body)


def test_chunk_ids_are_content_hashes(seed_articles):
    a = seed_articles[0]
    ids = [c.id for c in chunk_article(a)]
    assert ids == [c.id for c in chunk_article(Article(**vars(a)))]
    assert len(set(ids)) == len(ids)
    for change in ({"title": a.title + "（修订）"}, {"date": "2017-08-01"}, {"kind": "photo"}):
        changed = Article(**{**vars(a), **change})
        assert not set(ids) & {c.id for c in chunk_article(changed)}, change
    edited = Article(**{**vars(a), "body": a.body + "\n本文有补充。"})
    edited_ids = [c.id for c in chunk_article(edited)]
    assert edited_ids[:len(ids) - 1] == ids[:-1] and edited_ids[-1] not in ids  # only the tail changes


def test_chunk_sizes_stay_in_range(seed_articles, news_articles):
    """~150–350 characters: only an article's last chunk may be shorter, and a chunk holds at most one
    sentence (at most MAX_CHARS) beyond a group that reached MIN_CHARS."""
    for a in seed_articles + news_articles:
        chunks = chunk_article(a)
        for chunk in chunks[:-1]:
            assert len(chunk.text) >= MIN_CHARS, (a.id, chunk.start, chunk.text)
        for chunk in chunks:
            assert len(chunk.text) <= MIN_CHARS + MAX_CHARS, (a.id, chunk.start)


@pytest.mark.parametrize("sentence_lengths", [(29, 52, 341, 101), (99, 301, 101)])
def test_short_sentences_before_a_long_one_are_not_a_chunk_of_their_own(sentence_lengths):
    """Flushing a group below MIN_CHARS because the next sentence is long leaves a fragment that the next
    chunk largely (or wholly) repeats. Shapes taken from xinhua part-1 lines 60 and 237."""
    body = "".join(filler(n - 1, char) + "。" for n, char in zip(sentence_lengths, "甲乙丙丁"))
    chunks = chunk_article(article(body))
    assert all(len(c.text) >= MIN_CHARS for c in chunks[:-1]), [len(c.text) for c in chunks]
    assert not any(b.start <= a.start and a.end <= b.end for a, b in zip(chunks, chunks[1:]))


RUN_ON_TOKENS = [  # (text, the part that must stay whole)
    ("于12:30召开", "12:30"),
    ("共投入1,250万元", "1,250万"),
    ("增长了35.6%", "35.6%"),
    ("印发《关于推进城市更新，加快老旧小区改造的意见》", "《关于推进城市更新，加快老旧小区改造的意见》"),
    ("称为“城市更新，美好生活”行动", "“城市更新，美好生活”"),
]


@pytest.mark.parametrize("token, protected", RUN_ON_TOKENS)
def test_run_on_sentence_is_not_cut_inside_a_number_or_quoted_name(token, protected):
    """A sentence longer than MAX_CHARS is cut at a clause; a comma or colon inside a number or a quoted
    name is not a clause end. The token is placed so that the cut would otherwise fall inside it."""
    for offset in range(1, len(protected)):
        start = MAX_CHARS - offset
        body = filler(start - token.index(protected)) + token + filler(200, "乙") + "。"
        cuts = boundaries(chunk_article(article(body)))
        assert not any(start < cut < start + len(protected) for cut in cuts), (protected, offset)


def test_sentence_end_inside_a_book_title_is_not_a_cut():
    """《你好！李焕英》 is one name: its ！ ends no sentence."""
    name = "《你好！李焕英》"
    for lead in range(MAX_CHARS - 20, MAX_CHARS + 5):
        body = filler(lead) + "。电影" + name + "重映，" + filler(120, "乙") + "。"
        name_start = body.index(name)
        cuts = boundaries(chunk_article(article(body)))
        assert not any(name_start < cut < name_start + len(name) for cut in cuts), lead


SENTENCE_PIECES = st.one_of(
    st.text(alphabet="卫东区社区居民办理低保补贴", min_size=1, max_size=120),
    st.sampled_from(["12.5%", "3,000", "8500万元", "2017年7月31日", "《四城联创方案》", "“八小门店”", "9:30"]),
)


@st.composite
def bodies(draw) -> str:
    paragraphs = []
    for _ in range(draw(st.integers(1, 4))):
        sentences = draw(st.lists(st.lists(SENTENCE_PIECES, min_size=1, max_size=6), min_size=1, max_size=12))
        ends = draw(st.lists(st.sampled_from(["。", "！", "？", "；", "。”", "…"]), min_size=len(sentences),
                             max_size=len(sentences)))
        paragraphs.append("".join("".join(s) + e for s, e in zip(sentences, ends)))
    return "\n".join(paragraphs)


@settings(max_examples=150, deadline=None)
@given(bodies())
def test_any_body_chunks_well_formed(body):
    assert_well_formed(article(body))
