"""``python -m bot train``: fit the answer selector (``bot/answer/selection.py``) on the dev parts of the question sets.

Every dev question is searched and analysed as the assistant would; each candidate sentence becomes one row of
features, labelled 1 when it answers (its passage holds the question's evidence and the sentence states every
fact; without facts, the sentence lies inside the evidence or holds it). Unanswerable questions give only 0s.
A sentence forest (gradient-boosted trees) is fitted on these rows, every set weighing the same and every
question the same within its set. A refusal forest is fitted on one row per question (its candidates taken
together, their probabilities from a sentence forest that did not see the question: 5-fold cross-validation by
question), labelled with whether the question is answerable. The refusal threshold is the highest that adds at
most the target to the false-refusal rate (averaged over the sets) beyond what the rules refuse, on out-of-fold
answerabilities. Test parts are never read.
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
from bot.answer.selection import FEATURES, MODEL_PATH, QUESTION_FEATURES, Forest, SelectorModel, question_features
from bot.config import ROOT, Settings
from bot.evaluation.calibration import Example, Outcome, collect as collect_examples, curve, format_curve, rescored
from bot.evaluation.evaluate import Question, SetupError, load_questions, print_error, select_split
from bot.search.index import KnowledgeIndex

# Residents' most common complaint was a refusal of a question the articles answer: the threshold may add at most
# one point of false refusals (averaged over the dev sets) to what the rules refuse.
TARGET_FALSE_REFUSAL = 0.01
TREES, DEPTH = 150, 3  # the sentence forest
QUESTION_TREES, QUESTION_DEPTH = 100, 2  # the refusal forest: one row per question, so smaller
LEARNING_RATE = 0.1
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


def fit_forest(x: np.ndarray, y: np.ndarray, w: np.ndarray, trees: int, depth: int) -> Forest:
    """Gradient-boosted trees (scikit-learn), exported node by node; the export must reproduce scikit-learn's
    probabilities, or training fails rather than ship a model that answers differently from the one measured."""
    from sklearn.ensemble import GradientBoostingClassifier

    booster = GradientBoostingClassifier(n_estimators=trees, learning_rate=LEARNING_RATE, max_depth=depth,
                                         random_state=0)
    booster.fit(x, y, sample_weight=w)
    estimators = booster.estimators_[:, 0]
    origin = x[:1]
    baseline = float(booster.decision_function(origin)[0] - LEARNING_RATE * sum(e.predict(origin)[0] for e in estimators))
    forest = Forest(baseline, LEARNING_RATE, tuple(_export(e.tree_) for e in estimators))
    sample = x[:2000]
    exported = np.array([forest.probability(tuple(row)) for row in sample])
    if np.max(np.abs(booster.predict_proba(sample)[:, 1] - exported)) > 1e-4:
        raise RuntimeError("the exported trees do not reproduce scikit-learn's probabilities")
    return forest


def _export(tree) -> tuple[tuple[int, float, int, int, float], ...]:
    """scikit-learn's arrays as (feature, threshold, left, right, value) nodes; leaves have feature -1."""
    return tuple((int(f) if left >= 0 else -1, float(t) if left >= 0 else 0.0, int(left), int(right), float(v[0][0]))
                 for f, t, left, right, v in zip(tree.feature, tree.threshold, tree.children_left,
                                                 tree.children_right, tree.value))


def set_weights(examples: list[Example]) -> np.ndarray:
    """Per example: every set weighs the same, and within a set every question."""
    counts = {name: sum(e.set_name == name for e in examples) for name in {e.set_name for e in examples}}
    return np.array([1.0 / counts[e.set_name] for e in examples])


def question_rows(examples: list[Example]) -> np.ndarray:
    return np.array([question_features([c.probability for c in e.ranked], [c.features for c in e.ranked])
                     for e in examples], dtype=float)


def fit_question(scored: list[Example]) -> Forest:
    """The refusal forest, on examples whose candidate probabilities come from a sentence forest that did not
    see them (as an unseen question's would)."""
    w = set_weights(scored)
    return fit_forest(question_rows(scored), np.array([e.answerable for e in scored], dtype=int),
                      w * len(w) / w.sum(), QUESTION_TREES, QUESTION_DEPTH)


def fit(examples: list[Example], scored: list[Example] | None = None) -> SelectorModel:
    """Both forests; ``scored`` is ``sentence_held_out(examples)`` when the caller has it already."""
    x, y, w = matrix(examples)
    sentence = fit_forest(x, y, w, TREES, DEPTH)
    question = fit_question(scored if scored is not None else sentence_held_out(examples))
    return SelectorModel(FEATURES, QUESTION_FEATURES, sentence, question, threshold=0.5)


def fold(example: Example) -> int:
    """The cross-validation fold of a question: from a hash of its id, so the same on every run and machine."""
    return int(hashlib.sha256(example.question.id.encode("utf-8")).hexdigest(), 16) % FOLDS


def sentence_held_out(examples: list[Example]) -> list[Example]:
    """Every example's candidates scored by a sentence forest fitted without its fold."""
    result = []
    for k in range(FOLDS):
        x, y, w = matrix([e for e in examples if fold(e) != k])
        model = replace(SelectorModel.neutral(), sentence=fit_forest(x, y, w, TREES, DEPTH))
        result += rescored([e for e in examples if fold(e) == k], model)
    return result


def held_out(scored: list[Example]) -> list[Example]:
    """``sentence_held_out`` examples with an answerability from a refusal forest fitted without their fold:
    what an unseen question would get, for choosing the threshold (in-sample probabilities are overconfident
    and would set it too high)."""
    result = []
    for k in range(FOLDS):
        forest = fit_question([e for e in scored if fold(e) != k])
        part = [e for e in scored if fold(e) == k]
        result += [replace(e, answerability=forest.probability(tuple(row))) for e, row in zip(part, question_rows(part))]
    return result


def choose_threshold(table: dict[float, list[Outcome]], target: float) -> float:
    """The highest threshold that adds at most ``target`` to the false-refusal rate, averaged over the sets, over
    what the rules alone refuse (the lowest threshold's): the target is the threshold's share, so a rule's refusal
    of a dev question cannot force the threshold to nothing."""
    rate = {t: float(np.mean([r.false_refusal_rate for r in rows])) for t, rows in table.items()}
    floor = rate[min(table)]
    return max(t for t in table if rate[t] <= floor + target + 1e-9)


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
    scored = sentence_held_out(examples)
    model = fit(examples, scored)
    table = curve(held_out(scored), Thresholds(min_probability=0.5))
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
    print(f"\nthreshold {threshold:.2f} (adds at most {target} to the mean dev false-refusal rate); "
          f"{len(examples)} questions, {trained_on['candidates']} candidates; wrote {out}", file=sys.stderr)
    return 0

