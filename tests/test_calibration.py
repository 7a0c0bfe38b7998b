"""bot/evaluation/calibration.py: replaying the answer-or-refuse decision at other thresholds, on the real seed index."""
from __future__ import annotations

import argparse
from dataclasses import replace

import pytest

from bot.config import ROOT
from bot.evaluation.calibration import THRESHOLDS, answers, collect, curve, main, outcome
from bot.evaluation.evaluate import is_refusal, load_questions, select_split
from fakes import HASH_SPEC

QUESTIONS = ROOT / "eval" / "questions.jsonl"


@pytest.fixture(scope="module")
def dev_examples(assistant):
    return collect("seed", select_split(load_questions(QUESTIONS), "dev"), assistant)


def test_the_shipped_threshold_replays_exactly_what_the_assistant_answers(assistant, dev_examples):
    false_refusals = wrong_answers = 0
    for e in dev_examples:
        refused = is_refusal(assistant.ask(e.question.question, [list(t) for t in e.question.history]))
        false_refusals += e.answerable and refused
        wrong_answers += (not e.answerable) and not refused
    replayed = outcome(dev_examples, assistant.thresholds, "seed")
    assert (replayed.false_refusals, replayed.wrong_answers) == (false_refusals, wrong_answers)


def test_a_higher_threshold_never_answers_more(assistant, dev_examples):
    table = curve(dev_examples, assistant.thresholds)
    answered = [sum(r.answerable - r.false_refusals + r.wrong_answers for r in table[t]) for t in THRESHOLDS]
    assert answered == sorted(answered, reverse=True)
    assert answered[0] > answered[-1]  # the threshold matters at all


def test_a_sentence_is_credited_only_with_its_passage_holding_the_evidence(dev_examples):
    e = next(e for e in dev_examples if e.answerable and any(e.labels))
    right = e.ranked[e.labels.index(True)]
    assert answers(e.question, right)
    assert not answers(replace(e.question, answerable=False), right)
    assert not answers(replace(e.question, evidence=("不在任何资料里的一句话",)), right)


def test_command_prints_the_trade_off_curve(fake_scratch_settings, monkeypatch, capsys):
    # The command's wiring and table, not the numbers in it: the hash-embedded index will do.
    monkeypatch.setenv("BOT_EMBEDDING", HASH_SPEC)
    args = argparse.Namespace(questions=str(QUESTIONS), knowledge=str(fake_scratch_settings.knowledge_dir),
                              index=str(fake_scratch_settings.index_dir), split="dev")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "46 answerable, 9 unanswerable" in out
    assert out.count(" * |") == 1  # the shipped threshold is marked once
    assert "| threshold | questions false refusal |" in out
