"""Knowledge: the district's articles as reviewable files.

An article is any ``*.md`` under the knowledge folder with YAML front matter (only ``title`` required), or a
plain ``*.txt`` whose first line is its title. ``raw/`` holds source dumps (printed pages), not articles.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import frontmatter
import yaml

KINDS = ("news", "photo")
SKIPPED_DIRS = {"raw"}
SKIPPED_NAMES = {"README.md"}


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

    @property
    def month_label(self) -> str:
        """'2017年7月' for answers that must say how old their source is."""
        if not self.date:
            return ""
        year, month = self.date[:4], self.date[5:7]
        return f"{int(year)}年{int(month)}月" if month else f"{int(year)}年"


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
        title, body = title.strip(), normalize_body(rest)
        if not body:
            raise ArticleFileError("a .txt article needs a title line and at least one body line")
        return Article(id=slugify(stem), title=title, body=body, path=rel_path)
    if not text.lstrip("\ufeff").startswith("---"):
        raise ArticleFileError("missing YAML front matter (the file must start with '---')", line=1)
    try:
        post = frontmatter.loads(text.lstrip("\ufeff"))
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
        raise ArticleFileError(f"reporters must be a name or a list of names, got {reporters!r}")
    return Article(
        id=str(meta.get("id") or slugify(stem)),
        title=str(meta["title"]).strip(),
        subtitle=str(meta.get("subtitle") or "").strip(),
        body=body,
        date=_iso_date(meta.get("date")),
        date_basis=str(meta.get("date_basis") or ""),
        kind=kind,
        reporters=tuple(str(r) for r in reporters),
        source_file=str(meta.get("source_file") or ""),
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


def knowledge_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.suffix not in (".md", ".txt") or not path.is_file():
            continue
        if rel.parts[0] in SKIPPED_DIRS or path.name in SKIPPED_NAMES or any(p.startswith(".") for p in rel.parts):
            continue
        files.append(path)
    return files


def read_article_file(path: Path, root: Path) -> Article:
    rel = path.relative_to(root).as_posix()
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArticleFileError(f"not UTF-8 (bad byte at offset {exc.start})") from None
    return parse_article(text, rel)


def load_knowledge(root: Path, paths: list[Path] | None = None) -> KnowledgeLoad:
    """Read every article under ``root`` (or just ``paths``); a bad file becomes an error naming it, the others
    still load."""
    result = KnowledgeLoad()
    seen: dict[str, str] = {}
    for path in knowledge_files(root) if paths is None else paths:
        rel = path.relative_to(root).as_posix()
        try:
            article = read_article_file(path, root)
        except ArticleFileError as exc:
            result.errors.append(KnowledgeError(rel, str(exc), exc.line))
            continue
        if article.id in seen:
            result.errors.append(KnowledgeError(rel, f"duplicate article id {article.id!r} (also in {seen[article.id]})"))
            continue
        seen[article.id] = rel
        result.articles.append(article)
    return result


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
