"""bot/evaluation/calibration.py: replaying the answer-or-refuse decision with other thresholds, on the real seed index."""
from __future__ import annotations

import argparse
from dataclasses import replace

import pytest

from bot.evaluation.calibration import SWEEPS, consider_all, decisions, main, trade_offs
from bot.config import ROOT
from bot.evaluation.evaluate import is_refusal, load_questions, select_split
from bot.answer.grounding import DEFAULT_THRESHOLDS, Thresholds
from fakes import HASH_SPEC

QUESTIONS = ROOT / "eval" / "questions.jsonl"


@pytest.fixture(scope="module")
def dev_considered(assistant):
    return consider_all(assistant, select_split(load_questions(QUESTIONS), "dev"))


def test_current_thresholds_replay_exactly_what_the_assistant_answers(assistant, dev_considered):
    false_refusals = wrong_answers = 0
    for question, _, _ in dev_considered:
        refused = is_refusal(assistant.ask(question.question, [list(t) for t in question.history]))
        false_refusals += question.answerable and refused
        wrong_answers += (not question.answerable) and not refused
    assert decisions(dev_considered, assistant.index.keyword, DEFAULT_THRESHOLDS) == (false_refusals, wrong_answers)


def test_stricter_thresholds_refuse_more_and_looser_ones_answer_more(assistant, dev_considered):
    keyword = assistant.index.keyword
    current_fr, current_wrong = decisions(dev_considered, keyword, DEFAULT_THRESHOLDS)
    strict_fr, _ = decisions(dev_considered, keyword, replace(DEFAULT_THRESHOLDS, min_context_coverage=0.95))
    assert strict_fr > current_fr
    # Without the unknown-word signal, questions about things the articles never mention get answered.
    _, loose_wrong = decisions(dev_considered, keyword, replace(DEFAULT_THRESHOLDS, foreign_term_specificity=1.01))
    assert loose_wrong > current_wrong


def test_every_sweep_includes_the_current_value_once(assistant, dev_considered):
    rows = trade_offs(dev_considered, assistant.index.keyword, DEFAULT_THRESHOLDS)
    assert set(SWEEPS) <= {name for name in Thresholds.__dataclass_fields__}
    for name in SWEEPS:
        current = [row for row in rows if row.threshold == name and row.current]
        assert [row.value for row in current] == [getattr(DEFAULT_THRESHOLDS, name)]


def test_command_prints_the_trade_off_table(fake_scratch_settings, monkeypatch, capsys):
    # The command's wiring and table, not the numbers in it: the hash-embedded index will do.
    monkeypatch.setenv("BOT_EMBEDDING", HASH_SPEC)
    args = argparse.Namespace(questions=str(QUESTIONS), knowledge=str(fake_scratch_settings.knowledge_dir),
                              index=str(fake_scratch_settings.index_dir), split="dev")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| min_dense | 0.8 * |" in out
    assert "46 answerable, 9 unanswerable" in out


def test_command_names_a_missing_question_file(fake_scratch_settings, tmp_path, capsys):
    args = argparse.Namespace(questions=str(tmp_path / "none.jsonl"),
                              knowledge=str(fake_scratch_settings.knowledge_dir),
                              index=str(fake_scratch_settings.index_dir), split="dev")
    assert main(args) == 2
    assert "none.jsonl" in capsys.readouterr().err
