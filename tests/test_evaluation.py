"""bot/evaluation/evaluate.py: question loading, metric arithmetic on hand-made results, and one end-to-end eval run."""
from __future__ import annotations

import argparse
import json

import pytest

from bot.answer.types import Answer
from bot.config import ROOT
from bot.evaluation.evaluate import (MAX_REPORTED_LINES, Question, QuestionFileError, Result, format_table, is_refusal,
                                     load_questions, main, metrics, percentile, select_split)

QUESTIONS = ROOT / "eval" / "questions.jsonl"
GOOD = {"id": "dental-01", "question": "全区有多少所小学参加了窝沟封闭？", "answerable": True,
        "evidence": ["全区22所小学"], "facts": ["22"], "category": "dental", "split": "test"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_lines(path, lines):
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n" for line in lines))
    return path


def row(**changes) -> str:
    """GOOD with changes; a field set to ... is left out."""
    record = {**GOOD, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not ...}, ensure_ascii=False)


# ---- load_questions ---------------------------------------------------------------------------------------

def test_loads_the_seed_question_file():
    questions = load_questions(QUESTIONS)
    assert len(questions) == 135
    assert {q.split for q in questions} == {"dev", "test"}
    followup = next(q for q in questions if q.id == "followup-01")
    assert followup.category == "followup" and followup.history and len(followup.history[0]) == 2
    assert len(select_split(questions, "dev")) + len(select_split(questions, "test")) == 135
    assert select_split(questions, "all") == questions


def test_optional_fields_default_and_category_falls_back_to_id_prefix(tmp_path):
    path = write_lines(tmp_path / "q.jsonl", [
        row(id="united-front-07", category=..., split=...),
        "",  # blank lines are skipped
        row(id="none-01", answerable=False, evidence=..., facts=..., category=...,
            history=[["卫东区在哪？", "在平顶山市。"]]),
    ])
    first, second = load_questions(path)
    assert (first.category, first.split) == ("united-front", None)
    assert (second.category, second.evidence, second.facts) == ("none", (), ())
    assert second.history == (("卫东区在哪？", "在平顶山市。"),)


BAD_LINES = [
    ('{"id": "x-01", "question": ', "invalid JSON"),
    ('["dental-01"]', "expected a JSON object, got array"),
    (row(question=...), "missing field 'question'"),
    (row(answerable="yes"), "field 'answerable' must be a boolean, got string"),
    (row(id=7), "field 'id' must be a string, got number"),
    (row(question="  "), "field 'question' is empty"),
    (row(evidence="全区22所小学"), "field 'evidence' must be an array of non-empty strings"),
    (row(facts=[22]), "field 'facts' must be an array of non-empty strings"),
    (row(history=[["只有一句"]]), "field 'history' must be an array of [user, assistant] string pairs"),
    (row(split="train"), "field 'split' must be one of dev, test, got 'train'"),
    (row(category=3), "field 'category' must be a string, got number"),
    (row(evidence=[]), "an answerable question needs at least one evidence string"),
    (row(answerable=False, evidence=[]), "an unanswerable question must have empty 'evidence' and 'facts'"),
    (row(id="dental-00"), "duplicate id 'dental-00' (first on line 1)"),
    ("全区".encode("gbk"), "not valid UTF-8"),
]


@pytest.mark.parametrize("bad, problem", BAD_LINES, ids=[p for _, p in BAD_LINES])
def test_bad_line_is_reported_with_its_line_number(tmp_path, bad, problem):
    path = write_lines(tmp_path / "q.jsonl", [row(id="dental-00"), "", bad, row(id="dental-09")])
    with pytest.raises(QuestionFileError) as caught:
        load_questions(path)
    assert caught.value.line == 3
    assert f"{path}:3: " in str(caught.value) and problem in str(caught.value)


def test_every_bad_line_is_reported_with_what_is_wrong(tmp_path):
    path = write_lines(tmp_path / "q.jsonl", [
        row(id="dental-00"), "{", row(id="dental-02", answerable="yes", category=3), row(id="dental-03"),
        row(id="dental-00"), "}"])
    with pytest.raises(QuestionFileError) as caught:
        load_questions(path)
    assert [line for line, _ in caught.value.problems] == [2, 3, 5, 6]
    message = str(caught.value).splitlines()
    assert message[0].startswith(f"{path}:2: invalid JSON") and "one whole JSON object" in message[0]
    assert message[1] == (f"{path}:3: field 'answerable' must be a boolean, got string; "
                          "field 'category' must be a string, got number")
    assert message[2] == f"{path}:5: duplicate id 'dental-00' (first on line 1)"
    assert message[3].startswith(f"{path}:6: invalid JSON")


def test_invalid_json_is_placed_on_its_own_line_with_an_excerpt(tmp_path):
    long_line = '{"question": "' + "窝" * 40 + '" "id": "' + "封" * 40 + '"}'  # a comma missing mid-line
    path = write_lines(tmp_path / "q.jsonl", ["{", '  "id": "dental-01",', long_line])
    with pytest.raises(QuestionFileError) as caught:
        load_questions(path)
    hint = "; each line must hold one whole JSON object"
    assert [problem for _, problem in caught.value.problems] == [
        # Not "column 1": that was the position after the line end, on a line 2 of the line's text.
        "invalid JSON: Expecting property name enclosed in double quotes at the end of the line, near '{'" + hint,
        """invalid JSON: Extra data at column 7, near '  "id": "dental-01",'""" + hint,
        "invalid JSON: Expecting ',' delimiter at column 57, near '…" + "窝" * 28 + '" "id": "' + "封" * 23 + "…'"
        + hint,
    ]


def test_reported_bad_lines_are_capped(tmp_path):
    path = write_lines(tmp_path / "q.jsonl", ["{"] * (MAX_REPORTED_LINES + 5))
    with pytest.raises(QuestionFileError) as caught:
        load_questions(path)
    assert len(caught.value.problems) == MAX_REPORTED_LINES
    assert str(caught.value).splitlines()[-1] == f"{path}: ... and 5 more bad lines"


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(QuestionFileError, match="no questions"):
        load_questions(write_lines(tmp_path / "q.jsonl", ["", "  "]))


def test_main_exits_2_naming_the_bad_line(tmp_path, capsys):
    path = write_lines(tmp_path / "q.jsonl", [row(), row(id="dental-02", answerable="no")])
    args = argparse.Namespace(questions=str(path), out=str(tmp_path / "out"), knowledge=None, index=None, split="all")
    assert main(args) == 2
    assert f"{path}:2: field 'answerable' must be a boolean" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ---- metrics on hand-made results -------------------------------------------------------------------------

EVIDENCE = "100条背街小巷"
PASSAGE = "对辖区17条主次干道、100条背街小\n巷的面积重新进行核定。"  # a column break inside the evidence
OTHER = "区委书记王迎波说。"


def question(qid, category, answerable=True, facts=("100",), split="test") -> Question:
    evidence = (EVIDENCE,) if answerable else ()
    return Question(id=qid, question="？", answerable=answerable, evidence=evidence,
                    facts=facts if answerable else (), category=category, split=split)


def result(q, answer="", refused=False, cited=(), retrieved=(), latency=10.0) -> Result:
    citations = tuple({"n": n, "article_id": "a", "title": "t", "date": "", "text": text}
                      for n, text in enumerate(cited, start=1))
    return Result(question=q, answer=answer, refused=refused, citations=citations, retrieved=tuple(retrieved),
                  latency_ms=latency)


@pytest.fixture
def results() -> list[Result]:
    return [
        # evidence ranked 1st, cited, fact stated
        result(question("a-1", "a"), "共100条。", cited=[PASSAGE], retrieved=[PASSAGE, OTHER], latency=10),
        # ranked 3rd, the cited passage lacks the evidence, fact stated
        result(question("a-2", "a"), "共100条。", cited=[OTHER], retrieved=[OTHER, OTHER, PASSAGE], latency=20),
        # not retrieved, refused
        result(question("b-1", "b", split="dev"), "抱歉", refused=True, retrieved=[OTHER], latency=30),
        # ranked 2nd, cited, one of two facts missing
        result(question("b-2", "b", facts=("100", "17条")), "1 0 0条", cited=[PASSAGE], retrieved=[OTHER, PASSAGE],
               latency=40),
        result(question("none-1", "none", answerable=False, split="dev"), "抱歉", refused=True, latency=50),
        result(question("none-2", "none", answerable=False), "瞎说[1]", cited=[OTHER], latency=60),
    ]


def test_overall_metrics(results):
    overall = metrics(results)["overall"]
    assert (overall["n"], overall["answerable"], overall["unanswerable"]) == (6, 4, 2)
    assert overall["hit@1"] == 0.25
    assert overall["hit@5"] == 0.75
    assert overall["mrr"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    assert overall["citation_accuracy"] == 0.5  # a-1, b-2
    assert overall["fact_recall"] == 0.5  # a-1, a-2 ("1 0 0条" holds 100 once whitespace is removed)
    assert overall["refusal_accuracy"] == 0.5
    assert overall["false_refusal_rate"] == 0.25
    assert overall["latency_p50_ms"] == 35.0
    assert overall["latency_p95_ms"] == 57.5


def test_per_category_and_per_split_metrics(results):
    table = metrics(results)
    a, b, none = (table["categories"][name] for name in ("a", "b", "none"))
    assert (a["hit@1"], a["hit@5"], a["citation_accuracy"], a["fact_recall"], a["false_refusal_rate"]) == \
        (0.5, 1.0, 0.5, 1.0, 0.0)
    assert a["mrr"] == pytest.approx(2 / 3) and a["refusal_accuracy"] is None
    assert (b["hit@1"], b["hit@5"], b["mrr"], b["citation_accuracy"], b["fact_recall"], b["false_refusal_rate"]) == \
        (0.0, 0.5, 0.25, 0.5, 0.0, 0.5)
    assert none["refusal_accuracy"] == 0.5
    assert none["hit@1"] is none["citation_accuracy"] is none["fact_recall"] is none["false_refusal_rate"] is None
    assert (table["splits"]["dev"]["n"], table["splits"]["test"]["n"]) == (2, 4)
    assert table["splits"]["dev"]["refusal_accuracy"] == 1.0


def test_evidence_below_rank_5_counts_for_mrr_but_not_hit5():
    r = result(question("a-1", "a"), "100", cited=[PASSAGE], retrieved=[OTHER] * 5 + [PASSAGE])
    overall = metrics([r])["overall"]
    assert (overall["hit@5"], overall["mrr"]) == (0.0, pytest.approx(1 / 6))


def test_failures_name_each_kind(results):
    assert [r.failures() for r in results] == [
        [], ["evidence not cited"], ["false refusal"], ["missing facts: 17条"], [],
        ["answered an unanswerable question"]]


def test_canned_refusal_text_counts_as_refusal_even_without_the_flag():
    assert is_refusal(Answer(question="?", text="抱歉，现有资料中没有电话号码，我不能凭猜测回答。", refused=False))
    assert not is_refusal(Answer(question="?", text="据2017年7月的报道，……此后的情况资料中没有，数字可能已有变化。",
                                 refused=False))


def test_percentile_interpolates_and_handles_edge_cases():
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5


def test_table_prints_n_per_row_and_dashes_for_empty_metrics(results):
    header, _, *body = [[cell.strip() for cell in line.split("|")[1:-1]] for line in
                        format_table(metrics(results)).splitlines()]
    assert header[:4] == ["group", "n", "A", "U"]
    assert [cells[0] for cells in body] == ["all", "split dev", "split test", "a", "b", "none"]
    assert body[-1][:5] == ["none", "2", "0", "2", "-"]


# ---- end to end -------------------------------------------------------------------------------------------

E2E_IDS = ["dental-01", "dibao-04", "followup-01", "english-01", "none-01"]
ANSWERS_KEYS = {"id", "question", "answer", "refused", "citations", "latency_ms"}
CITATION_KEYS = {"n", "article_id", "title", "date", "text"}


def test_main_end_to_end_on_the_seed_index(scratch_settings, tmp_path, monkeypatch, capsys):
    for name in ("CHROMA_HOST", "LLM_BASE_URL", "LLM_MODEL", "RERANKER"):  # the extractive, local bot only
        monkeypatch.delenv(f"BOT_{name}", raising=False)
    by_id = {json.loads(line)["id"]: json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines()}
    # A fact the page never states: a guaranteed failure the report must show.
    impossible = {**by_id["dental-03"], "id": "dental-99", "facts": ["99999"]}
    path = write_lines(tmp_path / "six.jsonl",
                       [json.dumps(by_id[i], ensure_ascii=False) for i in E2E_IDS] + [json.dumps(impossible)])
    out = tmp_path / "out"
    args = argparse.Namespace(questions=str(path), out=str(out), knowledge=str(scratch_settings.knowledge_dir),
                              index=str(scratch_settings.index_dir), split="all")

    assert main(args) == 0

    stdout = capsys.readouterr().out
    assert "| group" in stdout and "| all" in stdout
    records = [json.loads(line) for line in (out / "answers.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == E2E_IDS + ["dental-99"]
    for record in records:
        assert set(record) == ANSWERS_KEYS
        assert isinstance(record["refused"], bool) and isinstance(record["latency_ms"], float)
        assert all(set(c) == CITATION_KEYS for c in record["citations"])
    assert any(r["citations"] for r in records)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "### dental-99 (dental): missing facts: 99999" in report
    assert impossible["question"] in report and "**Cited passages:**" in report
    assert (out / "report.png").read_bytes().startswith(PNG_SIGNATURE)
