"""The keyword table saved beside the vectors: loaded instead of rebuilt, rebuilt when damaged or foreign, swapped
in by a background thread while queries go on with the old one, and never a source of a deleted article's
chunks. Hash embeddings: the model is not the point."""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time

import bm25s
import jieba
import numpy as np
import pytest
from chromadb.api.models.Collection import Collection

import bot.search.index
import bot.search.table
from bot.knowledge.articles import KnowledgeLoad, parse_article
from bot.search.index import KnowledgeIndex
from bot.search.keyword import DICTIONARY, Dictionary, KeywordIndex, Segmenter, TermCorpus, posseg
from bot.search.retrieval import CANDIDATES, HybridSearch
from bot.search.table import MANIFEST, SCRATCH_MAX_AGE_SECONDS, KeywordTable, TableKey

DIBAO_ARTICLE = "20170731-09"  # 区民政局实现社会救助“无盲区” in the seed knowledge
DIBAO_QUESTION = "卫东区低保家庭张遂卿的低保是谁办理的？"
WAIT_SECONDS = 20
ASTRONOMY = ("---\nid: 20991231-01\ntitle: 卫东区青少年宫天文台开放\ndate: '2099-12-31'\nkind: news\n---\n"
             "卫东区青少年宫天文台全年接待观星的青少年5123人次。\n")


def wait_for(condition, seconds: float = WAIT_SECONDS) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _threads_calling(monkeypatch, name: str) -> list[str]:
    """The name of the thread of every call of KeywordTable's ``name``."""
    calls: list[str] = []
    real = KeywordTable.__dict__[name]
    is_classmethod = isinstance(real, classmethod)
    function = real.__func__ if is_classmethod else real

    def counted(*args, **kwargs):  # the class or the instance first, as the function takes it
        calls.append(threading.current_thread().name)
        return function(*args, **kwargs)
    monkeypatch.setattr(KeywordTable, name, classmethod(counted) if is_classmethod else counted)
    return calls


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """Every keyword table built from all of the collection's records."""
    return _threads_calling(monkeypatch, "build")


@pytest.fixture
def changes(monkeypatch) -> list[str]:
    """Every keyword table made from another by reading only the chunks that changed."""
    return _threads_calling(monkeypatch, "changed")


@pytest.fixture
def document_reads(monkeypatch) -> list[int]:
    """Every Chroma read that fetches documents (what building a table does; loading a saved one does not)."""
    calls: list[int] = []
    real = Collection.get

    def spy(self, *args, **kwargs):
        if "documents" in (kwargs.get("include") or []):
            calls.append(1)
        return real(self, *args, **kwargs)
    monkeypatch.setattr(Collection, "get", spy)
    return calls


def saved_folders(settings) -> list:
    root = settings.index_dir / "keyword" / settings.collection
    return sorted(p for p in root.iterdir() if not p.name.startswith("."))


def settled(index: KnowledgeIndex) -> KeywordTable:
    """The index's table once the background check after a first load has finished."""
    index.table()
    assert wait_for(lambda: not index._behind and not index._reloading.locked())
    return index._table


def dibao_ids(index: KnowledgeIndex) -> set[str]:
    return {c.id for c in index.chunks() if c.article_id == DIBAO_ARTICLE}


def test_a_new_process_loads_the_saved_table_and_reads_no_documents(fake_scratch_settings, builds, document_reads):
    (folder,) = saved_folders(fake_scratch_settings)  # saved by the ingest that built the copied index
    index = KnowledgeIndex.open(fake_scratch_settings)
    table = settled(index)
    assert builds == [] and document_reads == []
    ids = index.collection.get(include=[])["ids"]
    assert sorted(table.keyword.ids) == sorted(ids) == sorted(table.chunks)
    assert table.key.name == folder.name
    assert HybridSearch(index)(DIBAO_QUESTION).passages[0].chunk.article_id == DIBAO_ARTICLE


def test_the_loaded_table_searches_like_a_fresh_build(fake_scratch_settings, fake_index):
    loaded = settled(KnowledgeIndex.open(fake_scratch_settings))
    records = fake_index._records(["documents", "metadatas"])
    built = KeywordTable.build(loaded.key, records, fake_index.segmenter)
    tokens = fake_index.segmenter.tokenize(DIBAO_QUESTION)
    assert loaded.keyword.search(tokens, 10) == built.keyword.search(tokens, 10)
    assert loaded.chunks == built.chunks
    terms = {t for c in built.chunks.values() for t in fake_index.segmenter.tokenize(c.indexed_text)}
    assert all(loaded.keyword.document_frequency(t) == built.keyword.document_frequency(t) for t in terms)
    counts = {t: sum(t in set(fake_index.segmenter.tokenize(c.indexed_text)) for c in built.chunks.values())
              for t in ("低保", "窝沟", "卫东")}
    assert {t: loaded.keyword.document_frequency(t) for t in counts} == counts


def _seed_tokens(index) -> tuple[list[str], list[list[str]]]:
    chunks = list(index.chunks())
    return [c.id for c in chunks], [index.segmenter.tokenize(c.indexed_text) for c in chunks]


def _scores(keyword: KeywordIndex) -> dict[tuple[str, str], float]:
    """Every (chunk id, term) entry of the score matrix, by name: numbering aside, two indexes compare equal."""
    scores = keyword._bm25.scores
    terms = {column: term for term, column in keyword._bm25.vocab_dict.items()}
    return {(keyword.ids[int(row)], terms[column]): float(value)
            for column in range(len(scores["indptr"]) - 1)
            for row, value in zip(scores["indices"][scores["indptr"][column]:scores["indptr"][column + 1]],
                                  scores["data"][scores["indptr"][column]:scores["indptr"][column + 1]])}


QUERIES = ("低保 办理", "窝沟 封闭 小学", "卫东区 环卫", "没有的词")


def test_the_numpy_build_scores_exactly_like_bm25s_own_index(fake_index):
    ids, tokens = _seed_tokens(fake_index)
    tokens += [[], ["低保", "低保", "低保"]]  # a chunk of stopwords only, and one repeating a term
    ids += ["empty", "repeated"]
    ours = KeywordIndex(ids, tokens, fake_index.segmenter)
    theirs = bm25s.BM25()
    theirs.index(tokens, show_progress=False)
    reference = KeywordIndex.__new__(KeywordIndex)
    reference._assemble(ids, TermCorpus.encode(tokens), fake_index.segmenter, theirs)
    assert _scores(ours) == _scores(reference) and len(_scores(ours)) > 1000
    for query in QUERIES:
        assert ours.search(query.split(), 10) == reference.search(query.split(), 10)


def test_a_change_of_a_few_chunks_is_a_fresh_build_of_the_result(fake_index):
    ids, tokens = _seed_tokens(fake_index)
    removed = {ids[0], ids[3]}
    added_ids, added_tokens = ["new-1", "new-2"], [["天文台", "观星", "低保"], ["天文台"] * 4]
    changed = KeywordIndex(ids, tokens, fake_index.segmenter).changed(removed, added_ids, added_tokens)
    kept = [(i, t) for i, t in zip(ids, tokens) if i not in removed] + list(zip(added_ids, added_tokens))
    fresh = KeywordIndex([i for i, _ in kept], [t for _, t in kept], fake_index.segmenter)
    assert changed.ids == fresh.ids and _scores(changed) == _scores(fresh)
    assert set(changed._vocab) == set(fresh._vocab)  # terms only removed chunks held are gone
    for query in QUERIES + ("天文台 观星",):
        assert changed.search(query.split(), 10) == fresh.search(query.split(), 10)
    for term in ("天文台", "低保", "卫东"):
        assert changed.document_frequency(term) == fresh.document_frequency(term)


def test_a_write_reads_only_the_chunks_it_changed_and_leaves_the_table_of_a_fresh_build(
        fake_scratch_settings, monkeypatch, builds):
    index = KnowledgeIndex.open(fake_scratch_settings)
    settled(index)
    reads: list[dict] = []
    real = Collection.get

    def spy(self, *args, **kwargs):
        reads.append(kwargs)
        return real(self, *args, **kwargs)
    monkeypatch.setattr(Collection, "get", spy)
    index.sync(KnowledgeLoad([parse_article(ASTRONOMY, "articles/20991231-01.md")]), progress=False,
               paths={"articles/20991231-01.md"})
    index.delete_article(DIBAO_ARTICLE)
    # Nothing reads the documents or metadata of chunks the writes did not touch.
    assert builds == []
    assert all(r.get("ids") or r.get("where") for r in reads if set(r.get("include") or []) - {"embeddings"})
    table = index.table()
    records = list(index._records(["documents", "metadatas"]))
    fresh = KeywordTable.build(table.key, records, index.segmenter)
    assert table.chunks == fresh.chunks and _scores(table.keyword) == _scores(fresh.keyword)
    assert any(c.article_id == "20991231-01" for c in table.chunks.values()) and not dibao_ids(index)
    loaded = KnowledgeIndex.open(fake_scratch_settings)  # the saved table, caught up
    assert _scores(settled(loaded).keyword) == _scores(fresh.keyword)


def test_a_small_write_is_not_saved_and_the_next_process_reads_only_its_chunks_then_saves(
        fake_scratch_settings, monkeypatch, builds):
    (folder,) = saved_folders(fake_scratch_settings)
    writer = KnowledgeIndex.open(fake_scratch_settings)
    settled(writer)
    writer.sync(KnowledgeLoad([parse_article(ASTRONOMY, "articles/20991231-01.md")]), progress=False,
                paths={"articles/20991231-01.md"})
    assert [f.name for f in saved_folders(fake_scratch_settings)] == [folder.name]  # one chunk: not worth a save
    new_ids = [c.id for c in writer.chunks() if c.article_id == "20991231-01"]
    read_ids: list[str] = []
    real = Collection.get

    def spy(self, *args, **kwargs):
        if "documents" in (kwargs.get("include") or []):
            read_ids.extend(kwargs.get("ids") or ["<all>"])
        return real(self, *args, **kwargs)
    monkeypatch.setattr(Collection, "get", spy)
    reader = KnowledgeIndex.open(fake_scratch_settings)  # catches up with the saved table before it answers
    table = reader.table()
    assert set(table.chunks) == set(writer.table().chunks) and settled(reader) is table
    assert builds == [] and read_ids == new_ids
    assert table.key.revision == reader.revision() and set(table.chunks) == set(writer.table().chunks)
    # and saves what it caught up to, so that the next process to start need not
    assert [f.name for f in saved_folders(fake_scratch_settings)] == [table.key.name]
    read_ids.clear()
    assert settled(KnowledgeIndex.open(fake_scratch_settings)).key == table.key and read_ids == []
    monkeypatch.setattr(bot.search.table, "SAVE_AFTER_CHANGES", 1)
    monkeypatch.setattr(bot.search.table, "SAVE_AFTER_FRACTION", 0.0)
    writer.delete_article(DIBAO_ARTICLE)
    assert [f.name for f in saved_folders(fake_scratch_settings)] == [writer.table().key.name]
    assert writer.table().unsaved == 0


def _truncate(folder):
    path = folder / "data.csc.index.npy"
    path.write_bytes(path.read_bytes()[:100])


def _flip_a_byte(folder):
    path = folder / "chunks.jsonl"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _garbage_manifest(folder):
    (folder / MANIFEST).write_text("{not json", encoding="utf-8")


def _missing_file(folder):
    (folder / "vocab.index.json").unlink()


def _terms_out_of_range(folder):
    """Term arrays that name a term the vocabulary lacks, with a manifest that checks out."""
    flat = np.load(folder / "terms.npy")
    flat[0] = 10 ** 8
    np.save(folder / "terms.npy", flat)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    data = (folder / "terms.npy").read_bytes()
    manifest["files"]["terms.npy"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


def _foreign(folder):
    """A table of another collection copied in under this one's name: its manifest names the other key."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    manifest["key"]["collection_id"] = "another-collection"
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize("damage", [_truncate, _flip_a_byte, _garbage_manifest, _missing_file, _terms_out_of_range,
                                    _foreign])
def test_a_damaged_or_foreign_saved_table_is_rebuilt_and_saved_again(fake_scratch_settings, builds, damage):
    (folder,) = saved_folders(fake_scratch_settings)
    damage(folder)
    index = KnowledgeIndex.open(fake_scratch_settings)
    assert HybridSearch(index)(DIBAO_QUESTION).passages[0].chunk.article_id == DIBAO_ARTICLE
    assert len(builds) == 1
    assert [f.name for f in saved_folders(fake_scratch_settings)] == [folder.name]
    settled(KnowledgeIndex.open(fake_scratch_settings))
    assert len(builds) == 1  # the next process loads what was saved again


def test_a_table_that_lags_the_collection_answers_then_is_replaced(fake_scratch_settings, builds, changes):
    """A saved table whose chunks are not the collection's (saved while a write was under way, then killed):
    the first query is answered from it, a background reload makes the right one from it."""
    writer = KnowledgeIndex.open(fake_scratch_settings)
    gone = writer.collection.get(where={"article_id": DIBAO_ARTICLE}, include=[])["ids"][:1]
    writer.collection.delete(ids=gone)  # a write killed before it bumped the revision
    index = KnowledgeIndex.open(fake_scratch_settings)
    assert HybridSearch(index)(DIBAO_QUESTION).passages  # answered at once, from the saved table
    table = settled(index)
    assert builds == [] and changes == ["keyword-reload"]
    assert not set(gone) & set(table.chunks)
    assert set(table.chunks) == set(writer.collection.get(include=[])["ids"])


def test_an_old_scratch_folder_is_never_loaded_and_is_cleared(fake_scratch_settings, builds):
    root = fake_scratch_settings.index_dir / "keyword" / fake_scratch_settings.collection
    (folder,) = saved_folders(fake_scratch_settings)
    scratch = root / f".scratch-{folder.name}-dead"
    scratch.mkdir()
    (scratch / MANIFEST).write_text("{}", encoding="utf-8")
    old = time.time() - SCRATCH_MAX_AGE_SECONDS - 60
    os.utime(scratch, (old, old))
    index = KnowledgeIndex.open(fake_scratch_settings)
    index.delete_article(DIBAO_ARTICLE)  # a write: the new revision's table is saved, the old one pruned
    assert not scratch.exists()
    assert [f.name for f in saved_folders(fake_scratch_settings)] == [index._table.key.name]
    assert TableKey.of_name(index._table.key.name).revision > TableKey.of_name(folder.name).revision


def test_queries_are_answered_from_the_old_table_while_a_new_one_is_held(fake_scratch_settings, monkeypatch):
    index = KnowledgeIndex.open(fake_scratch_settings)
    search = HybridSearch(index)
    old = settled(index)
    held, release = threading.Event(), threading.Event()
    real = KeywordTable.changed

    def slow(self, *args, **kwargs):
        held.set()
        assert release.wait(WAIT_SECONDS)
        return real(self, *args, **kwargs)
    monkeypatch.setattr(KeywordTable, "changed", slow)
    deleting = threading.Thread(target=index.delete_article, args=(DIBAO_ARTICLE,))
    deleting.start()
    try:
        assert held.wait(WAIT_SECONDS)  # the chunks are gone from Chroma, the table still has them
        started = time.monotonic()
        result = search(DIBAO_QUESTION, k=CANDIDATES)  # every candidate: the fusion ranks keyword-only hits low
        assert time.monotonic() - started < 5
        assert index._table is old and dibao_ids(index)
        assert result.passages and DIBAO_ARTICLE not in {p.chunk.article_id for p in result.passages}
    finally:
        release.set()
        deleting.join(WAIT_SECONDS)
    assert not deleting.is_alive()
    assert index._table is not old and not dibao_ids(index)


def test_a_deleted_article_is_never_returned_after_delete_returns(fake_scratch_settings, monkeypatch):
    """Questions race a delete in this process, and in another that has not even seen the new revision."""
    monkeypatch.setattr(bot.search.index, "REVISION_CHECK_SECONDS", 3600.0)
    writer = KnowledgeIndex.open(fake_scratch_settings)
    reader = KnowledgeIndex.open(fake_scratch_settings)  # as in another process
    settled(writer), settled(reader)
    results: list[tuple[float, set[str]]] = []
    stop = threading.Event()

    def ask(index):
        search = HybridSearch(index)
        while not stop.is_set():
            started = time.monotonic()
            results.append((started, {p.chunk.article_id for p in search(DIBAO_QUESTION, k=CANDIDATES).passages}))

    askers = [threading.Thread(target=ask, args=(i,)) for i in (writer, reader)]
    for thread in askers:
        thread.start()
    time.sleep(0.3)
    writer.delete_article(DIBAO_ARTICLE)
    returned = time.monotonic()
    time.sleep(0.5)
    stop.set()
    for thread in askers:
        thread.join(WAIT_SECONDS)
    assert dibao_ids(reader)  # the reader's table still holds the article: only the check keeps it out
    before = [ids for started, ids in results if started < returned]
    after = [ids for started, ids in results if started > returned]
    assert any(DIBAO_ARTICLE in ids for ids in before)
    assert after and not any(DIBAO_ARTICLE in ids for ids in after)


def test_an_article_another_process_added_is_found_before_this_one_reloads(fake_scratch_settings, monkeypatch):
    monkeypatch.setattr(bot.search.index, "REVISION_CHECK_SECONDS", 3600.0)
    reader = KnowledgeIndex.open(fake_scratch_settings)
    settled(reader)
    article = parse_article(ASTRONOMY, "articles/20991231-01.md")
    KnowledgeIndex.open(fake_scratch_settings).sync(KnowledgeLoad([article]), progress=False,
                                                    paths={"articles/20991231-01.md"})
    assert not any(c.article_id == "20991231-01" for c in reader.chunks())  # its table has not reloaded
    passages = HybridSearch(reader)("青少年宫天文台接待了多少人次？", k=CANDIDATES).passages
    [found] = [p for p in passages if p.chunk.article_id == "20991231-01"]
    assert "5123人次" in found.chunk.text and found.chunk.title == "卫东区青少年宫天文台开放"


def test_a_revision_seen_from_another_process_is_loaded_in_the_background(fake_scratch_settings, monkeypatch):
    monkeypatch.setattr(bot.search.index, "REVISION_CHECK_SECONDS", 0.0)
    reader = KnowledgeIndex.open(fake_scratch_settings)
    old = settled(reader)
    KnowledgeIndex.open(fake_scratch_settings).delete_article(DIBAO_ARTICLE)
    reader.table()  # sees the new revision and starts the reload; answers from the old table meanwhile
    assert wait_for(lambda: reader._table is not old)
    assert reader._table.key.revision == reader.revision() and not dibao_ids(reader)


def test_the_dictionary_cache_is_rebuilt_when_damaged_and_segments_like_jieba(tmp_path):
    text = "卫东区民政局局长在东安路社区走访低保户，为适龄儿童免费窝沟封闭。"
    made = Dictionary(DICTIONARY.source, tmp_path)
    mine = Segmenter(("窝沟封闭",), made)
    tokens, tags, cache = mine.tokenize(text), mine.tagged(text), made.cache.read_bytes()
    assert "窝沟封闭" in tokens
    damaged = bytearray(cache)
    damaged[-10] ^= 0x01
    made.cache.write_bytes(bytes(damaged))
    again = Segmenter(("窝沟封闭",), Dictionary(DICTIONARY.source, tmp_path))
    assert (again.tokenize(text), again.tagged(text)) == (tokens, tags)
    assert made.cache.read_bytes() == cache  # made again, not read damaged
    plain = Segmenter((), Dictionary(DICTIONARY.source, tmp_path))
    assert plain.words_of(text) == jieba.lcut(text)
    assert plain.tagged(text) == [(p.word, p.flag) for p in posseg.lcut(text)]
