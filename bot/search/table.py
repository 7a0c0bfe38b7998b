"""The keyword table: the BM25 index and the chunk table it was built from, one snapshot that queries read whole,
and the folder where it is saved so that a process loads it (~0.2 s at 10k chunks) instead of reading every
chunk from Chroma and building BM25 again (~4 s). After a write, a new table is made from the old one and the
chunks that changed (``KeywordTable.changed``).

A saved table is a subfolder named by its key (collection id, collection revision, segmenter fingerprint)
holding bm25s's files, the term arrays, ``chunks.jsonl`` and ``manifest.json`` (the key, each file's size and
sha256). It is written under a scratch name and renamed into place whole, so a reader never sees part of one; a
folder whose manifest or files do not check out is reported, removed and built again, never used.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from bot.knowledge.chunking import Chunk
from bot.search.keyword import KeywordIndex, Segmenter, TermCorpus

FORMAT = 2  # 2: the term arrays (keyword.TermCorpus) are saved too
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"  # a line per chunk: [id, article id, title, date, kind, path, start, end, text]
SCRATCH_PREFIX = ".scratch-"
SAVE_AFTER_CHANGES, SAVE_AFTER_FRACTION = 200, 0.02
SCRATCH_MAX_AGE_SECONDS = 3600  # a scratch folder this old belongs to a process that died while saving

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableKey:
    collection_id: str
    revision: int
    segmenter: str  # Segmenter.fingerprint: the tokens depend on the lexicon's words

    @property
    def name(self) -> str:
        return f"{self.collection_id}.{self.revision}.{self.segmenter}"

    @classmethod
    def of_name(cls, name: str) -> "TableKey | None":
        parts = name.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2])


@dataclass(frozen=True)
class KeywordTable:
    key: TableKey
    keyword: KeywordIndex
    chunks: dict[str, Chunk]  # never changed once built: a new table replaces it
    unsaved: int = 0  # chunks added or removed since the table that was saved (or built, or loaded)

    @property
    def worth_saving(self) -> bool:
        """A table made by ``changed`` is saved once it is this far from the saved one: until then a process
        that starts loads the saved table and reads the few chunks since (a save costs 0.3 s at 30k chunks,
        on every write, of the CPU questions share)."""
        return self.unsaved >= max(SAVE_AFTER_CHANGES, len(self.chunks) * SAVE_AFTER_FRACTION)

    @classmethod
    def build(cls, key: TableKey, records: Iterable[tuple[str, str, dict]], segmenter: Segmenter) -> "KeywordTable":
        """From the collection's (id, document, metadata) records."""
        chunks: dict[str, Chunk] = {}
        corpus = TermCorpus.encode(_tokens(records, segmenter, chunks))
        return cls(key, KeywordIndex.of_corpus(list(chunks), corpus, segmenter), chunks)

    def changed(self, key: TableKey, removed: set[str], added: Iterable[tuple[str, str, dict]]) -> "KeywordTable":
        """This table without the ``removed`` chunks and with the ``added`` records (chunks it does not hold):
        what a write of a few articles needs, reading only their chunks where a build reads all of them (6 s
        at 30k chunks)."""
        new: dict[str, Chunk] = {}
        tokens = list(_tokens(added, self.keyword.segmenter, new))
        chunks = {chunk_id: chunk for chunk_id, chunk in self.chunks.items() if chunk_id not in removed}
        chunks.update(new)
        gone = len(self.chunks) + len(new) - len(chunks)
        return KeywordTable(key, self.keyword.changed(removed, list(new), tokens), chunks,
                            self.unsaved + gone + len(new))


def _tokens(records: Iterable[tuple[str, str, dict]], segmenter: Segmenter, chunks: dict[str, Chunk]):
    """Each record's tokens, in order, while its chunk goes into ``chunks``."""
    for chunk_id, document, meta in records:
        chunk = chunks[chunk_id] = Chunk.from_record(chunk_id, document, meta)
        # Tokens stored by an ingest with other lexicon words (or none recorded) are made again.
        same = meta.get("segmenter") == segmenter.fingerprint
        yield meta.get("tokens", "").split() if same else segmenter.tokenize(chunk.indexed_text)


def _row(chunk: Chunk) -> list:
    """A line of chunks.jsonl: Chunk's fields in order."""
    return [chunk.id, chunk.article_id, chunk.title, chunk.date, chunk.kind, chunk.path, chunk.start, chunk.end,
            chunk.text]


def _digest(path: Path) -> dict:
    data = path.read_bytes()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


class TableStore:
    """Saved keyword tables of one collection, in one folder (``<index dir>/keyword/<collection>``)."""

    def __init__(self, root: Path):
        self.root = root

    def save(self, table: KeywordTable) -> None:
        """Write the table (unless it is empty: that builds in no time), then drop what it makes obsolete.
        A failure to write is logged: the table is still used, only not saved."""
        if not table.chunks:
            return
        target = self.root / table.key.name
        scratch = self.root / f"{SCRATCH_PREFIX}{table.key.name}-{uuid.uuid4().hex[:8]}"
        try:
            scratch.mkdir(parents=True)
            table.keyword.save(scratch)
            # A line at a time: one dump of 30k chunks holds the GIL, and every question waits, for 0.1 s.
            with open(scratch / CHUNKS, "wb") as out:
                for chunk_id in table.keyword.ids:
                    out.write(orjson.dumps(_row(table.chunks[chunk_id])) + b"\n")
            files = {p.name: _digest(p) for p in sorted(scratch.iterdir())}
            (scratch / MANIFEST).write_text(json.dumps({"format": FORMAT, "key": asdict(table.key), "files": files}),
                                            encoding="utf-8")
            os.replace(scratch, target)
        except OSError as exc:
            # Also where another process saved the same key first (the target folder is not empty): same content.
            shutil.rmtree(scratch, ignore_errors=True)
            if not target.is_dir():
                log.warning("keyword table not saved to %s: %s", target, exc)
                return
        self._prune(table.key)

    def load(self, key: TableKey, segmenter: Segmenter) -> KeywordTable | None:
        """The table saved under ``key``, or None if there is none or it does not check out (then removed)."""
        path = self.root / key.name
        if not (path / MANIFEST).is_file():
            return None
        try:
            return self._read(path, key, segmenter)
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning("keyword table %s is damaged or not ours (%s): removed, it is built again", path, exc)
            self.discard(key)
            return None

    def newest(self, collection_id: str, segmenter: Segmenter) -> KeywordTable | None:
        """The saved table of the highest revision for this collection and segmenter that checks out."""
        keys = [key for key in map(TableKey.of_name, self._names())
                if key and key.collection_id == collection_id and key.segmenter == segmenter.fingerprint]
        for key in sorted(keys, key=lambda k: -k.revision):
            if (table := self.load(key, segmenter)) is not None:
                return table
        return None

    def discard(self, key: TableKey) -> None:
        shutil.rmtree(self.root / key.name, ignore_errors=True)

    def _names(self) -> list[str]:
        try:
            return [p.name for p in self.root.iterdir()]
        except OSError:
            return []

    def _read(self, path: Path, key: TableKey, segmenter: Segmenter) -> KeywordTable:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT or manifest.get("key") != asdict(key):
            raise ValueError(f"manifest of another format or key: {manifest.get('format')}, {manifest.get('key')}")
        files = manifest["files"]
        if CHUNKS not in files:
            raise ValueError(f"no {CHUNKS}")
        for name, expected in files.items():
            if _digest(path / name) != expected:
                raise ValueError(f"{name} differs from its manifest entry")
        with open(path / CHUNKS, "rb") as lines:
            chunks = {row[0]: Chunk(*row) for row in map(orjson.loads, lines)}
        ids = list(chunks)
        return KeywordTable(key, KeywordIndex.load(path, ids, segmenter), chunks)

    def _prune(self, kept: TableKey) -> None:
        """Drop tables of an older revision (same segmenter), of a collection since dropped and recreated
        (another id), and scratch folders left by a process that died while saving."""
        for name in self._names():
            path = self.root / name
            if name.startswith(SCRATCH_PREFIX):
                try:
                    old = time.time() - path.stat().st_mtime > SCRATCH_MAX_AGE_SECONDS
                except OSError:
                    continue
                if old:
                    shutil.rmtree(path, ignore_errors=True)
                continue
            key = TableKey.of_name(name)
            if key and (key.collection_id != kept.collection_id
                        or (key.segmenter == kept.segmenter and key.revision < kept.revision)):
                shutil.rmtree(path, ignore_errors=True)
