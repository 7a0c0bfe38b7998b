"""Deleted articles' files, kept outside the knowledge folder (never indexed) so that staff can restore them.

One folder an entry, named by its id, holding the file under its own name and ``manifest.json``. An entry in
transit carries its state in a dot-name, ``.<id><state>``, that ``entries`` never lists; after a crash
``KnowledgeLibrary.recover`` finishes or undoes it from that state alone:

- ``.part``: being written or being dropped; safe to remove, the knowledge file is where it belongs;
- ``.deleting``: a complete copy; the knowledge file may still be in place;
- ``.restoring``: being put back; the knowledge file may already be in place.

Each change of state is one rename, so a crash leaves every entry in exactly one of them.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath

from bot.knowledge.articles import Article, is_article_path

PART, DELETING, RESTORING, SETTLED = ".part", ".deleting", ".restoring", ""
PENDING = (DELETING, RESTORING)
MANIFEST = "manifest.json"
# UTC time first, so that ids sort by age; the random tail keeps two processes sharing the folder apart.
ENTRY_ID = re.compile(r"\d{8}-\d{6}-\d{6}-[0-9a-f]{6}")
_STATE_NAME = re.compile(rf"\.({ENTRY_ID.pattern})(\.part|\.deleting|\.restoring)")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrashEntry:
    entry_id: str
    article_id: str
    title: str
    path: str  # where the file was and goes back to, relative to the knowledge folder
    deleted_at: str  # local time with UTC offset, ISO 8601 to the second
    sha256: str  # of the file's bytes


_MANIFEST_FIELDS = [f.name for f in fields(TrashEntry) if f.name != "entry_id"]  # the id is the folder's name


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safe_path(rel: str) -> bool:
    """A manifest names a file inside the knowledge folder, never one outside it (the data folder may be
    writable by more than this app)."""
    path = PurePosixPath(rel)
    return bool(rel) and not path.is_absolute() and ".." not in path.parts and is_article_path(Path(rel))


class Trash:
    """Not thread-safe by itself: the library calls it under its write lock."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _dir(self, entry_id: str, state: str) -> Path:
        return self.folder / (f".{entry_id}{state}" if state else entry_id)

    def entries(self) -> list[TrashEntry]:
        """Entries in the trash, newest first."""
        if not self.folder.is_dir():
            return []
        ids = sorted((d.name for d in self.folder.iterdir() if ENTRY_ID.fullmatch(d.name)), reverse=True)
        return [entry for entry_id in ids if (entry := self._read(entry_id, SETTLED)) is not None]

    def get(self, entry_id: str) -> TrashEntry | None:
        """The entry in the trash with this id; None for any other string (it never reaches a path unchecked)."""
        if not isinstance(entry_id, str) or not ENTRY_ID.fullmatch(entry_id):
            return None
        return self._read(entry_id, SETTLED)

    def data(self, entry: TrashEntry, state: str = SETTLED) -> bytes:
        return (self._dir(entry.entry_id, state) / PurePosixPath(entry.path).name).read_bytes()

    def put(self, article: Article, data: bytes) -> TrashEntry:
        """A copy of the article's file, left in state ``.deleting``: the caller removes the original, then
        settles the entry with ``move``."""
        now = dt.datetime.now(dt.timezone.utc)
        entry = TrashEntry(f"{now:%Y%m%d-%H%M%S-%f}-{secrets.token_hex(3)}", article.id, article.title,
                           article.path, now.astimezone().isoformat(timespec="seconds"), sha256(data))
        part = self._dir(entry.entry_id, PART)
        part.mkdir(parents=True)
        (part / PurePosixPath(entry.path).name).write_bytes(data)
        manifest = {name: value for name, value in asdict(entry).items() if name in _MANIFEST_FIELDS}
        (part / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(part, self._dir(entry.entry_id, DELETING))
        return entry

    def move(self, entry_id: str, state: str, new_state: str) -> None:
        os.replace(self._dir(entry_id, state), self._dir(entry_id, new_state))

    def drop(self, entry_id: str, state: str) -> None:
        """Remove an entry: renamed to ``.part`` first, so that a crash midway leaves nothing half-read."""
        self.move(entry_id, state, PART)
        shutil.rmtree(self._dir(entry_id, PART))

    def pending(self) -> list[tuple[str, TrashEntry]]:
        """After a crash: (state, entry) of each entry left ``.deleting`` or ``.restoring``; ``.part`` folders
        are removed on the way."""
        if not self.folder.is_dir():
            return []
        found = []
        for folder in sorted(self.folder.iterdir()):
            if not (match := _STATE_NAME.fullmatch(folder.name)):
                continue
            entry_id, state = match.groups()
            if state == PART:
                shutil.rmtree(folder)
            elif (entry := self._read(entry_id, state)) is not None:
                found.append((state, entry))
        return found

    def _read(self, entry_id: str, state: str) -> TrashEntry | None:
        folder = self._dir(entry_id, state)
        if not folder.is_dir():
            return None
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            entry = TrashEntry(entry_id, **{name: manifest[name] for name in _MANIFEST_FIELDS})
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("trash entry %s is unreadable and left alone: %s", folder, exc)
            return None
        if not all(isinstance(v, str) for v in asdict(entry).values()) or not _safe_path(entry.path):
            log.warning("trash entry %s has a bad manifest and is left alone", folder)
            return None
        return entry
