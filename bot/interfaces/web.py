"""The web page (Gradio Blocks): residents' chat with cited sources, and a password-protected staff tab.

Every piece of article, question or comment text reaches the page through a ``markupsafe.Markup`` template,
which escapes it (the chat also sanitises, as a second line of defence). Sources link to the article view through ``#wd-cite-<turn>-<n>``
anchors that a small script turns into a Python event. No ``from __future__ import annotations`` here:
Gradio reads the API endpoints' types from real annotations.
"""
import functools
import hmac
import logging
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

import gradio as gr
from markupsafe import Markup, escape
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse

from bot.answer.types import Answer, Citation
from bot.answer.assistant import Assistant, InputError
from bot.config import Settings
from bot.interfaces.feedback import MAX_COMMENT, RATINGS, FeedbackRecord, FeedbackStore, IssuedAnswers
from bot.knowledge.articles import Article
from bot.interfaces.library import KnowledgeLibrary, LibraryError
from bot.text import date_label, normalize_query
from bot.interfaces.throttle import LoginThrottle, RateLimit

log = logging.getLogger(__name__)

# The district's name and example questions come from the knowledge's lexicon (knowledge/lexicon.yaml).
TITLE = "{district}便民问答"
INTRO = ("### {title}\n"
         "回答只摘自发布的资料，每句话后面的 [n] 是它的出处；点击 [n] 或下方的来源，右侧会打开原文并标出引用的句子。")
CHAT_PLACEHOLDER = "您好！请在下方输入您想了解的事情{topics}。"
ARTICLE_PLACEHOLDER = '<div class="wd-article-empty">点击回答中的 [n] 或来源，在这里查看原文，引用的句子会高亮显示。</div>'
READER_PLACEHOLDER = '<div class="wd-article-empty">点选列表中的一行，或填写编号后点“打开”，在这里阅读全文。</div>'
EMPTY_PROMPT = "请先输入您想咨询的问题。"
NOT_TEXT = "问题必须是一段文字。"
RATE_LIMITED = "提问太频繁了，请稍等一分钟再试。"
COMMENT_TOO_LONG = f"补充说明最多 {MAX_COMMENT} 个字，请精简后再提交。"
STAFF_LOCKED = "口令错误次数过多，请 {minutes} 分钟后再试。"
EXPORT_SECONDS = 600.0
APOLOGY = "抱歉，系统暂时出了点问题，请稍后再试。"
STAFF_DENIED = "工作人员口令不正确，操作未执行。"
STAFF_FAILED = "操作失败：系统内部错误，详情已记入服务器日志。"
THINKING_HTML = '<div class="wd-thinking">正在查找资料……</div>'
ERROR_HTML = f'<div class="wd-error">{APOLOGY}</div>'
MAX_SHOWN_QUESTION = 500
RATING_TEXT = {"up": "👍 好评", "down": "👎 差评"}


CITE_MARK = re.compile(r"\[(\d+)\]")
CITE_KEY = re.compile(r"wd-cite-(\d+)-(\d+)")

# Runs once in the article view: any click on a citation link anywhere on the page becomes this component's
# click event (carrying the link's key); after each new article the highlighted sentence is scrolled into view.
CITE_JS = """
const open = (event) => {
  const link = event.target.closest ? event.target.closest('a.wd-cite') : null;
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  trigger('click', {cite: (link.getAttribute('href') || '').slice(1)});
};
if (window.__wdCiteHandler) document.removeEventListener('click', window.__wdCiteHandler, true);
window.__wdCiteHandler = open;
document.addEventListener('click', open, true);
watch('value', () => {
  const hit = element.querySelector('.wd-hit');
  if (hit) hit.scrollIntoView({block: 'center', behavior: 'smooth'});
});
"""

CSS = """
.wd-answer { line-height: 1.75; }
a.wd-cite { color: var(--color-accent); font-weight: 600; text-decoration: none; cursor: pointer; }
a.wd-cite:hover { text-decoration: underline; }
.wd-sources { margin-top: .7em; padding-top: .4em; border-top: 1px solid var(--border-color-primary);
              font-size: .92em; }
.wd-sources-title { font-weight: 600; color: var(--body-text-color-subdued); }
.wd-sources ol { list-style: none; padding-left: 0; margin: .3em 0 0; }
.wd-sources li { margin: .5em 0; }
.wd-date { margin-left: .5em; color: var(--body-text-color-subdued); font-size: .9em; }
.wd-quote { margin: .25em 0 0; padding: .3em .7em; border-left: 3px solid var(--border-color-primary);
            color: var(--body-text-color-subdued); line-height: 1.7; }
mark.wd-hit { background: #ffe066; color: #1f2937; padding: 0 1px; }
mark.wd-span { background: #fff4c2; color: #1f2937; }
.wd-refusal { border-left: 4px solid #d97706; background: rgba(217, 119, 6, .08); padding: .5em .8em; }
.wd-refusal-title { font-weight: 600; margin-bottom: .2em; }
.wd-notice { border-left: 4px solid #2563eb; background: rgba(37, 99, 235, .08); padding: .3em .7em;
             margin-bottom: .5em; }
.wd-error { color: #b91c1c; }
.wd-thinking { color: var(--body-text-color-subdued); }
.wd-article { padding: .2em .4em; }
.wd-article h3 { margin: .2em 0; }
.wd-article p { margin: .55em 0; line-height: 1.85; }
.wd-subtitle { color: var(--body-text-color-subdued); }
.wd-meta { color: var(--body-text-color-subdued); font-size: .9em; margin: .3em 0 .6em; }
.wd-article-empty, .wd-article-note { color: var(--body-text-color-subdued); padding: .5em; }
.wd-feedback-table { width: 100%; border-collapse: collapse; font-size: .9em; }
.wd-feedback-table th, .wd-feedback-table td { border: 1px solid var(--border-color-primary); padding: .35em .5em;
                                               vertical-align: top; text-align: left; }
.wd-feedback-table td:nth-child(-n+2) { white-space: nowrap; }
.wd-feedback-table td:nth-child(3) { min-width: 10em; }
.wd-feedback-table td:nth-child(4), .wd-feedback-table td:nth-child(5) { min-width: 16em; }
.wd-small { color: var(--body-text-color-subdued); font-size: .88em; }
"""


class NoUploads:
    """ASGI middleware refusing Gradio's file-upload route: without the staff tab nothing on the page takes a
    file, and an open upload route lets anyone store files on the server."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].rstrip("/").endswith("/gradio_api/upload"):
            await PlainTextResponse("uploads are not accepted here", status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def launch_options(settings: Settings) -> dict:
    """What ``Blocks.launch`` needs besides host and port (Gradio 6 takes css and theme at launch)."""
    middleware = [] if settings.staff_password else [Middleware(NoUploads)]
    return {"css": CSS, "theme": gr.themes.Soft(), "footer_links": [], "ssr_mode": False, "max_file_size": "5mb",
            "app_kwargs": {"middleware": middleware}}


# ---- HTML rendering -------------------------------------------------------------------------------------------
# One helper: every fragment is a markupsafe ``Markup`` template, so whatever is formatted into it (article,
# question, comment, citation fields) is escaped unless it is itself Markup built here.

def esc_lines(text: str) -> Markup:
    return Markup("<br>").join(str(text or "").split("\n"))


def user_html(question: str) -> str:
    shown = question if len(question) <= MAX_SHOWN_QUESTION else question[:MAX_SHOWN_QUESTION] + "……"
    return Markup('<div class="wd-question">{}</div>').format(esc_lines(shown))


def streaming_html(text: str) -> str:
    return Markup('<div class="wd-answer">{}</div><div class="wd-thinking">……</div>').format(esc_lines(text))


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


def sources_html(citations: list[Citation], turn: int) -> Markup:
    items = [Markup('<li>{}<span class="wd-date">{}</span><div class="wd-quote">{}</div></li>').format(
        cite_link(turn, c.n, f"[{c.n}] {c.title}"), date_label(c.date), passage_html(c)) for c in citations]
    return Markup('<div class="wd-sources"><div class="wd-sources-title">来源</div><ol>{}</ol></div>').format(
        Markup("").join(items))


def refusal_html(answer: Answer) -> Markup:
    office = answer.office
    office_line = Markup("<p>可咨询：{}</p>").format(office) if office and office not in answer.text else ""
    return Markup('<div class="wd-refusal"><div class="wd-refusal-title">未能回答</div><div>{}</div>{}</div>').format(
        esc_lines(answer.text), office_line)


def answer_html(answer: Answer, turn: int) -> str:
    notice = Markup('<div class="wd-notice">{}</div>').format(answer.notice) if answer.notice else ""
    if answer.refused:
        return notice + refusal_html(answer)
    numbers = {c.n for c in answer.citations}
    text = answer.text
    start, end = answer.highlight or (0, 0)
    # The clause that answers is bold; markers are linked after escaping: "[12]" survives escaping unchanged, and
    # only digits reach the link.
    escaped = (Markup("{}<strong class=\"wd-key\">{}</strong>{}").format(
        esc_lines(text[:start]), esc_lines(text[start:end]), esc_lines(text[end:])) if end > start else esc_lines(text))
    body = Markup(CITE_MARK.sub(lambda m: cite_link(turn, int(m[1]), m[0]) if int(m[1]) in numbers else m[0], escaped))
    sources = sources_html(answer.citations, turn) if answer.citations else ""
    return Markup('{}<div class="wd-answer">{}</div>{}').format(notice, body, sources)


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


def article_html(article: Article, citation: Citation | None = None) -> str:
    spans = locate(article, citation) if citation else None
    note = (Markup('<div class="wd-article-note">原文在引用后有过修改，无法定位引用的段落。</div>')
            if citation and spans is None else "")
    meta = [date_label(article.date), *article.reporters, f"编号 {article.id}"]
    subtitle = Markup('<div class="wd-subtitle">{}</div>').format(article.subtitle) if article.subtitle else ""
    return Markup('<article class="wd-article"><h3>{}</h3>{}<div class="wd-meta">{}</div>{}{}</article>').format(
        article.title, subtitle, " · ".join(meta), note, body_html(article.body, *(spans or (None, None))))


def missing_article_html(citation: Citation) -> str:
    """The article was deleted after the answer: show at least the cited passage."""
    return Markup('<article class="wd-article"><h3>{}</h3><div class="wd-article-note">这篇文章已从资料库中删除，'
                  '以下是回答时引用的段落。</div><p>{}</p></article>').format(citation.title, passage_html(citation))


def feedback_row_html(r: FeedbackRecord) -> Markup:
    sources = Markup("").join(Markup('<div>[{}] {}（{}）<div class="wd-quote">{}</div></div>').format(
        c.n, c.title, date_label(c.date), passage_html(c)) for c in r.citations)
    if r.damaged:
        sources += Markup('<div class="wd-small">（部分引用数据已损坏，未显示）</div>')
    searched = r.condensed_query and r.condensed_query != normalize_query(r.question)
    query = Markup('<div class="wd-small">检索：{}</div>').format(r.condensed_query) if searched else ""
    return Markup("<tr><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>").format(
        r.created_at, RATING_TEXT[r.rating], r.question, query, esc_lines(r.answer),
        sources or "（无来源：拒答）", esc_lines(r.comment))


def feedback_html(records: list[FeedbackRecord]) -> str:
    if not records:
        return Markup('<div class="wd-article-empty">没有符合条件的反馈。</div>')
    rows = []
    for r in records:
        try:
            rows.append(feedback_row_html(r))
        except Exception:  # one bad stored row must not hide the others
            log.exception("feedback row %s cannot be shown", r.id)
            rows.append(Markup('<tr><td colspan="6">第 {} 条反馈的数据已损坏，无法显示。</td></tr>').format(r.id))
    head = Markup("").join(Markup("<th>{}</th>").format(h) for h in ("时间", "评价", "问题", "回答", "引用来源", "评论"))
    return Markup('<table class="wd-feedback-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>').format(
        head, Markup("").join(rows))


# ---- session state -------------------------------------------------------------------------------------------

def new_session() -> dict:
    """One conversation: displayed messages (user/assistant pairs), the Answers (None for a failed turn),
    the feedback id given to each answer, and the answer whose comment box is open."""
    return {"messages": [], "answers": [], "feedback": {}, "pending": None}


def fresh_conversation() -> tuple:
    """Outputs for 新对话 (and the chat's own clear button): session, chat, article view, comment box, input."""
    return new_session(), [], ARTICLE_PLACEHOLDER, gr.update(visible=False), ""


def history_of(session: dict) -> list[tuple[str, str]]:
    return [(a.question, a.text) for a in session["answers"] if a is not None]


def refused(message: str) -> gr.Error:
    """An expected error, shown to the user as it is; the server logs its own single line, not a traceback."""
    return gr.Error(message, print_exception=False)


def client_of(request: gr.Request | None) -> str:
    return request.client.host if request is not None and request.client else "unknown"


def guarded(fn: Callable, apology: str = APOLOGY) -> Callable:
    """Nobody sees a traceback: log it, show a short apology. Library and input errors name the problem (a bad
    upload, a malformed history), so they are shown as they are."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (LibraryError, InputError) as exc:
            raise refused(str(exc)) from None
        except Exception:
            log.exception("handler %s failed", fn.__name__)
            raise gr.Error(apology) from None
    return run


def parse_day(value: str, label: str) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise refused(f"{label}格式应为 YYYY-MM-DD，例如 2017-07-31。") from None


class WebApp:
    """Handlers and layout. One instance per server: the Assistant, library and feedback store are shared,
    conversations live in per-session gr.State."""

    def __init__(self, assistant: Assistant, settings: Settings):
        self.assistant = assistant
        self.settings = settings
        self.library = KnowledgeLibrary(settings, assistant.index)
        self.feedback = FeedbackStore(settings.feedback_db)
        self.issued = IssuedAnswers()
        self.question_limit = RateLimit(settings.rate_limit)
        self.feedback_limit = RateLimit(settings.rate_limit)
        self.staff_door = LoginThrottle(settings.staff_lockout_after, settings.staff_lockout_seconds)
        if recovered := self.library.recover():
            log.warning("recovered from an interrupted upload: %s", ", ".join(recovered))

    def limit(self, rate: RateLimit, request: gr.Request | None) -> None:
        client = client_of(request)
        if not rate.allow(client):
            log.warning("rate limit: %s made more than %d calls in a minute", client, rate.per_minute)
            raise refused(RATE_LIMITED)

    # ---- residents -------------------------------------------------------------------------------------

    def examples(self) -> list[str]:
        """The lexicon's example questions whose topic the knowledge still contains."""
        texts = [c.indexed_text for c in self.assistant.index.chunks()]
        return [e.question for e in self.assistant.lexicon.examples if any(e.topic in t for t in texts)]

    def placeholder(self) -> str:
        topics = list(dict.fromkeys(e.topic for e in self.assistant.lexicon.examples))
        return CHAT_PLACEHOLDER.format(topics=f"，例如{'、'.join(topics)}等" if topics else "")

    def respond(self, message: str, session: dict, request: gr.Request = None) -> Iterator[tuple]:
        """Streams one turn into the chat. Outputs: input box, chat, session, comment box."""
        question = (message or "").strip()
        if not question:
            gr.Info(EMPTY_PROMPT)
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        self.limit(self.question_limit, request)
        turn, history, messages = len(session["answers"]), history_of(session), session["messages"]
        messages += [{"role": "user", "content": user_html(question)},
                     {"role": "assistant", "content": THINKING_HTML}]
        yield "", list(messages), session, gr.update(visible=False)
        answer = None
        try:
            streamed = ""
            for event in self.assistant.stream(question, history):
                if isinstance(event, Answer):
                    answer = event
                else:
                    streamed += event
                    messages[-1] = {"role": "assistant", "content": streaming_html(streamed)}
                    yield gr.skip(), list(messages), gr.skip(), gr.skip()
        except Exception:
            log.exception("answering failed")
        messages[-1] = {"role": "assistant", "content": answer_html(answer, turn) if answer else ERROR_HTML}
        session["answers"].append(answer)
        if answer:
            log.info("answered turn %d: refused=%s, %.0f ms", turn, answer.refused,
                     answer.timings_ms.get("total", 0.0))
        yield gr.skip(), list(messages), session, gr.skip()

    def example_handler(self, question: str) -> Callable:
        def run(session: dict, request: gr.Request = None):
            yield from self.respond(question, session, request)
        return run

    @guarded
    def on_like(self, session: dict, data: gr.LikeData, request: gr.Request = None):
        """A 👍/👎 click is stored at once; the optional comment box then opens for that answer."""
        self.limit(self.feedback_limit, request)
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turn = int(index) // 2
        answer = session["answers"][turn] if 0 <= turn < len(session["answers"]) else None
        if answer is None:
            return session, gr.update(visible=False), gr.skip(), gr.skip()
        rating = {True: "up", False: "down"}.get(data.liked)
        feedback_id = session["feedback"].get(turn)
        if rating is None:  # the resident clicked the same thumb again: the rating is withdrawn
            if feedback_id is not None:
                self.feedback.delete(feedback_id)
                session["feedback"].pop(turn)
            session["pending"] = None
            return session, gr.update(visible=False), gr.skip(), gr.skip()
        if feedback_id is None:
            session["feedback"][turn] = self.feedback.add(rating, answer)
        else:
            self.feedback.update(feedback_id, rating=rating)
        session["pending"] = turn
        label = f"已记录您对这条回答的评价：{RATING_TEXT[rating]}。如愿意，可以补充说明（可选）："
        return session, gr.update(visible=True), label, ""

    @guarded
    def on_comment(self, comment: str, session: dict, request: gr.Request = None):
        self.limit(self.feedback_limit, request)
        turn = session.get("pending")
        if turn is None or turn not in session["feedback"]:
            return session, gr.update(visible=False), ""
        comment = str(comment or "")
        if len(comment.strip()) > MAX_COMMENT:
            raise refused(COMMENT_TOO_LONG)
        if comment.strip():
            self.feedback.update(session["feedback"][turn], comment=comment)
        gr.Info("谢谢！您的意见已记录。")
        session["pending"] = None
        return session, gr.update(visible=False), ""

    @guarded
    def open_citation(self, session: dict, event: gr.EventData) -> str:
        match = CITE_KEY.fullmatch(str(getattr(event, "cite", "")))
        if not match:
            return gr.skip()
        turn, n = int(match[1]), int(match[2])
        answers = session["answers"]
        answer = answers[turn] if turn < len(answers) else None
        citation = next((c for c in answer.citations if c.n == n), None) if answer else None
        if citation is None:
            return gr.skip()
        article = self.library.article(citation.article_id)
        return article_html(article, citation) if article else missing_article_html(citation)

    # ---- API (explicit endpoints for programs; the page uses the handlers above) --------------------------

    def api_ask(self, question: str, history: list[list[str]] | None = None, request: gr.Request = None) -> dict:
        """Answer a question; ``history`` holds earlier [question, answer] pairs. Returns the Answer as JSON,
        with the ``answer_id`` that /feedback takes."""
        self.limit(self.question_limit, request)
        if not isinstance(question, str):
            raise refused(NOT_TEXT)
        if not question.strip():
            raise refused(EMPTY_PROMPT)
        try:
            answer = self.assistant.ask(question.strip(), history)
        except InputError as exc:
            raise refused(str(exc)) from None
        except Exception:
            log.exception("API answer failed")
            raise gr.Error(APOLOGY) from None
        return {**answer.to_dict(), "answer_id": self.issued.add(answer)}

    def api_feedback(self, answer_id: str, rating: str, comment: str = "", request: gr.Request = None) -> int:
        """Store 👍 ("up") or 👎 ("down") for the answer /ask returned with ``answer_id``; returns the
        feedback id."""
        self.limit(self.feedback_limit, request)
        if rating not in RATINGS:
            raise refused("评价只能是 up 或 down。")
        if not isinstance(comment, str):
            raise refused("comment 必须是文字。")
        if len(comment.strip()) > MAX_COMMENT:
            raise refused(COMMENT_TOO_LONG)
        answer = self.issued.get(answer_id) if isinstance(answer_id, str) else None
        if answer is None:
            raise refused("answer_id 无效或已过期：请填写 /ask 返回的 answer_id。")
        return self.feedback.add(rating, answer, comment)

    # ---- staff -------------------------------------------------------------------------------------------

    def require_staff(self, password: str, request: gr.Request | None) -> None:
        client = client_of(request)
        if wait := self.staff_door.locked_for(client):
            log.warning("staff action refused for %s: locked out for %.0f s more", client, wait)
            raise refused(STAFF_LOCKED.format(minutes=max(1, round(wait / 60))))
        expected = (self.settings.staff_password or "").encode("utf-8")
        given = password.encode("utf-8", "replace") if isinstance(password, str) else b""
        if not expected or not hmac.compare_digest(given, expected):
            failures = self.staff_door.failed(client)
            log.warning("staff action refused for %s: wrong password (%d in a row)", client, failures)
            raise refused(STAFF_DENIED)
        self.staff_door.succeeded(client)

    def article_rows(self, query: str = "") -> list[list[str]]:
        return [[a.id, a.title, a.date, a.path] for a in self.library.search(query or "")]

    def staff_articles(self, password: str, query: str, request: gr.Request = None) -> list[list[str]]:
        self.require_staff(password, request)
        return self.article_rows(query)

    def staff_article(self, password: str, article_id: str, request: gr.Request = None) -> str:
        self.require_staff(password, request)
        return self._article_view(article_id)

    def _article_view(self, article_id: str) -> str:
        article = self.library.article((article_id or "").strip())
        if article is None:
            raise refused(f"没有编号为「{article_id}」的文章。")
        return article_html(article)

    def staff_pick(self, password: str, data: gr.SelectData, request: gr.Request = None):
        """A click on a row of the article table opens that article."""
        self.require_staff(password, request)
        article_id = str(data.row_value[0]) if data.row_value else ""
        return article_id, self._article_view(article_id)

    def staff_upload(self, password: str, file: str | None, as_page: bool, replace: bool, request: gr.Request = None,
                     progress=gr.Progress(track_tqdm=True)):
        self.require_staff(password, request)
        if not file:
            raise refused("请先选择要上传的 .md 或 .txt 文件。")
        path = Path(file)
        change = self.library.add_file(path.name, path.read_bytes(), as_page=bool(as_page), replace=bool(replace),
                                       progress=lambda fraction, text: progress(fraction, desc=text))
        log.info("staff upload %r from %s: %s", path.name, client_of(request), change.message())
        return change.message(), self.article_rows()

    def staff_delete(self, password: str, article_id: str, request: gr.Request = None):
        self.require_staff(password, request)
        article_id = (article_id or "").strip()
        if not article_id:
            raise refused("请先填写或在列表中点选要删除的文章编号。")
        change = self.library.delete(article_id)
        log.info("staff delete %r from %s: %s", article_id, client_of(request), change.message())
        return change.message(), self.article_rows(), READER_PLACEHOLDER

    def staff_feedback(self, password: str, only_negative: bool, since: str, until: str, request: gr.Request = None) -> str:
        self.require_staff(password, request)
        return feedback_html(self.feedback.list(bool(only_negative), parse_day(since, "起始日期"),
                                                parse_day(until, "截止日期")))

    def staff_export(self, password: str, only_negative: bool, since: str, until: str, request: gr.Request = None) -> str:
        self.require_staff(password, request)
        text = self.feedback.export_csv(bool(only_negative), parse_day(since, "起始日期"), parse_day(until, "截止日期"))
        folder = Path(tempfile.mkdtemp(prefix="wd-export-"))
        path = folder / f"feedback-{datetime.now():%Y%m%d-%H%M%S}.csv"
        path.write_text(text, encoding="utf-8-sig")  # the BOM lets Excel open Chinese text correctly
        # The download link works without the password, so neither this file nor Gradio's cached copy of it
        # (Blocks' delete_cache) outlives EXPORT_SECONDS.
        timer = threading.Timer(EXPORT_SECONDS, shutil.rmtree, (folder,), {"ignore_errors": True})
        timer.daemon = True
        timer.start()
        log.info("staff export of %d bytes for %s", len(text), client_of(request))
        return str(path)

    # ---- layout ------------------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        title = TITLE.format(district=self.assistant.lexicon.district)
        with gr.Blocks(title=title, analytics_enabled=False,
                       delete_cache=(int(EXPORT_SECONDS), int(EXPORT_SECONDS))) as demo:
            gr.Markdown(INTRO.format(title=title))
            with gr.Tabs():
                with gr.Tab("居民问答", id="chat"):
                    self._chat_tab()
                if self.settings.staff_password:
                    with gr.Tab("工作人员", id="staff"):
                        self._staff_tab()
            gr.api(self.api_ask, api_name="ask")
            gr.api(self.api_feedback, api_name="feedback")
        return demo

    def _chat_tab(self) -> None:
        session = gr.State(new_session())
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="对话", height=560, render_markdown=False, sanitize_html=True,
                                     allow_tags=False, placeholder=self.placeholder(), buttons=["copy"],
                                     elem_id="wd-chat")
                with gr.Row():
                    question = gr.Textbox(show_label=False, placeholder=EMPTY_PROMPT, lines=1, max_lines=5,
                                          scale=6, elem_id="wd-question")
                    send = gr.Button("发送", variant="primary", scale=1, min_width=80, elem_id="wd-send")
                    reset = gr.Button("新对话", scale=1, min_width=80, elem_id="wd-new")
                with gr.Group(visible=False, elem_id="wd-comment-box") as comment_box:
                    comment_label = gr.Markdown()
                    comment = gr.Textbox(show_label=False, placeholder="哪里不对、不清楚或缺了什么？", lines=2,
                                         max_length=MAX_COMMENT, elem_id="wd-comment")
                    comment_send = gr.Button("提交说明", size="sm", elem_id="wd-comment-send")
                examples = self.examples()
                if examples:
                    gr.Markdown("**试试这些问题：**")
                    with gr.Row():
                        example_buttons = [gr.Button(q, size="sm", variant="secondary") for q in examples]
                else:
                    example_buttons = []
            with gr.Column(scale=2):
                gr.Markdown("**原文**")
                article_view = gr.HTML(ARTICLE_PLACEHOLDER, js_on_load=CITE_JS, max_height=640,
                                       elem_id="wd-article", padding=True)
        chat_outputs = [question, chatbot, session, comment_box]
        private = {"api_visibility": "private", "show_progress": "minimal"}
        runs = [question.submit(self.respond, [question, session], chat_outputs, **private),
                send.click(self.respond, [question, session], chat_outputs, **private)]
        runs += [button.click(self.example_handler(q), [session], chat_outputs, **private)
                 for button, q in zip(example_buttons, examples)]
        fresh = [session, chatbot, article_view, comment_box, question]
        reset.click(fresh_conversation, None, fresh, cancels=runs, api_visibility="private")
        chatbot.clear(fresh_conversation, None, fresh, cancels=runs, api_visibility="private")
        chatbot.like(self.on_like, [session], [session, comment_box, comment_label, comment],
                     api_visibility="private")
        comment_send.click(self.on_comment, [comment, session], [session, comment_box, comment],
                           api_visibility="private")
        article_view.click(self.open_citation, [session], [article_view], api_visibility="private",
                           show_progress="hidden")

    def _staff_tab(self) -> None:
        password = gr.Textbox(label="工作人员口令", type="password", elem_id="wd-staff-password",
                              info="每项操作都会核对口令。")
        with gr.Accordion("文章管理", open=True):
            with gr.Row():
                query = gr.Textbox(label="按标题或正文搜索", scale=4, elem_id="wd-staff-query")
                search = gr.Button("搜索 / 刷新列表", scale=1, elem_id="wd-staff-search")
            table = gr.Dataframe(headers=["编号", "标题", "日期", "文件"], datatype=["str"] * 4, interactive=False,
                                 wrap=True, max_height=360, elem_id="wd-staff-articles")
            with gr.Row():
                article_id = gr.Textbox(label="文章编号（点选列表中的一行即可填入）", scale=4,
                                        elem_id="wd-staff-article-id")
                open_btn = gr.Button("打开", scale=1, elem_id="wd-staff-open")
                delete_btn = gr.Button("删除", variant="stop", scale=1, elem_id="wd-staff-delete")
            reader = gr.HTML(READER_PLACEHOLDER, js_on_load=None, max_height=480, padding=True,
                             elem_id="wd-staff-reader")
        with gr.Accordion("上传文章", open=True):
            upload = gr.File(label="文章文件（.md 带 front matter，或 .txt 首行为标题）", file_types=[".md", ".txt"],
                             type="filepath", elem_id="wd-staff-file")
            as_page = gr.Checkbox(label="这是整版报纸文本（按版面拆分成多篇文章）", elem_id="wd-staff-as-page")
            replace = gr.Checkbox(label="替换同名文件（文件名已存在时才需要勾选）", elem_id="wd-staff-replace")
            upload_btn = gr.Button("上传并入库", variant="primary", elem_id="wd-staff-upload")
            status = gr.Textbox(label="结果", interactive=False, elem_id="wd-staff-status")
        with gr.Accordion("居民反馈", open=True):
            with gr.Row():
                only_negative = gr.Checkbox(label="只看差评 👎", elem_id="wd-staff-negative")
                since = gr.Textbox(label="起始日期（YYYY-MM-DD）", elem_id="wd-staff-since")
                until = gr.Textbox(label="截止日期（YYYY-MM-DD）", elem_id="wd-staff-until")
            with gr.Row():
                refresh = gr.Button("查看反馈", elem_id="wd-staff-feedback-btn")
                export = gr.Button("导出 CSV", elem_id="wd-staff-export-btn")
            feedback_view = gr.HTML("", js_on_load=None, padding=True, elem_id="wd-staff-feedback")
            csv_file = gr.File(label="导出的 CSV", interactive=False, elem_id="wd-staff-csv")
        on = self._staff_event
        on(search.click, self.staff_articles, [password, query], [table], "staff_articles")
        on(password.submit, self.staff_articles, [password, query], [table], None)
        on(open_btn.click, self.staff_article, [password, article_id], [reader], "staff_article")
        on(table.select, self.staff_pick, [password], [article_id, reader], None)
        on(upload_btn.click, self.staff_upload, [password, upload, as_page, replace], [status, table],
           "staff_upload")
        on(delete_btn.click, self.staff_delete, [password, article_id], [status, table, reader], "staff_delete")
        filters = [password, only_negative, since, until]
        on(refresh.click, self.staff_feedback, filters, [feedback_view], "staff_feedback")
        on(export.click, self.staff_export, filters, [csv_file], "staff_export")

    @staticmethod
    def _staff_event(listener, fn: Callable, inputs: list, outputs: list, api_name: str | None) -> None:
        visibility = {"api_name": api_name} if api_name else {"api_visibility": "private"}
        listener(guarded(fn, STAFF_FAILED), inputs, outputs, **visibility)


def build_app(assistant: Assistant, settings: Settings) -> gr.Blocks:
    return WebApp(assistant, settings).build()
