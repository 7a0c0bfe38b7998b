"""Hybrid retrieval: BM25 and dense lists fused, query normalisation, optional cross-encoder reranking."""
from __future__ import annotations

from dataclasses import replace

import pytest

from bot.text import normalize_query, truncate_question
from bot.search.retrieval import HybridSearch, Reranker, fuse


def test_fusion_rewards_agreement_and_honours_weights():
    dense = [("a", 0.9), ("b", 0.8)]
    keyword = [("b", 5.0), ("c", 4.0)]
    fused = dict(fuse(dense, keyword, dense_weight=1.0, keyword_weight=1.0))
    assert max(fused, key=fused.get) == "b"  # found by both lists
    keyword_heavy = fuse(dense, [("c", 4.0)], dense_weight=0.5, keyword_weight=1.0)
    assert keyword_heavy[0][0] == "c"


@pytest.mark.parametrize("raw, normalised", [
    ("衛東區共新增低保家庭多少戶？", "卫东区共新增低保家庭多少户?"),
    ("ＰＭ２．５　平均濃度", "PM2.5 平均浓度"),
    ("  低保\t\n人数\x00 ", "低保 人数"),
])
def test_query_normalisation(raw, normalised):
    assert normalize_query(raw) == normalised


def test_truncation_reports_the_cut():
    assert truncate_question("问" * 501) == ("问" * 500, True)
    assert truncate_question("问") == ("问", False)


def test_hybrid_search_ranks_the_evidence_first(seed_index):
    result = HybridSearch(seed_index)("全区有多少所小学参加了窝沟封闭？", k=5)
    top = result.passages[0]
    assert "22所小学" in top.chunk.text
    assert top.dense is not None and top.keyword is not None
    assert result.timings_ms["retrieve"] > 0


def test_dense_search_finds_passages_for_an_english_question(seed_index):
    result = HybridSearch(seed_index)("pit and fissure sealant for primary school pupils", k=5)
    assert any("窝沟封闭" in p.chunk.text for p in result.passages)


def test_empty_question_retrieves_nothing(seed_index):
    assert HybridSearch(seed_index)("   ", k=5).passages == []


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """No reranker ships offline: a randomly initialised one-layer BERT cross-encoder wires the code path."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    from tests.conftest import SEED_KNOWLEDGE

    folder = tmp_path_factory.mktemp("cross-encoder")
    text = "".join(p.read_text(encoding="utf-8") for p in (SEED_KNOWLEDGE / "articles").glob("*.md"))
    chars = sorted({c for c in text + "0123456789abcdefghijklmnopqrstuvwxyz" if c.strip()})
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]),
                                      encoding="utf-8")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_reranker_reorders_candidates_by_its_scores(seed_index, tiny_cross_encoder):
    reranker = Reranker(tiny_cross_encoder)
    plain = HybridSearch(seed_index)("全区有多少所小学参加了窝沟封闭？", k=5)
    reranked = HybridSearch(seed_index, reranker)("全区有多少所小学参加了窝沟封闭？", k=5)
    scores = [p.rerank for p in reranked.passages]
    assert all(s is not None for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert {p.chunk.id for p in reranked.passages} <= {p.chunk.id for p in
                                                       HybridSearch(seed_index)("全区有多少所小学参加了窝沟封闭？", k=10).passages}
    assert reranked.timings_ms["rerank"] > plain.timings_ms["rerank"]


def test_assistant_uses_the_configured_reranker(seed_settings, seed_index, tiny_cross_encoder):
    from bot.answer.assistant import Assistant

    assistant = Assistant(replace(seed_settings, reranker=tiny_cross_encoder), index=seed_index)
    answer = assistant.ask("全区有多少所小学参加了窝沟封闭？")
    assert all(s["rerank"] is not None for s in answer.scores)
