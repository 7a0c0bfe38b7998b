"""The staff console: its own Gradio app, served at /staff behind a login (``server.py``), never on the
residents' page. Browse, read, upload and delete articles; review and export residents' feedback.

Each action shows its result, or what went wrong, in Chinese next to the action; the rest of the screen is left
as it was. The same operations are API endpoints for programs (behind the same login), where errors are raised.
No ``from __future__ import annotations``: Gradio reads the API endpoints' types from real annotations.
"""
import functools
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import gradio as gr
from markupsafe import Markup

from bot.answer.assistant import InputError
from bot.interfaces.feedback import FeedbackRecord, FeedbackStore
from bot.interfaces.library import KnowledgeLibrary
from bot.interfaces.web.handling import ActionError, client_of, guarded
from bot.interfaces.web.html import APOLOGY, article_html, esc_lines, passage_html
from bot.knowledge.upload import LibraryError
from bot.text import date_label, normalize_query

log = logging.getLogger(__name__)

TITLE = "{district}便民问答 · 工作人员"
READER_PLACEHOLDER = '<div class="wd-article-empty">点选列表中的一行，或填写编号后点“打开”，在这里阅读全文。</div>'
STAFF_FAILED = "操作失败：系统内部错误，详情已记入服务器日志。"
EXPORT_SECONDS = 600.0
RATING_TEXT = {"up": "👍 好评", "down": "👎 差评"}


def status_html(text: str, ok: bool = True) -> str:
    return Markup('<div class="wd-status wd-status-{}">{}</div>').format("ok" if ok else "error", esc_lines(text))


def parse_day(value: str, label: str) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ActionError(f"{label}格式应为 YYYY-MM-DD，例如 2017-07-31。") from None


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


def shown(status: int, count: int) -> Callable:
    """For the console's handlers: an expected error becomes a message in output ``status`` (of ``count``) and
    leaves the other outputs as they are; an unexpected one is logged with its traceback and apologised for."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except (ActionError, LibraryError, InputError) as exc:
                log.info("staff %s refused: %s", fn.__name__, exc)
                message = status_html(str(exc), ok=False)
            except Exception:
                log.exception("staff %s failed", fn.__name__)
                message = status_html(STAFF_FAILED, ok=False)
            outputs = [gr.skip()] * count
            outputs[status] = message
            return tuple(outputs) if count > 1 else outputs[0]
        return run
    return wrap


class StaffConsole:
    """Handlers and layout of /staff. Whoever reaches a handler has logged in (the server checks every request)."""

    def __init__(self, library: KnowledgeLibrary, feedback: FeedbackStore, district: str):
        self.library = library
        self.feedback = feedback
        self.district = district

    # ---- operations (raise on bad input) ----------------------------------------------------------------

    def article_rows(self, query: str = "") -> list[list[str]]:
        return [[a.id, a.title, a.date, a.path] for a in self.library.search(query or "")]

    def article_view(self, article_id: str) -> str:
        article_id = (article_id or "").strip()
        if not article_id:
            raise ActionError("请先填写或在列表中点选文章编号。")
        article = self.library.article(article_id)
        if article is None:
            raise ActionError(f"没有编号为「{article_id}」的文章。")
        return article_html(article)

    def upload(self, filename: str, data: bytes, as_page: bool, replace: bool, request: gr.Request | None,
               progress: Callable[[float, str], None]) -> str:
        change = self.library.add_file(filename, data, as_page=bool(as_page), replace=bool(replace), progress=progress)
        log.info("staff upload %r from %s: %s", filename, client_of(request), change.message())
        return change.message()

    def delete(self, article_id: str, request: gr.Request | None) -> str:
        article_id = (article_id or "").strip()
        if not article_id:
            raise ActionError("请先填写或在列表中点选要删除的文章编号。")
        change = self.library.delete(article_id)
        log.info("staff delete %r from %s: %s", article_id, client_of(request), change.message())
        return change.message()

    def feedback_view(self, only_negative: bool, since: str, until: str) -> str:
        return feedback_html(self.feedback.list(bool(only_negative), parse_day(since, "起始日期"),
                                                parse_day(until, "截止日期")))

    def export(self, only_negative: bool, since: str, until: str, request: gr.Request | None) -> str:
        text = self.feedback.export_csv(bool(only_negative), parse_day(since, "起始日期"), parse_day(until, "截止日期"))
        folder = Path(tempfile.mkdtemp(prefix="wd-export-"))
        path = folder / f"feedback-{datetime.now():%Y%m%d-%H%M%S}.csv"
        path.write_text(text, encoding="utf-8-sig")  # the BOM lets Excel open Chinese text correctly
        # Neither this file nor Gradio's cached copy of it (Blocks' delete_cache) outlives EXPORT_SECONDS.
        timer = threading.Timer(EXPORT_SECONDS, shutil.rmtree, (folder,), {"ignore_errors": True})
        timer.daemon = True
        timer.start()
        log.info("staff export of %d bytes for %s", len(text), client_of(request))
        return str(path)

    # ---- API endpoints (errors raised to the caller) --------------------------------------------------

    def api_articles(self, query: str = "") -> list[list[str]]:
        """Articles whose title or body contains ``query``: [id, title, date, file] rows, newest first."""
        return self.article_rows(query)

    def api_article(self, article_id: str) -> str:
        """One article as HTML."""
        return self.article_view(article_id)

    def api_upload(self, filename: str, content: str, as_page: bool = False, replace: bool = False,
                   request: gr.Request = None) -> str:
        """Add an article file given as its name and text (.md with front matter, or .txt whose first line is
        the title). Text, not a file path: the server reads nothing a caller names."""
        if not isinstance(filename, str) or not isinstance(content, str):
            raise ActionError("filename 和 content 都必须是文字。")
        return self.upload(filename, content.encode("utf-8"), as_page, replace, request, lambda fraction, text: None)

    def api_delete(self, article_id: str, request: gr.Request = None) -> str:
        """Delete an article by id."""
        return self.delete(article_id, request)

    def api_feedback(self, only_negative: bool = False, since: str = "", until: str = "") -> str:
        """Residents' feedback as an HTML table."""
        return self.feedback_view(only_negative, since, until)

    def api_export(self, only_negative: bool = False, since: str = "", until: str = "",
                   request: gr.Request = None) -> str:
        """Residents' feedback as a CSV file."""
        return self.export(only_negative, since, until, request)

    # ---- the console's handlers (errors shown next to the action) ----------------------------------------

    @shown(status=0, count=2)
    def on_search(self, query: str):
        return "", self.article_rows(query)

    @shown(status=0, count=3)
    def on_open(self, article_id: str):
        return "", self.article_view(article_id), gr.skip()

    @shown(status=0, count=3)
    def on_pick(self, data: gr.SelectData):
        """A click on a row of the article table opens that article."""
        article_id = str(data.row_value[0]) if data.row_value else ""
        return "", self.article_view(article_id), article_id

    @shown(status=0, count=2)
    def on_upload(self, file: str | None, as_page: bool, replace: bool, request: gr.Request = None,
                  progress=gr.Progress()):
        if not file:
            raise ActionError("请先选择要上传的 .md 或 .txt 文件。")
        path = Path(file)  # Gradio's own copy of the uploaded file
        message = self.upload(path.name, path.read_bytes(), as_page, replace, request,
                              lambda fraction, text: progress(fraction, desc=text))
        return status_html(message), self.article_rows()

    @shown(status=0, count=3)
    def on_delete(self, article_id: str, request: gr.Request = None):
        message = self.delete(article_id, request)
        return status_html(message), self.article_rows(), READER_PLACEHOLDER

    @shown(status=0, count=2)
    def on_feedback(self, only_negative: bool, since: str, until: str):
        return "", self.feedback_view(only_negative, since, until)

    @shown(status=0, count=2)
    def on_export(self, only_negative: bool, since: str, until: str, request: gr.Request = None):
        return status_html("已导出，请点击下方文件下载（10 分钟内有效）。"), self.export(only_negative, since, until,
                                                                                      request)

    # ---- layout ------------------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        title = TITLE.format(district=self.district)
        with gr.Blocks(title=title, analytics_enabled=False,
                       delete_cache=(int(EXPORT_SECONDS), int(EXPORT_SECONDS))) as console:
            gr.HTML(Markup('<div class="wd-header"><h2>{}</h2><p>修改会立即生效：居民的下一个问题就按新的资料回答。'
                           '<a class="wd-logout" href="logout">退出登录</a></p></div>').format(title), padding=False)
            table = self._articles(console)
            self._upload(table)
            self._feedback()
            for fn, name in ((self.api_articles, "staff_articles"), (self.api_article, "staff_article"),
                             (self.api_upload, "staff_upload"), (self.api_delete, "staff_delete"),
                             (self.api_feedback, "staff_feedback"), (self.api_export, "staff_export")):
                gr.api(guarded(fn, STAFF_FAILED), api_name=name)
        return console

    def _articles(self, console: gr.Blocks) -> gr.Dataframe:
        with gr.Accordion("文章管理", open=True):
            with gr.Row():
                query = gr.Textbox(label="按标题或正文搜索", scale=4, elem_id="wd-staff-query")
                search = gr.Button("搜索 / 刷新列表", scale=1, elem_id="wd-staff-search")
            search_status = gr.HTML("", padding=False, elem_id="wd-staff-search-status")
            table = gr.Dataframe(headers=["编号", "标题", "日期", "文件"],
                                      datatype=["str"] * 4, interactive=False, wrap=True, max_height=360,
                                      elem_id="wd-staff-articles")
            with gr.Row():
                article_id = gr.Textbox(label="文章编号（点选列表中的一行即可填入）", scale=4,
                                        elem_id="wd-staff-article-id")
                open_btn = gr.Button("打开", scale=1, elem_id="wd-staff-open")
                delete_btn = gr.Button("删除", variant="stop", scale=1, elem_id="wd-staff-delete")
            article_status = gr.HTML("", padding=False, elem_id="wd-staff-article-status")
            reader = gr.HTML(READER_PLACEHOLDER, max_height=480, padding=True, elem_id="wd-staff-reader")
        private = {"api_visibility": "private"}
        search.click(self.on_search, [query], [search_status, table], **private)
        query.submit(self.on_search, [query], [search_status, table], **private)
        open_btn.click(self.on_open, [article_id], [article_status, reader, article_id], **private)
        table.select(self.on_pick, None, [article_status, reader, article_id], **private)
        delete_btn.click(self.on_delete, [article_id], [article_status, table, reader], **private)
        console.load(self.on_search, [query], [search_status, table], **private)
        return table

    def _upload(self, table: gr.Dataframe) -> None:
        with gr.Accordion("上传文章", open=True):
            upload = gr.File(label="文章文件（.md 带 front matter，或 .txt 首行为标题）", file_types=[".md", ".txt"],
                             type="filepath", elem_id="wd-staff-file")
            as_page = gr.Checkbox(label="这是整版报纸文本（按版面拆分成多篇文章）", elem_id="wd-staff-as-page")
            replace = gr.Checkbox(label="替换同名文件（文件名已存在时才需要勾选）", elem_id="wd-staff-replace")
            upload_btn = gr.Button("上传并入库", variant="primary", elem_id="wd-staff-upload")
            status = gr.HTML("", padding=False, elem_id="wd-staff-status")
        upload_btn.click(self.on_upload, [upload, as_page, replace], [status, table], api_visibility="private")

    def _feedback(self) -> None:
        with gr.Accordion("居民反馈", open=True):
            with gr.Row():
                only_negative = gr.Checkbox(label="只看差评 👎", elem_id="wd-staff-negative")
                since = gr.Textbox(label="起始日期（YYYY-MM-DD）", elem_id="wd-staff-since")
                until = gr.Textbox(label="截止日期（YYYY-MM-DD）", elem_id="wd-staff-until")
            with gr.Row():
                refresh = gr.Button("查看反馈", elem_id="wd-staff-feedback-btn")
                export = gr.Button("导出 CSV", elem_id="wd-staff-export-btn")
            status = gr.HTML("", padding=False, elem_id="wd-staff-feedback-status")
            view = gr.HTML("", padding=True, elem_id="wd-staff-feedback")
            csv_file = gr.File(label="导出的 CSV", interactive=False, elem_id="wd-staff-csv")
        filters = [only_negative, since, until]
        refresh.click(self.on_feedback, filters, [status, view], api_visibility="private")
        export.click(self.on_export, filters, [status, csv_file], api_visibility="private")
