"""The CI quality gate: the test split of eval/questions.jsonl against the seed index (eval/README.md, "CI gate").

Tune only on the dev split, so the gate never grades the questions a threshold was fitted to.
"""
from __future__ import annotations

from bot.config import ROOT
from bot.evaluation.evaluate import format_table, load_questions, metrics, run, select_split, write_report

# Raise these as the bot improves; never lower them to pass.
MIN_CITATION_ACCURACY = 0.93
MIN_FACT_RECALL = 0.90
MIN_REFUSAL_ACCURACY = 0.95
MAX_FALSE_REFUSAL_RATE = 0.05

QUESTIONS = ROOT / "eval" / "questions.jsonl"

# metric -> (bar, higher is better, does a result count against it)
GATES = {
    "citation_accuracy": (MIN_CITATION_ACCURACY, True, lambda r: r.question.answerable and not r.cites_evidence),
    "fact_recall": (MIN_FACT_RECALL, True, lambda r: r.question.answerable and not r.states_facts),
    "refusal_accuracy": (MIN_REFUSAL_ACCURACY, True, lambda r: not r.question.answerable and not r.refused),
    "false_refusal_rate": (MAX_FALSE_REFUSAL_RATE, False, lambda r: r.question.answerable and r.refused),
}


def test_quality_gate(assistant, tmp_path):
    results = run(assistant, select_split(load_questions(QUESTIONS), "test"))
    table = metrics(results)
    write_report(results, table, tmp_path, title="Quality gate: test split")
    overall = table["overall"]
    problems = []
    for name, (bar, higher_is_better, counts_against) in GATES.items():
        value = overall[name]
        if value < bar if higher_is_better else value > bar:
            ids = ", ".join(r.question.id for r in results if counts_against(r))
            problems.append(f"{name} {value:.3f} {'<' if higher_is_better else '>'} {bar:.2f}: {ids}")
    report = tmp_path / "report.md"
    assert not problems, f"quality gate failed (details: {report})\n" + "\n".join(problems) + "\n\n" + format_table(table)
