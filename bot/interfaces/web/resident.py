"""The residents' page: chat with cited sources, the article view, feedback, and the public API (/ask, /feedback).

Nothing here reaches staff data: the staff console is a separate Gradio app behind a login (``staff.py``), so
this page's config lists no staff endpoint at all. Messages are shown in the page, never as Gradio toasts,
whose titles ("Error", "Info") cannot be translated. No ``from __future__ import annotations``: Gradio reads
the API endpoints' types from real annotations.
"""
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import gradio as gr
from markupsafe import Markup

from bot.answer.assistant import Assistant, InputError
from bot.answer.suggestions import Suggester, Suggestion
from bot.answer.types import Answer
from bot.interfaces.feedback import MAX_COMMENT, RATINGS, FeedbackStore, IssuedAnswers
from bot.interfaces.library import KnowledgeLibrary
from bot.interfaces.throttle import RateLimit
from bot.interfaces.web.handling import client_of, guarded, refused
from bot.interfaces.web.html import (APOLOGY, RATING_TEXT, ERROR_HTML, THINKING_HTML, answer_html, article_html,
                                     missing_article_html, streaming_html, user_html)

log = logging.getLogger(__name__)

TITLE = "{district}便民问答"
# The article view sits beside the chat on a wide screen and below it on a phone: the header says which.
HEADER = ('<div class="wd-header"><h2>{title}</h2><p>回答只摘自{district}发布的资料，每句话后面的 [n] 是它的出处；'
          '点击 [n] 或来源，<span class="wd-wide">右侧</span><span class="wd-narrow">下方</span>会打开原文并标出引用的句子。'
          '</p></div>')
CHAT_PLACEHOLDER = "您好！请在下方输入您想了解的事情{topics}。"
ARTICLE_PLACEHOLDER = '<div class="wd-article-empty">点击回答中的 [n] 或来源，在这里查看原文，引用的句子会高亮显示。</div>'
INPUT_PLACEHOLDER = "请输入您的问题"
EMPTY_PROMPT = "请先输入您想咨询的问题。"
NOT_TEXT = "问题必须是一段文字。"
RATE_LIMITED = "提问太频繁了，请稍等一分钟再试。"
COMMENT_TOO_LONG = f"补充说明最多 {MAX_COMMENT} 个字，请精简后再提交。"
COMMENT_THANKS = "谢谢！您的意见已记录。"
CITE_KEY = re.compile(r"wd-cite-(\d+)-(\d+)")
ASK_KEY = re.compile(r"wd-ask-(\d+)-(\d+)")
PAGE_JS = (Path(__file__).with_name("page.js")).read_text(encoding="utf-8")


def message_html(text: str, kind: str = "info") -> str:
    """A line under the input box (empty text: nothing shown)."""
    return Markup('<div class="wd-message wd-message-{}">{}</div>').format(kind, text) if text else ""


def new_session() -> dict:
    """One conversation: displayed messages (user/assistant pairs), the Answers (None for a failed turn), the
    suggestions offered under each answer, the feedback id given to each answer, and the answer whose comment
    box is open."""
    return {"messages": [], "answers": [], "suggestions": [], "feedback": {}, "pending": None}


def fresh_conversation() -> tuple:
    """Outputs for 新对话 (and the chat's own clear button): session, chat, article view, comment box, input, message."""
    return new_session(), [], ARTICLE_PLACEHOLDER, gr.update(visible=False), "", ""


def history_of(session: dict) -> list[tuple[str, str]]:
    return [(a.question, a.text) for a in session["answers"] if a is not None]


class ResidentPage:
    """Handlers and layout of the public page. The Assistant, feedback store and issued answers are shared by
    every visitor; conversations live in per-session gr.State."""

    def __init__(self, assistant: Assistant, library: KnowledgeLibrary, feedback: FeedbackStore, rate_limit: int,
                 suggester: Suggester | None = None):
        self.assistant = assistant
        self.library = library
        self.feedback = feedback
        self.suggester = suggester  # offers follow-ups and, on refusals, what the knowledge holds instead
        self.issued = IssuedAnswers()
        self.question_limit = RateLimit(rate_limit)
        self.feedback_limit = RateLimit(rate_limit)

    def allowed(self, rate: RateLimit, request: gr.Request | None) -> bool:
        client = client_of(request)
        if rate.allow(client):
            return True
        log.warning("rate limit: %s made more than %d calls in a minute", client, rate.per_minute)
        return False

    # ---- the chat ----------------------------------------------------------------------------------------

    @property
    def district(self) -> str:
        return self.assistant.lexicon.district

    def examples(self) -> list[str]:
        """The lexicon's example questions whose topic the knowledge still contains (each search stops at the first
        chunk that has it, where a list of every chunk's text cost 0.03 s a start at 30k chunks)."""
        chunks = self.assistant.index.chunks()
        return [e.question for e in self.assistant.lexicon.examples if any(e.topic in c.indexed_text for c in chunks)]

    def placeholder(self) -> str:
        topics = list(dict.fromkeys(e.topic for e in self.assistant.lexicon.examples))
        return CHAT_PLACEHOLDER.format(topics=f"，例如{'、'.join(topics)}等" if topics else "")

    def suggestions_for(self, answer: Answer) -> list[Suggestion]:
        """Follow-ups the knowledge answers; for a refusal, what it holds on the topic. Never fails the turn."""
        if self.suggester is None:
            return []
        try:
            return (self.suggester.for_refusal(answer) if answer.refused else self.suggester.follow_ups(answer))
        except Exception:
            log.exception("suggestions failed")
            return []

    def respond(self, message: str, session: dict, request: gr.Request = None) -> Iterator[tuple]:
        """Streams one turn into the chat. Outputs: input box, chat, session, comment box, message line."""
        question = (message or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), message_html(EMPTY_PROMPT, "warning")
            return
        if not self.allowed(self.question_limit, request):
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), message_html(RATE_LIMITED, "warning")
            return
        turn, history, messages = len(session["answers"]), history_of(session), session["messages"]
        messages += [{"role": "user", "content": user_html(question)},
                     {"role": "assistant", "content": THINKING_HTML}]
        yield "", list(messages), session, gr.update(visible=False), ""
        answer = None
        try:
            streamed = ""
            for event in self.assistant.stream(question, history):
                if isinstance(event, Answer):
                    answer = event
                else:
                    streamed += event
                    messages[-1] = {"role": "assistant", "content": streaming_html(streamed)}
                    yield gr.skip(), list(messages), gr.skip(), gr.skip(), gr.skip()
        except Exception:
            log.exception("answering failed")
        session["answers"].append(answer)
        session["suggestions"].append([])
        if answer is None:
            messages[-1] = {"role": "assistant", "content": ERROR_HTML}
            yield gr.skip(), list(messages), session, gr.skip(), gr.skip()
            return
        log.info("answered turn %d: refused=%s, %.0f ms", turn, answer.refused, answer.timings_ms.get("total", 0.0))
        messages[-1] = {"role": "assistant", "content": answer_html(answer, turn)}
        yield gr.skip(), list(messages), session, gr.skip(), gr.skip()
        # The answer is on screen first; suggestions are checked against the knowledge, which takes a moment.
        suggestions = self.suggestions_for(answer)
        if suggestions:
            session["suggestions"][turn] = suggestions
            messages[-1] = {"role": "assistant",
                            "content": answer_html(answer, turn, [s.label for s in suggestions])}
            yield gr.skip(), list(messages), session, gr.skip(), gr.skip()

    def example_handler(self, question: str) -> Callable:
        def run(session: dict, request: gr.Request = None):
            yield from self.respond(question, session, request)
        return run

    def ask_suggested(self, session: dict, event: gr.EventData, request: gr.Request = None) -> Iterator[tuple]:
        """A click on a suggested question under an answer asks it."""
        match = ASK_KEY.fullmatch(str(getattr(event, "ask", "")))
        offered = session["suggestions"]
        turn, k = (int(match[1]), int(match[2])) if match else (-1, -1)
        if not (0 <= turn < len(offered) and 0 <= k < len(offered[turn])):
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        yield from self.respond(offered[turn][k].question, session, request)

    def on_like(self, session: dict, data: gr.LikeData, request: gr.Request = None):
        """A 👍/👎 click is stored at once; the optional comment box then opens for that answer."""
        if not self.allowed(self.feedback_limit, request):
            return session, gr.skip(), gr.skip(), gr.skip(), message_html(RATE_LIMITED, "warning")
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turn = int(index) // 2
        answer = session["answers"][turn] if 0 <= turn < len(session["answers"]) else None
        if answer is None:
            return session, gr.update(visible=False), gr.skip(), gr.skip(), ""
        rating = {True: "up", False: "down"}.get(data.liked)
        feedback_id = session["feedback"].get(turn)
        if rating is None:  # the resident clicked the same thumb again: the rating is withdrawn
            if feedback_id is not None:
                self.feedback.delete(feedback_id)
                session["feedback"].pop(turn)
            session["pending"] = None
            return session, gr.update(visible=False), gr.skip(), gr.skip(), ""
        if feedback_id is None:
            session["feedback"][turn] = self.feedback.add(rating, answer)
        else:
            self.feedback.update(feedback_id, rating=rating)
        session["pending"] = turn
        label = f"已记录您对这条回答的评价：{RATING_TEXT[rating]}。如愿意，可以补充说明（可选）："
        return session, gr.update(visible=True), label, "", ""

    def on_comment(self, comment: str, session: dict, request: gr.Request = None):
        """Outputs: session, comment box, comment text, message line."""
        if not self.allowed(self.feedback_limit, request):
            return session, gr.skip(), gr.skip(), message_html(RATE_LIMITED, "warning")
        turn = session.get("pending")
        if turn is None or turn not in session["feedback"]:
            return session, gr.update(visible=False), "", ""
        comment = str(comment or "")
        if len(comment.strip()) > MAX_COMMENT:
            return session, gr.skip(), gr.skip(), message_html(COMMENT_TOO_LONG, "warning")
        if comment.strip():
            self.feedback.update(session["feedback"][turn], comment=comment)
        session["pending"] = None
        return session, gr.update(visible=False), "", message_html(COMMENT_THANKS)

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
        if not self.allowed(self.question_limit, request):
            raise refused(RATE_LIMITED)
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
        if not self.allowed(self.feedback_limit, request):
            raise refused(RATE_LIMITED)
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

    # ---- layout ------------------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        title = TITLE.format(district=self.district)
        with gr.Blocks(title=title, analytics_enabled=False) as page:
            gr.HTML(HEADER.format(title=title, district=self.district), padding=False, elem_id="wd-header")
            session = gr.State(new_session())
            with gr.Row(elem_id="wd-main"):
                with gr.Column(scale=3, min_width=320):
                    chat = self._chat_column()
                with gr.Column(scale=2, min_width=320, elem_id="wd-article-column"):
                    gr.HTML('<div class="wd-article-title">原文</div>', padding=False)
                    article_view = gr.HTML(ARTICLE_PLACEHOLDER, js_on_load=PAGE_JS, max_height=640,
                                           elem_id="wd-article", padding=True)
            self._wire(session, chat, article_view)
            gr.api(guarded(self.api_ask), api_name="ask")
            gr.api(guarded(self.api_feedback), api_name="feedback")
        return page

    def _chat_column(self) -> dict:
        chat = {"chatbot": gr.Chatbot(show_label=False, height=560, render_markdown=False, sanitize_html=True,
                                      allow_tags=False, placeholder=self.placeholder(), buttons=["copy"],
                                      autoscroll=False, elem_id="wd-chat")}
        with gr.Row(elem_id="wd-input-row"):
            chat["question"] = gr.Textbox(label="您的问题", show_label=False, placeholder=INPUT_PLACEHOLDER, lines=1, max_lines=5,
                                          scale=6, min_width=160, elem_id="wd-question")
            chat["send"] = gr.Button("发送", variant="primary", scale=1, min_width=64, elem_id="wd-send")
            chat["reset"] = gr.Button("新对话", scale=1, min_width=64, elem_id="wd-new")
        chat["message"] = gr.HTML("", padding=False, elem_id="wd-message")
        with gr.Group(visible=False, elem_id="wd-comment-box") as chat["comment_box"]:
            chat["comment_label"] = gr.Markdown()
            chat["comment"] = gr.Textbox(label="补充说明", show_label=False, placeholder="哪里不对、不清楚或缺了什么？", lines=2,
                                         max_length=MAX_COMMENT, elem_id="wd-comment")
            chat["comment_send"] = gr.Button("提交说明", size="sm", elem_id="wd-comment-send")
        chat["examples"] = {}
        if examples := self.examples():
            gr.HTML('<div class="wd-examples-title">试试这些问题：</div>', padding=False)
            with gr.Row(elem_id="wd-examples"):
                chat["examples"] = {q: gr.Button(q, size="sm", variant="secondary", min_width=0) for q in examples}
        return chat

    def _wire(self, session: gr.State, chat: dict, article_view: gr.HTML) -> None:
        question, chatbot, comment_box, message = chat["question"], chat["chatbot"], chat["comment_box"], chat["message"]
        chat_outputs = [question, chatbot, session, comment_box, message]
        # A turn runs on after its answer is shown (suggestions are checked then): a question sent meanwhile
        # waits for it instead of being dropped, as Gradio's default trigger mode would.
        private = {"api_visibility": "private", "show_progress": "minimal", "trigger_mode": "always_last"}
        runs = [question.submit(self.respond, [question, session], chat_outputs, **private),
                chat["send"].click(self.respond, [question, session], chat_outputs, **private),
                article_view.click(self.ask_suggested, [session], chat_outputs, **private)]
        runs += [button.click(self.example_handler(q), [session], chat_outputs, **private)
                 for q, button in chat["examples"].items()]
        fresh = [session, chatbot, article_view, comment_box, question, message]
        chat["reset"].click(fresh_conversation, None, fresh, cancels=runs, api_visibility="private")
        chatbot.clear(fresh_conversation, None, fresh, cancels=runs, api_visibility="private")
        chatbot.like(self.on_like, [session], [session, comment_box, chat["comment_label"], chat["comment"], message],
                     api_visibility="private")
        chat["comment_send"].click(self.on_comment, [chat["comment"], session],
                                   [session, comment_box, chat["comment"], message], api_visibility="private")
        article_view.click(self.open_citation, [session], [article_view], api_visibility="private",
                           show_progress="hidden")
