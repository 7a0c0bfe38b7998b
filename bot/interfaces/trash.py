"""Deleted articles' files, kept in the database (never indexed) so that staff can restore them from any worker.

One row an entry: what the article was, where its file goes back to, the file's bytes and the entry's state.
``entries`` lists only settled entries; after a crash ``KnowledgeLibrary.recover`` finishes or undoes an entry
in transit from its state alone:

- ``deleting``: a complete copy; the knowledge file may still be in place;
- ``restoring``: being put back; the knowledge file may already be in place.

Each change of state is one transaction that names the state it leaves, so a crash leaves every entry in
exactly one state, and two workers never both take an entry from the same one.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import secrets
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath

from sqlalchemy import column, delete, exists, insert, select, table, update

from bot.interfaces.database import Database
from bot.knowledge.articles import Article, is_article_path

DELETING, RESTORING, SETTLED = "deleting", "restoring", "settled"
PENDING = (DELETING, RESTORING)
# UTC time first, so that ids sort by age; the random tail keeps two workers apart.
ENTRY_ID = re.compile(r"\d{8}-\d{6}-\d{6}-[0-9a-f]{6}")
# The trash folder of versions before the database: one folder an entry, named by its id when settled, else
# ".<id><state>"; ".part" was half written or half removed, nothing to keep.
FOLDER_STATES = {".deleting": DELETING, ".restoring": RESTORING, ".part": None}
_FOLDER_IN_TRANSIT = re.compile(rf"\.({ENTRY_ID.pattern})(\.part|\.deleting|\.restoring)")
MANIFEST = "manifest.json"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrashEntry:
    entry_id: str
    article_id: str
    title: str
    path: str  # where the file was and goes back to, relative to the knowledge folder
    deleted_at: str  # local time with UTC offset, ISO 8601 to the second
    sha256: str  # of the file's bytes


_FIELDS = [f.name for f in fields(TrashEntry)]
TRASH = table("trash", *map(column, [*_FIELDS, "state", "content"]))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safe_path(rel: str) -> bool:
    """An entry names a file inside the knowledge folder, never one outside it (the database may be writable
    by more than this app)."""
    path = PurePosixPath(rel)
    return bool(rel) and not path.is_absolute() and ".." not in path.parts and is_article_path(Path(rel))


def _entry(row) -> TrashEntry | None:
    entry = TrashEntry(**{name: row[name] for name in _FIELDS})
    if not all(isinstance(v, str) for v in asdict(entry).values()) or not _safe_path(entry.path):
        log.warning("trash entry %r has a bad path or field and is left alone", entry.entry_id)
        return None
    return entry


class Trash(Database):
    """Not thread-safe by itself: the library calls it under its write lock."""

    BRANCH = "trash"

    def entries(self) -> list[TrashEntry]:
        """Entries in the trash, newest first."""
        return self._select(TRASH.c.state == SETTLED)

    def get(self, entry_id: str) -> TrashEntry | None:
        """The entry in the trash with this id; None for any other string."""
        if not isinstance(entry_id, str) or not ENTRY_ID.fullmatch(entry_id):
            return None
        return next(iter(self._select((TRASH.c.state == SETTLED) & (TRASH.c.entry_id == entry_id))), None)

    def data(self, entry: TrashEntry) -> bytes:
        with self._connect() as conn:
            return conn.execute(select(TRASH.c.content).where(TRASH.c.entry_id == entry.entry_id)).scalar_one()

    def put(self, article: Article, data: bytes) -> TrashEntry:
        """A copy of the article's file, left in state ``deleting``: the caller removes the original, then
        settles the entry with ``move``."""
        now = dt.datetime.now(dt.timezone.utc)
        entry = TrashEntry(f"{now:%Y%m%d-%H%M%S-%f}-{secrets.token_hex(3)}", article.id, article.title,
                           article.path, now.astimezone().isoformat(timespec="seconds"), sha256(data))
        with self._connect() as conn:
            conn.execute(insert(TRASH).values(**asdict(entry), state=DELETING, content=data))
        return entry

    def move(self, entry_id: str, state: str, new_state: str) -> bool:
        """False, changing nothing, when the entry is not in ``state`` (another worker took it first)."""
        with self._connect() as conn:
            return conn.execute(update(TRASH).where((TRASH.c.entry_id == entry_id) & (TRASH.c.state == state))
                                .values(state=new_state)).rowcount == 1

    def drop(self, entry_id: str, state: str) -> bool:
        with self._connect() as conn:
            return conn.execute(delete(TRASH).where((TRASH.c.entry_id == entry_id) & (TRASH.c.state == state))
                                ).rowcount == 1

    def pending(self) -> list[tuple[str, TrashEntry]]:
        """After a crash: (state, entry) of each entry left ``deleting`` or ``restoring``."""
        with self._connect() as conn:
            rows = conn.execute(select(TRASH).where(TRASH.c.state.in_(PENDING)).order_by(TRASH.c.entry_id)).mappings()
            return [(row["state"], entry) for row in rows if (entry := _entry(row)) is not None]

    def adopt(self, folder: Path) -> None:
        """Move the entries of an older version's trash folder into the database, each in its state: inserted
        first, its folder removed after, so that a crash in between only repeats the removal."""
        if not folder.is_dir():
            return
        for path in sorted(folder.iterdir()):
            if ENTRY_ID.fullmatch(path.name):
                entry_id, state = path.name, SETTLED
            elif match := _FOLDER_IN_TRANSIT.fullmatch(path.name):
                entry_id, state = match[1], FOLDER_STATES[match[2]]
            else:
                continue
            if state is not None:
                if (found := _folder_entry(path, entry_id)) is None:
                    continue  # unreadable: left where it is for someone to look at, as older versions did
                entry, data = found
                with self._connect() as conn:
                    if not conn.execute(select(exists().where(TRASH.c.entry_id == entry_id))).scalar():
                        conn.execute(insert(TRASH).values(**asdict(entry), state=state, content=data))
            shutil.rmtree(path)
        if not any(folder.iterdir()):
            folder.rmdir()

    def _select(self, where) -> list[TrashEntry]:
        with self._connect() as conn:
            rows = conn.execute(select(*(TRASH.c[name] for name in _FIELDS)).where(where)
                                .order_by(TRASH.c.entry_id.desc())).mappings()
            return [entry for row in rows if (entry := _entry(row)) is not None]


def _folder_entry(folder: Path, entry_id: str) -> tuple[TrashEntry, bytes] | None:
    """An entry of an older version's trash folder (``manifest.json`` beside the file) and the file's bytes."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        entry = TrashEntry(entry_id, **{name: manifest[name] for name in _FIELDS if name != "entry_id"})
        data = (folder / PurePosixPath(entry.path).name).read_bytes()
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("trash folder %s is unreadable and left alone: %s", folder, exc)
        return None
    return (entry, data) if _entry(asdict(entry)) is not None else None
