"""Attacks on the bot, one test each, as an outsider (or a careless file) would try them against 127.0.0.1.

Read top to bottom, this file is the list of what the bot defends against (README, "Security"):
1. stored XSS into the staff view through /feedback          7. oversized feedback, floods of calls
2. feedback rows that break the staff review for everyone     8. spreadsheet formulas in the exported CSV
3. a YAML alias bomb in a knowledge file                      9. a README.md upload taken for an article
4. reaching or guessing into the staff console              10. two uploads silently colliding on one name
5. SIGKILL during an upload                                   11. wrong types and binary junk sent to /ask
6. forged log lines from user text                            12. the open upload route and a lasting export link
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import httpx

import pytest
from browser_helpers import Visit
from conftest import seed_app
from gradio_client import Client
from gradio_client.exceptions import AppError
from playwright.sync_api import expect
from gradio_client.exceptions import AuthenticationError
from starlette.testclient import TestClient
from webapp_helpers import STAFF_PASSWORD, STAFF_USER, staff_client

from bot.interfaces.web import server, staff as console
from bot.knowledge import upload
from bot.answer.types import Answer
from bot.config import ROOT
from bot.interfaces.audit import AuditLog
from bot.interfaces.feedback import FeedbackStore
from bot.search.index import KnowledgeIndex
from bot.knowledge.articles import load_knowledge, parse_article, ArticleFileError
from bot.interfaces.library import KnowledgeLibrary
from bot.logs import OneLineFilter
from bot.knowledge.upload import LibraryError

pytestmark = pytest.mark.slow

DIBAO_QUESTION = "卫东区目前低保保障对象一共有多少户、多少人？"
XSS = '<img src=x onerror="document.title=\'XSS\';window.__xss=1">'
BAD_CITATIONS = ['[{}]', '"abc"', '{"a": 1}', '[1, 2]', 'not json', '[{"n": "<b>1</b>"}]']
FORGED = "2026-12-01 00:00:00,000 WARNING bot.web: FORGED LOG LINE"
BOMB = textwrap.dedent("""\
    ---
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    title: *f
    ---
    正文。
    """)
ARTICLE_MD = """---
id: {id}
title: {title}
date: 2018-08-15
---

2018年以来,卫东区社区图书馆每周三和周五晚上开放到21点,全区共有12家社区图书馆参加夜间开放。
"""


@pytest.fixture(scope="module")
def app(seed_settings, seed_index, tmp_path_factory):
    """Staff enabled; rate limit and lockout out of the way (they have an app of their own below)."""
    with seed_app(seed_settings, tmp_path_factory, "security") as running:
        yield running


@pytest.fixture(scope="module")
def client(app) -> Client:
    return Client(app.url, verbose=False)


@pytest.fixture(scope="module")
def staff(app) -> Client:
    return staff_client(app)


@pytest.fixture(scope="module")
def strict_app(seed_settings, seed_index, tmp_path_factory):
    """The defaults an operator gets: 5 wrong passwords lock a client out; here 5 questions a minute."""
    with seed_app(seed_settings, tmp_path_factory, "security-strict", rate_limit=5, lockout_after=5) as running:
        yield running


def plant_rows(db, citations: list[str], question: str = XSS) -> None:
    """Rows as an older version (or a direct database write) could have left them."""
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO feedback (created_at, rating, question, condensed_query, answer, refused,"
                         " citations, timings_ms, comment) VALUES ('2026-11-30 10:00:00', 'down', ?, '', ?, 0, ?,"
                         " '{}', ?)", [(question, XSS, c, XSS) for c in citations])


# ---- 1. stored XSS into the staff view ------------------------------------------------------------------------

def test_feedback_takes_no_client_made_answer(client):
    answer = client.predict(DIBAO_QUESTION, [], api_name="/ask")
    answer["citations"][0]["n"] = XSS
    with pytest.raises(AppError, match="answer_id"):
        client.predict(answer, "down", "", api_name="/feedback")
    with pytest.raises(AppError, match="answer_id"):
        client.predict("made-up-id", "down", "", api_name="/feedback")


def test_planted_script_stays_inert_in_the_staff_review(app, client, browser):
    answer = client.predict(DIBAO_QUESTION, [], api_name="/ask")
    client.predict(answer["answer_id"], "down", XSS, api_name="/feedback")
    stored = json.dumps([{**answer["citations"][0], "n": 1, "title": XSS, "text": XSS}], ensure_ascii=False)
    plant_rows(app.settings.feedback_db, [stored])
    visit = Visit(browser, app.url)
    try:
        visit.staff_login()
        visit.page.locator("#wd-staff-feedback-btn").click()
        review = visit.page.locator("#wd-staff-feedback table")
        expect(review).to_be_visible(timeout=30_000)
        expect(review).to_contain_text("<img src=x")  # shown as text, not run
        assert not visit.xss_fired() and visit.page.title() != "XSS"
    finally:
        visit.close()


# ---- 2. feedback rows that would break the review for everyone -------------------------------------------------

def test_bad_stored_rows_never_stop_the_review_or_export(app, client, staff):
    answer = client.predict(DIBAO_QUESTION, [], api_name="/ask")
    good = client.predict(answer["answer_id"], "down", "正常的一条反馈", api_name="/feedback")
    plant_rows(app.settings.feedback_db, BAD_CITATIONS, question="坏数据")
    review = staff.predict(False, "", "", api_name="/staff_feedback")
    assert "正常的一条反馈" in review and review.count("坏数据") == len(BAD_CITATIONS)
    assert "<b>" not in review
    exported = staff.predict(False, "", "", api_name="/staff_export")
    with open(exported, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert str(good) in {row["编号"] for row in rows}
    assert sum(row["问题"] == "坏数据" for row in rows) == len(BAD_CITATIONS)


# ---- 3. YAML alias bomb ----------------------------------------------------------------------------------------

def test_alias_bomb_is_refused_at_once():
    started = time.perf_counter()
    with pytest.raises(ArticleFileError, match="aliases"):
        parse_article(BOMB, "bomb.md")
    assert time.perf_counter() - started < 5  # generous: expanding the bomb takes minutes


def test_alias_bomb_upload_is_refused_and_the_app_keeps_answering(app, client, staff, tmp_path):
    path = tmp_path / "bomb.md"
    path.write_text(BOMB, encoding="utf-8")
    with pytest.raises(AppError, match="aliases"):
        staff.predict(path.name, path.read_text(encoding="utf-8"), False, False, api_name="/staff_upload")
    assert not (app.settings.knowledge_dir / "uploads" / "bomb.md").exists()
    assert "3622" in client.predict(DIBAO_QUESTION, [], api_name="/ask")["text"]


def test_ingest_reports_the_bomb_and_finishes(scratch_settings):
    (scratch_settings.knowledge_dir / "bomb.md").write_text(BOMB, encoding="utf-8")
    env = {**os.environ, "BOT_KNOWLEDGE_DIR": str(scratch_settings.knowledge_dir),
           "BOT_INDEX_DIR": str(scratch_settings.index_dir), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "bot", "ingest"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and "bomb.md" in done.stderr and "aliases" in done.stderr


def test_field_lengths_are_capped():
    with pytest.raises(ArticleFileError, match="title is longer than"):
        parse_article(ARTICLE_MD.format(id="long", title="长" * 1000), "long.md")


def test_an_upload_that_parses_too_long_is_abandoned(monkeypatch):
    monkeypatch.setattr(upload, "PARSE_SECONDS", 1e-6)
    with pytest.raises(LibraryError, match="没能解析完"):
        upload.parse_upload("slow.md", ARTICLE_MD.format(id="slow", title="慢").encode(), as_page=False)


# ---- 4. guessing the staff password ----------------------------------------------------------------------------

def test_five_wrong_passwords_lock_the_client_out(strict_app):
    for password in ("guess", "", STAFF_PASSWORD + " ", STAFF_PASSWORD.upper(), "卫东"):
        with pytest.raises(AuthenticationError):
            staff_client(strict_app, password)
    with pytest.raises(ValueError, match="Could not login"):  # 429, not 401: the right password, too late
        staff_client(strict_app)
    log = strict_app.log()
    assert log.count("127.0.0.1: wrong password") == 5
    assert "locked out" in log and "Traceback" not in log


def test_the_console_answers_nothing_without_a_login(app):
    """Every way in: the page, its config, an API call, the upload route and a queued event."""
    before = {p: p.read_bytes() for p in app.settings.knowledge_dir.rglob("*") if p.is_file()}
    with httpx.Client(base_url=app.url, follow_redirects=False) as http:
        assert http.get("staff/").status_code == 303 and http.get("staff/").headers["location"] == "/staff/login"
        assert "工作人员登录" in http.get("staff/login").text
        assert http.get("staff/config").status_code == 401
        assert http.post("staff/gradio_api/upload", files={"files": ("x.md", b"x")}).status_code == 401
        assert http.post("staff/gradio_api/call/staff_delete", json={"data": ["20170731-09"]}).status_code == 401
        assert http.post("staff/gradio_api/queue/join", json={"data": ["20170731-09"], "fn_index": 0,
                                                               "session_hash": "x"}).status_code == 401
        forged = http.get("staff/config", cookies={"wd_staff_session": "forged"})
        assert forged.status_code == 401
    assert {p: p.read_bytes() for p in app.settings.knowledge_dir.rglob("*") if p.is_file()} == before


def test_the_residents_page_holds_no_staff_endpoint(app):
    """Neither named nor unnamed: every dependency of the public config is one of the page's own handlers, and
    no fn_index past them exists."""
    config = httpx.get(f"{app.url}config").json()
    handlers = [d for d in config["dependencies"] if d["backend_fn"]]  # the others only cancel a running event
    names = {re.sub(r"_\d+$", "", d["api_name"]) for d in handlers}  # run_2 -> run
    assert names <= {"ask", "feedback", "respond", "on_like", "on_comment", "open_citation", "ask_suggested", "run",
                     "fresh_conversation"}
    assert not any("staff" in str(d) for d in config["dependencies"])
    assert not any("wd-staff" in json.dumps(c) for c in config["components"])
    client = Client(app.url, verbose=False)
    with pytest.raises(Exception):
        client.predict(fn_index=len(config["dependencies"]))


def test_the_login_takes_no_other_user_name_and_audits_the_refusal(app):
    with pytest.raises(AuthenticationError):
        Client(f"{app.url}staff/", auth=("admin", STAFF_PASSWORD), verbose=False)
    staff = staff_client(app)
    assert staff.predict("低保", api_name="/staff_articles")
    refused = next(r for r in staff.predict(50, api_name="/staff_audit") if r["action"] == "login_failed")
    assert (refused["client"], refused["detail"]) == ("127.0.0.1", "用户名：admin")
    assert STAFF_USER == "staff"


# ---- 5. SIGKILL during an upload -------------------------------------------------------------------------------

UPLOADER = """
import sys
from pathlib import Path
from bot.config import Settings
from bot.search.index import KnowledgeIndex
from bot.interfaces.library import KnowledgeLibrary
settings = Settings.from_env()
library = KnowledgeLibrary(settings, KnowledgeIndex.open(settings))
print("ready", flush=True)
library.add_file("big.md", Path(sys.argv[1]).read_bytes())
print("done", flush=True)
"""


def big_article() -> str:
    paragraphs = [f"第{i}段：卫东区第{i}个便民服务点设在第{i}社区，每天早上8点开门，提供{i}项服务，联系人是第{i}位网格员。"
                  * 3 for i in range(1, 41)]
    return "---\nid: wd-big-upload\ntitle: 卫东区便民服务点一览\n---\n\n" + "\n\n".join(paragraphs) + "\n"


@pytest.mark.parametrize("run", range(2))
def test_upload_killed_midway_leaves_file_and_chunks_both_or_neither(scratch_settings, seed_index, tmp_path, run):
    source = tmp_path / "big.md"
    source.write_text(big_article(), encoding="utf-8")
    env = {**os.environ, "BOT_KNOWLEDGE_DIR": str(scratch_settings.knowledge_dir),
           "BOT_INDEX_DIR": str(scratch_settings.index_dir), "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen([sys.executable, "-c", UPLOADER, str(source)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    time.sleep(random.Random(run).uniform(0.5, 3.0))  # inside the embedding of ~40 chunks
    child.send_signal(signal.SIGKILL)
    child.wait(30)

    library = KnowledgeLibrary(scratch_settings, KnowledgeIndex(scratch_settings, seed_index.embeddings))
    assert library.recover() == ["uploads/big.md"] or (scratch_settings.knowledge_dir / "uploads/big.md").exists()
    on_disk = (scratch_settings.knowledge_dir / "uploads" / "big.md").exists()
    indexed = [c for c in library.index.chunks() if c.article_id == "wd-big-upload"]
    listed = any(a.id == "wd-big-upload" for a in library.articles())
    assert on_disk == listed == bool(indexed)
    assert not list(scratch_settings.knowledge_dir.rglob("*.part"))


# ---- 6. forged log lines ---------------------------------------------------------------------------------------

def test_a_record_is_one_line_whatever_it_quotes():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(OneLineFilter())
    logger = logging.getLogger("test-security-forge")
    logger.addHandler(handler)
    try:
        logger.warning("upload of %s", f"x\n{FORGED}\r\u2028")
    finally:
        logger.removeHandler(handler)
    assert out.getvalue().count("\n") == 1 and "\\n" + FORGED in out.getvalue()


def test_a_title_cannot_forge_a_line_in_the_app_log(app, staff, tmp_path):
    path = tmp_path / "forge.md"
    path.write_text(ARTICLE_MD.format(id="wd-forge", title=json.dumps("夜间开放\n" + FORGED)), encoding="utf-8")
    staff.predict(path.name, path.read_text(encoding="utf-8"), False, False, api_name="/staff_upload")
    assert not any(line.startswith(FORGED) for line in app.log().splitlines())
    assert FORGED in app.log()


# ---- 7. oversized feedback and floods ------------------------------------------------------------------------

def test_oversized_comment_is_refused(client):
    answer = client.predict(DIBAO_QUESTION, [], api_name="/ask")
    with pytest.raises(AppError, match="最多 1000 个字"):
        client.predict(answer["answer_id"], "down", "长" * 5_000_000, api_name="/feedback")


def test_questions_per_client_are_limited(strict_app):
    client = Client(strict_app.url, verbose=False)
    for _ in range(5):
        client.predict(DIBAO_QUESTION, [], api_name="/ask")
    with pytest.raises(AppError, match="太频繁"):
        client.predict(DIBAO_QUESTION, [], api_name="/ask")
    assert "rate limit: 127.0.0.1" in strict_app.log()


# ---- 8. formulas in the CSV export ---------------------------------------------------------------------------

def test_exported_cells_never_start_a_formula(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    store.add("down", Answer(question='=HYPERLINK("http://evil","点我")', text="+1", refused=True),
              comment="@SUM(1+1)")
    [row] = list(csv.DictReader(io.StringIO(store.export_csv())))
    assert row["问题"] == '\'=HYPERLINK("http://evil","点我")'
    assert row["回答"] == "'+1" and row["评论"] == "'@SUM(1+1)"


# ---- 9. README.md is never an article --------------------------------------------------------------------------

def test_readme_upload_is_refused_and_ingest_skips_it(scratch_settings, seed_index):
    library = KnowledgeLibrary(scratch_settings, seed_index)
    with pytest.raises(LibraryError, match="说明文件"):
        library.add_file("README.md", ARTICLE_MD.format(id="readme", title="说明").encode())
    (scratch_settings.knowledge_dir / "uploads").mkdir(exist_ok=True)
    (scratch_settings.knowledge_dir / "uploads" / "ReadMe.md").write_text(ARTICLE_MD.format(id="r", title="说明"))
    assert all(a.id != "r" for a in load_knowledge(scratch_settings.knowledge_dir).articles)


# ---- 10. uploads colliding on one name ------------------------------------------------------------------------

def test_a_second_upload_under_the_same_name_needs_replace(scratch_settings, seed_index):
    library = KnowledgeLibrary(scratch_settings, seed_index)
    library.add_file("../../x.md", ARTICLE_MD.format(id="wd-x", title="第一版").encode())
    with pytest.raises(LibraryError, match="x.md，这个文件已经存在"):
        library.add_file("x.MD", ARTICLE_MD.format(id="wd-x", title="第二版").encode())
    assert library.article("wd-x").title == "第一版"
    change = library.add_file("x.MD", ARTICLE_MD.format(id="wd-x", title="第二版").encode(), replace=True)
    assert change.message().startswith("已替换") and library.article("wd-x").title == "第二版"
    library.delete("wd-x")


# ---- 11. wrong types and junk to /ask -------------------------------------------------------------------------

@pytest.mark.parametrize(("question", "history", "message"), [
    (42, [], "必须是一段文字"),
    ([["嵌套"]], [], "必须是一段文字"),
    (DIBAO_QUESTION, [["只有一半"]], "对话历史格式不对"),
    (DIBAO_QUESTION, [[1, 2]], "对话历史格式不对"),
    (DIBAO_QUESTION, "不是列表", "对话历史格式不对"),
], ids=["number", "nested-list", "half-turn", "numbers-in-turn", "history-string"])
def test_wrong_types_get_a_clear_message(client, question, history, message):
    with pytest.raises(AppError, match=message):
        client.predict(question, history, api_name="/ask")


def test_binary_junk_is_refused(client):
    answer = client.predict(bytes(range(256)).decode("latin-1"), [], api_name="/ask")
    assert answer["refused"] is True and answer["citations"] == [] and "乱码" in answer["text"]


# ---- 12. the upload route and the export link ------------------------------------------------------------------

def test_the_residents_upload_route_is_closed(assistant, seed_settings, tmp_path):
    for password in (None, STAFF_PASSWORD):
        settings = seed_settings.with_(staff_password=password, data_dir=tmp_path)
        with TestClient(server.build_server(assistant, settings)) as http:
            assert http.post("/gradio_api/upload", files={"files": ("x.md", b"x")}).status_code == 403
            assert http.get("/config").status_code == 200
            expected = 401 if password else 404  # no console at all without a staff password
            assert http.post("/staff/gradio_api/upload", files={"files": ("x.md", b"x")}).status_code == expected


def test_an_exported_csv_does_not_outlive_its_expiry(seed_settings, seed_index, monkeypatch, tmp_path):
    monkeypatch.setattr(console, "EXPORT_SECONDS", 0.2)
    settings = seed_settings.with_(data_dir=tmp_path)
    staff = console.StaffConsole(KnowledgeLibrary(settings, seed_index), FeedbackStore(settings.feedback_db),
                                 AuditLog(settings.audit_db), "卫东区")
    exported = staff.export(False, "", "", None)
    assert os.path.exists(exported)
    time.sleep(1.0)
    assert not os.path.exists(exported)
