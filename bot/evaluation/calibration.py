"""Calibration: how each refusal threshold trades false refusals against wrong answers.

``python -m bot calibrate eval/questions.jsonl [--split dev] [--knowledge DIR] [--index DIR]``

Every question is searched and analysed once (``Assistant.consider``); only the answer-or-refuse decision
(``grounding.assess``) is replayed for each threshold value, one threshold varied at a time around the
current ones. Run it on the dev split: thresholds chosen on the test split would grade themselves.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from tqdm import tqdm

from bot.answer.assistant import Assistant, conversation
from bot.answer.extractive import candidates
from bot.answer.grounding import Thresholds, assess
from bot.evaluation.evaluate import SetupError, prepare, print_error

# Values tried per refusal threshold (office_context_coverage only picks the office to suggest); the current
# value is always added.
SWEEPS = {
    "min_sentence_coverage": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
    "min_context_coverage": (0.35, 0.45, 0.55, 0.65, 0.75),
    "min_dense": (0.74, 0.77, 0.80, 0.83, 0.86),
    "min_dense_foreign": (0.68, 0.71, 0.74, 0.77, 0.80),
    "foreign_term_specificity": (0.5, 0.6, 0.7, 0.8, 0.9, 1.01),  # 1.01: the signal off
}


@dataclass(frozen=True)
class TradeOff:
    threshold: str
    value: float
    false_refusals: int  # answerable questions refused
    wrong_answers: int  # unanswerable questions answered
    current: bool


def consider_all(assistant, questions, progress: bool = False) -> list:
    """(question, Considered, ranked sentences) triples: the expensive part, done once."""
    considered = []
    for q in tqdm(questions, desc="searching", unit="question", disable=not progress):
        c = assistant.consider(q.question, conversation(q.history))
        considered.append((q, c, candidates(c.analysis, c.retrieval.passages)))
    return considered


def decisions(considered: list, keyword, thresholds: Thresholds) -> tuple[int, int]:
    """(false refusals, wrong answers) if the assistant used these thresholds."""
    false_refusals = wrong_answers = 0
    for question, c, ranked in considered:
        answerable = assess(c.analysis, c.retrieval.passages, ranked, keyword, thresholds).answerable
        false_refusals += question.answerable and not answerable
        wrong_answers += (not question.answerable) and answerable
    return false_refusals, wrong_answers


def trade_offs(considered: list, keyword, current: Thresholds) -> list[TradeOff]:
    rows = []
    for name, values in SWEEPS.items():
        now = getattr(current, name)
        for value in sorted({*values, now}):
            false_refusals, wrong_answers = decisions(considered, keyword, replace(current, **{name: value}))
            rows.append(TradeOff(name, value, false_refusals, wrong_answers, value == now))
    return rows


def format_trade_offs(rows: list[TradeOff], answerable: int, unanswerable: int) -> str:
    lines = [f"{answerable} answerable, {unanswerable} unanswerable questions; one threshold varied at a time "
             "(* = current value)", "",
             "| threshold | value | false refusals | wrong answers |", "|---|---:|---:|---:|"]
    for row in rows:
        mark = " *" if row.current else ""
        lines.append(f"| {row.threshold} | {row.value:g}{mark} | {row.false_refusals} / {answerable} "
                     f"| {row.wrong_answers} / {unanswerable} |")
    return "\n".join(lines)


def main(args) -> int:
    """``python -m bot calibrate``: print the trade-off table; 2 when it could not run."""
    try:
        _, questions, settings, index = prepare(args)
    except SetupError as exc:
        return print_error(str(exc))
    assistant = Assistant(settings, index=index)
    considered = consider_all(assistant, questions, progress=True)
    answerable = sum(q.answerable for q in questions)
    print(format_trade_offs(trade_offs(considered, index.keyword, assistant.thresholds),
                            answerable, len(questions) - answerable))
    return 0
