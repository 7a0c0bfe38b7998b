"""The xinhua-style news corpus: one document per line, each line a metadata prefix and ``，正文：`` + text.

The prefix varies (``2023-07-25 14:25``, ``2023年07月25日``, ``07-25 14:25``, ``来源：中国青年报客户端``,
``华夏经纬网 > 新闻 > 港澳新闻  2023-07-29 10:35:11``, nothing at all, ...). A date is taken from it only when
it states a year; nothing is guessed from the text. Every non-empty line becomes one news ``Article``.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

from bot.knowledge.chunking import split_sentences
from bot.knowledge.articles import Article, normalize_body, render_article
from bot.text import sentence_end

BODY_MARK = "，正文："
MAX_PREFIX_CHARS = 80  # a longer "prefix" means the mark sits inside the text, not after metadata
TITLE_MAX_CHARS = 40
TITLE_MIN_CHARS = 6  # a shorter cut is a fragment, not a headline
CLAUSE_TITLE_MIN_CHARS = 12  # a first clause shorter than this says less than a plain cut at the limit
PARAGRAPH_CHARS = 150  # sentences are grouped into paragraphs of about this size

YMD = r"\d{4}[-/]\d{1,2}[-/]\d{1,2}|\d{4}年\d{1,2}月\d{1,2}日|\d{6}/\d{1,2}|\d{2}-\d{1,2}-\d{1,2}"
TIME = r"\d{1,2}[:：]\d{2}(?:[:：]\d{2})?"
# A metadata prefix without the ``正文：`` mark: a timestamp (with or without year), a source or a site path.
BARE_PREFIX = re.compile(
    rf"\s*(?P<meta>\[?\s*(?:{YMD}|\d{{1,2}}[-/]\d{{1,2}})(?:\s+{TIME})?\s*\]?(?:\s*来自[^，。]{{1,12}})?"
    r"|(?:来源|发布时间)：[^，。]{1,40}|华夏经纬网\s*>[^，。]{1,60})\s*，(?:正文：)?")
DATES = (  # (pattern, century added to a two-digit year); four-digit forms first
    (re.compile(r"(?<!\d)(\d{4})[-/年](\d{1,2})[-/月](\d{1,2})(?!\d)"), 0),
    (re.compile(r"(?<!\d)(\d{4})(\d{2})/(\d{1,2})(?!\d)"), 0),
    (re.compile(r"(?<![\d-])(\d{2})-(\d{1,2})-(\d{1,2})(?!\d)"), 2000),
)
ORIGINAL_TITLE = re.compile(r"原标题[：:]\s*")
# Where a run-in original title gives way to the text: a dateline, a byline, a source, a paragraph break.
TITLE_END = re.compile(r"\n|\s{2,}|[。]|(?<=.{%d})(?:\d{1,2}月\d{1,2}日|记者|通讯员|本报|新华社|据[^，。]{0,12}报道|近日|日前)"
                       % TITLE_MIN_CHARS)
BYLINE_BRACKET = re.compile(r"^【[^】]{0,40}(?:记者|报道|讯|编辑|作者|来源|通讯员)[^】]{0,40}】")
DATELINE = re.compile(r"^[^，。！？]{0,24}?\d{1,2}月\d{1,2}日(?:电|讯)\s*(?:[（(][^）)]{0,40}[）)])?")
FIRST_SENTENCE = re.compile(rf"^.*?{sentence_end(ends='。！？!?', run=False)}")
CLAUSE_BREAK = re.compile(r"[，,；;：:、\s]")
NUMBER_CHARS = re.compile(r"[0-9A-Za-z.%％]")
WHITESPACE_RUN = re.compile(r"\s{2,}")


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def corpus_files(corpus_dir: Path) -> list[Path]:
    """The corpus parts in order: part-1.txt, part-2.txt, ... (part-10 after part-9)."""
    return sorted(Path(corpus_dir).glob("*.txt"), key=_natural_key)


def split_line(line: str) -> tuple[str, str]:
    """(metadata prefix, text) of one corpus line."""
    head, mark, rest = line.partition(BODY_MARK)
    if mark and len(head) <= MAX_PREFIX_CHARS:
        return head.strip(), rest
    match = BARE_PREFIX.match(line)
    if match:
        return match.group("meta").strip(), line[match.end():]
    return "", line


def prefix_date(prefix: str) -> str:
    """The prefix's date as YYYY-MM-DD, or "" when it states no (valid) year-month-day."""
    for pattern, century in DATES:
        match = pattern.search(prefix)
        if match:
            year, month, day = (int(g) for g in match.groups())
            try:
                return dt.date(year + century, month, day).isoformat()
            except ValueError:
                return ""
    return ""


def paragraphs(text: str) -> str:
    """One paragraph per line. Whitespace runs in a line are the source's lost line breaks; a long run of
    text is grouped at sentence ends so that the article file stays readable."""
    out = []
    for block in WHITESPACE_RUN.split(text):
        start = None
        for sentence in split_sentences(block):
            start = sentence.start if start is None else start
            if sentence.end - start >= PARAGRAPH_CHARS:
                out.append(block[start:sentence.end])
                start = None
        if start is not None:
            out.append(block[start:])
    return normalize_body("\n".join(out))


def shorten(text: str, limit: int = TITLE_MAX_CHARS) -> str:
    """``text`` cut to ``limit`` characters at the last clause break, never inside a number or word."""
    text = " ".join(text.split()).strip(" ，,、：:；;")
    if len(text) <= limit:
        return text
    breaks = [m.start() for m in CLAUSE_BREAK.finditer(text, CLAUSE_TITLE_MIN_CHARS, limit + 1)]
    if breaks:
        return text[:breaks[-1]].strip(" ，,、：:；;")
    cut = limit
    while cut > TITLE_MIN_CHARS and NUMBER_CHARS.match(text[cut - 1]) and NUMBER_CHARS.match(text[cut]):
        cut -= 1
    return text[:cut]


def _repeated_prefix_end(text: str) -> int | None:
    """Where a headline that is printed twice in a row ends ("标题标题正文…")."""
    probe = text[:TITLE_MIN_CHARS]
    position = text.find(probe, TITLE_MIN_CHARS, TITLE_MAX_CHARS * 2)
    return position if position > 0 and text[position:].startswith(text[:position]) else None


def _original_title(text: str) -> str:
    match = ORIGINAL_TITLE.search(text[:TITLE_MAX_CHARS * 2])
    if not match:
        return ""
    rest = text[match.end():]
    end = _repeated_prefix_end(rest)
    if end is None:
        found = TITLE_END.search(rest)
        end = found.start() if found else len(rest)
    return shorten(rest[:end])


def _first_sentence(text: str) -> str:
    text = text.strip().split("\n", 1)[0]
    for noise in (BYLINE_BRACKET, DATELINE):
        stripped = noise.sub("", text, count=1).strip()
        text = stripped or text
    match = FIRST_SENTENCE.match(text)
    return shorten(match.group(0) if match else text)


def derive_title(body: str) -> str:
    """The original headline when the text quotes it (``原标题：``), else the first sentence; <= 40 chars."""
    return _original_title(body) or _first_sentence(body)


def parse_line(line: str, file_stem: str, line_no: int) -> Article | None:
    """The article of one corpus line (``line_no`` is 1-based), or None for a blank line."""
    if not line.strip():
        return None
    prefix, text = split_line(line)
    body = paragraphs(text) or paragraphs(line)  # a line that is all prefix still keeps its words
    date = prefix_date(prefix)
    title = derive_title(body) or f"{file_stem} 第{line_no}条"  # a line of punctuation has no words to use
    return Article(id=f"xinhua-{file_stem}-{line_no}", title=title, body=body, date=date,
                   date_basis="corpus line timestamp" if date else "", kind="news",
                   source_file=f"{file_stem}.txt:{line_no}")


def _lines(path: Path) -> Iterator[str]:
    # Split on "\n" only: text mode would also split on a stray "\r" and shift every later line number.
    # A bad byte must not cost the document, so it becomes U+FFFD.
    yield from path.read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff").split("\n")


def read_corpus(corpus_dir: Path, limit: int | None = None) -> Iterator[Article]:
    """Every document of the corpus, part-1 then part-2, in line order; at most ``limit``."""
    count = 0
    for path in corpus_files(corpus_dir):
        for line_no, line in enumerate(_lines(path), start=1):
            if limit is not None and count >= limit:
                return
            article = parse_line(line, path.stem, line_no)
            if article is not None:
                count += 1
                yield article


def write_corpus_knowledge(corpus_dir: Path, out_dir: Path, limit: int | None = None) -> int:
    """Write each document as ``<out_dir>/<id>.md``: a knowledge folder like any other. Returns the count."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for article in read_corpus(corpus_dir, limit):
        (out_dir / f"{article.id}.md").write_text(render_article(article), encoding="utf-8")
        count += 1
    return count
