"""Import a printed newspaper page dump (``knowledge/raw/*.txt``) as one article file per item.

A print dump keeps the words but loses the layout: items are only separated by blank lines, headlines are
short lines standing alone, and columns break paragraphs mid-sentence or even mid-word. The rules below
rebuild the items from those traces only; the text itself is kept exactly as printed.
"""
from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bot.knowledge.articles import Article, render_article
from bot.text import BYLINE, SENTENCE_ENDS, sentence_end

MAX_HEADLINE_CHARS = 40
MAX_HEADLINE_LINES = 3  # kicker, title, deck
MAX_CREDIT_CHARS = 30
MAX_CAPTION_TITLE_CHARS = 30
CAPTION_TITLE_PREFIX = "图片新闻："
MIN_CAPTION_CLAUSE_CHARS = 8
_DATE_CLAUSE = re.compile(r"[0-9一二三四五六七八九十]+月[0-9一二三四五六七八九十]+日.{0,8}")
RAW_DIR = "raw"

_ENDS_SENTENCE = re.compile(rf"{sentence_end()}$")
_NOT_IN_HEADLINE = re.compile(r"[。！？!?；;]")
_COMMA = re.compile(r"[，,]")
_PARALLEL = re.compile(r"\S\s+\S|[，,]")  # two phrases side by side: a kicker or a deck
_ROLE = re.compile(r"^(?:本报|特约|见习)?(?:记者|通讯员|实习生|摄影)")
_NAME = re.compile(r"[\u4e00-\u9fff·]{2,4}")
_CREDIT_END = re.compile(r"\s摄$")
_CREDIT_TAIL = re.compile(rf"{sentence_end()}([^{re.escape(SENTENCE_ENDS)}]+)$")
_CLAUSE_END = re.compile(r"[，,。]")
# A year led by 自/从 (a period's start) or 到/至 (a target) is not the year being reported; 截至 is.
_YEAR = re.compile(r"(截至|自|从|到|至)?(?<!\d)((?:19|20)\d{2})年")
_PERIOD_BOUNDS = {"自", "从", "到", "至"}
_MONTH_DAY = re.compile(r"(?<!\d)(\d{1,2})月(\d{1,2})日")


@dataclass(frozen=True)
class _Para:
    index: int
    text: str
    after_gap: bool  # more blank lines before it than the page puts between paragraphs


@dataclass
class _Item:
    headline: list[str]  # empty for a photo caption
    paras: list[_Para] = field(default_factory=list)


def parse_page(text: str, source_file: str) -> list[Article]:
    """The page's items in page order: news under their headlines, photo captions closed by their credit."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ValueError(f"{source_file}: page is empty")
    items = _items(_paragraphs(text), source_file)
    date = _page_date(text)
    prefix = date.replace("-", "") if len(date) == 10 else Path(source_file).stem
    basis = "" if not date else "latest date in page" if len(date) == 10 else "year named in page"
    return [_article(item, f"{prefix}-{n:02d}", date, basis, source_file) for n, item in enumerate(items, start=1)]


def import_page(page_path: Path, out_dir: Path) -> list[Path]:
    """Write each item of the page to ``out_dir/<id>.md`` (replacing a file with the same id)."""
    try:
        text = page_path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{page_path}: not UTF-8 (bad byte at offset {exc.start})") from None
    articles = parse_page(text, _source_name(page_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for article in articles:
        path = out_dir / f"{article.id}.md"
        path.write_text(render_article(article), encoding="utf-8")
        written.append(path)
    return written


def _source_name(page_path: Path) -> str:
    """The page as the knowledge folder sees it (``raw/<name>``): the same whatever the working directory."""
    parts = page_path.parts
    if RAW_DIR in parts[:-1]:
        start = len(parts) - 1 - parts[::-1].index(RAW_DIR)
        return "/".join(parts[start:])
    return page_path.name


def _paragraphs(text: str) -> list[_Para]:
    lines, blanks = [], 0
    for line in text.splitlines():
        if line.strip():
            lines.append((line.strip(), blanks))
            blanks = 0
        else:
            blanks += 1
    # The usual separator is relative to the page, so a dump without blank lines between paragraphs works too.
    usual = Counter(b for _, b in lines[1:]).most_common(1)[0][0] if len(lines) > 1 else 0
    return [_Para(i, t, i > 0 and b > usual) for i, (t, b) in enumerate(lines)]


def _ends_sentence(text: str) -> bool:
    return bool(_ENDS_SENTENCE.search(text))


def _credit_names(credit: str) -> list[str]:
    """Photographers named by a credit such as '本报记者 田秀忠 摄'; [] when the text is not a credit."""
    if len(credit) > MAX_CREDIT_CHARS or not _CREDIT_END.search(credit):
        return []
    names = [_ROLE.sub("", token) for token in credit[:-1].split()]
    names = [name for name in names if name]
    return names if names and all(_NAME.fullmatch(name) for name in names) else []


def _photographers(text: str) -> list[str]:
    """Photographers credited by a standalone credit line or by a credit after the paragraph's last sentence."""
    tail = _CREDIT_TAIL.search(text)
    return _credit_names(text) or (_credit_names(tail.group(1).strip()) if tail else [])


def _ends_item(para: _Para) -> bool:
    return _ends_sentence(para.text) or bool(_photographers(para.text))


def _headline_like(text: str) -> bool:
    return (len(text) <= MAX_HEADLINE_CHARS and not _NOT_IN_HEADLINE.search(text)
            and not BYLINE.match(text) and not _photographers(text))


def _split_headline(lines: list[str]) -> tuple[str, str]:
    """(title, subtitle) of a headline group."""
    if len(lines) == 1:
        return lines[0], ""
    if len(lines) == 3:
        return lines[1], f"{lines[0]} {lines[2]}"
    first, second = lines
    # A deck under the title reads as two phrases (usually with a comma); otherwise the first line is the kicker.
    if _PARALLEL.search(second) and not _PARALLEL.search(first):
        return first, second
    return second, first


def _headline_at(paras: list[_Para], i: int) -> int:
    """How many lines of a headline group start at paragraph ``i`` (0: none)."""
    if i > 0 and not paras[i].after_gap and not _ends_item(paras[i - 1]):
        return 0  # the previous paragraph runs on into this one (column break)
    n = 0
    while (n < MAX_HEADLINE_LINES and i + n < len(paras) and _headline_like(paras[i + n].text)
           and (n == 0 or not paras[i + n].after_gap)):
        n += 1
    if n == 0 or i + n == len(paras):
        return 0
    # A comma in the title means a short broken paragraph, unless a 本报讯 lead confirms the headline.
    title, _ = _split_headline([p.text for p in paras[i:i + n]])
    return n if BYLINE.match(paras[i + n].text) or not _COMMA.search(title) else 0


def _caption_start(paras: list[_Para]) -> int:
    """Where a caption closing a news body begins: after the body's last wide gap, else at its last paragraph."""
    gaps = [k for k in range(1, len(paras)) if paras[k].after_gap]
    if gaps:
        return gaps[-1]
    k = len(paras) - 1
    if _credit_names(paras[k].text) and k > 1:
        k -= 1  # a credit line stands under its caption paragraph
    while k > 1 and not _ends_sentence(paras[k - 1].text):
        k -= 1  # keep the caption's column-broken parts together
    return k


def _items(paras: list[_Para], source_file: str) -> list[_Item]:
    """Cut the page into items: a headline opens a news item, a credit closes a photo caption."""
    done: list[_Item] = []
    news: _Item | None = None  # the open news item
    loose: list[_Para] = []  # text after a caption that no headline or credit has claimed yet
    orphans: list[_Para] = []  # text that no item can own

    def close_news() -> None:
        nonlocal news, loose
        if news:
            done.append(news)
        if loose:  # text resuming after a photo continues the article the photo interrupted
            previous = [item for item in done if item.headline]
            (previous[-1].paras if previous else orphans).extend(loose)
        news, loose = None, []

    i = 0
    while i < len(paras):
        size = _headline_at(paras, i)
        if size:
            close_news()
            news = _Item([p.text for p in paras[i:i + size]])
            i += size
            continue
        para = paras[i]
        if _photographers(para.text):
            if news:
                pool = news.paras + [para]
                start = _caption_start(pool)
                news.paras, caption = pool[:start], pool[start:]
                close_news()
            else:
                caption, loose = loose + [para], []
            done.append(_Item([], caption))
        else:
            (news.paras if news else loose).append(para)
        i += 1
    close_news()
    if not done:
        raise ValueError(f"{source_file}: no recognisable item (no headline or photo credit found)")
    if orphans:
        raise ValueError(f"{source_file}: text before the first headline belongs to no item: "
                         f"{orphans[0].text[:20]!r}")
    for item in done:
        if not item.paras:
            raise ValueError(f"{source_file}: headline {item.headline[0]!r} has no text under it")
    return sorted(done, key=lambda item: item.paras[0].index)


def _join_column_breaks(texts: list[str]) -> list[str]:
    """A paragraph that stops mid-sentence continues in the next one: join them as printed, no separator."""
    joined: list[str] = []
    for text in texts:
        if joined and not _ends_sentence(joined[-1]) and not _credit_names(text):
            joined[-1] += text
        else:
            joined.append(text)
    return joined


def _lead_reporters(paragraph: str) -> tuple[str, ...]:
    """'本报讯(记者田秀忠 通讯员杨水亮 张进超)' -> ('记者 田秀忠', '通讯员 杨水亮', '通讯员 张进超')."""
    lead = BYLINE.match(paragraph)
    if not lead:
        return ()
    reporters, role = [], ""
    for token in lead.group(1).split():
        match = _ROLE.match(token)
        if match:
            role, token = match.group(0), token[match.end():]
        if token:  # a name without a role shares the previous name's role
            reporters.append(f"{role} {token}".strip())
    return tuple(reporters)


def _caption_title(paragraph: str) -> str:
    """The caption's first clause that says what the photo shows: a leading date/time or short scene-setter
    ("7月26日", "八一建军节前夕") would make a title that tells a reader nothing."""
    clauses = [c.strip() for c in _CLAUSE_END.split(paragraph) if c.strip()]
    telling = [c for c in clauses if len(c) >= MIN_CAPTION_CLAUSE_CHARS and not _DATE_CLAUSE.fullmatch(c)]
    clause = (telling or clauses)[0]
    return CAPTION_TITLE_PREFIX + clause[:MAX_CAPTION_TITLE_CHARS]


def _article(item: _Item, article_id: str, date: str, basis: str, source_file: str) -> Article:
    body = _join_column_breaks([p.text for p in item.paras])
    if item.headline:
        title, subtitle = _split_headline(item.headline)
        kind, reporters = "news", _lead_reporters(body[0])
    else:
        title, subtitle = _caption_title(body[0]), ""
        kind, reporters = "photo", tuple(f"摄影 {name}" for name in _photographers(body[-1]))
    return Article(id=article_id, title=title, subtitle=subtitle, body="\n".join(body), date=date,
                   date_basis=basis, kind=kind, reporters=reporters, source_file=source_file)


def _page_year(text: str) -> int | None:
    """The year the page reports in: the most often named one (the latest on a tie)."""
    years = Counter(int(m.group(2)) for m in _YEAR.finditer(text) if m.group(1) not in _PERIOD_BOUNDS)
    return max(years, key=lambda year: (years[year], year)) if years else None


def _page_date(text: str) -> str:
    """The latest M月D日 in the page, in the year the page names; only the year if no day is named."""
    year = _page_year(text)
    if year is None:
        return ""
    days = []
    for month, day in _MONTH_DAY.findall(text):
        try:
            days.append(dt.date(year, int(month), int(day)))
        except ValueError:  # 2月30日 and the like: not a date
            continue
    return max(days).isoformat() if days else str(year)
