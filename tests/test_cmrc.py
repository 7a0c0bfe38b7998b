"""bot/knowledge/cmrc.py: the CMRC 2018 eval set, built from a small slice of the real file (no index, no model)."""
from __future__ import annotations

import json
from collections import defaultdict

import pytest

from bot.knowledge.chunking import chunk_article, split_sentences
from bot.knowledge.cmrc import SUBFOLDER, article_id, build, locate, read_articles
from bot.config import CMRC2018
from bot.evaluation.evaluate import load_questions, squash
from bot.knowledge.articles import load_knowledge

DEV_FILE = CMRC2018 / "cmrc2018_dev.json"
# Everything sampled, a large held-out share: a 40-article slice still has both roles in both splits.
PERCENTS = {"sample_percent": 100, "held_out_percent": 30, "dev_percent": 50}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("cmrc")
    data = json.loads(DEV_FILE.read_text(encoding="utf-8"))
    small = base / "small.json"
    small.write_text(json.dumps({"version": data["version"], "data": data["data"][:40]}, ensure_ascii=False),
                     encoding="utf-8")
    knowledge, questions = base / "knowledge", base / "questions.jsonl"
    summary = build(small, knowledge, questions, **PERCENTS)
    rows = [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines()]
    return {"data": small, "knowledge": knowledge, "questions": questions, "rows": rows, "summary": summary,
            "articles": {item.id: item for item in read_articles(small, **PERCENTS)}}


def test_question_file_is_in_the_project_format(built):
    questions = load_questions(built["questions"])  # raises on any rule of eval/README.md
    assert len(questions) == len(built["rows"]) > 100
    for row in built["rows"]:
        assert set(row) == {"id", "question", "answerable", "evidence", "facts", "category", "split", "doc"}
        assert row["category"] == ("cmrc" if row["answerable"] else "cmrc-none")
        assert row["id"].startswith(row["category"] + "-DEV_")
        if row["answerable"]:
            assert 1 <= len(row["evidence"]) <= 3 and len(row["facts"]) == 1
        else:
            assert row["evidence"] == [] and row["facts"] == []
    assert {(r["split"], r["answerable"]) for r in built["rows"]} == {(s, a) for s in ("dev", "test")
                                                                     for a in (True, False)}


def test_splits_are_apart_by_article(built):
    splits = defaultdict(set)
    for row in built["rows"]:
        splits[row["doc"]].add(row["split"])
    assert all(len(s) == 1 for s in splits.values()), "an article serves both dev and test"


def test_held_out_articles_are_absent_from_the_knowledge_folder(built):
    load = load_knowledge(built["knowledge"])
    assert not load.errors
    indexed = {a.id for a in load.articles}
    articles = built["articles"]
    assert indexed == {article_id(i) for i, item in articles.items() if not item.held_out}
    for row in built["rows"]:
        assert (article_id(row["doc"]) in indexed) == row["answerable"], row["id"]
    kept_text = squash("".join(a.body for a in load.articles))
    for row in built["rows"]:
        if not row["answerable"]:  # nor do the sentences that state its answer
            item = articles[row["doc"]]
            qa = next(qa for qa in item.questions if f"cmrc-none-{qa['id']}" == row["id"])
            answer = qa["answers"][0]["text"].strip()
            body = item.article.body
            start = locate(body, answer, qa["answers"][0]["answer_start"])
            around = [s for s in split_sentences(body) if s.start < start + len(answer) and start < s.end]
            assert squash(body[around[0].start:around[-1].end]) not in kept_text, row["id"]


def test_evidence_occurs_in_one_passage_of_the_article_and_holds_the_fact(built):
    load = load_knowledge(built["knowledge"])
    by_id = {a.id: a for a in load.articles}
    for row in built["rows"]:
        if not row["answerable"]:
            continue
        article = by_id[article_id(row["doc"])]
        passages = [squash(c.text) for c in chunk_article(article)]
        for span in row["evidence"]:
            assert any(squash(span) in p for p in passages), f"{row['id']}: {span!r} in no passage"
        assert any(squash(row["facts"][0]) in squash(span) for span in row["evidence"]), row["id"]


def test_articles_keep_the_wikipedia_title_and_paragraph(built):
    data = json.loads(built["data"].read_text(encoding="utf-8"))["data"]
    by_id = {a.id: a for a in load_knowledge(built["knowledge"]).articles}
    for record in data:
        article = by_id.get(article_id(record["id"]))
        if article is None:
            continue
        assert article.title == (record["title"] or article.title)
        assert squash(article.body) == squash(record["paragraphs"][0]["context"])


def test_rebuild_is_identical_and_removes_stale_articles(built, tmp_path):
    stale = built["knowledge"] / SUBFOLDER / "cmrc-dev-99999.md"
    stale.write_text("---\ntitle: old\n---\n\nold\n", encoding="utf-8")
    unrelated = built["knowledge"] / "other.md"
    unrelated.write_text("---\ntitle: mine\n---\n\nmine\n", encoding="utf-8")
    again = tmp_path / "again.jsonl"
    build(built["data"], built["knowledge"], again, **PERCENTS)
    assert again.read_bytes() == built["questions"].read_bytes()
    assert not stale.exists() and unrelated.exists()  # only the CMRC subfolder is pruned
    unrelated.unlink()


def test_locate_takes_the_occurrence_nearest_the_stated_offset():
    body = "甲乙丙。甲乙丙。"
    assert locate(body, "甲乙", 5) == 4
    assert locate(body, "甲乙", 0) == 0
    assert locate(body, "丁", 0) is None


def test_command_line_writes_both_and_reports_counts(built, tmp_path, capsys):
    from bot.interfaces.cli import main

    assert main(["import-cmrc", str(built["data"]), "--out", str(tmp_path / "k"),
                 "--questions", str(tmp_path / "q.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "articles written to" in out and "questions written to" in out
    assert (tmp_path / "q.jsonl").is_file() and list((tmp_path / "k" / SUBFOLDER).glob("cmrc-dev-*.md"))
    assert main(["import-cmrc", str(tmp_path / "missing.json"), "--out", str(tmp_path / "k"),
                 "--questions", str(tmp_path / "q.jsonl")]) == 2
