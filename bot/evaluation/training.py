"""``python -m bot train``: fit the answer selector (``bot/answer/selection.py``) on the dev parts of the question sets.

Every dev question is searched and analysed as the assistant would; each candidate sentence becomes one row of
features, labelled 1 when it answers (its passage holds the question's evidence and the sentence states every
fact; without facts, the sentence lies inside the evidence or holds it). Unanswerable questions give only 0s.
Gradient-boosted trees are fitted with every set weighing the same and every question the same within its set;
then the refusal threshold is the highest one whose false-refusal rate, averaged over the sets, stays within the
target, measured on out-of-fold probabilities (5-fold cross-validation by question). Test parts are never read.
The result is written to ``bot/answer/selector.json``.
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bot.answer.assistant import Assistant
from bot.answer.grounding import Thresholds
from bot.answer.selection import FEATURES, MODEL_PATH, SelectorModel
from bot.config import ROOT, Settings
from bot.evaluation.calibration import Example, Outcome, collect as collect_examples, curve, format_curve, rescored
from bot.evaluation.evaluate import Question, SetupError, load_questions, print_error, select_split
from bot.search.index import KnowledgeIndex

TARGET_FALSE_REFUSAL = 0.03
TREES, LEARNING_RATE, DEPTH = 150, 0.1, 3
FOLDS = 5


@dataclass(frozen=True)
class QuestionSet:
    name: str
    questions: Path
    knowledge: Path | None = None  # None: the configured knowledge folder and index (the seed)
    index: Path | None = None
    build: str = "make index"  # what makes the index when it is missing

    def settings(self) -> Settings:
        base = Settings.from_env()
        return base.with_paths(str(self.knowledge) if self.knowledge else None, str(self.index) if self.index else None)


# The three sets of the README, each with the knowledge folder and index its Makefile target builds.
DEFAULT_SETS = (
    QuestionSet("seed", ROOT / "eval" / "questions.jsonl"),
    QuestionSet("scale", ROOT / "eval" / "scale_questions.jsonl", ROOT / "bench" / "out" / "knowledge-all",
                ROOT / "bench" / "out" / "index-all", "make eval"),
    QuestionSet("cmrc", ROOT / "eval" / "cmrc_questions.jsonl", ROOT / "eval" / "out" / "cmrc-knowledge",
                ROOT / "eval" / "out" / "cmrc-index", "make eval-cmrc"),
)


def open_set(spec: QuestionSet) -> tuple[list[Question], Assistant]:
    """The set's dev questions and an assistant over its existing index (never built here: that is ingest's job)."""
    questions = select_split(load_questions(spec.questions), "dev")
    settings = spec.settings()
    if not settings.knowledge_dir.is_dir() or not settings.index_dir.is_dir():
        raise SetupError(f"{spec.name}: {settings.knowledge_dir} or {settings.index_dir} is missing; "
                         f"`{spec.build}` builds it")
    return questions, Assistant(settings, index=KnowledgeIndex.open(settings), model=SelectorModel.neutral())


def collect(spec: QuestionSet, progress: bool = True) -> list[Example]:
    questions, assistant = open_set(spec)
    return collect_examples(spec.name, questions, assistant, progress)


def matrix(examples: list[Example]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and weights: every set weighs the same, and within a set every question."""
    sets = sorted({e.set_name for e in examples})
    per_set = {name: sum(1 for e in examples if e.set_name == name and e.ranked) for name in sets}
    rows, labels, weights = [], [], []
    for e in examples:
        for cand, label in zip(e.ranked, e.labels):
            rows.append(cand.features)
            labels.append(label)
            weights.append(1.0 / (per_set[e.set_name] * len(e.ranked)))
    weights = np.asarray(weights)
    return np.asarray(rows, dtype=float), np.asarray(labels, dtype=int), weights * len(weights) / weights.sum()


def fit(examples: list[Example]) -> SelectorModel:
    """Gradient-boosted trees (scikit-learn), exported node by node; the export must reproduce scikit-learn's
    probabilities, or training fails rather than ship a model that answers differently from the one measured."""
    from sklearn.ensemble import GradientBoostingClassifier

    x, y, w = matrix(examples)
    booster = GradientBoostingClassifier(n_estimators=TREES, learning_rate=LEARNING_RATE, max_depth=DEPTH,
                                         subsample=1.0, random_state=0)
    booster.fit(x, y, sample_weight=w)
    trees = tuple(_export(estimator.tree_) for estimator in booster.estimators_[:, 0])
    origin = x[:1]
    tree_sum = sum(estimator.predict(origin)[0] for estimator in booster.estimators_[:, 0])
    baseline = float(booster.decision_function(origin)[0] - LEARNING_RATE * tree_sum)
    model = SelectorModel(FEATURES, round(baseline, 6), LEARNING_RATE, trees, threshold=0.5)
    expected = booster.predict_proba(x[:2000])[:, 1]
    exported = np.array([model.probability(tuple(row)) for row in x[:2000]])
    if np.max(np.abs(expected - exported)) > 1e-4:
        raise RuntimeError("the exported trees do not reproduce scikit-learn's probabilities")
    return model


def _export(tree) -> tuple[tuple[int, float, int, int, float], ...]:
    """scikit-learn's arrays as (feature, threshold, left, right, value) nodes; leaves have feature -1."""
    return tuple((int(f) if left >= 0 else -1, round(float(t), 6) if left >= 0 else 0.0, int(left), int(right),
                  round(float(v[0][0]), 6))
                 for f, t, left, right, v in zip(tree.feature, tree.threshold, tree.children_left,
                                                 tree.children_right, tree.value))


def fold(example: Example) -> int:
    """The cross-validation fold of a question: from a hash of its id, so the same on every run and machine."""
    return int(hashlib.sha256(example.question.id.encode("utf-8")).hexdigest(), 16) % FOLDS


def held_out(examples: list[Example]) -> list[Example]:
    """Every example scored by a model fitted without its fold: probabilities as an unseen question would get
    them, for choosing the threshold (in-sample ones are overconfident and would set it too high)."""
    result = []
    for k in range(FOLDS):
        model = fit([e for e in examples if fold(e) != k])
        result += rescored([e for e in examples if fold(e) == k], model)
    return result


def choose_threshold(table: dict[float, list[Outcome]], target: float) -> float:
    """The highest threshold whose false-refusal rate, averaged over the sets, is within ``target``."""
    allowed = [t for t, rows in table.items() if np.mean([r.false_refusal_rate for r in rows]) <= target]
    return max(allowed, default=min(table))


def parse_sets(values: list[str] | None) -> tuple[QuestionSet, ...]:
    """``--set NAME`` picks default sets; ``--set NAME=QUESTIONS,KNOWLEDGE,INDEX`` adds another."""
    if not values:
        return DEFAULT_SETS
    known = {s.name: s for s in DEFAULT_SETS}
    result = []
    for value in values:
        name, _, paths = value.partition("=")
        if not paths:
            if name not in known:
                raise SetupError(f"unknown set {name!r}: one of {', '.join(known)}, or NAME=QUESTIONS,KNOWLEDGE,INDEX")
            result.append(known[name])
            continue
        parts = paths.split(",")
        if len(parts) != 3:
            raise SetupError(f"--set {value!r}: expected NAME=QUESTIONS,KNOWLEDGE,INDEX")
        result.append(QuestionSet(name, Path(parts[0]), Path(parts[1]), Path(parts[2])))
    return tuple(result)


def main(args) -> int:
    """``python -m bot train``: 0 when a model was written, 2 when it could not run."""
    try:
        sets = parse_sets(args.set)
        examples = [e for spec in sets for e in collect(spec)]
    except SetupError as exc:
        return print_error(str(exc))
    model = fit(examples)
    table = curve(held_out(examples), Thresholds(min_probability=0.5))
    target = TARGET_FALSE_REFUSAL if args.target_false_refusal is None else args.target_false_refusal
    threshold = choose_threshold(table, target)
    chosen = table[threshold]
    trained_on = {"sets": {s.name: str(s.questions.relative_to(ROOT) if s.questions.is_relative_to(ROOT)
                                       else s.questions) for s in sets},
                  "split": "dev", "questions": len(examples), "candidates": int(sum(len(e.ranked) for e in examples)),
                  "target_false_refusal": target,
                  "dev": {r.set_name: {"false_refusal": round(r.false_refusal_rate, 3),
                                       "refusal": round(r.refusal_rate, 3),
                                       "right_sentence": round(r.right_sentence / r.answerable, 3) if r.answerable
                                       else None} for r in chosen}}
    model = replace(model, threshold=threshold, trained_on=trained_on)
    out = Path(args.out) if args.out else MODEL_PATH
    model.save(out)
    print(format_curve(table, threshold))
    print(f"\nthreshold {threshold:.2f} (mean dev false refusal ≤ {target}); "
          f"{len(examples)} questions, {trained_on['candidates']} candidates; wrote {out}", file=sys.stderr)
    return 0

