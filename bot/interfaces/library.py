"""Knowledge management for staff: browse, upload and delete articles, keeping the index in step.

Uploads are validated completely (``upload``) before anything is written, so a bad file leaves the knowledge
folder and the index exactly as they were. Errors are ``LibraryError`` with a message in Chinese that names the problem.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import Settings
from bot.search.index import IngestSummary, KnowledgeIndex
from bot.knowledge.articles import Article, ArticleFileError, KnowledgeLoad, load_knowledge, read_article_file
from bot.text import normalize_query
from bot.knowledge.upload import LibraryError, parse_upload, safe_filename

STAGING_SUFFIX = ".part"
VERBS = {"added": "已添加", "replaced": "已替换", "deleted": "已删除"}

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class LibraryChange:
    action: str  # "added", "replaced" or "deleted"
    articles: list[dict] = field(default_factory=list)  # {"id", "title", "path"}
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0

    def message(self) -> str:
        titles = "、".join(f"《{a['title']}》" for a in self.articles)
        return (f"{VERBS[self.action]} {len(self.articles)} 篇文章：{titles}。索引新增 {self.chunks_added} 段、"
                f"移除 {self.chunks_removed} 段，用时 {self.seconds:.1f} 秒。")


def _no_progress(fraction: float, text: str) -> None:
    """Default progress callback: the CLI and tests need no progress display."""


class KnowledgeLibrary:
    """Thread-safe: writes (add/delete) are serialised; reads go to the files and the index directly."""

    def __init__(self, settings: Settings, index: KnowledgeIndex):
        self.settings = settings
        self.index = index
        self.root = settings.knowledge_dir
        self._lock = threading.Lock()

    # ---- reading -------------------------------------------------------------------------------------------

    def articles(self) -> list[Article]:
        """All loadable articles, newest first."""
        articles = load_knowledge(self.root).articles
        return sorted(articles, key=lambda a: (a.date, a.id), reverse=True)

    def search(self, text: str) -> list[Article]:
        """Articles whose title or body contains ``text`` (Traditional/full-width input folded like questions)."""
        needle = normalize_query(text).lower()
        if not needle:
            return self.articles()
        return [a for a in self.articles() if needle in a.title.lower() or needle in a.body.lower()]

    def article(self, article_id: str) -> Article | None:
        """The article as its file reads now; found through the index first, then by scanning the folder."""
        for chunk in self.index.chunks():
            if chunk.article_id == article_id and chunk.path:
                article = self._read(chunk.path)
                if article is not None and article.id == article_id:
                    return article
                break
        return next((a for a in load_knowledge(self.root).articles if a.id == article_id), None)

    def _read(self, rel_path: str) -> Article | None:
        path = self.root / rel_path
        try:
            return read_article_file(path, self.root) if path.is_file() else None
        except ArticleFileError:
            return None

    # ---- writing -------------------------------------------------------------------------------------------

    def add_file(self, filename: str, data: bytes, as_page: bool = False, replace: bool = False,
                 progress: Progress = _no_progress) -> LibraryChange:
        """Validate an uploaded article (or printed-page dump), index it and store it under ``uploads/``.

        The file is written only after its chunks are indexed (under a dot-name first, which no reader takes
        for an article), so a crash leaves the file and its chunks both or neither once ``recover`` ran. A name
        that exists is replaced only with ``replace``: two uploads never collide silently."""
        started = time.perf_counter()
        progress(0.05, "校验文件")
        name = safe_filename(filename)
        files = parse_upload(name, data, as_page)
        with self._lock:
            self._check_names(filename, files, replace)
            added = self._check_ids(files)
            progress(0.3, "更新索引")
            staged = self._stage(files)
            try:
                summary = self.index.sync(KnowledgeLoad([article for _, article in files.values()]),
                                          progress=False, paths=set(files))
            except Exception:
                self._unstage(staged)
                raise
            progress(0.9, "写入知识库")
            for scratch, path in staged.items():
                os.replace(scratch, path)
        progress(1.0, "完成")
        action = "replaced" if any(a["replaced"] for a in added) else "added"
        return LibraryChange(action, added, summary.added, summary.removed, time.perf_counter() - started)

    def delete(self, article_id: str) -> LibraryChange:
        """Remove the article's file and its chunks: it is no longer retrieved."""
        started = time.perf_counter()
        with self._lock:
            article = next((a for a in load_knowledge(self.root).articles if a.id == article_id), None)
            if article is None:
                if not self.index.delete_article(article_id):
                    raise LibraryError(f"没有编号为「{article_id}」的文章。")
                return LibraryChange("deleted", [{"id": article_id, "title": article_id, "path": ""}],
                                     seconds=time.perf_counter() - started)
            (self.root / article.path).unlink()
            summary = self._sync([article.path])
        return LibraryChange("deleted", [{"id": article.id, "title": article.title, "path": article.path}],
                             summary.added, summary.removed, time.perf_counter() - started)

    def recover(self) -> list[str]:
        """After a crash during an upload: drop staged files and index their names as the folder holds them
        now. Returns the recovered paths."""
        with self._lock:
            staged = sorted(self.root.rglob(f".*{STAGING_SUFFIX}"))
            targets = [self._target(scratch).relative_to(self.root).as_posix() for scratch in staged]
            for scratch in staged:
                scratch.unlink()
            if targets:
                self._sync(targets)
        return targets

    # ---- helpers -------------------------------------------------------------------------------------------

    def _sync(self, rel_paths) -> IngestSummary:
        """Index just these files: a whole-folder sync would drop what other app processes added to a shared
        Chroma server from folders of their own."""
        present = [self.root / p for p in rel_paths if (self.root / p).is_file()]
        return self.index.sync(load_knowledge(self.root, present), progress=False, paths=set(rel_paths))

    def _check_names(self, filename: str, files: dict[str, tuple[str, Article]], replace: bool) -> None:
        if replace:
            return
        taken = [rel for rel in files if (self.root / rel).exists()]
        if taken:
            shown = "、".join(taken)
            raise LibraryError(f"「{filename}」将保存为 {shown}，这个文件已经存在。如要替换，请勾选“替换同名文件”后"
                               "再上传；未做任何改动。")

    def _check_ids(self, files: dict[str, tuple[str, Article]]) -> list[dict]:
        """New articles may replace an upload of the same file name, never another file's article."""
        owners = {a.id: a.path for a in load_knowledge(self.root).articles}
        added = []
        for rel, (_, article) in files.items():
            owner = owners.get(article.id)
            if owner is not None and owner != rel:
                raise LibraryError(f"文章编号「{article.id}」已被 {owner} 使用；请修改 front matter 里的 id "
                                   "或文件名后再上传，未做任何改动。")
            owners[article.id] = rel
            added.append({"id": article.id, "title": article.title, "path": rel,
                          "replaced": (self.root / rel).exists()})
        return added

    def _stage(self, files: dict[str, tuple[str, Article]]) -> dict[Path, Path]:
        """Write each file under its dot-name (skipped by load_knowledge); returns {staged: final path}."""
        staged = {}
        for rel, (text, _) in files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            scratch = path.with_name(f".{path.name}{STAGING_SUFFIX}")
            scratch.write_text(text, encoding="utf-8")
            staged[scratch] = path
        return staged

    def _unstage(self, staged: dict[Path, Path]) -> None:
        """Indexing failed: forget the staged files and index their names as the folder holds them."""
        for scratch in staged:
            scratch.unlink(missing_ok=True)
        self._sync([path.relative_to(self.root).as_posix() for path in staged.values()])

    @staticmethod
    def _target(scratch: Path) -> Path:
        return scratch.with_name(scratch.name[1:-len(STAGING_SUFFIX)])
