"""The staff console at /staff in Debian's Chromium, as a member of staff uses it: nothing is lost by one click,
every change is in the audit log, and an error is a message next to the action that leaves the screen as it was.
The same operations through the console's API are in tests/test_web_api.py."""
from __future__ import annotations

import pytest
from browser_helpers import ANSWER_TIMEOUT, PHONE, Visit
from playwright.sync_api import expect

DIBAO_ARTICLE = "20170731-09"
DIBAO_TITLE = "区民政局实现社会救助“无盲区”"
DIBAO_QUESTION = "卫东区目前低保保障对象一共有多少户、多少人？"
HOURS_MD = """---
id: wd-console-hours
title: 卫东区社区图书馆夜间开放
date: 2018-08-15
---

2018年以来,卫东区社区图书馆每周三和周五晚上开放到{hour}点,全区共有12家社区图书馆参加夜间开放。
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(browser_app):
    return browser_app


@pytest.fixture
def staff(app, browser):
    visit = Visit(browser, app.url)
    visit.staff_login()
    yield visit
    visit.close()


def articles(visit: Visit):
    return visit.page.locator("#wd-staff-articles")


def choose(visit: Visit, article_id: str) -> None:
    visit.page.locator("#wd-staff-article-id").get_by_role("textbox").fill(article_id)


def audit_row(visit: Visit, action: str):
    """The newest row of the audit log for an action (the log is opened first)."""
    log = visit.page.locator("#wd-staff-audit")
    if not log.is_visible():
        visit.page.get_by_text("操作记录", exact=True).click()
    return log.locator("tr", has=visit.page.get_by_role("cell", name=action, exact=True)).first


def test_delete_asks_first_then_moves_to_the_trash_and_one_click_restores(app, staff):
    page = staff.page
    expect(articles(staff)).to_contain_text("文章共 11 篇")  # how many there are, above the list
    choose(staff, DIBAO_ARTICLE)
    page.get_by_role("button", name="删除…").click()
    confirm = page.locator("#wd-staff-delete-confirm").first
    expect(confirm).to_contain_text(f"确定删除《{DIBAO_TITLE}》")
    staff.shot("staff-01-delete-confirm")
    page.get_by_role("button", name="取消").first.click()
    expect(confirm).to_be_hidden()
    assert (app.settings.knowledge_dir / "articles" / f"{DIBAO_ARTICLE}.md").is_file()  # 删除… alone deletes nothing

    page.get_by_role("button", name="删除…").click()
    page.get_by_role("button", name="确认删除").click()
    expect(page.locator("#wd-staff-article-status")).to_contain_text("已删除 1 篇文章", timeout=ANSWER_TIMEOUT)
    expect(articles(staff)).not_to_contain_text(DIBAO_TITLE)
    assert not (app.settings.knowledge_dir / "articles" / f"{DIBAO_ARTICLE}.md").exists()
    trash = page.locator("#wd-staff-trash")
    expect(trash).to_contain_text(DIBAO_TITLE)
    staff.shot("staff-02-trash")

    resident = Visit(staff.context.browser, app.url)
    try:
        expect(resident.ask(DIBAO_QUESTION)).not_to_contain_text(DIBAO_TITLE)
    finally:
        resident.close()

    trash.get_by_text("恢复", exact=True).last.click()
    expect(page.locator("#wd-staff-trash-status")).to_contain_text("已恢复 1 篇文章", timeout=ANSWER_TIMEOUT)
    expect(articles(staff)).to_contain_text(DIBAO_TITLE)
    expect(trash).not_to_contain_text(DIBAO_TITLE)
    assert (app.settings.knowledge_dir / "articles" / f"{DIBAO_ARTICLE}.md").is_file()
    expect(audit_row(staff, "删除")).to_contain_text(f"articles/{DIBAO_ARTICLE}.md")
    expect(audit_row(staff, "恢复")).to_contain_text("127.0.0.1")


def test_replacing_a_file_shows_what_changes_and_asks(app, staff, tmp_path):
    page = staff.page
    upload = tmp_path / "console-hours.md"
    upload.write_text(HOURS_MD.format(hour=21), encoding="utf-8")
    page.locator("#wd-staff-file input[type=file]").set_input_files(upload)
    page.get_by_role("button", name="上传并入库").click()
    expect(page.locator("#wd-staff-status")).to_contain_text("已添加 1 篇文章", timeout=ANSWER_TIMEOUT)

    upload.write_text(HOURS_MD.format(hour=22), encoding="utf-8")
    page.locator("#wd-staff-file input[type=file]").set_input_files(upload)
    page.get_by_role("button", name="上传并入库").click()
    confirm = page.locator("#wd-staff-replace-confirm").first
    expect(confirm).to_contain_text("将替换 uploads/console-hours.md", timeout=ANSWER_TIMEOUT)
    expect(confirm.locator(".wd-diff-del")).to_contain_text("21点")
    expect(confirm.locator(".wd-diff-add")).to_contain_text("22点")
    staff.shot("staff-03-replace-confirm")
    stored = app.settings.knowledge_dir / "uploads" / "console-hours.md"
    assert "21点" in stored.read_text(encoding="utf-8")  # nothing replaced before the answer
    page.get_by_role("button", name="确认替换").click()
    expect(page.locator("#wd-staff-status")).to_contain_text("已替换 1 篇文章", timeout=ANSWER_TIMEOUT)
    expect(confirm).to_be_hidden()
    assert "22点" in stored.read_text(encoding="utf-8")
    expect(audit_row(staff, "替换")).to_contain_text("uploads/console-hours.md")
    choose(staff, "wd-console-hours")  # the knowledge as it was, for the other browser tests
    page.get_by_role("button", name="删除…").click()
    page.get_by_role("button", name="确认删除").click()
    expect(page.locator("#wd-staff-article-status")).to_contain_text("已删除 1 篇文章", timeout=ANSWER_TIMEOUT)


def test_an_error_is_a_message_next_to_the_action_and_the_list_stays(app, staff):
    page = staff.page
    expect(articles(staff)).to_contain_text(DIBAO_TITLE)
    page.get_by_role("button", name="删除…").click()  # no article chosen
    status = page.locator("#wd-staff-article-status")
    expect(status).to_contain_text("请先填写或在列表中点选要删除的文章编号")
    expect(articles(staff)).to_contain_text(DIBAO_TITLE)
    page.locator("#wd-staff-since").get_by_role("textbox").fill("昨天")
    page.get_by_role("button", name="查看反馈").click()
    expect(page.locator("#wd-staff-feedback-status")).to_contain_text("起始日期格式应为 YYYY-MM-DD")
    expect(page.get_by_text("Error")).to_have_count(0)  # no Gradio error badge, no toast
    staff.shot("staff-04-error-message")
    choose(staff, DIBAO_ARTICLE)
    page.get_by_role("button", name="打开").click()
    expect(page.locator("#wd-staff-reader h3")).to_have_text(DIBAO_TITLE)
    expect(status).to_have_text("")  # the next action clears the old message
    assert "Traceback" not in app.log() and "refused: 请先填写" in app.log()


def test_the_console_at_a_phone_width(app, browser):
    visit = Visit(browser, app.url, PHONE)
    try:
        visit.staff_login()
        choose(visit, DIBAO_ARTICLE)
        visit.page.get_by_role("button", name="删除…").click()
        expect(visit.page.locator("#wd-staff-delete-confirm").first).to_be_visible()
        assert visit.page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        visit.shot("phone-staff-01-delete-confirm")
        visit.page.get_by_role("button", name="取消").first.click()
    finally:
        visit.close()
