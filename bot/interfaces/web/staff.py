"""The staff console: its own Gradio app, served at /staff behind a login (``login.py``), never on the
residents' page. Browse, read, upload, replace, delete and restore articles; review and export residents'
feedback; read the audit log of all of it.

Nothing is lost by one click: a delete asks first and moves the file to the trash, from which one click restores
it; an upload over an existing file shows what changes and asks first. Each action shows its result, or what went
wrong, in Chinese next to the action; the rest of the screen is left as it was. The same operations are API
endpoints for programs (behind the same login), where errors are raised.
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
from bot.interfaces.audit import AuditLog, AuditRecord
from bot.interfaces.feedback import FeedbackRecord, FeedbackStore
from bot.interfaces.library import KnowledgeLibrary, LibraryChange
from bot.interfaces.preview import FileChange
from bot.interfaces.trash import TrashEntry, sha256
from bot.interfaces.web.handling import ActionError, client_of, guarded
from bot.interfaces.web.html import RATING_TEXT, article_html, esc_lines, passage_html
from bot.knowledge.articles import Article
from bot.knowledge.upload import LibraryError
from bot.text import date_label, normalize_query

log = logging.getLogger(__name__)

TITLE = "{district}便民问答 · 工作人员"
READER_PLACEHOLDER = '<div class="wd-article-empty">点选列表中的一行，或填写编号后点“打开”，在这里阅读全文。</div>'
STAFF_FAILED = "操作失败：系统内部错误，详情已记入服务器日志。"
EXPORT_SECONDS = 600.0
ACTION_TEXT = {"upload": "上传", "replace": "替换", "delete": "删除", "restore": "恢复", "feedback_export": "导出反馈",
               "login_failed": "登录失败", "login_locked": "登录被拒（锁定中）"}
TRASH_HEADERS = ["删除时间", "标题", "原文件", "编号", "操作"]
RESTORE = "恢复"
# The console lists this many articles, newest first; its search finds the rest. The rows of all 3,871 articles of
# the scale set are 0.59 MB of JSON for the browser on every open and every change; 200 are 30 kB.
ARTICLES_SHOWN = 200
AUDIT_SHOWN = 100
DELETING = "要删除的"
MAX_AUDIT_DETAIL = 500


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


def table_html(headers: list[str], rows: list[list], empty: str) -> str:
    if not rows:
        return Markup('<div class="wd-article-empty">{}</div>').format(empty)
    head = Markup("").join(Markup("<th>{}</th>").format(h) for h in headers)
    body = Markup("").join(Markup("<tr>{}</tr>").format(Markup("").join(Markup("<td>{}</td>").format(c) for c in row))
                           for row in rows)
    return Markup('<table class="wd-feedback-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>').format(
        head, body)


def audit_html(records: list[AuditRecord]) -> str:
    rows = [[r.time.replace("T", " "), ACTION_TEXT.get(r.action, r.action), r.file or "—",
             Markup('<span title="{}">{}</span>').format(r.content_hash, r.content_hash[:12]) if r.content_hash else "—",
             r.client, r.detail] for r in records]
    return table_html(["时间", "操作", "文件", "内容哈希", "来自", "说明"], rows, "还没有操作记录。")


def changes_html(changes: list[FileChange]) -> str:
    items = Markup("").join(Markup("<li>{}{}</li>").format(c.describe(), Markup("").join(
        Markup('<div class="wd-diff-{}">{}</div>').format("add" if line.startswith("+") else "del", line)
        for line in c.changed_lines)) for c in changes)
    return Markup('<div class="wd-confirm-text">同名文件已存在，上传会替换它：<ul>{}</ul>确定要替换吗？</div>').format(items)


def hidden() -> dict:
    return gr.update(visible=False)


def trash_rows(entries: list[TrashEntry]) -> list[list[str]]:
    return [[e.deleted_at.replace("T", " ")[:19], e.title, e.path, e.article_id, RESTORE] for e in entries]


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

    def __init__(self, library: KnowledgeLibrary, feedback: FeedbackStore, audit: AuditLog, district: str):
        self.library = library
        self.feedback = feedback
        self.audit = audit
        self.district = district

    # ---- operations (raise on bad input) ----------------------------------------------------------------

    def article_rows(self, query: str = "") -> list[list[str]]:
        return [[a.id, a.title, a.date, a.path] for a in self.library.search(query or "")]

    def listing(self, query: str = "") -> dict:
        """The console's article table: the newest ARTICLES_SHOWN matches, its label saying how many match."""
        rows, query = self.article_rows(query), (query or "").strip()
        found = f"含「{query}」的文章" if query else "文章"
        label = f"{found}共 {len(rows)} 篇"
        if len(rows) > ARTICLES_SHOWN:
            label += f"，这里列出最新的 {ARTICLES_SHOWN} 篇；其他文章请按标题或正文搜索"
        return gr.update(value=rows[:ARTICLES_SHOWN], label=label)

    def chosen(self, article_id: str, purpose: str = "") -> Article:
        """The article staff named (``purpose``: what for, in the message when none is named)."""
        article_id = (article_id or "").strip()
        if not article_id:
            raise ActionError(f"请先填写或在列表中点选{purpose}文章编号。")
        article = self.library.article(article_id)
        if article is None:
            raise ActionError(f"没有编号为「{article_id}」的文章。")
        return article

    def article_view(self, article_id: str) -> str:
        return article_html(self.chosen(article_id))

    def recorded(self, change: LibraryChange, request: gr.Request | None) -> str:
        """Log and audit a change to the knowledge; returns its message for the screen."""
        client, message = client_of(request), change.message()
        log.info("staff %s from %s: %s", change.action, client, message)
        for f in change.files:
            self.audit.record(change.audit_action, f.path, f.sha256, client, message[:MAX_AUDIT_DETAIL])
        return message

    def upload(self, filename: str, data: bytes, as_page: bool, replace: bool, request: gr.Request | None,
               progress: Callable[[float, str], None]) -> str:
        return self.recorded(self.library.add_file(filename, data, as_page=bool(as_page), replace=bool(replace),
                                                   progress=progress), request)

    def delete(self, article_id: str, request: gr.Request | None) -> str:
        article_id = (article_id or "").strip()
        if not article_id:
            raise ActionError(f"请先填写或在列表中点选{DELETING}文章编号。")
        # the library also deletes the chunks of an article whose file is gone, so no chosen() here
        return self.recorded(self.library.delete(article_id), request)

    def restore(self, entry_id: str, request: gr.Request | None) -> str:
        return self.recorded(self.library.restore((entry_id or "").strip()), request)

    def feedback_view(self, only_negative: bool, since: str, until: str) -> str:
        return feedback_html(self.feedback.list(bool(only_negative), parse_day(since, "起始日期"),
                                                parse_day(until, "截止日期")))

    def export(self, only_negative: bool, since: str, until: str, request: gr.Request | None) -> str:
        text = self.feedback.export_csv(bool(only_negative), parse_day(since, "起始日期"), parse_day(until, "截止日期"))
        folder = Path(tempfile.mkdtemp(prefix="wd-export-"))
        path = folder / f"feedback-{datetime.now():%Y%m%d-%H%M%S}.csv"
        data = text.encode("utf-8-sig")  # the BOM lets Excel open Chinese text correctly
        path.write_bytes(data)
        # Neither this file nor Gradio's cached copy of it (Blocks' delete_cache) outlives EXPORT_SECONDS.
        timer = threading.Timer(EXPORT_SECONDS, shutil.rmtree, (folder,), {"ignore_errors": True})
        timer.daemon = True
        timer.start()
        client = client_of(request)
        log.info("staff export of %d bytes for %s", len(data), client)
        filters = f"只看差评={bool(only_negative)}，起始={since or '—'}，截止={until or '—'}"
        self.audit.record("feedback_export", path.name, sha256(data), client, filters[:MAX_AUDIT_DETAIL])
        return str(path)

    def audit_view(self) -> str:
        return audit_html(self.audit.list(AUDIT_SHOWN))

    # ---- API endpoints (errors raised to the caller) --------------------------------------------------

    def api_articles(self, query: str = "") -> list[list[str]]:
        """Articles whose title or body contains ``query``: [id, title, date, file] rows, newest first."""
        return self.article_rows(query)

    def api_article(self, article_id: str) -> str:
        """One article as HTML."""
        return self.article_view(article_id)

    def api_preview(self, filename: str, content: str, as_page: bool = False) -> list[str]:
        """What uploading this file would change, one line per file; checks it like an upload, stores nothing."""
        return [c.describe() for c in self.library.preview(*self._text_file(filename, content), bool(as_page))]

    def api_upload(self, filename: str, content: str, as_page: bool = False, replace: bool = False,
                   request: gr.Request = None) -> str:
        """Add an article file given as its name and text (.md with front matter, or .txt whose first line is
        the title); an existing name is replaced only with ``replace``. Text, not a file path: the server reads
        nothing a caller names."""
        return self.upload(*self._text_file(filename, content), as_page, replace, request, lambda fraction, text: None)

    def api_delete(self, article_id: str, request: gr.Request = None) -> str:
        """Move an article to the trash by its id."""
        return self.delete(article_id, request)

    def api_trash(self) -> list[list[str]]:
        """Deleted articles, newest first: [entry id, deleted at, title, file, article id]."""
        return [[e.entry_id, e.deleted_at, e.title, e.path, e.article_id] for e in self.library.trash()]

    def api_restore(self, entry_id: str, request: gr.Request = None) -> str:
        """Put a deleted article back (``entry_id`` from /staff_trash)."""
        return self.restore(entry_id, request)

    def api_audit(self, limit: int = AUDIT_SHOWN) -> list[dict]:
        """The newest audit records: time, action, file, content hash, client, detail."""
        return [dict(vars(r)) for r in self.audit.list(limit)]

    def api_feedback(self, only_negative: bool = False, since: str = "", until: str = "") -> str:
        """Residents' feedback as an HTML table."""
        return self.feedback_view(only_negative, since, until)

    def api_export(self, only_negative: bool = False, since: str = "", until: str = "",
                   request: gr.Request = None) -> str:
        """Residents' feedback as a CSV file."""
        return self.export(only_negative, since, until, request)

    @staticmethod
    def _text_file(filename: str, content: str) -> tuple[str, bytes]:
        if not isinstance(filename, str) or not isinstance(content, str):
            raise ActionError("filename 和 content 都必须是文字。")
        return filename, content.encode("utf-8")

    # ---- the console's handlers (errors shown next to the action) ----------------------------------------

    @shown(status=0, count=2)
    def on_search(self, query: str):
        return "", self.listing(query)

    @shown(status=0, count=3)
    def on_open(self, article_id: str):
        return "", self.article_view(article_id), gr.skip()

    @shown(status=0, count=3)
    def on_pick(self, data: gr.SelectData):
        """A click on a row of the article table opens that article."""
        article_id = str(data.row_value[0]) if data.row_value else ""
        return "", self.article_view(article_id), article_id

    @shown(status=0, count=3)
    def on_delete_asked(self, article_id: str):
        """Outputs: status, the confirmation box, its text."""
        article = self.chosen(article_id, DELETING)
        question = Markup('<div class="wd-confirm-text">确定删除《{}》（编号 {}，文件 {}）吗？删除后它不再用于回答，'
                          '文件移入下方“回收站”，可以恢复。</div>').format(article.title, article.id, article.path)
        return "", gr.update(visible=True), question

    @shown(status=0, count=6)
    def on_delete(self, article_id: str, request: gr.Request = None):
        """Outputs: status, article table, reader, confirmation box, trash table, audit log."""
        message = self.delete(article_id, request)
        return (status_html(message), self.listing(), READER_PLACEHOLDER, gr.update(visible=False),
                trash_rows(self.library.trash()), self.audit_view())

    @shown(status=0, count=6)
    def on_upload_asked(self, file: str | None, as_page: bool, request: gr.Request = None, progress=gr.Progress()):
        """Outputs: status, confirmation box, its text, article table, audit log, file. An upload over an
        existing file waits for 确认替换; any other is stored at once (and the file box emptied for the next)."""
        if not file:
            raise ActionError("请先选择要上传的 .md 或 .txt 文件。")
        path = Path(file)  # Gradio's own copy of the uploaded file
        changes = self.library.preview(path.name, path.read_bytes(), bool(as_page))
        if any(c.replacing for c in changes):
            return "", gr.update(visible=True), changes_html(changes), gr.skip(), gr.skip(), gr.skip()
        message = self.upload(path.name, path.read_bytes(), as_page, False, request,
                              lambda fraction, text: progress(fraction, desc=text))
        return status_html(message), gr.update(visible=False), "", self.listing(), self.audit_view(), None

    @shown(status=0, count=5)
    def on_replace(self, file: str | None, as_page: bool, request: gr.Request = None, progress=gr.Progress()):
        """Outputs: status, confirmation box, article table, audit log, file."""
        if not file:
            raise ActionError("要替换的文件已不在，请重新选择文件。")
        path = Path(file)
        message = self.upload(path.name, path.read_bytes(), as_page, True, request,
                              lambda fraction, text: progress(fraction, desc=text))
        return status_html(message), gr.update(visible=False), self.listing(), self.audit_view(), None

    @shown(status=0, count=5)
    def on_trash_pick(self, data: gr.SelectData, request: gr.Request = None):
        """A click on 恢复 in a trash row restores it. Outputs: status, trash table, article table, audit log,
        reader."""
        column = data.index[1] if isinstance(data.index, (list, tuple)) else -1
        if column != TRASH_HEADERS.index("操作"):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        # The row as shown, not its position: the trash may have changed since the table was drawn.
        entries = self.library.trash()
        entry = dict(zip(map(tuple, trash_rows(entries)), entries)).get(tuple(data.row_value or ()))
        if entry is None:
            return (status_html("回收站已有变化，请核对列表后再点“恢复”。", ok=False), trash_rows(entries), gr.skip(),
                    gr.skip(), gr.skip())
        message = self.restore(entry.entry_id, request)
        article = self.library.article(entry.article_id)
        return (status_html(message), trash_rows(self.library.trash()), self.listing(), self.audit_view(),
                article_html(article) if article else gr.skip())

    @shown(status=0, count=3)
    def on_refresh(self):
        """Outputs: status, trash table, audit log (another member of staff may have changed them)."""
        return "", trash_rows(self.library.trash()), self.audit_view()

    @shown(status=0, count=2)
    def on_feedback(self, only_negative: bool, since: str, until: str):
        return "", self.feedback_view(only_negative, since, until)

    @shown(status=0, count=3)
    def on_export(self, only_negative: bool, since: str, until: str, request: gr.Request = None):
        return (status_html("已导出，请点击下方文件下载（10 分钟内有效）。"), self.export(only_negative, since, until, request),
                self.audit_view())

    # ---- layout ------------------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        title = TITLE.format(district=self.district)
        with gr.Blocks(title=title, analytics_enabled=False,
                       delete_cache=(int(EXPORT_SECONDS), int(EXPORT_SECONDS))) as console:
            gr.HTML(Markup('<div class="wd-header"><h2>{}</h2><p>修改会立即生效：居民的下一个问题就按新的资料回答。'
                           '<a class="wd-logout" href="logout">退出登录</a></p></div>').format(title), padding=False)
            ui: dict = {}
            with gr.Accordion("文章管理", open=True):
                self._articles(ui)
            with gr.Accordion("上传文章", open=True):
                self._upload(ui)
            with gr.Accordion("回收站", open=True):
                self._trash(ui)
            with gr.Accordion("居民反馈", open=True):
                self._feedback(ui)
            with gr.Accordion("操作记录", open=False):
                ui["audit"] = gr.HTML("", padding=True, elem_id="wd-staff-audit")
            self._wire(console, ui)
            for fn, name in ((self.api_articles, "staff_articles"), (self.api_article, "staff_article"),
                             (self.api_preview, "staff_preview"), (self.api_upload, "staff_upload"),
                             (self.api_delete, "staff_delete"), (self.api_trash, "staff_trash"),
                             (self.api_restore, "staff_restore"), (self.api_audit, "staff_audit"),
                             (self.api_feedback, "staff_feedback"), (self.api_export, "staff_export")):
                gr.api(guarded(fn, STAFF_FAILED), api_name=name)
        return console

    @staticmethod
    def _confirm(ui: dict, name: str, yes: str, no: str = "取消") -> None:
        """A hidden box with a question and two buttons: the second step of a change that cannot be undone
        by the same click."""
        with gr.Group(visible=False, elem_id=f"wd-staff-{name}-confirm", elem_classes=["wd-confirm"]) as box:
            ui[f"{name}_question"] = gr.HTML("", padding=True)
            with gr.Row():
                ui[f"{name}_yes"] = gr.Button(yes, variant="stop", elem_id=f"wd-staff-{name}-yes")
                ui[f"{name}_no"] = gr.Button(no, elem_id=f"wd-staff-{name}-no")
        ui[f"{name}_box"] = box

    def _articles(self, ui: dict) -> None:
        with gr.Row():
            ui["query"] = gr.Textbox(label="按标题或正文搜索", scale=4, elem_id="wd-staff-query")
            ui["search"] = gr.Button("搜索 / 刷新列表", scale=1, elem_id="wd-staff-search")
        ui["search_status"] = gr.HTML("", padding=False, elem_id="wd-staff-search-status")
        ui["table"] = gr.Dataframe(headers=["编号", "标题", "日期", "文件"], datatype=["str"] * 4, interactive=False,
                                   label="文章", show_label=True, wrap=True, max_height=360, buttons=[],
                                   elem_id="wd-staff-articles")
        with gr.Row():
            ui["article_id"] = gr.Textbox(label="文章编号（点选列表中的一行即可填入）", scale=4,
                                          elem_id="wd-staff-article-id")
            ui["open"] = gr.Button("打开", scale=1, elem_id="wd-staff-open")
            ui["delete"] = gr.Button("删除…", variant="stop", scale=1, elem_id="wd-staff-delete")
        self._confirm(ui, "delete", "确认删除")
        ui["article_status"] = gr.HTML("", padding=False, elem_id="wd-staff-article-status")
        ui["reader"] = gr.HTML(READER_PLACEHOLDER, max_height=480, padding=True, elem_id="wd-staff-reader")

    def _upload(self, ui: dict) -> None:
        ui["file"] = gr.File(label="文章文件（.md：开头两行 --- 之间写 title 等信息；.txt：第一行是标题）", file_types=[".md", ".txt"],
                             type="filepath", elem_id="wd-staff-file")
        ui["as_page"] = gr.Checkbox(label="这是整版报纸文本（按版面拆分成多篇文章）", elem_id="wd-staff-as-page")
        ui["upload"] = gr.Button("上传并入库", variant="primary", elem_id="wd-staff-upload")
        self._confirm(ui, "replace", "确认替换")
        ui["upload_status"] = gr.HTML("", padding=False, elem_id="wd-staff-status")

    def _trash(self, ui: dict) -> None:
        gr.HTML('<div class="wd-small">删除的文章在这里，点“恢复”放回原处并重新用于回答。</div>', padding=False)
        ui["trash"] = gr.Dataframe(headers=TRASH_HEADERS, datatype=["str"] * 5, interactive=False, wrap=True,
                                   max_height=300, buttons=[], elem_id="wd-staff-trash")
        ui["trash_status"] = gr.HTML("", padding=False, elem_id="wd-staff-trash-status")

    def _feedback(self, ui: dict) -> None:
        with gr.Row():
            ui["only_negative"] = gr.Checkbox(label="只看差评 👎", elem_id="wd-staff-negative")
            ui["since"] = gr.Textbox(label="起始日期（YYYY-MM-DD）", elem_id="wd-staff-since")
            ui["until"] = gr.Textbox(label="截止日期（YYYY-MM-DD）", elem_id="wd-staff-until")
        with gr.Row():
            ui["review"] = gr.Button("查看反馈", elem_id="wd-staff-feedback-btn")
            ui["export"] = gr.Button("导出 CSV", elem_id="wd-staff-export-btn")
        ui["feedback_status"] = gr.HTML("", padding=False, elem_id="wd-staff-feedback-status")
        ui["feedback"] = gr.HTML("", padding=True, elem_id="wd-staff-feedback")
        ui["csv"] = gr.File(label="导出的 CSV", interactive=False, elem_id="wd-staff-csv")

    def _wire(self, console: gr.Blocks, ui: dict) -> None:
        private = {"api_visibility": "private"}
        listing = [ui["search_status"], ui["table"]]
        ui["search"].click(self.on_search, [ui["query"]], listing, **private)
        ui["query"].submit(self.on_search, [ui["query"]], listing, **private)
        console.load(self.on_search, [ui["query"]], listing, **private)
        console.load(self.on_refresh, None, [ui["trash_status"], ui["trash"], ui["audit"]], **private)
        reading = [ui["article_status"], ui["reader"], ui["article_id"]]
        ui["open"].click(self.on_open, [ui["article_id"]], reading, **private)
        ui["table"].select(self.on_pick, None, reading, **private)
        ui["delete"].click(self.on_delete_asked, [ui["article_id"]],
                           [ui["article_status"], ui["delete_box"], ui["delete_question"]], **private)
        ui["delete_no"].click(hidden, None, [ui["delete_box"]], **private)
        ui["delete_yes"].click(self.on_delete, [ui["article_id"]],
                               [ui["article_status"], ui["table"], ui["reader"], ui["delete_box"], ui["trash"],
                                ui["audit"]], **private)
        upload_in = [ui["file"], ui["as_page"]]
        ui["upload"].click(self.on_upload_asked, upload_in,
                           [ui["upload_status"], ui["replace_box"], ui["replace_question"], ui["table"], ui["audit"],
                            ui["file"]], **private)
        ui["replace_no"].click(hidden, None, [ui["replace_box"]], **private)
        ui["replace_yes"].click(self.on_replace, upload_in,
                                [ui["upload_status"], ui["replace_box"], ui["table"], ui["audit"], ui["file"]],
                                **private)
        ui["trash"].select(self.on_trash_pick, None,
                           [ui["trash_status"], ui["trash"], ui["table"], ui["audit"], ui["reader"]], **private)
        filters = [ui["only_negative"], ui["since"], ui["until"]]
        ui["review"].click(self.on_feedback, filters, [ui["feedback_status"], ui["feedback"]], **private)
        ui["export"].click(self.on_export, filters, [ui["feedback_status"], ui["csv"], ui["audit"]], **private)
