"""The web layer: the real app in a subprocess driven through its API endpoints with gradio_client (the staff
console's behind its login), plus in-process checks of what only the page does (streaming into the chat,
escaping, examples, suggestions)."""
from __future__ import annotations

import csv
import hashlib
import threading
from dataclasses import replace

import pytest
from conftest import seed_app
from gradio_client import Client
from gradio_client.exceptions import AppError
from webapp_helpers import staff_client

from bot.answer.types import Answer, Citation
from bot.interfaces.feedback import FeedbackRecord, FeedbackStore
from bot.interfaces.library import KnowledgeLibrary
from bot.interfaces.web.html import ERROR_HTML, THINKING_HTML, answer_html, article_html, user_html
from bot.interfaces.web.resident import ResidentPage, new_session
from bot.interfaces.audit import AuditLog
from bot.interfaces.web import staff as console
from bot.interfaces.web.staff import feedback_html
from bot.knowledge.articles import Article

DIBAO_QUESTION = "卫东区目前低保保障对象一共有多少户、多少人？"
DIBAO_ARTICLE = "20170731-09"
DENTAL_QUESTION = "全区有多少所小学参加了窝沟封闭？"
DENTAL_ARTICLE = "20170731-10"
NEW_ARTICLE = "wd-api-library-hours"
NEW_ARTICLE_MD = f"""---
id: {NEW_ARTICLE}
title: 卫东区社区图书馆夜间开放
date: 2018-08-15
---

2018年以来,卫东区社区图书馆每周三和周五晚上开放到21点,全区共有12家社区图书馆参加夜间开放。
"""
LIBRARY_QUESTION = "卫东区社区图书馆晚上开放到几点？"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(seed_settings, seed_index, tmp_path_factory):
    with seed_app(seed_settings, tmp_path_factory, "web-api") as running:
        yield running


@pytest.fixture(scope="module")
def client(app) -> Client:
    return Client(app.url, verbose=False)


@pytest.fixture(scope="module")
def staff(app) -> Client:
    return staff_client(app)


def page(assistant, settings, suggester=None) -> ResidentPage:
    return ResidentPage(assistant, KnowledgeLibrary(settings, assistant.index), FeedbackStore(settings.feedback_db),
                        0, suggester)


def ask(client: Client, question: str, history: list | None = None) -> dict:
    return client.predict(question, history or [], api_name="/ask")


def cited_articles(answer: dict) -> list[str]:
    return [c["article_id"] for c in answer["citations"]]


def knowledge_files(app) -> dict[str, bytes]:
    root = app.settings.knowledge_dir
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_only_the_declared_endpoints_are_public(client, staff):
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {"/ask", "/feedback"}
    assert set(staff.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {
        "/staff_articles", "/staff_article", "/staff_preview", "/staff_upload", "/staff_delete", "/staff_trash",
        "/staff_restore", "/staff_audit", "/staff_feedback", "/staff_export"}


def test_ask_returns_a_cited_answer(client):
    answer = ask(client, DIBAO_QUESTION)
    assert answer["refused"] is False
    assert "3622" in answer["text"] and "[1]" in answer["text"]
    assert DIBAO_ARTICLE in cited_articles(answer)
    citation = answer["citations"][0]
    assert citation["passage_start"] <= citation["sentence_start"] < citation["sentence_end"] <= citation["passage_end"]
    assert answer["timings_ms"]["total"] > 0


def test_follow_up_uses_the_history(client):
    first = ask(client, DENTAL_QUESTION)
    assert DENTAL_ARTICLE in cited_articles(first)
    follow_up = ask(client, "一共封闭了多少颗牙齿？", [[DENTAL_QUESTION, first["text"]]])
    assert follow_up["condensed_query"] != "一共封闭了多少颗牙齿?"
    assert "窝沟" in follow_up["condensed_query"] or "封闭" in follow_up["condensed_query"]
    assert DENTAL_ARTICLE in cited_articles(follow_up)


def test_empty_question_gets_a_prompt_not_an_answer(client):
    with pytest.raises(AppError, match="请先输入"):
        ask(client, "   ")


def test_overlong_question_is_cut_with_a_notice(client):
    answer = ask(client, DIBAO_QUESTION + "请详细说明。" * 100)
    assert "500" in answer["notice"]
    assert len(answer["question"]) == 500


def test_concurrent_sessions_get_their_own_answers(app):
    questions = {DIBAO_QUESTION: DIBAO_ARTICLE, DENTAL_QUESTION: DENTAL_ARTICLE}
    results, errors = {}, []

    def run(question: str) -> None:
        try:
            results[question] = ask(Client(app.url, verbose=False), question)
        except Exception as exc:  # collected: an exception in a thread would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(q,)) for q in list(questions) * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for question, article in questions.items():
        assert results[question]["question"] == question
        assert article in cited_articles(results[question])


def test_feedback_is_stored_and_shown_to_staff(app, client, staff):
    answer = ask(client, DIBAO_QUESTION)
    feedback_id = client.predict(answer["answer_id"], "down", "希望有最新的数字", api_name="/feedback")
    record = next(r for r in FeedbackStore(app.settings.feedback_db).list() if r.id == feedback_id)
    assert (record.rating, record.comment, record.question) == ("down", "希望有最新的数字", DIBAO_QUESTION)
    assert record.condensed_query and record.citations[0].article_id == DIBAO_ARTICLE
    assert "total" in record.timings_ms

    review = staff.predict(True, "", "", api_name="/staff_feedback")
    assert "希望有最新的数字" in review and "区民政局实现社会救助“无盲区”" in review
    exported = staff.predict(True, "", "", api_name="/staff_export")
    with open(exported, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert any(row["评论"] == "希望有最新的数字" and row["评价"] == "👎" for row in rows)
    [record] = staff.predict(1, api_name="/staff_audit")
    with open(exported, "rb") as f:
        assert (record["action"], record["content_hash"]) == ("feedback_export", hashlib.sha256(f.read()).hexdigest())


def test_feedback_with_a_bad_rating_is_refused(client):
    with pytest.raises(AppError, match="up 或 down"):
        client.predict(ask(client, DIBAO_QUESTION)["answer_id"], "maybe", "", api_name="/feedback")


def test_staff_browse_and_read(staff):
    table = staff.predict("低保", api_name="/staff_articles")
    assert [row[0] for row in table] == [DIBAO_ARTICLE]
    assert len(staff.predict("", api_name="/staff_articles")) >= 11
    shown = staff.predict(DIBAO_ARTICLE, api_name="/staff_article")
    assert "区民政局实现社会救助“无盲区”" in shown and "3622户" in shown


def test_the_console_lists_the_newest_articles_and_says_how_many_match(seed_settings, seed_index, tmp_path,
                                                                       monkeypatch):
    """Thousands of articles would all go to the browser on every change: it lists the newest, search finds the rest
    (the API still returns every match)."""
    monkeypatch.setattr(console, "ARTICLES_SHOWN", 4)
    settings = seed_settings.with_(data_dir=tmp_path)
    library = KnowledgeLibrary(settings, seed_index)
    staff = console.StaffConsole(library, FeedbackStore(settings.feedback_db), AuditLog(settings.audit_db), "卫东区")
    total = len(library.articles())
    listed = staff.listing()
    assert listed["value"] == staff.article_rows()[:4] and total > 4
    assert listed["label"] == f"文章共 {total} 篇，这里列出最新的 4 篇；其他文章请按标题或正文搜索"
    assert len(staff.api_articles("")) == total
    found = staff.listing(" 低保 ")
    assert [row[0] for row in found["value"]] == [DIBAO_ARTICLE] and found["label"] == "含「低保」的文章共 1 篇"


def test_staff_upload_then_delete(app, client, staff, tmp_path):
    upload = tmp_path / "图书馆夜间开放.md"
    upload.write_text(NEW_ARTICLE_MD, encoding="utf-8")
    status = staff.predict(upload.name, upload.read_text(encoding="utf-8"), False, False, api_name="/staff_upload")
    assert "已添加 1 篇文章" in status
    assert NEW_ARTICLE in [row[0] for row in staff.predict("", api_name="/staff_articles")]
    assert (app.settings.knowledge_dir / "uploads" / upload.name).is_file()
    answer = ask(client, LIBRARY_QUESTION)
    assert not answer["refused"] and "21点" in answer["text"]
    assert NEW_ARTICLE in cited_articles(answer)

    status = staff.predict(NEW_ARTICLE, api_name="/staff_delete")
    assert "已删除 1 篇文章" in status
    assert NEW_ARTICLE not in [row[0] for row in staff.predict("", api_name="/staff_articles")]
    assert not (app.settings.knowledge_dir / "uploads" / upload.name).exists()
    assert NEW_ARTICLE not in cited_articles(ask(client, LIBRARY_QUESTION))


def test_staff_replace_delete_and_restore_are_previewed_audited_and_undoable(app, client, staff):
    name = "图书馆夜间开放-2.md"
    staff.predict(name, NEW_ARTICLE_MD, False, False, api_name="/staff_upload")
    changed = NEW_ARTICLE_MD.replace("21点", "22点")
    [line] = staff.predict(name, changed, False, api_name="/staff_preview")
    assert line == f"将替换 uploads/{name}：标题《卫东区社区图书馆夜间开放》不变，正文新增 1 行、删除 1 行。"
    with pytest.raises(AppError, match="已经存在"):
        staff.predict(name, changed, False, False, api_name="/staff_upload")  # no silent replacement
    assert "已替换 1 篇文章" in staff.predict(name, changed, False, True, api_name="/staff_upload")
    assert "22点" in ask(client, LIBRARY_QUESTION)["text"]

    assert "已移入回收站" in staff.predict(NEW_ARTICLE, api_name="/staff_delete")
    [entry] = [row for row in staff.predict(api_name="/staff_trash") if row[3] == f"uploads/{name}"]
    assert NEW_ARTICLE not in cited_articles(ask(client, LIBRARY_QUESTION))
    assert "已恢复 1 篇文章" in staff.predict(entry[0], api_name="/staff_restore")
    assert NEW_ARTICLE in cited_articles(ask(client, LIBRARY_QUESTION))
    with pytest.raises(AppError, match="回收站里没有"):
        staff.predict(entry[0], api_name="/staff_restore")

    records = staff.predict(5, api_name="/staff_audit")
    assert [r["action"] for r in records[:4]] == ["restore", "delete", "replace", "upload"]
    assert all(r["file"] == f"uploads/{name}" and len(r["content_hash"]) == 64 and r["client"] == "127.0.0.1"
               for r in records[:4])
    assert records[0]["content_hash"] == records[1]["content_hash"] == records[2]["content_hash"]  # the same bytes
    staff.predict(NEW_ARTICLE, api_name="/staff_delete")


def test_staff_upload_of_a_bad_file_is_refused(app, staff):
    """The library's checks (tests/test_library.py) reach an API caller as they are."""
    before = knowledge_files(app)
    with pytest.raises(AppError, match="no .title."):
        staff.predict("untitled.md", NEW_ARTICLE_MD.replace("title: 卫东区社区图书馆夜间开放\n", ""), False, False,
                      api_name="/staff_upload")
    assert knowledge_files(app) == before


def test_offered_examples_are_answered(assistant, seed_settings, tmp_path):
    examples = page(assistant, seed_settings.with_(data_dir=tmp_path)).examples()
    assert len(examples) >= 4
    for question in examples:
        answer = assistant.ask(question)
        assert not answer.refused and answer.citations, question


class ScriptedAssistant:
    """Stands in for the Assistant where the page's own behaviour is tested: streams fixed pieces."""

    def __init__(self, index, pieces: list[str], answer: Answer | None):
        self.index, self.pieces, self.answer = index, pieces, answer
        self.calls: list[tuple[str, list]] = []

    def stream(self, question: str, history: list):
        self.calls.append((question, list(history)))
        yield from self.pieces
        if self.answer is None:
            raise RuntimeError("the answer modules failed")
        yield self.answer


def scripted_answer(question: str) -> Answer:
    passage = "目前保障对象共3622户、5635人。"
    citation = Citation(n=1, article_id=DIBAO_ARTICLE, title="区民政局实现社会救助“无盲区”", date="2017-07-31",
                        text=passage, chunk_id="c1", passage_start=100, passage_end=100 + len(passage),
                        sentence_start=100, sentence_end=100 + len(passage))
    return Answer(question=question, text="目前保障对象共3622户、5635人。[1]", refused=False, citations=[citation])


def chat_contents(outputs: list[tuple]) -> list[str]:
    """The assistant message as each yield of the chat handler showed it."""
    return [out[1][-1]["content"] for out in outputs if isinstance(out[1], list)]


def test_chat_streams_pieces_then_the_final_answer(fake_index, fake_settings):
    stub = ScriptedAssistant(fake_index, ["目前保障对象", "共3622户、5635人。[1]"], scripted_answer("低保户有多少？"))
    web = page(stub, fake_settings)
    session = new_session()
    shown = chat_contents(list(web.respond("低保户有多少？", session)))
    assert shown[0] == THINKING_HTML
    assert "目前保障对象" in shown[1] and "3622" not in shown[1]  # the first piece alone
    assert "共3622户" in shown[2] and "wd-sources" not in shown[2]
    assert "wd-sources" in shown[-1] and 'href="#wd-cite-0-1"' in shown[-1]
    list(web.respond("那取消了多少户？", session))
    assert stub.calls[1] == ("那取消了多少户？", [("低保户有多少？", "目前保障对象共3622户、5635人。[1]")])


def test_chat_failure_shows_an_apology_not_a_traceback(fake_index, fake_settings):
    web = page(ScriptedAssistant(fake_index, ["半句"], None), fake_settings)
    session = new_session()
    shown = chat_contents(list(web.respond("低保户有多少？", session)))
    assert shown[-1] == ERROR_HTML
    assert session["answers"] == [None]


def test_empty_chat_input_asks_nothing(fake_index, fake_settings):
    stub = ScriptedAssistant(fake_index, [], scripted_answer(""))
    outputs = list(page(stub, fake_settings).respond("  \n ", new_session()))
    assert len(outputs) == 1 and stub.calls == []


def test_rendered_html_escapes_all_text():
    payload = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    answer = scripted_answer(payload)
    citation = replace(answer.citations[0], title=payload, text=payload + "。", passage_start=0,
                       passage_end=len(payload) + 1, sentence_start=0, sentence_end=len(payload) + 1)
    data = replace(answer, text=payload + "[1]", notice=payload, citations=[citation])
    article = Article(id="x", title=payload, subtitle=payload, body=payload + "。", reporters=(payload,))
    record = FeedbackRecord(1, "2026-01-01 08:00:00", "down", payload, payload, payload, False, (citation,), {},
                            payload)
    pages = [user_html(payload), answer_html(data, 0), answer_html(replace(data, refused=True, office=payload), 0),
             article_html(article, citation), feedback_html([record])]
    for page in pages:
        assert "<img" not in page and "<script" not in page
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
