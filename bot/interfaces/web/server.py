"""One web server, two apps: the residents' page at ``/`` and, when ``BOT_STAFF_PASSWORD`` is set, the staff
console at ``/staff`` behind a login (``login.py``). Nothing of the console is reachable from the residents'
page: separate Gradio apps have separate configs and endpoints.
"""
from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr
from fastapi import FastAPI
from starlette.responses import PlainTextResponse

from bot.answer.assistant import Assistant
from bot.answer.suggestions import Suggester
from bot.config import Settings
from bot.interfaces.audit import AuditLog
from bot.interfaces.feedback import FeedbackStore
from bot.interfaces.library import KnowledgeLibrary
from bot.interfaces.throttle import LoginThrottle
from bot.interfaces.web.i18n import gradio_chinese
from bot.interfaces.web.login import StaffLogin
from bot.interfaces.web.resident import ResidentPage
from bot.interfaces.web.staff import StaffConsole

log = logging.getLogger(__name__)

STAFF_PATH = "/staff"
LOGIN_TITLE = "{district}便民问答 · 工作人员登录"
LOGIN_NOTICE = "连续 {tries} 次口令错误后，{minutes} 分钟内不能再试。"
CSS = Path(__file__).with_name("page.css").read_text(encoding="utf-8")
DEFAULT_CONCURRENCY = 4


class ResidentUploadsClosed:
    """ASGI middleware refusing the residents' page's file-upload route: nothing there takes a file, and an
    open upload route lets anyone store files on the server. (The console's own route needs its login.)"""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "").rstrip("/") if scope["type"] == "http" else ""
        if path.endswith("/gradio_api/upload") and not path.startswith(STAFF_PATH + "/"):
            await PlainTextResponse("uploads are not accepted here", status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def build_server(assistant: Assistant, settings: Settings) -> FastAPI:
    """The ASGI app: what ``serve`` runs, and what tests can drive in-process."""
    library = KnowledgeLibrary(settings, assistant.index)
    if recovered := library.recover():
        log.warning("recovered from an interrupted upload, delete or restore: %s", ", ".join(recovered))
    feedback = FeedbackStore(settings.feedback_db)
    door = LoginThrottle(settings.staff_lockout_after, settings.staff_lockout_seconds)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(ResidentUploadsClosed)
    common = {"css": CSS, "theme": gr.themes.Soft(), "footer_links": [], "ssr_mode": False, "i18n": gradio_chinese(),
              "max_file_size": "5mb"}
    if settings.staff_password:
        district = assistant.lexicon.district
        notice = LOGIN_NOTICE.format(tries=settings.staff_lockout_after,
                                     minutes=max(1, round(settings.staff_lockout_seconds / 60)))
        audit = AuditLog(settings.audit_db)
        login = StaffLogin(settings.staff_user, settings.staff_password, door, LOGIN_TITLE.format(district=district),
                           notice, STAFF_PATH, on_event=lambda action, client, user: audit.record(
                               action, "", "", client[:200], f"用户名：{user}"[:200]))
        login.install(app)
        console = StaffConsole(library, feedback, audit, district).build()
        console.queue(default_concurrency_limit=1)  # one staff change at a time; reads are quick
        gr.mount_gradio_app(app, console, path=STAFF_PATH, auth_dependency=login.current_user, **common)
    page = ResidentPage(assistant, library, feedback, settings.rate_limit, Suggester(assistant)).build()
    page.queue(default_concurrency_limit=DEFAULT_CONCURRENCY)
    gr.mount_gradio_app(app, page, path="/", **common)
    return app


SHUTDOWN_SECONDS = 3  # open event streams would otherwise hold a SIGTERM'd server up indefinitely


def serve(app: FastAPI, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=SHUTDOWN_SECONDS)
