"""Knowledge management for staff: browse, upload and delete articles, keeping the index in step.

Uploads are validated completely before anything is written, so a bad file leaves the knowledge folder and the
index exactly as they were. Errors are ``LibraryError`` with a message in Chinese that names the problem.
"""
from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import Settings
from .index import IngestSummary, KnowledgeIndex
from .knowledge import Article, ArticleFileError, load_knowledge, parse_article, read_article_file
from .normalize import normalize_query

UPLOAD_DIR = "uploads"
SUFFIXES = (".md", ".txt")
MAX_UPLOAD_BYTES = 2_000_000
_UNSAFE_NAME_CHARS = re.compile(r"[^0-9A-Za-z\u4e00-\u9fff._-]+")

Progress = Callable[[float, str], None]


class LibraryError(ValueError):
    """A problem the staff member can fix (bad file, unknown article); the message is shown as is."""


@dataclass(frozen=True)
class LibraryChange:
    action: str  # "added" or "deleted"
    articles: list[dict] = field(default_factory=list)  # {"id", "title", "path"}
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0

    def message(self) -> str:
        verb = "已添加" if self.action == "added" else "已删除"
        titles = "、".join(f"《{a['title']}》" for a in self.articles)
        return (f"{verb} {len(self.articles)} 篇文章：{titles}。索引新增 {self.chunks_added} 段、"
                f"移除 {self.chunks_removed} 段，用时 {self.seconds:.1f} 秒。")

    def to_dict(self) -> dict:
        return {**asdict(self), "message": self.message()}


def _no_progress(fraction: float, text: str) -> None:
    """Default progress callback: the CLI and tests need no progress display."""


def safe_filename(filename: str) -> str:
    """The uploaded name without folders or characters that are awkward in paths."""
    name = Path(filename.replace("\\", "/")).name
    stem, suffix = os.path.splitext(name)
    stem = _UNSAFE_NAME_CHARS.sub("-", stem).strip("-.")
    return f"{stem or 'upload'}{suffix.lower()}"


def _describe(exc: ArticleFileError) -> str:
    return f"第 {exc.line} 行：{exc}" if exc.line else str(exc)


def _decode(filename: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LibraryError(f"文件「{filename}」不是 UTF-8 编码（第 {exc.start} 个字节无法解码），"
                           "请用 UTF-8 另存后再上传。") from None


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

    def add_file(self, filename: str, data: bytes, as_page: bool = False,
                 progress: Progress = _no_progress) -> LibraryChange:
        """Validate an uploaded article (or printed-page dump), store it under ``uploads/`` and index it."""
        started = time.perf_counter()
        progress(0.05, "校验文件")
        name = safe_filename(filename)
        files = self._page_files(name, data) if as_page else {f"{UPLOAD_DIR}/{name}": self._article_text(name, data)}
        with self._lock:
            added = self._check_ids(files)
            progress(0.3, "写入知识库")
            previous = self._write(files)
            progress(0.4, "更新索引")
            try:
                summary = self._sync(files)
            except Exception:
                self._restore(previous)
                self._sync(files)
                raise
        progress(1.0, "完成")
        return LibraryChange("added", added, summary.added, summary.removed, time.perf_counter() - started)

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

    # ---- helpers -------------------------------------------------------------------------------------------

    def _sync(self, rel_paths) -> IngestSummary:
        """Index just these files: a whole-folder sync would drop what other app processes added to a shared
        Chroma server from folders of their own."""
        present = [self.root / p for p in rel_paths if (self.root / p).is_file()]
        return self.index.sync(load_knowledge(self.root, present), progress=False, paths=set(rel_paths))

    def _check_name(self, name: str, data: bytes, as_page: bool) -> None:
        suffix = Path(name).suffix
        if suffix not in SUFFIXES:
            raise LibraryError(f"只能上传 .md 或 .txt 文件，「{name}」不是。")
        if as_page and suffix != ".txt":
            raise LibraryError(f"整版文本必须是 .txt 文件，「{name}」不是。")
        if not data.strip():
            raise LibraryError(f"文件「{name}」是空的。")
        if len(data) > MAX_UPLOAD_BYTES:
            raise LibraryError(f"文件「{name}」超过 {MAX_UPLOAD_BYTES // 1_000_000} MB，请拆分后再上传。")

    def _article_text(self, name: str, data: bytes) -> str:
        self._check_name(name, data, as_page=False)
        text = _decode(name, data)
        try:
            parse_article(text, f"{UPLOAD_DIR}/{name}")
        except ArticleFileError as exc:
            raise LibraryError(f"文件「{name}」格式有误（{_describe(exc)}），未做任何改动。") from None
        return text

    def _page_files(self, name: str, data: bytes) -> dict[str, str]:
        """Split a page dump into article files in a scratch folder; nothing reaches the knowledge folder yet."""
        from .pageimport import import_page

        self._check_name(name, data, as_page=True)
        _decode(name, data)
        with tempfile.TemporaryDirectory(prefix="wd-page-") as tmp:
            page = Path(tmp) / name
            page.write_bytes(data)
            try:
                written = import_page(page, Path(tmp) / "out")
            except ValueError as exc:
                raise LibraryError(f"无法从版面文本「{name}」拆分出文章：{exc}") from None
            files = {f"{UPLOAD_DIR}/{path.name}": path.read_text(encoding="utf-8") for path in written}
        if not files:
            raise LibraryError(f"版面文本「{name}」中没有找到文章。")
        for rel, text in files.items():
            try:
                parse_article(text, rel)
            except ArticleFileError as exc:
                raise LibraryError(f"版面文本「{name}」拆出的 {rel} 不合格（{_describe(exc)}），未做任何改动。") from None
        return files

    def _check_ids(self, files: dict[str, str]) -> list[dict]:
        """New articles may replace an upload of the same file name, never another file's article."""
        owners = {a.id: a.path for a in load_knowledge(self.root).articles}
        added = []
        for rel, text in files.items():
            article = parse_article(text, rel)
            owner = owners.get(article.id)
            if owner is not None and owner != rel:
                raise LibraryError(f"文章编号「{article.id}」已被 {owner} 使用；请修改 front matter 里的 id "
                                   "或文件名后再上传，未做任何改动。")
            owners[article.id] = rel
            added.append({"id": article.id, "title": article.title, "path": rel})
        return added

    def _write(self, files: dict[str, str]) -> dict[Path, bytes | None]:
        """Write each file atomically; returns what was there before (None: nothing) for a rollback."""
        previous = {}
        for rel, text in files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            previous[path] = path.read_bytes() if path.exists() else None
            # A dot-name is skipped by load_knowledge, so a half-written file is never read as an article.
            scratch = path.with_name(f".{path.name}.part")
            scratch.write_text(text, encoding="utf-8")
            os.replace(scratch, path)
        return previous

    @staticmethod
    def _restore(previous: dict[Path, bytes | None]) -> None:
        for path, data in previous.items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)
