"""What an upload would do to each file it becomes, for staff to read before they confirm a replacement.

Bodies are compared paragraph by paragraph (``normalize_body`` puts one on a line), so the counts are the
paragraphs a resident would see added or removed, not re-wrapped lines of the file.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

from bot.knowledge.articles import Article

MAX_SHOWN_LINES = 6
MAX_SHOWN_CHARS = 60


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the knowledge folder
    replacing: bool  # a file is at this path now
    old_title: str  # "" when new, or when the file there now cannot be read as an article
    new_title: str
    old_id: str
    new_id: str
    lines_added: int
    lines_removed: int
    changed_lines: tuple[str, ...] = ()  # "+ 段落" / "- 段落", clipped, at most MAX_SHOWN_LINES

    def describe(self) -> str:
        if not self.replacing:
            return f"将新增 {self.path}：《{self.new_title}》（编号 {self.new_id}），正文 {self.lines_added} 行。"
        if not self.old_title:
            was = f"原文件无法读取，换为《{self.new_title}》"
        elif self.old_title == self.new_title:
            was = f"标题《{self.new_title}》不变"
        else:
            was = f"标题《{self.old_title}》→《{self.new_title}》"
        if self.old_id and self.old_id != self.new_id:
            was += f"，编号 {self.old_id} → {self.new_id}"
        return f"将替换 {self.path}：{was}，正文新增 {self.lines_added} 行、删除 {self.lines_removed} 行。"


def _clip(line: str) -> str:
    return line if len(line) <= MAX_SHOWN_CHARS else line[:MAX_SHOWN_CHARS - 1] + "…"


def file_change(path: str, old: Article | None, new: Article, replacing: bool) -> FileChange:
    """``old`` is the article at ``path`` now (None when there is none, or none that reads)."""
    old_lines = old.body.splitlines() if old else []
    new_lines = new.body.splitlines()
    added = removed = 0
    shown: list[str] = []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        removed, added = removed + i2 - i1, added + j2 - j1
        shown += [f"- {line}" for line in old_lines[i1:i2]] + [f"+ {line}" for line in new_lines[j1:j2]]
    return FileChange(path, replacing, old.title if old else "", new.title, old.id if old else "", new.id,
                      added, removed, tuple(_clip(line) for line in shown[:MAX_SHOWN_LINES]))
