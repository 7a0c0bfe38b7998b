"""Knowledge: the district's articles as reviewable files.

An article is any ``*.md`` under the knowledge folder with YAML front matter (only ``title`` required), or a
plain ``*.txt`` whose first line is its title. ``raw/`` holds source dumps (printed pages), not articles.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import frontmatter
import yaml

KINDS = ("news", "photo")
SUFFIXES = (".md", ".txt")
SKIPPED_DIRS = {"raw"}
SKIPPED_NAMES = {"readme.md", "readme.txt"}
# Bounds on what front matter may hold: a title is a headline, not a payload (the page, logs and feedback
# rows all carry it).
MAX_FRONT_MATTER_CHARS = 8_000
FIELD_LIMITS = {"id": 120, "title": 200, "subtitle": 400, "date_basis": 200, "source_file": 300, "reporter": 60}
MAX_REPORTERS = 20


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    body: str
    subtitle: str = ""
    date: str = ""  # ISO date (YYYY-MM-DD) or "" when the text supports none
    date_basis: str = ""
    kind: str = "news"
    reporters: tuple[str, ...] = ()
    source_file: str = ""
    path: str = ""  # relative to the knowledge folder; ties index chunks back to their file


@dataclass(frozen=True)
class KnowledgeError:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass
class KnowledgeLoad:
    articles: list[Article] = field(default_factory=list)
    errors: list[KnowledgeError] = field(default_factory=list)

    @property
    def failed_paths(self) -> set[str]:
        return {e.path for e in self.errors}


class ArticleFileError(ValueError):
    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


class NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors and aliases: a few hundred bytes of nested aliases expand to billions of
    nodes (the "billion laughs" bomb), and no article needs them."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(None, None, "anchors and aliases (&name, *name) are not allowed",
                                              event.start_mark)
        return super().compose_node(parent, index)


# libyaml's parser (same constructor, so the same values): whole files load ~3x faster than with NoAliasLoader.
FAST_LOADER = getattr(yaml, "CSafeLoader", None)


class _FrontMatterHandler(frontmatter.YAMLHandler):
    def load(self, fm: str, **kwargs):
        if len(fm) > MAX_FRONT_MATTER_CHARS:
            raise ArticleFileError(f"front matter is longer than {MAX_FRONT_MATTER_CHARS} characters", line=1)
        # Text without & or * holds no anchor or alias; text that libyaml rejects is read again by NoAliasLoader,
        # whose errors name the line.
        if FAST_LOADER is not None and "&" not in fm and "*" not in fm:
            try:
                return yaml.load(fm, Loader=FAST_LOADER)
            except yaml.YAMLError:
                pass
        return yaml.load(fm, Loader=NoAliasLoader)


def is_article_path(rel: Path) -> bool:
    """The one rule for which files under the knowledge folder are articles (ingest, upload and the staff
    list all apply it): .md/.txt, not a README, not under raw/, no dot-named part (staging files)."""
    return (rel.suffix in SUFFIXES and rel.name.lower() not in SKIPPED_NAMES and rel.parts[0] not in SKIPPED_DIRS
            and not any(part.startswith(".") for part in rel.parts))


def _bounded(name: str, value) -> str:
    text = str(value or "").strip()
    limit = FIELD_LIMITS[name]
    if len(text) > limit:
        raise ArticleFileError(f"{name} is longer than {limit} characters ({len(text)})")
    return text


def slugify(text: str) -> str:
    slug = re.sub(r"[^0-9A-Za-z\u4e00-\u9fff]+", "-", text).strip("-").lower()
    return slug or "article"


def normalize_body(text: str) -> str:
    """One paragraph per line, no blank lines: the form chunk offsets refer to."""
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def _iso_date(value) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.strftime("%Y-%m-%d")
    text = str(value).strip()
    if not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", text):
        raise ArticleFileError(f"date must look like YYYY-MM-DD, got {text!r}")
    return text


def parse_article(text: str, rel_path: str) -> Article:
    """Parse one knowledge file's text. Raises ArticleFileError naming the problem (and line)."""
    if not text.strip():
        raise ArticleFileError("file is empty")
    stem = Path(rel_path).stem
    if rel_path.endswith(".txt"):
        title, _, rest = text.strip().lstrip("\ufeff").partition("\n")
        title, body = _bounded("title", title), normalize_body(rest)
        if not body:
            raise ArticleFileError("a .txt article needs a title line and at least one body line")
        return Article(id=_bounded("id", slugify(stem)), title=title, body=body, path=rel_path)
    if not text.lstrip("\ufeff").startswith("---"):
        raise ArticleFileError("missing YAML front matter (the file must start with '---')", line=1)
    try:
        post = frontmatter.loads(text.lstrip("\ufeff"), handler=_FrontMatterHandler())
    except ArticleFileError:
        raise
    except TypeError as exc:  # YAML that is not a mapping of names (e.g. "1: 2")
        raise ArticleFileError(f"broken front matter: {exc}", line=1) from None
    except yaml.YAMLError as exc:
        raise ArticleFileError(f"broken front matter: {getattr(exc, 'problem', exc)}",
                               line=_error_line(text, exc)) from None
    except ValueError as exc:  # PyYAML raises it for impossible dates such as 2017-02-30
        raise ArticleFileError(f"broken front matter: {exc}") from None
    meta = post.metadata
    if not isinstance(meta, dict) or not str(meta.get("title") or "").strip():
        raise ArticleFileError("front matter has no 'title'", line=1)
    body = normalize_body(post.content)
    if not body:
        raise ArticleFileError("article has no body text")
    kind = str(meta.get("kind") or "news")
    if kind not in KINDS:
        raise ArticleFileError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    reporters = meta.get("reporters") or []
    if isinstance(reporters, str):
        reporters = [reporters]
    if not isinstance(reporters, list):
        raise ArticleFileError(f"reporters must be a name or a list of names, got {reporters!r}"[:200])
    if len(reporters) > MAX_REPORTERS:
        raise ArticleFileError(f"more than {MAX_REPORTERS} reporters ({len(reporters)})")
    return Article(
        id=_bounded("id", meta.get("id") or slugify(stem)),
        title=_bounded("title", meta["title"]),
        subtitle=_bounded("subtitle", meta.get("subtitle")),
        body=body,
        date=_iso_date(meta.get("date")),
        date_basis=_bounded("date_basis", meta.get("date_basis")),
        kind=kind,
        reporters=tuple(_bounded("reporter", r) for r in reporters),
        source_file=_bounded("source_file", meta.get("source_file")),
        path=rel_path,
    )


def _error_line(text: str, exc: yaml.YAMLError) -> int | None:
    """The file line of a YAML error. The YAML starts on the line after the opening '---' (mark.line + 1);
    an error found only at the end of the block (an unclosed quote) is reported where the construct began."""
    mark, context = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    if mark is None:
        return None
    block_end = text.lstrip("\ufeff").find("\n---", 3)
    closing_line = text.count("\n", 0, block_end + 1) + 1 if block_end >= 0 else None
    if context is not None and closing_line is not None and mark.line + 1 >= closing_line:
        mark = context
    return mark.line + 1


def _article_entries(root: Path) -> list[tuple[list[str], os.DirEntry]]:
    """(path parts relative to ``root``, directory entry) of each article file, in path order. os.scandir: its
    entries know whether they are files without a stat call, and pathlib's rglob, sort and relative_to took
    0.3 s for 11,000 files (this, 0.12 s). Symbolic links to folders are not followed (as rglob does not)."""
    found, folders = [], [([], os.fspath(root))]
    while folders:
        parts, folder = folders.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = [*parts, entry.name]
                if entry.is_dir(follow_symlinks=False):
                    folders.append((rel, entry.path))
                elif is_article_path(PurePosixPath(*rel)) and entry.is_file():
                    found.append((rel, entry))
    found.sort(key=lambda item: item[0])
    return found


def knowledge_files(root: Path) -> list[Path]:
    return [root.joinpath(*rel) for rel, _ in _article_entries(root)]


def read_article_file(path: Path, root: Path) -> Article:
    rel = path.relative_to(root).as_posix()
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArticleFileError(f"not UTF-8 (bad byte at offset {exc.start})") from None
    return parse_article(text, rel)


def _read(path: Path, root: Path) -> Article | KnowledgeError:
    try:
        return read_article_file(path, root)
    except ArticleFileError as exc:
        return KnowledgeError(path.relative_to(root).as_posix(), str(exc), exc.line)


def _assembled(files: Iterable[Article | KnowledgeError]) -> KnowledgeLoad:
    """The articles in file order; a bad file, or one repeating an earlier file's id, becomes an error."""
    result = KnowledgeLoad()
    seen: dict[str, str] = {}
    for item in files:
        if isinstance(item, KnowledgeError):
            result.errors.append(item)
        elif item.id in seen:
            message = f"duplicate article id {item.id!r} (also in {seen[item.id]})"
            result.errors.append(KnowledgeError(item.path, message))
        else:
            seen[item.id] = item.path
            result.articles.append(item)
    return result


def load_knowledge(root: Path, paths: list[Path] | None = None) -> KnowledgeLoad:
    """Read every article under ``root`` (or just ``paths``); a bad file becomes an error naming it, the others
    still load."""
    return _assembled(_read(path, root) for path in (knowledge_files(root) if paths is None else paths))


class KnowledgeFolder:
    """A knowledge folder read like ``load_knowledge``, where a file is parsed again only once it changed (size,
    modification time or inode differ): staff look up ids and list articles on every change, and parsing
    11,000 files takes 1.5 s of the CPU that residents' questions share. Thread-safe."""

    def __init__(self, root: Path):
        self.root = root
        self._lock = threading.Lock()
        self._parsed: dict[str, tuple[tuple[int, int, int], Article | KnowledgeError]] = {}

    def load(self) -> KnowledgeLoad:
        with self._lock:
            parsed = {}
            for rel, entry in _article_entries(self.root):
                try:
                    stat = entry.stat()
                except OSError:  # removed since the folder was listed
                    continue
                stamp = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
                key = "/".join(rel)
                known = self._parsed.get(key)
                parsed[key] = (known if known is not None and known[0] == stamp
                               else (stamp, _read(self.root.joinpath(*rel), self.root)))
            self._parsed = parsed
            return _assembled(item for _, item in parsed.values())


def render_article(article: Article) -> str:
    """The Markdown file for an article: YAML front matter, then the body's paragraphs."""
    meta = {"id": article.id, "title": article.title}
    if article.subtitle:
        meta["subtitle"] = article.subtitle
    if article.date:
        meta["date"] = article.date
    if article.date_basis:
        meta["date_basis"] = article.date_basis
    meta["kind"] = article.kind
    meta["reporters"] = list(article.reporters)
    if article.source_file:
        meta["source_file"] = article.source_file
    head = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False).strip()
    paragraphs = normalize_body(article.body).replace("\n", "\n\n")
    return f"---\n{head}\n---\n\n{paragraphs}\n"
