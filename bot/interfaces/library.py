"""Knowledge management for staff: browse, preview, upload, delete (to the trash) and restore articles, keeping
the index in step.

Uploads are validated completely (``upload``) before anything is written, so a bad file leaves the knowledge
folder and the index exactly as they were. Errors are ``LibraryError`` with a message in Chinese that names the problem.
One file holds one article (a printed page is split into one file an article on upload), so deleting an
article moves exactly its file to the trash.
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.config import Settings
from bot.search.index import IngestSummary, KnowledgeIndex
from bot.interfaces.preview import FileChange, file_change
from bot.interfaces.trash import DELETING, RESTORING, SETTLED, Trash, TrashEntry, sha256
from bot.knowledge.articles import (Article, ArticleFileError, KnowledgeFolder, KnowledgeLoad, load_knowledge,
                                    parse_article, read_article_file)
from bot.knowledge.upload import LibraryError, UploadFiles, parse_upload, safe_filename
from bot.text import normalize_query

STAGING_SUFFIX = ".part"
# A write waits this long for another process's to end (an index write takes seconds: 12 s at 30k chunks); longer
# means that process is stuck, and staff get a refusal that says so instead of a page that never answers.
WRITE_WAIT_SECONDS = 120.0
WRITE_POLL_SECONDS = 0.05
BUSY = "另一个进程正在修改资料（上传、删除或恢复），请稍后再试；未做任何改动。"
VERBS = {"added": "已添加", "replaced": "已替换", "deleted": "已删除", "restored": "已恢复"}
AUDIT_ACTIONS = {"added": "upload", "replaced": "replace", "deleted": "delete", "restored": "restore"}

Progress = Callable[[float, str], None]
log = logging.getLogger(__name__)


class FolderBusy(LibraryError):
    """Another process held the knowledge folder's write lock for longer than a write may wait."""


@dataclass(frozen=True)
class ChangedFile:
    path: str  # relative to the knowledge folder; "" for leftover chunks of an article that had no file
    article_id: str
    title: str
    sha256: str  # of the bytes written (added, replaced, restored) or moved to the trash (deleted); "" if none


@dataclass(frozen=True)
class LibraryChange:
    action: str  # "added", "replaced", "deleted" or "restored"
    files: tuple[ChangedFile, ...] = ()
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0
    trash_entry: str = ""  # deleted: the entry that restore() takes back; restored: the entry it was

    @property
    def audit_action(self) -> str:
        """The AuditLog action this change is recorded as."""
        return AUDIT_ACTIONS[self.action]

    def message(self) -> str:
        titles = "、".join(f"《{f.title}》" for f in self.files)
        trash = "文件已移入回收站，可以恢复。" if self.action == "deleted" and self.trash_entry else ""
        return (f"{VERBS[self.action]} {len(self.files)} 篇文章：{titles}。索引新增 {self.chunks_added} 段、"
                f"移除 {self.chunks_removed} 段，用时 {self.seconds:.1f} 秒。{trash}")


def _no_progress(fraction: float, text: str) -> None:
    """Default progress callback: the CLI and tests need no progress display."""


class KnowledgeLibrary:
    """Thread- and process-safe: writes (add/delete/restore/recover) are serialised, also between app processes
    that share the knowledge folder; reads go to the files and the index directly."""

    def __init__(self, settings: Settings, index: KnowledgeIndex, write_wait_seconds: float = WRITE_WAIT_SECONDS):
        self.settings = settings
        self.write_wait_seconds = write_wait_seconds
        self.index = index
        self.root = settings.knowledge_dir
        self.folder = KnowledgeFolder(self.root)
        self._trash = Trash(settings.trash_db)
        self._lock = threading.Lock()

    # ---- reading -------------------------------------------------------------------------------------------

    def articles(self) -> list[Article]:
        """All loadable articles, newest first."""
        articles = self.folder.load().articles
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
        return next((a for a in self.folder.load().articles if a.id == article_id), None)

    def _read(self, rel_path: str) -> Article | None:
        path = self.root / rel_path
        try:
            return read_article_file(path, self.root) if path.is_file() else None
        except ArticleFileError:
            return None

    # ---- writing -------------------------------------------------------------------------------------------

    def preview(self, filename: str, data: bytes, as_page: bool = False) -> list[FileChange]:
        """What ``add_file(..., replace=True)`` would do, file by file, after the same checks (the same
        LibraryError for a bad upload); writes nothing."""
        files = parse_upload(safe_filename(filename), data, as_page)
        self._check_upload(filename, files, replace=True)
        return [file_change(rel, self._read(rel), article, (self.root / rel).exists())
                for rel, (_, article) in files.items()]

    def add_file(self, filename: str, data: bytes, as_page: bool = False, replace: bool = False,
                 progress: Progress = _no_progress) -> LibraryChange:
        """Validate an uploaded article (or printed-page dump), index it and store it under ``uploads/``.

        A name that exists is replaced only with ``replace``: two uploads never collide silently."""
        started = time.perf_counter()
        progress(0.05, "校验文件")
        files = parse_upload(safe_filename(filename), data, as_page)
        with self._writing():
            self._check_upload(filename, files, replace)
            replaced = any((self.root / rel).exists() for rel in files)
            progress(0.3, "更新索引")
            summary = self._write(files)
        progress(1.0, "完成")
        return LibraryChange("replaced" if replaced else "added", _changed(files), summary.added, summary.removed,
                             time.perf_counter() - started)

    def delete(self, article_id: str) -> LibraryChange:
        """Move the article's file to the trash and drop its chunks: it is no longer retrieved, and ``restore``
        can bring it back.

        The trash holds a complete copy before anything else changes; the chunks go next, the file last, so
        that a crash leaves an entry ``recover`` finishes (see bot/interfaces/trash.py)."""
        started = time.perf_counter()
        with self._writing():
            article = self.article(article_id)
            if article is None:
                if not (removed := self.index.delete_article(article_id)):
                    raise LibraryError(f"没有编号为「{article_id}」的文章。")
                return LibraryChange("deleted", (ChangedFile("", article_id, article_id, ""),),
                                     chunks_removed=removed, seconds=time.perf_counter() - started)
            path = self.root / article.path
            entry = self._trash.put(article, path.read_bytes())
            try:
                summary = self._unindex(article.path)
            except Exception:
                self._trash.drop(entry.entry_id, DELETING)
                self._sync([article.path])
                raise
            path.unlink()
            self._trash.move(entry.entry_id, DELETING, SETTLED)
        return LibraryChange("deleted", (ChangedFile(article.path, article.id, article.title, entry.sha256),),
                             summary.added, summary.removed, time.perf_counter() - started, entry.entry_id)

    def trash(self) -> list[TrashEntry]:
        """Deleted articles that can be restored, newest first."""
        return self._trash.entries()

    def restore(self, entry_id: str) -> LibraryChange:
        """Put a deleted article's file back where it was and index it; the entry leaves the trash. Refused,
        changing nothing, when that path or the article's id has been taken since."""
        started = time.perf_counter()
        with self._writing():
            gone = f"回收站里没有编号为「{entry_id}」的条目，可能已经恢复过了。"
            if (entry := self._trash.get(entry_id)) is None:
                raise LibraryError(gone)
            what = f"无法恢复《{entry.title}》"
            if (self.root / entry.path).exists():
                raise LibraryError(f"{what}：{entry.path} 已有同名文件。请先删除或改名该文件再恢复；未做任何改动。")
            files = {entry.path: self._trashed_file(entry, what)}
            if taken := self._id_taken(files):
                raise LibraryError(f"{what}：文章编号「{taken[0]}」现已被 {taken[1]} 使用；未做任何改动。")
            if not self._trash.move(entry.entry_id, SETTLED, RESTORING):  # another worker restored it just now
                raise LibraryError(gone)
            try:
                summary = self._write(files)
            except Exception:
                self._trash.move(entry.entry_id, RESTORING, SETTLED)
                raise
            self._trash.drop(entry.entry_id, RESTORING)
        return LibraryChange("restored", _changed(files), summary.added, summary.removed,
                             time.perf_counter() - started, entry.entry_id)

    def recover(self) -> list[str]:
        """After a crash during an upload, delete or restore: finish or undo what was midway, so that each file
        is either in the knowledge folder and indexed or in the trash and not. Returns the recovered paths.

        Every step leaves a state the next run of ``recover`` reads again (index first, then the files). While
        another process's write holds the folder past the wait, nothing is recovered: that process is alive."""
        try:
            with self._writing():
                return self._recover()
        except FolderBusy:
            log.warning("recovery skipped: another process has held the knowledge folder's write lock for %.0f s",
                        self.write_wait_seconds)
            return []

    # ---- helpers -------------------------------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One write at a time: a thread lock, then an exclusive flock on the folder itself, which every process
        sharing it takes and the kernel drops when its holder dies. Without it a worker starting up took
        another's upload in flight for a crash's leftovers and deleted its staged file."""
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            folder = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
            try:
                deadline = time.monotonic() + self.write_wait_seconds
                while True:
                    try:
                        fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise FolderBusy(BUSY) from None
                        time.sleep(WRITE_POLL_SECONDS)
                yield
            finally:
                os.close(folder)  # releases the flock

    def _recover(self) -> list[str]:
        staged = sorted(self.root.rglob(f".*{STAGING_SUFFIX}"))
        targets = [self._target(scratch).relative_to(self.root).as_posix() for scratch in staged]
        if targets:
            self._sync(targets)  # the staged files are dot-names: the index follows the final names
        for scratch in staged:
            scratch.unlink()
        self._trash.adopt(self.settings.trash_dir)
        for state, entry in self._trash.pending():
            targets.append(entry.path)
            self._recover_entry(state, entry)
        return targets

    def _recover_entry(self, state: str, entry: TrashEntry) -> None:
        """A delete is finished (it was asked for); a restore counts as done once its file is in place."""
        path = self.root / entry.path
        ours = path.is_file() and sha256(path.read_bytes()) == entry.sha256
        if state == DELETING and ours:
            self._unindex(entry.path)
            path.unlink()
        else:
            self._sync([entry.path])
        if state == RESTORING and ours:
            self._trash.drop(entry.entry_id, RESTORING)
        else:
            self._trash.move(entry.entry_id, state, SETTLED)

    def _trashed_file(self, entry: TrashEntry, what: str) -> tuple[str, Article]:
        try:
            text = self._trash.data(entry).decode("utf-8")
            return text, parse_article(text, entry.path)
        except (UnicodeDecodeError, ArticleFileError) as exc:
            raise LibraryError(f"{what}：回收站里的文件无法读取（{exc}）；未做任何改动。") from None

    def _write(self, files: UploadFiles) -> IngestSummary:
        """Index the files, then store them. Each is written under a dot-name first (which no reader takes
        for an article) and renamed only after its chunks are indexed, so a crash leaves the file and its
        chunks both or neither once ``recover`` ran."""
        staged = self._stage(files)
        try:
            summary = self.index.sync(KnowledgeLoad([article for _, article in files.values()]),
                                      progress=False, paths=set(files))
        except Exception:
            self._unstage(staged)
            raise
        for scratch, path in staged.items():
            os.replace(scratch, path)
        return summary

    def _unindex(self, rel_path: str) -> IngestSummary:
        """Drop the file's chunks while it is still in the folder (a delete takes the chunks first)."""
        return self.index.sync(KnowledgeLoad(), progress=False, paths={rel_path})

    def _sync(self, rel_paths) -> IngestSummary:
        """Index just these files: a whole-folder sync would drop what other app processes added to a shared
        Chroma server from folders of their own."""
        present = [self.root / p for p in rel_paths if (self.root / p).is_file()]
        return self.index.sync(load_knowledge(self.root, present), progress=False, paths=set(rel_paths))

    def _check_upload(self, filename: str, files: UploadFiles, replace: bool) -> None:
        if not replace and (taken := [rel for rel in files if (self.root / rel).exists()]):
            raise LibraryError(f"「{filename}」将保存为 {'、'.join(taken)}，这个文件已经存在。如要替换，请勾选"
                               "“替换同名文件”后再上传；未做任何改动。")
        if taken := self._id_taken(files):
            raise LibraryError(f"文章编号「{taken[0]}」已被 {taken[1]} 使用；请修改 front matter 里的 id "
                               "或文件名后再上传，未做任何改动。")

    def _id_taken(self, files: UploadFiles) -> tuple[str, str] | None:
        """(id, other file) when an article would take an id another file holds: a file may replace its own
        article, never another file's."""
        owners = {a.id: a.path for a in self.folder.load().articles}
        for rel, (_, article) in files.items():
            owner = owners.setdefault(article.id, rel)
            if owner != rel:
                return article.id, owner
        return None

    def _stage(self, files: UploadFiles) -> dict[Path, Path]:
        """Write each file under its dot-name (skipped by load_knowledge); returns {staged: final path}."""
        staged = {}
        for rel, (text, _) in files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            scratch = path.with_name(f".{path.name}{STAGING_SUFFIX}")
            scratch.write_bytes(text.encode("utf-8"))  # bytes: no newline translation, the sha256 holds
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


def _changed(files: UploadFiles) -> tuple[ChangedFile, ...]:
    return tuple(ChangedFile(rel, article.id, article.title, sha256(text.encode("utf-8")))
                 for rel, (text, article) in files.items())
