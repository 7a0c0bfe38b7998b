"""Who decides to refuse on the LLM path (BOT_LLM_REFUSAL): settle() for every policy and outcome, and the
Assistant against the OpenAI stub: which questions reach the model, and what the resident then sees."""
from __future__ import annotations

import pytest

from bot.answer.assistant import Assistant
from bot.answer.llm import NOT_FOUND_REPLY
from bot.answer.policy import (NOT_FOUND_NOTICE, REMOVED_NOTICE, UNAVAILABLE_NOTICE, UNVERIFIED_NOTICE, Generation,
                               consults, settle)
from bot.answer.types import Answer
from bot.config import Settings
from openai_stub import Reply

DRAFT = Answer(question="问", text="摘录[1]。", refused=False, notice="问题超过500个字。", timings_ms={"compose": 1.0})
REFUSED = Answer(question="问", text="抱歉，现有资料中没有……", refused=True, timings_ms={"compose": 1.0})
GENERATED = Answer(question="问", text="生成[1]。", refused=False, mode="llm")
TIMINGS = {"generate": 900.0, "first_token": 300.0}


@pytest.mark.parametrize("policy", ["extractive", "veto", "llm"])
def test_a_verified_reply_is_shown_whatever_the_policy(policy):
    shown = settle(policy, DRAFT, REFUSED, Generation("answered", GENERATED, removed=1, timings_ms=TIMINGS))
    assert (shown.text, shown.mode, shown.refused) == ("生成[1]。", "llm", False)
    assert shown.notice == f"问题超过500个字。 {REMOVED_NOTICE.format(n=1)}"
    assert shown.timings_ms == {"compose": 1.0, **TIMINGS}


@pytest.mark.parametrize("outcome, notice", [("not_found", NOT_FOUND_NOTICE), ("unverified", UNVERIFIED_NOTICE),
                                             ("unavailable", UNAVAILABLE_NOTICE)])
def test_under_the_extractive_policy_the_excerpt_stays_with_a_notice(outcome, notice):
    shown = settle("extractive", DRAFT, REFUSED, Generation(outcome, timings_ms=TIMINGS))
    assert (shown.text, shown.refused, shown.notice) == (DRAFT.text, False, f"问题超过500个字。 {notice}")


@pytest.mark.parametrize("policy", ["veto", "llm"])
@pytest.mark.parametrize("outcome", ["not_found", "unverified"])
def test_a_model_that_finds_nothing_vetoes(policy, outcome):
    shown = settle(policy, DRAFT, REFUSED, Generation(outcome, timings_ms=TIMINGS))
    assert (shown.text, shown.refused, shown.notice) == (REFUSED.text, True, DRAFT.notice)


@pytest.mark.parametrize("policy", ["veto", "llm"])
def test_an_unavailable_model_vetoes_nothing(policy):
    """A server that is down is no evidence against the answer: the extractive decision stands."""
    assert settle(policy, DRAFT, REFUSED, Generation("unavailable")).text == DRAFT.text
    assert settle(policy, REFUSED, REFUSED, Generation("unavailable")) == REFUSED


def test_only_the_llm_policy_consults_the_model_about_a_refusal():
    assert [consults(p, REFUSED) for p in ("extractive", "veto", "llm")] == [False, False, True]
    assert all(consults(p, DRAFT) for p in ("extractive", "veto", "llm"))


def test_an_unknown_policy_is_named():
    with pytest.raises(ValueError, match="one of .*'maybe'"):
        settle("maybe", DRAFT, REFUSED, Generation("not_found"))
    with pytest.raises(ValueError, match="outcome must be one of"):
        Generation("perhaps")


def test_the_setting_rejects_a_typo(monkeypatch):
    monkeypatch.setenv("BOT_LLM_REFUSAL", "vetoo")
    with pytest.raises(SystemExit, match="BOT_LLM_REFUSAL must be one of extractive, veto, llm, got 'vetoo'"):
        Settings.from_env()
    monkeypatch.setenv("BOT_LLM_REFUSAL", "veto")
    assert Settings.from_env().llm_refusal == "veto"


# ---- the Assistant against the stub ------------------------------------------------------------------------

DIBAO_Q = "卫东区目前低保保障对象一共有多少户、多少人？"
UNANSWERABLE_Q = "卫东区的低保标准是每月多少元？"  # the articles count 低保 households, they give no monthly rate


def assistant_with(policy: str, seed_settings, seed_index, stub) -> Assistant:
    return Assistant(seed_settings.with_(llm_base_url=stub.base_url, llm_model="stub", llm_timeout=5.0,
                                         llm_refusal=policy), index=seed_index)


def test_under_veto_a_model_that_finds_nothing_refuses(seed_settings, seed_index, stub, assistant):
    stub.enqueue(Reply(NOT_FOUND_REPLY))
    answer = assistant_with("veto", seed_settings, seed_index, stub).ask(DIBAO_Q)
    assert answer.refused and answer.text.startswith("抱歉") and not answer.citations
    assert not assistant.ask(DIBAO_Q).refused  # the extractive layer alone would have answered


def test_under_the_llm_policy_the_model_is_asked_about_a_refusal_and_may_answer(seed_settings, seed_index, stub,
                                                                               assistant):
    extractive = assistant.ask(UNANSWERABLE_Q)
    assert extractive.refused
    llm = assistant_with("llm", seed_settings, seed_index, stub)
    shown = llm.draft(UNANSWERABLE_Q).focus[0]  # the best-ranked sentence, though the extractive layer refused
    sentence = shown.text[shown.sentence_start - shown.passage_start:shown.sentence_end - shown.passage_start]
    n = next(i for i, p in enumerate(llm.draft(UNANSWERABLE_Q).retrieval.passages, 1) if p.chunk.id == shown.chunk_id)
    stub.enqueue(Reply(f"{sentence.rstrip('。')}[{n}]。"))
    answer = llm.ask(UNANSWERABLE_Q)
    assert len(stub.requests) == 1 and answer.mode == "llm" and not answer.refused and answer.citations
    stub.enqueue(Reply(NOT_FOUND_REPLY))
    assert llm.ask(UNANSWERABLE_Q).text == extractive.text


def test_under_the_extractive_policy_a_refusal_never_reaches_the_model(seed_settings, seed_index, stub, assistant):
    answer = assistant_with("extractive", seed_settings, seed_index, stub).ask(UNANSWERABLE_Q)
    assert answer.refused and answer.text == assistant.ask(UNANSWERABLE_Q).text
    assert stub.requests == []
