"""Chunking for Chinese: sentence-aware passages of about 150–350 characters with one sentence of overlap.

Splits happen only at sentence ends (。！？； and their closing quotes) or paragraph ends, so a number,
percentage or quoted name is never cut; a run-on sentence longer than the maximum is cut at a comma.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from bot.knowledge.articles import Article
from bot.text import CLOSERS, sentence_end

MIN_CHARS = 150
MAX_CHARS = 350
OVERLAP_MAX_CHARS = 120  # a longer last sentence is not repeated: it would dominate the next chunk

# A passage also keeps a closing title mark or ASCII quote with the sentence it ends.
PASSAGE_CLOSERS = CLOSERS + "》\"'"
SENTENCE_END = re.compile(rf"{sentence_end(closers=PASSAGE_CLOSERS)}|\n")
CLAUSE_END = re.compile(r"[，,、：:]")
# Characters that must not sit on either side of a cut (digits, decimal points, percent, units glued to numbers).
NUMBERISH = re.compile(r"[0-9０-９.．%％万亿千百十]")


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int


@dataclass(frozen=True)
class Chunk:
    id: str
    article_id: str
    title: str
    date: str
    kind: str
    path: str
    start: int  # character offsets of the passage in the article body
    end: int
    text: str  # the stored passage, exactly body[start:end]

    @property
    def indexed_text(self) -> str:
        """The passage with its heading as context: what is embedded and keyword-indexed, so also what the
        reranker and the answer checks read the passage as."""
        return f"{self.title}\n{self.text}"

    def metadata(self) -> dict:
        return {"article_id": self.article_id, "title": self.title, "date": self.date, "kind": self.kind,
                "path": self.path, "start": self.start, "end": self.end}

    @classmethod
    def from_record(cls, chunk_id: str, document: str, meta: dict) -> Chunk:
        """The chunk as read back from the index, the inverse of ``metadata``: retrieval never needs the Article.
        The id is the stored one, never recomputed, so reading cannot change it."""
        return cls(id=chunk_id, article_id=meta["article_id"], title=meta["title"], date=meta.get("date", ""),
                   kind=meta.get("kind", "news"), path=meta.get("path", ""), start=int(meta["start"]),
                   end=int(meta["end"]), text=document)


def split_sentences(text: str) -> list[Sentence]:
    """Sentence spans covering ``text`` (whitespace-only spans dropped), cut long ones at clauses."""
    spans, pos = [], 0
    for match in SENTENCE_END.finditer(text):
        if match.group() != "\n" and _inside_title(text, pos, match.start()):
            continue  # 《你好！李焕英》 is a name, not two sentences
        spans.append((pos, match.end()))
        pos = match.end()
    if pos < len(text):
        spans.append((pos, len(text)))
    sentences = []
    for start, end in spans:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            sentences.extend(_cut_run_on(text, start, end))
    return sentences


def _cut_run_on(text: str, start: int, end: int) -> list[Sentence]:
    pieces = []
    while end - start > MAX_CHARS:
        cut = _clause_cut(text, start, start + MAX_CHARS)
        pieces.append(Sentence(start, cut))
        start = cut
    pieces.append(Sentence(start, end))
    return pieces


def _inside_title(text: str, start: int, pos: int) -> bool:
    seg = text[start:pos]
    return seg.count("《") > seg.count("》")


def _bad_cut(text: str, start: int, cut: int) -> bool:
    """A cut inside a number (1.8万, 12:30, 1,250) or inside a quoted or titled name."""
    before, after = text[cut - 1], text[cut]
    if NUMBERISH.match(before) and NUMBERISH.match(after):
        return True
    if before in ",:" and text[cut - 2:cut - 1].isdigit() and after.isdigit():
        return True
    if after in ",:" and before.isdigit() and text[cut + 1:cut + 2].isdigit():
        return True
    seg = text[start:cut]
    return _inside_title(text, start, cut) or seg.count("“") > seg.count("”")


def _clause_cut(text: str, start: int, limit: int) -> int:
    """The last clause end before ``limit`` that is not inside a number or name; failing that, the last
    position that is not."""
    for match in reversed(list(CLAUSE_END.finditer(text, start + MIN_CHARS // 2, limit))):
        if not _bad_cut(text, start, match.end()):
            return match.end()
    cut = limit
    while cut > start + 1 and _bad_cut(text, start, cut):
        cut -= 1
    return cut


def chunk_id(article: Article, start: int, end: int, text: str) -> str:
    """A content hash: any change to the passage, its heading, date or kind gives a new id."""
    key = "\x1f".join([article.id, article.title, article.date, article.kind, article.path, str(start), str(end), text])
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:20]


def chunk_article(article: Article) -> list[Chunk]:
    body = article.body
    sentences = split_sentences(body)
    groups: list[list[Sentence]] = []
    current: list[Sentence] = []
    for sentence in sentences:
        size = current[-1].end - current[0].start if current else 0
        if current and sentence.end - current[0].start > MAX_CHARS and size >= MIN_CHARS:
            groups.append(current)
            last = current[-1]
            current = [last] if last.end - last.start <= OVERLAP_MAX_CHARS else []
        current.append(sentence)
    if current:
        groups.append(current)
    chunks = []
    for group in groups:
        start, end = group[0].start, group[-1].end
        text = body[start:end]
        chunks.append(Chunk(id=chunk_id(article, start, end, text), article_id=article.id, title=article.title,
                            date=article.date, kind=article.kind, path=article.path, start=start, end=end, text=text))
    return chunks

