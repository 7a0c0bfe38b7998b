"""Calibration: how the refusal threshold trades false refusals against wrong answers.

``python -m bot calibrate eval/questions.jsonl [--split dev] [--knowledge DIR] [--index DIR]``

Every question is searched, analysed and its candidate sentences scored once; only the answer-or-refuse decision
(``grounding.assess``) is replayed for each threshold on the model's probability that the sources answer. Run it on the dev
split: a threshold chosen on the test split would grade itself. ``python -m bot train`` uses the same curve to
choose the threshold it ships.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from tqdm import tqdm

from bot.answer.assistant import Assistant, conversation
from bot.answer.extractive import Candidate, answerability, ordered
from bot.answer.grounding import Thresholds, assess
from bot.answer.selection import SelectorModel
from bot.evaluation.evaluate import Question, SetupError, prepare, print_error, squash

THRESHOLDS = tuple(round(0.01 * i, 2) for i in range(1, 100))


@dataclass(frozen=True)
class Example:
    """One dev question as the selector sees it."""
    set_name: str
    question: Question
    ranked: list[Candidate]
    labels: tuple[bool, ...]  # per candidate: it answers the question
    considered: object  # the assistant's Considered: what the decision is replayed on
    answerability: float = 0.5  # the model's probability that the sources answer it

    @property
    def answerable(self) -> bool:
        return self.question.answerable


def answers(question: Question, candidate: Candidate) -> bool:
    """Would the eval credit this sentence as the answer? Its passage holds the question's evidence and the
    sentence states every fact (without facts: the sentence lies inside the evidence or holds it)."""
    if not question.answerable:
        return False
    passage = squash(candidate.passage.chunk.text)
    if question.evidence and not any(squash(e) in passage for e in question.evidence):
        return False
    text = squash(candidate.text)
    if question.facts:
        return all(squash(f) in text for f in question.facts)
    return any(squash(e) in text or text in squash(e) for e in question.evidence)


def collect(set_name: str, questions: list[Question], assistant: Assistant, progress: bool = False) -> list[Example]:
    """The questions searched, analysed and ranked once: the expensive part of every curve."""
    examples = []
    for q in tqdm(questions, desc=f"ranking {set_name}", unit="question", disable=not progress):
        considered = assistant.consider(q.question, conversation(q.history))
        ranked = assistant.rank(considered)
        examples.append(Example(set_name, q, ranked, tuple(answers(q, c) for c in ranked), considered,
                                answerability(assistant.model, ranked)))
    return examples


def rescored(examples: list[Example], model: SelectorModel) -> list[Example]:
    """The examples as ``model`` scores them: each candidate's probability, re-ranked as the assistant would, and
    the question's answerability."""
    result = []
    for e in examples:
        label_of = {(c.passage.chunk.id, c.start): label for c, label in zip(e.ranked, e.labels)}
        ranked = ordered(e.considered.analysis, [replace(c, probability=model.probability(c.features)) for c in e.ranked])
        result.append(replace(e, ranked=ranked, labels=tuple(label_of[c.passage.chunk.id, c.start] for c in ranked),
                              answerability=answerability(model, ranked)))
    return result


@dataclass(frozen=True)
class Outcome:
    set_name: str
    threshold: float
    answerable: int
    unanswerable: int
    false_refusals: int
    wrong_answers: int  # unanswerable questions answered
    right_sentence: int  # answerable questions answered with a sentence that answers

    @property
    def false_refusal_rate(self) -> float:
        return self.false_refusals / self.answerable if self.answerable else 0.0

    @property
    def refusal_rate(self) -> float:
        return 1 - self.wrong_answers / self.unanswerable if self.unanswerable else 1.0


def outcome(examples: list[Example], thresholds: Thresholds, set_name: str) -> Outcome:
    fr = wrong = right = a = u = 0
    for e in examples:
        c = e.considered
        answered = assess(c.analysis, c.retrieval.passages, e.ranked, e.answerability, thresholds).answerable
        if e.answerable:
            a += 1
            fr += not answered
            right += answered and bool(e.labels) and e.labels[0]
        else:
            u += 1
            wrong += answered
    return Outcome(set_name, thresholds.min_probability, a, u, fr, wrong, right)


def curve(examples: list[Example], base: Thresholds) -> dict[float, list[Outcome]]:
    """Per threshold, one Outcome per set (sets in name order)."""
    names = sorted({e.set_name for e in examples})
    return {t: [outcome([e for e in examples if e.set_name == n], replace(base, min_probability=t), n) for n in names]
            for t in THRESHOLDS}


def format_curve(table: dict[float, list[Outcome]], chosen: float | None = None, every: int = 5) -> str:
    names = [r.set_name for r in next(iter(table.values()))]
    head = "| threshold | " + " | ".join(f"{n} false refusal | {n} refusal | {n} right sentence" for n in names) + " |"
    lines = [head, "|---:|" + "---:|---:|---:|" * len(names)]
    for i, (t, rows) in enumerate(table.items()):
        if i % every and t != chosen:
            continue
        cells = " | ".join(f"{r.false_refusal_rate:.3f} | {r.refusal_rate:.3f} | "
                           f"{r.right_sentence}/{r.answerable}" for r in rows)
        lines.append(f"| {t:.2f}{' *' if t == chosen else ''} | {cells} |")
    return "\n".join(lines)


def main(args) -> int:
    """``python -m bot calibrate``: print the trade-off curve; 2 when it could not run."""
    try:
        path, questions, settings, index = prepare(args)
    except SetupError as exc:
        return print_error(str(exc))
    assistant = Assistant(settings, index=index)
    examples = collect(path.stem, questions, assistant, progress=True)
    answerable = sum(q.answerable for q in questions)
    current = assistant.thresholds.min_probability
    print(f"{answerable} answerable, {len(questions) - answerable} unanswerable questions; the model refuses when "
          f"its probability that the sources answer is below the threshold (* = the shipped one, {current:.2f})\n")
    print(format_curve(curve(examples, assistant.thresholds), chosen=current))
    return 0
