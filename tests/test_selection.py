"""The learned answer selector: features, the shipped model file, and `python -m bot train` (reproducible)."""
from __future__ import annotations

import argparse
import json

import pytest

from bot.answer.selection import FEATURES, MODEL_PATH, SelectorModel, question_bigrams, window
from bot.config import ROOT
from bot.evaluation import training
from bot.evaluation.calibration import collect
from bot.evaluation.evaluate import load_questions, select_split

QUESTIONS = ROOT / "eval" / "questions.jsonl"


@pytest.fixture(scope="module")
def dev_examples(assistant):
    return collect("seed", select_split(load_questions(QUESTIONS), "dev"), assistant)


def test_the_shipped_model_matches_the_features_and_says_how_it_was_made():
    model = SelectorModel.load()
    assert model.features == FEATURES and model.sentence.trees and model.question.trees
    assert 0 < model.threshold < 1
    assert set(model.trained_on["sets"]) == {"seed", "scale", "cmrc"} and model.trained_on["split"] == "dev"


def test_a_model_for_other_features_is_refused_with_the_fix(tmp_path):
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    data["features"] = data["features"][:-1]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="python -m bot train"):
        SelectorModel.load(path)


def test_every_candidate_has_all_features_and_a_probability(dev_examples):
    for e in dev_examples:
        for cand in e.ranked:
            assert len(cand.features) == len(FEATURES)
            assert 0.0 <= cand.probability <= 1.0
        assert [c.probability for c in e.ranked if not e.considered.analysis.precise_type] == sorted(
            (c.probability for c in e.ranked if not e.considered.analysis.precise_type), reverse=True)


def test_character_pairs_ignore_question_words():
    pairs = question_bigrams("张世昌的职业是什么？")
    assert {"张世", "世昌", "职业"} <= pairs and not {"什么", "是什"} & pairs
    assert window(frozenset({"职业"}), "他的职业是守门员") == 1.0
    assert window(frozenset({"张世", "职业"}), "没有") == 0.0


def test_training_fits_the_same_model_twice_and_the_export_agrees_with_scikit_learn(dev_examples, tmp_path):
    first, second = training.fit(dev_examples), training.fit(dev_examples)
    assert first == second  # fit_forest() itself fails when the exported trees disagree with scikit-learn
    first.save(tmp_path / "m.json")
    assert SelectorModel.load(tmp_path / "m.json") == first
    positives = [c for e in dev_examples for c, label in zip(e.ranked, e.labels) if label]
    negatives = [c for e in dev_examples for c, label in zip(e.ranked, e.labels) if not label]
    mean = lambda cands: sum(first.probability(c.features) for c in cands) / len(cands)  # noqa: E731
    assert mean(positives) > 3 * mean(negatives)
    answerable = [first.answerable(training.question_rows([e])[0]) for e in dev_examples]
    assert min(p for p, e in zip(answerable, dev_examples) if e.answerable) > 0.01


def test_the_threshold_is_the_highest_that_adds_at_most_the_target_to_false_refusals(dev_examples):
    table = training.curve(training.held_out(training.sentence_held_out(dev_examples)),
                           training.Thresholds(min_probability=0.5))
    floor = table[min(table)][0].false_refusal_rate  # what the rules refuse on their own
    chosen = training.choose_threshold(table, 0.05)
    assert table[chosen][0].false_refusal_rate <= floor + 0.05
    higher = [t for t in table if t > chosen]
    assert not higher or table[min(higher)][0].false_refusal_rate > floor + 0.05


def test_train_command_writes_a_reproducible_model(seed_settings, seed_index, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("BOT_KNOWLEDGE_DIR", str(seed_settings.knowledge_dir))
    monkeypatch.setenv("BOT_INDEX_DIR", str(seed_settings.index_dir))
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / f"{run}.json"
        args = argparse.Namespace(set=["seed"], target_false_refusal=0.05, out=str(out))
        assert training.main(args) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    model = SelectorModel.load(tmp_path / "a.json")
    assert model.trained_on["sets"] == {"seed": "eval/questions.jsonl"}
    assert "| threshold |" in capsys.readouterr().out


def test_train_names_the_missing_index_and_how_to_build_it(tmp_path, capsys):
    args = argparse.Namespace(set=[f"other={QUESTIONS},{tmp_path / 'k'},{tmp_path / 'i'}"],
                              target_false_refusal=None, out=str(tmp_path / "m.json"))
    assert training.main(args) == 2
    assert "is missing" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()
