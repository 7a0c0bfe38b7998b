"""The staff console's login: a Chinese login page, a session cookie, constant-time password checks and a
lockout after repeated wrong passwords from one client.

Gradio's own login cannot do this: its auth callback never sees the client's address (so it cannot throttle),
and its login page follows the browser's language. Sessions live in this process (a sticky load balancer keeps a
member of staff on one worker); ``POST /staff/login`` also answers programs such as gradio_client, which post
``username`` and ``password`` and keep the cookie.
"""
from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from markupsafe import Markup
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from bot.interfaces.throttle import LoginThrottle

log = logging.getLogger(__name__)

COOKIE = "wd_staff_session"
SESSION_SECONDS = 8 * 3600  # a working day; each request renews it
MAX_SESSIONS = 1000
WRONG = "用户名或口令不正确。"
LOCKED = "口令错误次数过多，请 {minutes} 分钟后再试。"
PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>
body {{ font-family: system-ui, "Noto Sans CJK SC", sans-serif; background: #f6f7fb; margin: 0; color: #1f2937; }}
form {{ max-width: 22em; margin: 12vh auto; background: #fff; padding: 1.6em 1.8em; border-radius: 12px;
        box-shadow: 0 2px 12px rgba(0,0,0,.08); }}
h1 {{ font-size: 1.25em; margin: 0 0 .3em; }} p {{ color: #6b7280; font-size: .92em; }}
label {{ display: block; margin: .9em 0 .3em; font-weight: 600; }}
input {{ width: 100%; box-sizing: border-box; padding: .55em .7em; font-size: 1em; border: 1px solid #d1d5db;
         border-radius: 8px; }}
button {{ margin-top: 1.2em; width: 100%; padding: .65em; font-size: 1em; border: 0; border-radius: 8px;
          background: #6366f1; color: #fff; cursor: pointer; }}
.error {{ color: #b91c1c; margin-top: .8em; }}
</style></head><body><form method="post" action="login">
<h1>{title}</h1><p>{notice}</p>
<label for="username">用户名</label><input id="username" name="username" autocomplete="username" required value="{user}">
<label for="password">口令</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="page" value="1"><button type="submit">登录</button>{error}
</form></body></html>"""


class StaffSessions:
    """Session tokens of logged-in staff: unguessable, expiring, bounded."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._expiry: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def open(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._expiry[token] = (user, self._clock() + SESSION_SECONDS)
            while len(self._expiry) > MAX_SESSIONS:
                self._expiry.pop(next(iter(self._expiry)))
        return token

    def user(self, token: str | None) -> str | None:
        """Whose session this is (renewed), or None when it is unknown or expired."""
        if not token:
            return None
        with self._lock:
            user, expiry = self._expiry.get(token, ("", 0.0))
            if expiry <= self._clock():
                self._expiry.pop(token, None)
                return None
            self._expiry[token] = (user, self._clock() + SESSION_SECONDS)
            return user

    def close(self, token: str | None) -> None:
        with self._lock:
            self._expiry.pop(token or "", None)


class StaffLogin:
    """The login routes under ``prefix`` (``/staff``) and the check every console request passes."""

    def __init__(self, user: str, password: str, door: LoginThrottle, title: str, notice: str, prefix: str,
                 on_event: Callable[[str, str, str], None] = lambda action, client, detail: None):
        self._user = user.encode("utf-8")
        self._password = password.encode("utf-8")
        self.door = door
        self.sessions = StaffSessions()
        self.title, self.notice, self.prefix = title, notice, prefix
        self.on_event = on_event  # (action, client, detail): the audit log records logins refused

    def matches(self, user: str, password: str) -> bool:
        """Both compared in constant time, and both always compared."""
        same_user = hmac.compare_digest(user.encode("utf-8", "replace"), self._user)
        same_password = hmac.compare_digest(password.encode("utf-8", "replace"), self._password)
        return same_user and same_password

    def current_user(self, request: Request) -> str | None:
        """Gradio's auth_dependency: None makes every console route answer 401."""
        return self.sessions.user(request.cookies.get(COOKIE))

    def page(self, error: str = "", user: str = "", status: int = 200) -> HTMLResponse:
        shown = Markup('<div class="error" role="alert">{}</div>').format(error) if error else ""
        return HTMLResponse(PAGE.format(title=Markup.escape(self.title), notice=Markup.escape(self.notice),
                                        user=Markup.escape(user), error=shown), status_code=status)

    def install(self, app: FastAPI) -> None:
        """Add the routes; call before the console is mounted at ``prefix`` so they take precedence."""
        prefix = self.prefix

        @app.get(prefix + "/login")
        @app.get(prefix + "/login/")
        def login_page(request: Request) -> Response:
            if self.current_user(request):
                return RedirectResponse(prefix + "/", status_code=303)
            return self.page()

        @app.post(prefix + "/login")
        @app.post(prefix + "/login/")
        async def login(request: Request) -> Response:
            form = await request.form()
            user, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
            from_page = bool(form.get("page"))
            client = request.client.host if request.client else "unknown"
            if wait := self.door.locked_for(client):
                log.warning("staff login refused for %s: locked out for %.0f s more", client, wait)
                self.on_event("login_locked", client, user)
                message = LOCKED.format(minutes=max(1, round(wait / 60)))
                return self.page(message, user, 429) if from_page else JSONResponse({"detail": message}, 429)
            if not self.matches(user, password):
                failures = self.door.failed(client)
                log.warning("staff login refused for %s: wrong password (%d in a row)", client, failures)
                self.on_event("login_failed", client, user)
                # 401 tells gradio_client the credentials were wrong
                return self.page(WRONG, user, 401) if from_page else JSONResponse({"detail": WRONG}, 401)
            self.door.succeeded(client)
            log.info("staff login from %s", client)
            response = RedirectResponse(prefix + "/", 303) if from_page else JSONResponse({"success": True})
            response.set_cookie(COOKIE, self.sessions.open(user), max_age=SESSION_SECONDS, path=prefix, httponly=True,
                                samesite="strict")
            return response

        @app.get(prefix + "/logout")
        def logout(request: Request) -> Response:
            self.sessions.close(request.cookies.get(COOKIE))
            response = RedirectResponse(prefix + "/login", status_code=303)
            response.delete_cookie(COOKIE, path=prefix)
            return response

        app.add_middleware(ToLogin, login=self)


class ToLogin:
    """A browser opening the console without a session is sent to the login page (Gradio would answer 401);
    every other console route is refused by Gradio itself through ``current_user``. Plain ASGI, not
    ``@app.middleware("http")``: that one logs a traceback for every event stream still open when the server
    stops."""

    def __init__(self, app, login: StaffLogin):
        self.app, self.login = app, login

    async def __call__(self, scope, receive, send):
        prefix = self.login.prefix
        if (scope["type"] == "http" and scope["method"] == "GET" and scope["path"] in (prefix, prefix + "/")
                and not self.login.current_user(Request(scope))):
            await RedirectResponse(prefix + "/login", status_code=303)(scope, receive, send)
            return
        await self.app(scope, receive, send)
