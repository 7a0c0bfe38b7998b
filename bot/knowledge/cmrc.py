"""CMRC 2018 as an eval set: Chinese Wikipedia paragraphs with people's questions and answer spans.

Nobody on this project wrote or tuned on these questions, so they measure answer selection and refusal beyond
the district's own articles. A deterministic sample of articles is taken (a hash of the article id decides, so
the set is the same on every machine and Python version). Of the sample, a share is **held out**: its article
file is not written, and its questions become unanswerable near misses — same genre and often the same topic
family as articles that stay (railways, games, people, species), but the asked-for fact is in no file.
Dev and test are split by article, never by question, so no article serves both.

The paragraphs are CC BY-SA 4.0 (Cui et al., EMNLP 2019) and stay out of the repository: the knowledge folder
is written on the fly to a git-ignored place; only the derived question file is committed (see eval/README.md).
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bot.knowledge.chunking import chunk_article, split_sentences
from bot.knowledge.corpus import derive_title
from bot.knowledge.articles import Article, normalize_body, render_article

DEV_FILE = "cmrc2018_dev.json"
SUBFOLDER = "cmrc2018"  # inside the knowledge folder; the only place stale article files are removed from
SAMPLE_PERCENT = 45  # of the 848 dev articles: ~380, indexed and evaluated in a few minutes on one core
HELD_OUT_PERCENT = 20  # of the sample: ~20% of the questions become near misses
DEV_PERCENT = 40  # of the sample's articles; the rest is test
CONTEXT_CHARS = 8  # evidence = the answer plus up to this much of its sentence on each side
MAX_EVIDENCE = 3
WHITESPACE = re.compile(r"\s+")


def bucket(purpose: str, article_id: str) -> int:
    """0–99 from a hash of the article id: stable across runs and machines (unlike ``hash()``)."""
    digest = hashlib.sha256(f"{purpose}:{article_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100


@dataclass(frozen=True)
class CmrcArticle:
    id: str  # CMRC's, e.g. DEV_12
    article: Article
    questions: tuple[dict, ...]  # the SQuAD ``qas`` records
    held_out: bool
    split: str


def article_id(cmrc_id: str) -> str:
    return "cmrc-" + cmrc_id.lower().replace("_", "-")


def read_articles(data_file: Path, sample_percent: int = SAMPLE_PERCENT, held_out_percent: int = HELD_OUT_PERCENT,
                  dev_percent: int = DEV_PERCENT) -> list[CmrcArticle]:
    """The sampled articles of a SQuAD-style CMRC file, in file order, each with its role and split."""
    data = json.loads(Path(data_file).read_text(encoding="utf-8"))["data"]
    result = []
    for record in data:
        cmrc_id = record["id"]
        if bucket("sample", cmrc_id) >= sample_percent:
            continue
        body = normalize_body("\n".join(p["context"] for p in record["paragraphs"]))
        title = record["title"].strip() or derive_title(body)  # two CMRC articles have an empty title
        article = Article(id=article_id(cmrc_id), title=title, body=body, kind="news",
                          source_file=f"{Path(data_file).name}:{cmrc_id}")
        questions = tuple(q for p in record["paragraphs"] for q in p["qas"])
        result.append(CmrcArticle(cmrc_id, article, questions, held_out=bucket("held-out", cmrc_id) < held_out_percent,
                                  split="dev" if bucket("split", cmrc_id) < dev_percent else "test"))
    return result


def locate(body: str, text: str, start: int) -> int | None:
    """Where the answer ``text`` is in ``body``: the occurrence nearest to CMRC's ``answer_start`` (about 2% of
    the offsets are off by a few characters, and normalising the paragraph may shift them)."""
    found = [m.start() for m in re.finditer(re.escape(text), body)]
    return min(found, key=lambda pos: (abs(pos - start), pos)) if found else None


def evidence_span(body: str, start: int, end: int) -> str:
    """The answer with up to CONTEXT_CHARS of its sentence on each side: verbatim, inside one sentence, so
    that a passage holding it holds the answer where the article states it."""
    for sentence in split_sentences(body):
        if sentence.start <= start and end <= sentence.end:
            return body[max(sentence.start, start - CONTEXT_CHARS):min(sentence.end, end + CONTEXT_CHARS)]
    return body[start:end]  # an answer across a sentence end is its own evidence


def squash(text: str) -> str:
    return WHITESPACE.sub("", text)


def question_record(item: CmrcArticle, qa: dict, passages: list[str]) -> dict | None:
    """The project-format question for one CMRC question, or None when no answer span lies inside one of the
    article's ``passages`` (its chunks' text, squashed): then no passage could ever be credited with it."""
    body = item.article.body
    placed = {}  # answer text -> its evidence span, for the answers that lie inside a passage
    for answer in qa["answers"]:
        text = answer["text"].strip()
        start = locate(body, text, answer["answer_start"]) if text else None
        if start is None or text in placed:
            continue
        span = evidence_span(body, start, start + len(text))
        if any(squash(span) in passage for passage in passages):
            placed[text] = span
    if not placed:
        return None
    spans = list(dict.fromkeys(placed.values()))
    # A span that contains another adds nothing: any passage holding it holds the shorter one too.
    evidence = [e for e in spans if not any(other != e and other in e for other in spans)]
    # Annotators differ in span length (村雨城 / 任天堂游戏谜之村雨城): the fact is the shortest answer that all
    # the others contain, else the first annotator's whose evidence was kept.
    answers = list(placed)
    common = [a for a in sorted(answers, key=len) if all(a in other for other in answers)]
    fact = common[0] if common else next(a for a in answers if placed[a] in evidence)
    return {"id": f"cmrc-{qa['id']}", "question": qa["question"].strip(), "answerable": True,
            "evidence": evidence[:MAX_EVIDENCE], "facts": [fact], "category": "cmrc", "split": item.split,
            "doc": item.id}


def near_miss(record: dict) -> dict:
    """The question of a held-out article: to be refused, since its article is not in the knowledge."""
    return {**record, "id": record["id"].replace("cmrc-", "cmrc-none-", 1), "answerable": False, "evidence": [],
            "facts": [], "category": "cmrc-none"}


@dataclass
class Built:
    knowledge_articles: int
    held_out_articles: int
    questions: Counter  # (split, category) -> count
    skipped: Counter  # reason -> count


def build(data_file: Path, knowledge_dir: Path, questions_file: Path, **percents) -> Built:
    """Write the kept articles to ``<knowledge_dir>/cmrc2018/`` (removing files of articles no longer kept) and
    every usable question to ``questions_file`` (JSON Lines, the project's question format)."""
    items = read_articles(data_file, **percents)
    kept = [item for item in items if not item.held_out]
    kept_text = "\n".join(squash(item.article.body) for item in kept)
    folder = Path(knowledge_dir) / SUBFOLDER
    folder.mkdir(parents=True, exist_ok=True)
    written = set()
    for item in kept:
        name = f"{item.article.id}.md"
        (folder / name).write_text(render_article(item.article), encoding="utf-8")
        written.add(name)
    for stale in folder.glob("*.md"):
        if stale.name not in written:  # a held-out article must never be left behind by an earlier run
            stale.unlink()
    counts, skipped, lines = Counter(), Counter(), []
    for item in items:
        passages = [squash(chunk.text) for chunk in chunk_article(item.article)]
        for qa in item.questions:
            record = question_record(item, qa, passages)
            if record is None:
                skipped["no answer span inside one passage"] += 1
                continue
            if item.held_out:
                # The same sentence in a kept article (Wikipedia repeats itself) would make it answerable.
                if any(squash(e) in kept_text for e in record["evidence"]):
                    skipped["held-out evidence also in a kept article"] += 1
                    continue
                record = near_miss(record)
            counts[record["split"], record["category"]] += 1
            lines.append(json.dumps(record, ensure_ascii=False))
    Path(questions_file).parent.mkdir(parents=True, exist_ok=True)
    Path(questions_file).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return Built(len(kept), len(items) - len(kept), counts, skipped)
