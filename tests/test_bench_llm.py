"""bench/llm.py against the OpenAI stub: one reply per question, every policy settled from it, timed."""
from __future__ import annotations

import pytest

from bench.llm import EXTRACTIVE_ONLY, put, record, row, table
from bot.answer.assistant import Assistant
from bot.answer.llm import NOT_FOUND_REPLY
from bot.evaluation.evaluate import Question
from openai_stub import OpenAIStub, Reply

ANSWERABLE = Question(id="dibao", question="卫东区目前低保保障对象一共有多少户、多少人？", answerable=True,
                      evidence=("3622户、5635人",), facts=("3622",))
UNANSWERABLE = Question(id="rate", question="卫东区的低保标准是每月多少元？", answerable=False)


@pytest.fixture(scope="module")
def stub():
    with OpenAIStub(default=Reply(NOT_FOUND_REPLY)) as server:
        yield server


def test_every_policy_is_scored_from_one_reply_per_question(seed_settings, seed_index, stub):
    assistant = Assistant(seed_settings.with_(llm_base_url=stub.base_url, llm_model="stub", llm_timeout=5.0),
                          index=seed_index)
    timed = [put(assistant, q) for q in (ANSWERABLE, UNANSWERABLE)]
    assert len(stub.requests) == 2  # the refused question is put to the model too (for the llm policy)
    assert [t.generation.outcome for t in timed] == ["not_found", "not_found"]
    assert all(t.drafted_ms <= t.first_ms <= t.total_ms for t in timed)
    rows = {p: row(assistant, p, timed) for p in (EXTRACTIVE_ONLY, "extractive", "veto", "llm")}
    # The model found nothing: the extractive policy keeps the excerpt, veto and llm refuse it.
    assert rows["extractive"]["false_refusal_rate"] == rows[EXTRACTIVE_ONLY]["false_refusal_rate"] == 0.0
    assert rows["veto"]["false_refusal_rate"] == rows["llm"]["false_refusal_rate"] == 1.0
    assert all(r["refusal_accuracy"] == 1.0 for r in rows.values())
    assert rows[EXTRACTIVE_ONLY]["total_p50_s"] < rows["llm"]["total_p50_s"]
    assert "| veto | 2 |" in table(rows)
    assert record(timed[0])["outcome"] == "not_found" and record(timed[1])["extractive_refused"]
