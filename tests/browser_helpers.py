"""Debian's Chromium through Playwright (sync API): one browser session on the app's page."""
from __future__ import annotations

from playwright.sync_api import Page, expect
from webapp_helpers import STAFF_PASSWORD, STAFF_USER

from bot.config import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "artifacts" / "screenshots"
ANSWER_TIMEOUT = 30_000
WIDE = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


class Visit:
    """One browser session on the page, recording any dialog an injected script might open."""

    def __init__(self, browser, url: str, viewport: dict | None = None, locale: str = "zh-CN"):
        self.url = url
        self.context = browser.new_context(locale=locale, viewport=viewport or WIDE)
        self.page: Page = self.context.new_page()
        self.dialogs: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.goto(url)
        expect(self.page.locator("#wd-question textarea")).to_be_visible(timeout=ANSWER_TIMEOUT)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def ask(self, question: str):
        """Send a question and return the bot message that answers it, once the answer is final."""
        answers = self.page.locator("#wd-chat [data-testid='bot']")
        count = answers.count()
        self.page.locator("#wd-question textarea").fill(question)
        self.page.locator("#wd-question textarea").press("Enter")
        return self.final_answer(count)

    def final_answer(self, previous: int):
        answer = self.page.locator("#wd-chat [data-testid='bot']").nth(previous)
        expect(answer.locator(".wd-answer, .wd-refusal, .wd-error")).to_be_visible(timeout=ANSWER_TIMEOUT)
        expect(answer.locator(".wd-thinking")).to_have_count(0, timeout=ANSWER_TIMEOUT)
        return answer

    def xss_fired(self) -> bool:
        return self.page.evaluate("() => window.__xss !== undefined") or bool(self.dialogs)

    def staff_login(self, password: str = STAFF_PASSWORD) -> None:
        """Open the staff console at /staff in this session, through its login page unless already logged in."""
        self.page.goto(f"{self.url}staff/")
        if not self.page.url.endswith("/staff/login"):
            expect(self.page.locator("#wd-staff-articles")).to_be_visible(timeout=ANSWER_TIMEOUT)
            return
        self.page.get_by_label("用户名").fill(STAFF_USER)
        self.page.get_by_label("口令").fill(password)
        self.page.get_by_role("button", name="登录").click()
        if password == STAFF_PASSWORD:
            expect(self.page.locator("#wd-staff-articles")).to_be_visible(timeout=ANSWER_TIMEOUT)

    def residents_page(self) -> None:
        self.page.goto(self.url)
        expect(self.page.locator("#wd-question textarea")).to_be_visible(timeout=ANSWER_TIMEOUT)

    def shot(self, name: str, full_page: bool = True) -> None:
        self.page.screenshot(path=SHOTS / f"{name}.png", full_page=full_page)

    def close(self) -> None:
        self.context.close()


# Visible text, tooltips (title) and placeholders of the page itself; aria labels are left out (Gradio hard-codes a
# few in English that no visitor sees), and so are table cells (data: article ids, file names).
VISIBLE_STRINGS_JS = """() => {
  const out = [];
  const walk = (node) => {
    if (node.nodeType === 3) {
      const parent = node.parentElement;
      if (parent && parent.checkVisibility() && node.textContent.trim() && !parent.closest('.sr-only, style, script, td, .cell-wrap'))
        out.push(node.textContent.trim());
      return;
    }
    if (node.nodeType !== 1 || !node.checkVisibility()) return;
    for (const name of ['title', 'placeholder', 'alt']) if (node.getAttribute(name)) out.push(node.getAttribute(name));
    for (const child of node.childNodes) walk(child);
  };
  walk(document.body);
  return out;
}"""


def visible_strings(page: Page) -> list[str]:
    return page.evaluate(VISIBLE_STRINGS_JS)
