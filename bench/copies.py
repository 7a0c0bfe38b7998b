"""A large index without embedding: the stored vectors of built indexes, merged, and their articles repeated under
new ids until the index holds a given number of chunks.

Embedding 20k chunks takes hours on two shared cores, while latency, memory and cold start at that size only
need the index to hold that many chunks. Each repeat is a real article file (its source's text under a new id,
in ``copy-<n>/``) whose chunks carry the vectors of the chunks it copies, so the knowledge folder and the index
agree exactly: a sync of the folder adds and removes nothing, and the lexicon is the folder's as anywhere else.
The repeats are duplicates, so retrieval quality at such a size means nothing.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

from bot.config import Settings
from bot.knowledge.articles import load_knowledge, read_article_file, render_article
from bot.knowledge.chunking import Chunk, chunk_article
from bot.knowledge.lexicon import Lexicon
from bot.search.index import READ_BATCH, make_client
from bot.search.keyword import segmenter_for

COPY_BATCH = 1000  # records an upsert; below Chroma's maximum batch size
MODEL_KEYS = ("embedding_backend", "embedding_model", "embedding_dim")


class CopyError(RuntimeError):
    pass


def read_index(settings: Settings) -> tuple[dict, str, dict[str, tuple]]:
    """(collection metadata, hnsw space, {chunk id: (vector, document, metadata)}) of a built index."""
    collection = make_client(settings).get_collection(settings.collection)
    records = {}
    for offset in range(0, collection.count(), READ_BATCH):
        batch = collection.get(include=["embeddings", "documents", "metadatas"], limit=READ_BATCH, offset=offset)
        records.update(zip(batch["ids"], zip(batch["embeddings"], batch["documents"], batch["metadatas"])))
    return dict(collection.metadata), collection.configuration_json["hnsw"]["space"], records


def merge_folders(sources: list[Path], dest: Path) -> None:
    """Copy the knowledge folders into one; a file two of them hold would silently lose one copy."""
    seen: dict[str, Path] = {}
    for source in sources:
        for path in source.rglob("*"):
            rel = path.relative_to(source).as_posix()
            if path.is_file() and seen.setdefault(rel, source) != source:
                raise CopyError(f"{rel} is in both {seen[rel]} and {source}")
        shutil.copytree(source, dest, dirs_exist_ok=True)


def build_copies(target: Settings, sources: list[Settings], chunks: int, repeated: tuple[str, ...]) -> dict:
    """The index at ``target.index_dir`` and its knowledge folder ``target.knowledge_dir``: every source's articles
    and vectors, then copies of the articles under the ``repeated`` top-level folders, round after round, until
    at least ``chunks`` chunks. Both are written under ``.partial`` names and renamed when whole."""
    started = time.perf_counter()
    knowledge = target.knowledge_dir.with_name(target.knowledge_dir.name + ".partial")
    index = target.index_dir.with_name(target.index_dir.name + ".partial")
    for folder in (knowledge, index):
        shutil.rmtree(folder, ignore_errors=True)
    merge_folders([s.knowledge_dir for s in sources], knowledge)
    load = load_knowledge(knowledge)
    if load.errors:
        raise CopyError("the merged knowledge folder does not load:\n" + "\n".join(map(str, load.errors)))

    records, models = {}, set()
    metadata = space = None
    for source in sources:
        meta, source_space, source_records = read_index(source)
        models.add((source_space, *(meta.get(k) for k in MODEL_KEYS)))
        metadata, space = metadata or meta, space or source_space
        records.update(source_records)
    if len(models) > 1:
        raise CopyError(f"the sources were built with other embedding models or spaces: {sorted(models)}")
    by_article = {article.id: chunk_article(article) for article in load.articles}
    wanted = {c.id for article_chunks in by_article.values() for c in article_chunks}
    if wanted != set(records):
        raise CopyError(f"the sources' knowledge and indexes disagree: {len(wanted - set(records))} chunks not "
                        f"indexed, {len(set(records) - wanted)} indexed chunks of no article")

    segmenter = segmenter_for(tuple(Lexicon.load(knowledge).words))

    def tokens_of(chunk_id: str) -> str:
        _, document, meta = records[chunk_id]
        if meta.get("segmenter") == segmenter.fingerprint:
            return meta["tokens"]
        # Tokens made with another lexicon (the CMRC folder has none) would be re-made at every load.
        return " ".join(segmenter.tokenize(Chunk.from_record(chunk_id, document, meta).indexed_text))

    collection = make_client(target.with_(index_dir=index)).create_collection(
        target.collection, metadata=metadata, configuration={"hnsw": {"space": space}})
    pending: list[tuple[str, object, str, dict]] = []

    def put(chunk: Chunk, source_id: str) -> None:
        # The metadata KnowledgeIndex writes: a copy's indexed text is its source's, and so are its tokens.
        meta = {**chunk.metadata(), "tokens": tokens_of(source_id), "segmenter": segmenter.fingerprint}
        pending.append((chunk.id, records[source_id][0], chunk.text, meta))
        if len(pending) >= COPY_BATCH:
            flush()

    def flush() -> None:
        ids, vectors, documents, metadatas = zip(*pending)
        collection.upsert(ids=list(ids), embeddings=list(vectors), documents=list(documents),
                          metadatas=list(metadatas))
        pending.clear()

    for article_chunks in by_article.values():
        for chunk in article_chunks:
            put(chunk, chunk.id)
    originals = [a for a in load.articles if a.path.split("/", 1)[0] in repeated]
    if not originals and len(wanted) < chunks:
        raise CopyError(f"no articles under {', '.join(repeated)} to repeat")
    total, copied_articles, round_no = len(wanted), 0, 1
    while total < chunks:
        round_no += 1
        for original in originals:
            if total >= chunks:
                break
            copy = replace(original, id=f"{original.id}-copy{round_no}", path=f"copy-{round_no}/{original.path}")
            path = knowledge / copy.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render_article(copy), encoding="utf-8")
            # Chunked as the folder will be read back, so that the ids are those a sync would compute.
            copy_chunks = chunk_article(read_article_file(path, knowledge))
            source_chunks = by_article[original.id]
            if [(c.start, c.end, c.text) for c in copy_chunks] != [(c.start, c.end, c.text) for c in source_chunks]:
                raise CopyError(f"{copy.path} does not chunk like {original.path}")
            for chunk, source in zip(copy_chunks, source_chunks):
                put(chunk, source.id)
            total += len(copy_chunks)
            copied_articles += 1
    if pending:
        flush()
    if collection.count() != total:
        raise CopyError(f"{index} holds {collection.count()} chunks, {total} were written")
    for partial, final in ((knowledge, target.knowledge_dir), (index, target.index_dir)):
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
    return {"articles": len(load.articles) + copied_articles, "chunks": total, "source_chunks": len(wanted),
            "copied_articles": copied_articles, "copied_chunks": total - len(wanted),
            "copy_seconds": time.perf_counter() - started}
