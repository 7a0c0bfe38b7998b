"""Fast checks of the evaluation data in eval/ (no bot, no index, no network).

eval/questions.jsonl        questions grounded in the seed page (000_d8e10ae50a9c1096.txt)
eval/scale_questions.jsonl  needle-in-a-haystack questions over the xinhua news sample (BOT_NEWS_SAMPLE)
eval/cmrc_questions.jsonl   CMRC 2018 questions, exactly as `python -m bot import-cmrc` writes them (BOT_CMRC2018)

Evidence strings are compared with all whitespace removed, which also joins the print dump's
column breaks ("背街小" / "巷" -> "背街小巷").
"""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from functools import lru_cache
from pathlib import Path

import pytest

from bot.knowledge.cmrc import build
from bot.config import CMRC2018, NEWS_SAMPLE

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "eval"
QUESTIONS = EVAL / "questions.jsonl"
SCALE_QUESTIONS = EVAL / "scale_questions.jsonl"
CMRC_QUESTIONS = EVAL / "cmrc_questions.jsonl"
SEED_NAME = "000_d8e10ae50a9c1096.txt"
CORPUS = NEWS_SAMPLE
CORPUS_FILES = ("part-1.txt", "part-2.txt")

REQUIRED = {"id": str, "question": str, "answerable": bool, "evidence": list, "facts": list,
            "category": str, "split": str}
OPTIONAL = {"history": list}
SPLITS = {"dev", "test"}

# category -> id prefix
SEED_CATEGORIES = {
    "dental": "dental", "dibao": "dibao", "city": "city", "discipline": "discipline",
    "united-front": "united-front", "audit": "audit", "finance": "finance", "environment": "env",
    "photo": "photo", "followup": "followup", "colloquial": "colloquial",
    "traditional": "traditional", "english": "english", "unanswerable": "none",
}
SCALE_CATEGORIES = {"scale": "scale", "scale-none": "scale-none"}

# The 11 items of the seed page, in page order, each located by the first occurrence of an
# anchor in the whitespace-free text; an evidence string belongs to the item it falls in.
ITEM_ANCHORS = [
    ("city", "实行精细化管理"),
    ("discipline", "查漏补缺明职责"),
    ("united-front", "区统一战线能力素质提升培训实践基地揭牌"),
    ("audit", "积极调整思路"),
    ("photo-bayi", "八一建军节前夕"),
    ("photo-guoxue", "7月26日早上6点钟"),
    ("finance", "加强财源建设"),
    ("environment", "加大扬尘治理"),
    ("dibao", "核查认定严格科学"),
    ("dental", "卫东区积极开展儿童口腔疾病干预"),
    ("photo-blackboard", "7月26日,在卫东区东安路街道安培社区"),
]

# Every unanswerable scale question names how its absence was verified:
#   ("absent", [terms])                      none of the terms occurs in the corpus or the seed page
#   ("subject-lacks", subject, [terms])      the subject occurs in exactly one corpus line, which
#                                            contains none of the terms (a near miss)
SCALE_NONE_CHECKS = {
    "scale-none-01": ("absent", ["嫦娥七号"]),
    "scale-none-02": ("absent", ["诺贝尔文学奖"]),
    "scale-none-03": ("absent", ["数字火炬手"]),
    "scale-none-04": ("absent", ["苏州地铁"]),
    "scale-none-05": ("subject-lacks", "哈齐高铁", ["票价", "二等座", "元"]),
    "scale-none-06": ("subject-lacks", "家博会", ["门票", "票价", "免费", "元"]),
    "scale-none-07": ("absent", ["卫东区", "2023年的城市低保标准"]),
    # dev split
    "scale-none-dev-01": ("absent", ["深中通道"]),
    "scale-none-dev-02": ("absent", ["西班牙女足", "女足世界杯冠军", "女足世界杯决赛"]),
    "scale-none-dev-03": ("subject-lacks", "GX8881", ["医院"]),
    "scale-none-dev-04": ("subject-lacks", "尉且沙漠公路", ["投资", "万元", "造价", "元"]),
    "scale-none-dev-05": ("subject-lacks", "鹰嘴界", ["面积", "公顷", "平方公里", "亩"]),
    "scale-none-dev-06": ("subject-lacks", "徐传民", ["落网", "归案"]),
    "scale-none-dev-07": ("subject-lacks", "琶洲港澳客运码头", ["分钟", "小时", "船票", "票价"]),
}
# "卫东区" is in the seed page, so scale-none-07 only requires it to be absent from the corpus.
SEED_ONLY_ALLOWED = {"卫东区"}

WS = re.compile(r"\s+")


def squash(text: str) -> str:
    return WS.sub("", text)


def load(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:  # pragma: no cover - reported as a failure
            pytest.fail(f"{path.name}:{n}: not JSON: {e}")
        assert isinstance(row, dict), f"{path.name}:{n}: not an object"
        rows.append(row)
    return rows


@lru_cache(maxsize=None)
def seed_text() -> str:
    return squash((ROOT / "knowledge" / "raw" / SEED_NAME).read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def corpus_lines() -> dict[str, str]:
    lines = {}
    for name in CORPUS_FILES:
        text = (CORPUS / name).read_text(encoding="utf-8")
        for n, line in enumerate(text.split("\n"), 1):
            lines[f"{name}:{n}"] = squash(line)
    return lines


@lru_cache(maxsize=None)
def questions() -> tuple[dict, ...]:
    return tuple(load(QUESTIONS))


@lru_cache(maxsize=None)
def scale_questions() -> tuple[dict, ...]:
    return tuple(load(SCALE_QUESTIONS))


@lru_cache(maxsize=None)
def cmrc_questions() -> tuple[dict, ...]:
    return tuple(load(CMRC_QUESTIONS))


def item_of(pos: int) -> str:
    seed = seed_text()
    starts = [(seed.find(anchor), name) for name, anchor in ITEM_ANCHORS]
    current = starts[0][1]
    for start, name in starts:
        if start <= pos:
            current = name
    return current


def sentences_with(evidence: str) -> list[str]:
    """The seed-page sentences (split at 。！？) that contain the evidence string."""
    return [s for s in re.split(r"(?<=[。！？])", seed_text()) if evidence in s]


# ---------------------------------------------------------------- format, both files

@pytest.mark.parametrize("path,extra", [(QUESTIONS, {}), (SCALE_QUESTIONS, {"doc": str}),
                                        (CMRC_QUESTIONS, {"doc": str})],
                         ids=["questions", "scale_questions", "cmrc_questions"])
def test_rows_have_required_fields_with_types(path, extra):
    rows = load(path)
    assert rows, f"{path} is empty"
    allowed = set(REQUIRED) | set(OPTIONAL) | set(extra)
    for row in rows:
        rid = row.get("id", "<no id>")
        for field, typ in REQUIRED.items():
            assert field in row, f"{rid}: missing {field}"
            assert isinstance(row[field], typ), f"{rid}: {field} must be {typ.__name__}"
        assert set(row) <= allowed, f"{rid}: unknown fields {set(row) - allowed}"
        assert row["id"].strip() and row["question"].strip(), f"{rid}: empty id or question"
        assert row["split"] in SPLITS, f"{rid}: split {row['split']!r}"
        assert all(isinstance(e, str) and squash(e) for e in row["evidence"]), f"{rid}: evidence"
        assert all(isinstance(f, str) and squash(f) for f in row["facts"]), f"{rid}: facts"
        if row["answerable"]:
            assert row["evidence"] and row["facts"], f"{rid}: answerable needs evidence and facts"
            assert len(row["evidence"]) <= 3, f"{rid}: give 1-3 evidence alternatives"
        else:
            assert row["evidence"] == [] and row["facts"] == [], f"{rid}: unanswerable has no evidence/facts"
        if "history" in row:
            assert row["history"], f"{rid}: empty history"
            for turn in row["history"]:
                assert isinstance(turn, list) and len(turn) == 2, f"{rid}: history turn must be [user, assistant]"
                assert all(isinstance(t, str) and t.strip() for t in turn), f"{rid}: empty history turn"
        for field, typ in extra.items():
            if field == "doc" and not row["answerable"]:
                continue
            assert isinstance(row.get(field), typ), f"{rid}: {field} must be {typ.__name__}"


def test_ids_unique_within_and_across_files():
    ids = [r["id"] for r in questions() + scale_questions() + cmrc_questions()]
    dup = [i for i, c in Counter(ids).items() if c > 1]
    assert not dup, f"duplicate ids: {dup}"


def test_no_duplicate_questions():
    keys = [(r["question"], json.dumps(r.get("history"), ensure_ascii=False))
            for r in questions() + scale_questions() + cmrc_questions()]
    dup = [k[0] for k, c in Counter(keys).items() if c > 1]
    assert not dup, f"duplicate questions: {dup}"


# ---------------------------------------------------------------- eval/questions.jsonl

def test_categories_and_id_prefixes():
    for r in questions():
        cat = r["category"]
        assert cat in SEED_CATEGORIES, f"{r['id']}: unknown category {cat!r}"
        assert re.fullmatch(rf"{re.escape(SEED_CATEGORIES[cat])}-\d+", r["id"]), \
            f"{r['id']}: id prefix should be {SEED_CATEGORIES[cat]}-NN for category {cat}"
        assert r["answerable"] == (cat != "unanswerable"), f"{r['id']}: answerable vs category"
        if cat == "followup":
            assert r.get("history"), f"{r['id']}: follow-ups need a history"


def test_split_is_about_40_percent_dev_in_every_category():
    rows = questions()
    dev = sum(r["split"] == "dev" for r in rows)
    assert 0.33 <= dev / len(rows) <= 0.47, f"dev share {dev}/{len(rows)}"
    by_cat = defaultdict(Counter)
    for r in rows:
        by_cat[r["category"]][r["split"]] += 1
    assert set(by_cat) == set(SEED_CATEGORIES), f"categories without questions: {set(SEED_CATEGORIES) - set(by_cat)}"
    for cat, c in by_cat.items():
        assert c["dev"] and c["test"], f"{cat}: needs both dev and test ({dict(c)})"
        assert 0.25 <= c["dev"] / (c["dev"] + c["test"]) <= 0.55, f"{cat}: dev share {dict(c)}"


def test_minimum_counts():
    rows = questions()
    cats = Counter(r["category"] for r in rows)
    assert len(rows) >= 85
    assert sum(not r["answerable"] for r in rows) >= 18
    assert sum(bool(r.get("history")) for r in rows) >= 12
    assert cats["followup"] >= 12
    assert cats["colloquial"] >= 12
    assert cats["traditional"] >= 6
    assert cats["english"] >= 6
    answerable_q = [r["question"] for r in rows if r["answerable"]]
    assert sum("谁" in q or "誰" in q for q in answerable_q) >= 3, "谁 questions"
    assert sum(bool(re.search("哪里|哪儿|在哪|哪個|哪个|哪家", q)) for q in answerable_q) >= 3, "哪里 questions"
    assert sum(bool(re.search("怎么|如何|咋", q)) for q in answerable_q) >= 3, "怎么/如何 questions"
    assert sum(bool(re.search("多少|几|幾", q)) for q in answerable_q) >= 20, "多少/几 questions"


def test_every_page_item_is_covered_at_least_three_times():
    seed = seed_text()
    for name, anchor in ITEM_ANCHORS:
        assert anchor in seed, f"anchor for {name} not in the seed page"
    covered = Counter()
    for r in questions():
        if r["evidence"]:
            covered[item_of(seed.find(squash(r["evidence"][0])))] += 1
    for name, _ in ITEM_ANCHORS:
        assert covered[name] >= 3, f"item {name} covered by {covered[name]} questions"


def test_evidence_occurs_verbatim_in_seed_page():
    seed = seed_text()
    for r in questions():
        for e in r["evidence"]:
            e2 = squash(e)
            assert e2 in seed, f"{r['id']}: evidence not in the page: {e!r}"
            assert 6 <= len(e2) <= 25, f"{r['id']}: evidence should be 6-25 chars: {e!r}"
            assert sentences_with(e2), f"{r['id']}: evidence crosses a sentence end: {e!r}"


def test_facts_occur_in_an_evidence_sentence():
    for r in questions():
        sents = [s for e in r["evidence"] for s in sentences_with(squash(e))]
        for f in r["facts"]:
            f2 = squash(f)
            assert any(f2 in squash(e) for e in r["evidence"]) or any(f2 in s for s in sents), \
                f"{r['id']}: fact {f!r} not in its evidence sentence"


def test_traditional_questions_are_traditional():
    try:
        import opencc  # opencc-python-reimplemented
        to_simplified = opencc.OpenCC("t2s").convert
    except Exception:  # pragma: no cover - fallback without opencc
        trad = set("衛東區們這誰麼幾個戶發錢與國學會報書紀監財務環濃濁齒顆兒驗養護權聯")
        to_simplified = lambda s: "".join("x" if ch in trad else ch for ch in s)  # noqa: E731
    for r in questions():
        if r["category"] == "traditional":
            assert to_simplified(r["question"]) != r["question"], f"{r['id']}: not Traditional Chinese"


def test_english_questions_are_english():
    for r in questions():
        if r["category"] == "english":
            q = r["question"]
            assert all(ord(ch) < 128 for ch in q) and re.search("[A-Za-z]{3}", q), f"{r['id']}: not English"


# ---------------------------------------------------------------- eval/scale_questions.jsonl

def test_scale_categories_counts_and_split():
    rows = scale_questions()
    for r in rows:
        cat = r["category"]
        assert cat in SCALE_CATEGORIES, f"{r['id']}: category {cat!r}"
        # test ids: scale-NN / scale-none-NN; dev ids: scale-dev-NN / scale-none-dev-NN
        infix = "-dev" if r["split"] == "dev" else ""
        assert re.fullmatch(rf"{SCALE_CATEGORIES[cat]}{infix}-\d+", r["id"]), f"{r['id']}: id prefix"
        assert r["answerable"] == (cat == "scale"), f"{r['id']}: answerable vs category"
    by_split = defaultdict(Counter)
    for r in rows:
        by_split[r["split"]][r["category"]] += 1
    assert by_split["test"]["scale"] >= 36
    assert by_split["test"]["scale-none"] >= 6
    assert by_split["dev"]["scale"] >= 25
    assert by_split["dev"]["scale-none"] >= 6
    docs = defaultdict(set)
    for r in rows:
        if r["answerable"]:
            docs[r["split"]].add(r["doc"])
    shared = docs["dev"] & docs["test"]
    assert not shared, f"dev and test share documents: {sorted(shared)}"


def test_scale_docs_are_distinct_and_spread_over_both_files():
    docs = [r["doc"] for r in scale_questions() if r["answerable"]]
    assert len(docs) == len(set(docs)), "each scale question should use its own document"
    per_file = Counter(d.split(":")[0] for d in docs)
    for name in CORPUS_FILES:
        assert per_file[name] >= 10, f"too few questions from {name}: {per_file}"


def test_scale_evidence_in_named_line_and_nowhere_else():
    lines = corpus_lines()
    seed = seed_text()
    for r in scale_questions():
        if not r["answerable"]:
            assert "doc" not in r or not r["doc"], f"{r['id']}: unanswerable has no doc"
            continue
        doc = r["doc"]
        assert re.fullmatch(r"part-[12]\.txt:\d+", doc), f"{r['id']}: doc {doc!r}"
        assert doc in lines and lines[doc], f"{r['id']}: no such corpus line {doc}"
        target = lines[doc]
        for e in r["evidence"]:
            e2 = squash(e)
            assert 4 <= len(e2) <= 30, f"{r['id']}: evidence length {e!r}"
            assert e2 in target, f"{r['id']}: evidence not in {doc}: {e!r}"
            others = [k for k, v in lines.items() if e2 in v and v != target]
            assert not others, f"{r['id']}: evidence {e!r} also in {others[:5]}"
            assert e2 not in seed, f"{r['id']}: evidence also in the seed page"
        for f in r["facts"]:
            assert any(squash(f) in squash(e) for e in r["evidence"]), f"{r['id']}: fact {f!r} not in evidence"


def test_scale_unanswerables_are_absent():
    lines = corpus_lines()
    seed = seed_text()
    nones = [r for r in scale_questions() if not r["answerable"]]
    for r in nones:
        assert r["id"] in SCALE_NONE_CHECKS, f"{r['id']}: add an absence check to SCALE_NONE_CHECKS"
        check = SCALE_NONE_CHECKS[r["id"]]
        if check[0] == "absent":
            for term in check[1]:
                hits = [k for k, v in lines.items() if term in v]
                assert not hits, f"{r['id']}: {term!r} occurs in {hits[:5]}"
                if term not in SEED_ONLY_ALLOWED:
                    assert term not in seed, f"{r['id']}: {term!r} occurs in the seed page"
        else:
            _, subject, terms = check
            hits = [k for k, v in lines.items() if subject in v]
            assert len(hits) == 1, f"{r['id']}: subject {subject!r} in {hits[:5]}"
            assert not [t for t in terms if t in lines[hits[0]]], f"{r['id']}: {hits[0]} states it"


# ---------------------------------------------------------------- eval/cmrc_questions.jsonl

def test_cmrc_file_is_what_import_cmrc_writes(tmp_path):
    fresh = tmp_path / "cmrc_questions.jsonl"
    build(CMRC2018 / "cmrc2018_dev.json", tmp_path / "knowledge", fresh)
    assert fresh.read_bytes() == CMRC_QUESTIONS.read_bytes(), "rerun `python -m bot import-cmrc` (see eval/README.md)"


def test_cmrc_splits_by_article_with_a_realistic_mix():
    rows = cmrc_questions()
    split_of = defaultdict(set)
    counts = defaultdict(Counter)
    for r in rows:
        assert r["category"] == ("cmrc" if r["answerable"] else "cmrc-none"), r["id"]
        split_of[r["doc"]].add(r["split"])
        counts[r["split"]][r["answerable"]] += 1
    assert all(len(s) == 1 for s in split_of.values()), "an article in both dev and test"
    test, dev = counts["test"], counts["dev"]
    assert sum(test.values()) >= 300
    assert 0.35 <= sum(dev.values()) / len(rows) <= 0.5
    for c in (test, dev):
        assert 0.1 <= c[False] / (c[True] + c[False]) <= 0.3, f"near-miss share {dict(c)}"
