"""Validation of a staff upload, from the sent name and bytes to the article files it would become.

Parsing runs in a child process with a time limit (``parse_upload``): however a file is crafted, it cannot hold
the server, whose resident questions share the interpreter. Nothing here writes to the knowledge folder.
"""
from __future__ import annotations

import multiprocessing
import os
import re
import tempfile
from pathlib import Path

from bot.knowledge.articles import SUFFIXES, Article, ArticleFileError, is_article_path, parse_article
from bot.knowledge.pageimport import import_page

UPLOAD_DIR = "uploads"
MAX_UPLOAD_BYTES = 2_000_000
PARSE_SECONDS = 20.0
_UNSAFE_NAME_CHARS = re.compile(r"[^0-9A-Za-z\u4e00-\u9fff._-]+")

# A fork server that has imported this module starts each parsing child in milliseconds.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload([__name__])

UploadFiles = dict[str, tuple[str, Article]]  # path in the knowledge folder → (file text, parsed article)


class LibraryError(ValueError):
    """A problem the staff member can fix (bad file, unknown article); the message is shown as is."""


def safe_filename(filename: str) -> str:
    """The uploaded name without folders or characters that are awkward in paths."""
    name = Path(filename.replace("\\", "/")).name
    stem, suffix = os.path.splitext(name)
    stem = _UNSAFE_NAME_CHARS.sub("-", stem).strip("-.")
    return f"{stem or 'upload'}{suffix.lower()}"


def parse_upload(name: str, data: bytes, as_page: bool) -> UploadFiles:
    """The files an upload becomes, each parsed; LibraryError names what is wrong."""
    with _CONTEXT.Pool(1) as pool:  # leaving the block terminates the child, also one still parsing
        pending = pool.apply_async(validated_upload, (name, data, as_page))
        try:
            return pending.get(timeout=PARSE_SECONDS)
        except multiprocessing.TimeoutError:
            raise LibraryError(f"文件「{name}」{PARSE_SECONDS:.0f} 秒内没能解析完，已放弃；未做任何改动。") from None


def validated_upload(name: str, data: bytes, as_page: bool) -> UploadFiles:
    """What ``parse_upload`` runs in the child (callable directly where no time limit is needed)."""
    _check_name(name, data, as_page)
    text = _decode(name, data)
    if not as_page:
        return {f"{UPLOAD_DIR}/{name}": (text, _parsed(text, f"{UPLOAD_DIR}/{name}", f"文件「{name}」"))}
    with tempfile.TemporaryDirectory(prefix="wd-page-") as tmp:
        page = Path(tmp) / name
        page.write_bytes(data)
        try:
            written = import_page(page, Path(tmp) / "out")
        except ValueError as exc:
            raise LibraryError(f"无法从版面文本「{name}」拆分出文章：{exc}") from None
        texts = {f"{UPLOAD_DIR}/{path.name}": path.read_text(encoding="utf-8") for path in written}
    if not texts:
        raise LibraryError(f"版面文本「{name}」中没有找到文章。")
    return {rel: (text, _parsed(text, rel, f"版面文本「{name}」拆出的 {rel}")) for rel, text in texts.items()}


def _check_name(name: str, data: bytes, as_page: bool) -> None:
    suffix = Path(name).suffix
    if suffix not in SUFFIXES:
        raise LibraryError(f"只能上传 .md 或 .txt 文件，「{name}」不是。")
    if not is_article_path(Path(UPLOAD_DIR) / name):
        raise LibraryError(f"「{name}」是说明文件的名字，不会当作文章入库；请换一个文件名再上传。")
    if as_page and suffix != ".txt":
        raise LibraryError(f"整版文本必须是 .txt 文件，「{name}」不是。")
    if not data.strip():
        raise LibraryError(f"文件「{name}」是空的。")
    if len(data) > MAX_UPLOAD_BYTES:
        raise LibraryError(f"文件「{name}」超过 {MAX_UPLOAD_BYTES // 1_000_000} MB，请拆分后再上传。")


def _decode(filename: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LibraryError(f"文件「{filename}」不是 UTF-8 编码（第 {exc.start} 个字节无法解码），"
                           "请用 UTF-8 另存后再上传。") from None


def _parsed(text: str, rel: str, what: str) -> Article:
    try:
        return parse_article(text, rel)
    except ArticleFileError as exc:
        where = f"第 {exc.line} 行：{exc}" if exc.line else str(exc)
        raise LibraryError(f"{what}格式有误（{where}），未做任何改动。") from None
