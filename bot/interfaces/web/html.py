"""How answers, sources and articles are drawn on the pages.

Every fragment is a ``markupsafe.Markup`` template, so whatever is formatted into it (article, question, comment,
citation fields) is escaped unless it is itself Markup built here (the chat also sanitises, as a second line of
defence). Links carry keys, never text: ``#wd-cite-<turn>-<n>`` opens a source, ``#wd-ask-<turn>-<k>`` asks a
suggested question; the page script (``page.js``) turns a click on either into a Python event.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from markupsafe import Markup, escape

from bot.answer.types import Answer, Citation
from bot.knowledge.articles import Article
from bot.text import date_label

MAX_SHOWN_QUESTION = 500
APOLOGY = "抱歉，系统暂时出了点问题，请稍后再试。"
THINKING_HTML = '<div class="wd-thinking">正在查找资料……</div>'
ERROR_HTML = f'<div class="wd-error">{APOLOGY}</div>'
RATING_TEXT = {"up": "👍 好评", "down": "👎 差评"}  # how a resident's rating reads, to them and to staff
CITE_MARK = re.compile(r"\[(\d+)\]")


def esc_lines(text: str) -> Markup:
    return Markup("<br>").join(str(text or "").split("\n"))


def user_html(question: str) -> str:
    shown = question if len(question) <= MAX_SHOWN_QUESTION else question[:MAX_SHOWN_QUESTION] + "……"
    return Markup('<div class="wd-question">{}</div>').format(esc_lines(shown))


def streaming_html(text: str) -> str:
    return Markup('<div class="wd-answer">{}</div><div class="wd-thinking">……</div>').format(esc_lines(text))


def notice_html(text: str) -> Markup:
    return Markup('<div class="wd-notice">{}</div>').format(text) if text else Markup("")


def cite_link(turn: int, n: int, label: str) -> Markup:
    return Markup('<a class="wd-cite" href="#wd-cite-{}-{}" title="查看原文">{}</a>').format(int(turn), int(n), label)


def cited_sentence(citation: Citation) -> tuple[int, int]:
    """The cited sentence's offsets inside the citation's passage text, clamped to it."""
    size = len(citation.text)
    start = min(max(citation.sentence_start - citation.passage_start, 0), size)
    end = min(max(citation.sentence_end - citation.passage_start, start), size)
    return start, end


def passage_html(citation: Citation) -> Markup:
    text = citation.text
    start, end = cited_sentence(citation)
    return Markup('{}<mark class="wd-hit">{}</mark>{}').format(text[:start], text[start:end], text[end:])


def sources_html(citations: Sequence[Citation], turn: int) -> Markup:
    """One compact line per source; the passage itself only on demand (the article view shows it in place)."""
    items = [Markup('<li>{}<span class="wd-date">{}</span><details class="wd-passage"><summary>引用段落</summary>'
                    '<div class="wd-quote">{}</div></details></li>').format(
        cite_link(turn, c.n, f"[{c.n}] {c.title}"), date_label(c.date), passage_html(c)) for c in citations]
    return Markup('<div class="wd-sources"><div class="wd-sources-title">来源（点击查看原文）</div><ol>{}</ol></div>'
                  ).format(Markup("").join(items))


def suggestions_html(labels: Sequence[str], turn: int, lead: str) -> Markup:
    """Questions the knowledge answers, as links: ``lead`` then 全区低保户数、低保核查办法 ..."""
    if not labels:
        return Markup("")
    links = Markup("、").join(Markup('<a class="wd-ask" href="#wd-ask-{}-{}">{}</a>').format(int(turn), k, label)
                             for k, label in enumerate(labels))
    return Markup('<div class="wd-suggestions">{}{}</div>').format(lead, links)


def refusal_html(answer: Answer) -> Markup:
    office = answer.office
    office_line = Markup("<p>可咨询：{}</p>").format(office) if office and office not in answer.text else ""
    return Markup('<div class="wd-refusal"><div class="wd-refusal-title">未能回答</div><div>{}</div>{}</div>').format(
        esc_lines(answer.text), office_line)


def answer_body_html(answer: Answer, turn: int) -> Markup:
    """The answer text with the answering clause bold and each [n] linked to its source. Markers are linked
    after escaping: "[12]" survives escaping unchanged, and only digits reach the link."""
    text = answer.text
    start, end = answer.highlight or (0, 0)
    escaped = (Markup('{}<strong class="wd-key">{}</strong>{}').format(
        esc_lines(text[:start]), esc_lines(text[start:end]), esc_lines(text[end:])) if end > start else esc_lines(text))
    numbers = {c.n for c in answer.citations}
    return Markup(CITE_MARK.sub(lambda m: cite_link(turn, int(m[1]), m[0]) if int(m[1]) in numbers else m[0], escaped))


def answer_html(answer: Answer, turn: int, suggestions: Sequence[str] = ()) -> str:
    """One bubble: the answer once, a line per source, then what else the knowledge answers (``suggestions``)."""
    notice = notice_html(answer.notice)
    if answer.refused:
        return notice + refusal_html(answer) + suggestions_html(suggestions, turn, "资料里有：")
    sources = sources_html(answer.citations, turn) if answer.citations else ""
    return Markup('{}<div class="wd-answer">{}</div>{}{}').format(
        notice, answer_body_html(answer, turn), sources, suggestions_html(suggestions, turn, "您还可以问："))


def locate(article: Article, citation: Citation) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """(passage, sentence) offsets in the article body; re-found by text when the file changed since indexing."""
    start, end = citation.passage_start, citation.passage_end
    if article.body[start:end] != citation.text:
        found = article.body.find(citation.text)
        if found < 0:
            return None
        start, end = found, found + len(citation.text)
    s_start, s_end = cited_sentence(citation)
    return (start, end), (start + s_start, start + s_end)


def body_html(body: str, passage: tuple[int, int] | None = None, sentence: tuple[int, int] | None = None) -> Markup:
    """One <p> per body line; marks are opened and closed inside each paragraph so the HTML stays well formed."""
    cuts = {c for span in (passage, sentence) if span for c in span}
    paragraphs, offset = [], 0
    for line in body.split("\n"):
        line_end = offset + len(line)
        points = sorted({offset, line_end, *(c for c in cuts if offset < c < line_end)})
        pieces = []
        for a, b in zip(points, points[1:]):
            if sentence and sentence[0] <= a and b <= sentence[1]:
                pieces.append(Markup('<mark class="wd-hit">{}</mark>').format(body[a:b]))
            elif passage and passage[0] <= a and b <= passage[1]:
                pieces.append(Markup('<mark class="wd-span">{}</mark>').format(body[a:b]))
            else:
                pieces.append(escape(body[a:b]))
        paragraphs.append(Markup("<p>{}</p>").format(Markup("").join(pieces)))
        offset = line_end + 1
    return Markup("").join(paragraphs)


BACK_LINK = Markup('<a class="wd-back" href="#wd-back">← 返回回答</a>')


def article_html(article: Article, citation: Citation | None = None) -> str:
    """The whole article; opened from a citation, with the cited passage and sentence marked and a way back."""
    spans = locate(article, citation) if citation else None
    note = (Markup('<div class="wd-article-note">原文在引用后有过修改，无法定位引用的段落。</div>')
            if citation and spans is None else "")
    meta = [date_label(article.date), *article.reporters, f"编号 {article.id}"]
    subtitle = Markup('<div class="wd-subtitle">{}</div>').format(article.subtitle) if article.subtitle else ""
    return Markup('<article class="wd-article">{}<h3>{}</h3>{}<div class="wd-meta">{}</div>{}{}</article>').format(
        BACK_LINK if citation else "", article.title, subtitle, " · ".join(meta), note,
        body_html(article.body, *(spans or (None, None))))


def missing_article_html(citation: Citation) -> str:
    """The article was deleted after the answer: show at least the cited passage."""
    return Markup('<article class="wd-article">{}<h3>{}</h3><div class="wd-article-note">这篇文章已从资料库中删除，'
                  '以下是回答时引用的段落。</div><p>{}</p></article>').format(BACK_LINK, citation.title,
                                                                    passage_html(citation))
