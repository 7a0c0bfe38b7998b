"""Evaluation: ask the bot every question of a question file and score the answers.

``python -m bot eval QUESTIONS.jsonl [--out DIR] [--knowledge DIR] [--index DIR] [--split dev|test|all]``

The question format and the metric definitions are in eval/README.md; this module implements exactly those.
Pipeline: ``load_questions`` -> ``run`` -> ``metrics`` -> ``write_report`` (``main`` wires them for the CLI).
"""
from __future__ import annotations

import json
import math
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails
from tqdm import tqdm

from bot.answer.assistant import Assistant
from bot.answer.types import Answer, Citation
from bot.config import ROOT, Settings
from bot.search.index import IndexMismatchError
from bot.search.ingest import ingest

SPLITS = ("dev", "test")
DEFAULT_OUT = ROOT / "eval" / "out"
# grounding.refusal() opens every canned don't-know answer with this; README counts it as a refusal even
# when a generator path forgets to set Answer.refused.
CANNED_REFUSAL = "抱歉，现有资料中没有"
WHITESPACE = re.compile(r"\s+")
JSON_TYPES = {str: "string", bool: "boolean", list: "array", dict: "object", int: "number", float: "number",
              type(None): "null"}
MAX_REPORTED_LINES = 20  # enough to see the pattern of a broken file without flooding the terminal
PASSAGE_PREVIEW_CHARS = 80
EXCERPT_CHARS = 30  # either side of a JSON error: enough to recognise the spot, short enough for one line


class QuestionFileError(ValueError):
    """A question file that cannot be evaluated. ``problems`` holds every bad line found (up to
    MAX_REPORTED_LINES) as (1-based line, what is wrong); the line is None for whole-file problems."""

    def __init__(self, path: Path, problems: list[tuple[int | None, str]], more: int = 0):
        self.path, self.problems = path, problems
        self.line, self.problem = problems[0]
        lines = [f"{path}:{line}: {problem}" if line else f"{path}: {problem}" for line, problem in problems]
        if more:
            lines.append(f"{path}: ... and {more} more bad lines")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answerable: bool
    evidence: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()
    history: tuple[tuple[str, str], ...] = ()
    category: str = ""
    split: str | None = None


@dataclass(frozen=True)
class Result:
    question: Question
    answer: str
    refused: bool
    citations: tuple[dict, ...]  # as written to answers.jsonl: n, article_id, title, date, text
    retrieved: tuple[str, ...]  # texts of the passages the answer was based on, best first
    latency_ms: float
    condensed_query: str = ""

    @property
    def evidence_rank(self) -> int | None:
        """1-based rank of the first retrieved passage holding any evidence string."""
        return next((rank for rank, text in enumerate(self.retrieved, start=1)
                     if contains_evidence(text, self.question.evidence)), None)

    def hit(self, k: int) -> bool:
        rank = self.evidence_rank
        return rank is not None and rank <= k

    @property
    def reciprocal_rank(self) -> float:
        rank = self.evidence_rank
        return 1.0 / rank if rank else 0.0

    @property
    def cites_evidence(self) -> bool:
        return not self.refused and any(contains_evidence(c["text"], self.question.evidence) for c in self.citations)

    @property
    def missing_facts(self) -> list[str]:
        answer = squash(self.answer)
        return [fact for fact in self.question.facts if squash(fact) not in answer]

    @property
    def states_facts(self) -> bool:
        return not self.refused and not self.missing_facts

    def failures(self) -> list[str]:
        """Why this question counts against a gated metric (empty when it does not)."""
        if not self.question.answerable:
            return [] if self.refused else ["answered an unanswerable question"]
        if self.refused:
            return ["false refusal"]
        kinds = [] if self.cites_evidence else ["evidence not cited"]
        if self.missing_facts:
            kinds.append("missing facts: " + ", ".join(self.missing_facts))
        return kinds


# ---- loading ----------------------------------------------------------------------------------------------

def squash(text: str) -> str:
    """All comparisons ignore whitespace (it also joins the print dump's column breaks)."""
    return WHITESPACE.sub("", text)


def contains_evidence(text: str, evidence: Iterable[str]) -> bool:
    haystack = squash(text)
    return any(squash(span) in haystack for span in evidence)


def default_category(question_id: str) -> str:
    return question_id.rsplit("-", 1)[0]


def _json_type(value) -> str:
    return JSON_TYPES.get(type(value), type(value).__name__)


def _stripped_nonempty(text: str) -> str:
    if not text.strip():
        raise ValueError("empty")
    return text


def _squashed_nonempty(text: str) -> str:
    if not squash(text):
        raise ValueError("empty")
    return text


Text = Annotated[str, AfterValidator(_stripped_nonempty)]
Span = Annotated[str, AfterValidator(_squashed_nonempty)]  # evidence and facts are compared squashed
Turn = Annotated[list[str], Field(min_length=2, max_length=2)]


class QuestionLine(BaseModel):
    """One line of a question file, as eval/README.md defines it. Strict: JSON true/false must not pass as
    numbers or strings, nor numbers as strings. Fields the README does not list (``doc``) are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")

    id: Text
    question: Text
    answerable: bool
    evidence: list[Span] = []
    facts: list[Span] = []
    history: list[Turn] = []
    category: str | None = None
    split: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> QuestionLine:
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"field 'split' must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.answerable and not self.evidence:
            raise ValueError("an answerable question needs at least one evidence string")
        if not self.answerable and (self.evidence or self.facts):
            raise ValueError("an unanswerable question must have empty 'evidence' and 'facts'")
        return self

    def to_question(self) -> Question:
        return Question(id=self.id, question=self.question, answerable=self.answerable,
                        evidence=tuple(self.evidence), facts=tuple(self.facts),
                        history=tuple((user, bot) for user, bot in self.history),
                        category=self.category or default_category(self.id), split=self.split)


FIELD_RULES = {  # the README's wording of each field's rule, for pydantic errors inside a field
    "evidence": "field 'evidence' must be an array of non-empty strings",
    "facts": "field 'facts' must be an array of non-empty strings",
    "history": "field 'history' must be an array of [user, assistant] string pairs",
}
FIELD_KINDS = {"id": "string", "question": "string", "answerable": "boolean", "category": "string",
               "split": "string"}


def describe(error: ErrorDetails) -> str:
    """A pydantic error in the words of eval/README.md (and of the messages users already know)."""
    loc, kind = error["loc"], error["type"]
    if not loc:
        if kind == "model_type":
            return f"expected a JSON object, got {_json_type(error['input'])}"
        return str(error["ctx"]["error"]) if kind == "value_error" else error["msg"]
    name = loc[0]
    if kind == "missing":
        return f"missing field {name!r}"
    if name in FIELD_RULES:
        return FIELD_RULES[name]
    if kind == "value_error":  # only _stripped_nonempty raises inside id and question
        return f"field {name!r} is empty"
    return f"field {name!r} must be a {FIELD_KINDS[name]}, got {_json_type(error['input'])}"


def parse_question(record) -> Question:
    """One decoded JSON line -> Question; raises ValueError listing every problem of the line."""
    try:
        return QuestionLine.model_validate(record).to_question()
    except ValidationError as exc:
        raise ValueError("; ".join(dict.fromkeys(describe(e) for e in exc.errors()))) from None


def _parse_line(raw: bytes) -> Question | None:
    try:
        text = raw.decode("utf-8-sig")  # -sig: tolerate a BOM from Windows editors
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 (byte {exc.start + 1})") from None
    if not text.strip():
        return None
    text = text.rstrip("\r\n")  # with the line end kept, an error at the end is reported as "line 2, column 1"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        # The hint matters for pretty-printed files: there every line fails.
        raise ValueError(f"invalid JSON: {exc.msg} {_json_error_place(text, exc.pos)}; "
                         "each line must hold one whole JSON object") from None
    return parse_question(record)


def _json_error_place(line: str, pos: int) -> str:
    """Where on the line the JSON error is, with the text around it (lines can be long, so only an excerpt)."""
    start, end = max(0, pos - EXCERPT_CHARS), pos + EXCERPT_CHARS
    excerpt = ("…" if start else "") + line[start:end] + ("…" if end < len(line) else "")
    where = "at the end of the line" if pos >= len(line) else f"at column {pos + 1}"
    return f"{where}, near {excerpt!r}"


def load_questions(path: Path) -> list[Question]:
    """Every question of a JSON Lines file (blank lines skipped). Raises QuestionFileError naming every bad
    line (the first MAX_REPORTED_LINES of them), so one run shows all that needs fixing."""
    path = Path(path)
    questions, first_seen, problems = [], {}, []
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                question = _parse_line(raw)
            except ValueError as exc:
                problems.append((number, str(exc)))
                continue
            if question is None:
                continue
            if question.id in first_seen:
                problems.append((number, f"duplicate id {question.id!r} (first on line {first_seen[question.id]})"))
                continue
            first_seen[question.id] = number
            questions.append(question)
    if problems:
        raise QuestionFileError(path, problems[:MAX_REPORTED_LINES], more=max(0, len(problems) - MAX_REPORTED_LINES))
    if not questions:
        raise QuestionFileError(path, [(None, "no questions")])
    return questions


def select_split(questions: list[Question], split: str) -> list[Question]:
    return list(questions) if split == "all" else [q for q in questions if q.split == split]


# ---- running ----------------------------------------------------------------------------------------------

def is_refusal(answer: Answer) -> bool:
    return answer.refused or squash(answer.text).startswith(CANNED_REFUSAL)


def citation_record(citation: Citation) -> dict:
    return {"n": citation.n, "article_id": citation.article_id, "title": citation.title, "date": citation.date,
            "text": citation.text}


def retrieved_texts(assistant, answer: Answer) -> tuple[str, ...]:
    """The ranked passages the answer was based on: Answer.scores ids mapped back to their text.

    Reusing them (instead of searching again) scores the very retrieval the answer saw, history included.
    A chunk deleted since then keeps its rank with empty text, so it simply holds no evidence.
    """
    chunks = (assistant.index.chunk(score["chunk_id"]) for score in answer.scores)
    return tuple(chunk.text if chunk else "" for chunk in chunks)


def ask(assistant, question: Question) -> Result:
    started = time.perf_counter()
    answer = assistant.ask(question.question, [list(turn) for turn in question.history])
    return result_of(assistant, question, answer, (time.perf_counter() - started) * 1000)


def result_of(assistant, question: Question, answer: Answer, latency_ms: float) -> Result:
    return Result(question=question, answer=answer.text, refused=is_refusal(answer),
                  citations=tuple(citation_record(c) for c in answer.citations),
                  retrieved=retrieved_texts(assistant, answer), latency_ms=latency_ms,
                  condensed_query=answer.condensed_query)


def run(assistant, questions: list[Question], progress: bool = False) -> list[Result]:
    if questions:
        # Untimed warm-up: one-time loading (jieba dictionary, keyword index) must not count as latency.
        assistant.ask(questions[0].question)
    return [ask(assistant, q) for q in tqdm(questions, desc="answering", unit="question", disable=not progress)]


# ---- metrics ----------------------------------------------------------------------------------------------

def _rate(results: list[Result], outcome: Callable[[Result], float]) -> float | None:
    return sum(outcome(r) for r in results) / len(results) if results else None


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), q in 0..100."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def score(results: list[Result]) -> dict:
    """One metric row; a metric whose question set (answerable A or unanswerable U) is empty is None."""
    answerable = [r for r in results if r.question.answerable]
    unanswerable = [r for r in results if not r.question.answerable]
    latencies = [r.latency_ms for r in results]
    return {
        "n": len(results), "answerable": len(answerable), "unanswerable": len(unanswerable),
        "hit@1": _rate(answerable, lambda r: r.hit(1)),
        "hit@5": _rate(answerable, lambda r: r.hit(5)),
        "mrr": _rate(answerable, lambda r: r.reciprocal_rank),
        "citation_accuracy": _rate(answerable, lambda r: r.cites_evidence),
        "fact_recall": _rate(answerable, lambda r: r.states_facts),
        "refusal_accuracy": _rate(unanswerable, lambda r: r.refused),
        "false_refusal_rate": _rate(answerable, lambda r: r.refused),
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p95_ms": percentile(latencies, 95),
    }


def _grouped(results: list[Result], key: Callable[[Result], str | None]) -> dict[str, dict]:
    groups: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        if key(r) is not None:
            groups[key(r)].append(r)
    return {name: score(members) for name, members in sorted(groups.items())}


def metrics(results: list[Result]) -> dict:
    return {"overall": score(results),
            "splits": _grouped(results, lambda r: r.question.split),
            "categories": _grouped(results, lambda r: r.question.category)}


# ---- reporting --------------------------------------------------------------------------------------------

COLUMNS = [("n", "n"), ("answerable", "A"), ("unanswerable", "U"), ("hit@1", "hit@1"), ("hit@5", "hit@5"),
           ("mrr", "MRR"), ("citation_accuracy", "citation acc"), ("fact_recall", "fact recall"),
           ("refusal_accuracy", "refusal acc"), ("false_refusal_rate", "false refusal"),
           ("latency_p50_ms", "p50 ms"), ("latency_p95_ms", "p95 ms")]


def _cell(key: str, value) -> str:
    if value is None:
        return "-"
    if key.endswith("_ms"):
        return f"{value:.0f}"
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def table_rows(table: dict) -> list[tuple[str, dict]]:
    """(label, row): overall, each split when there are several, then each category."""
    rows = [("all", table["overall"])]
    if len(table["splits"]) > 1:
        rows += [(f"split {name}", row) for name, row in table["splits"].items()]
    return rows + list(table["categories"].items())


def format_table(table: dict) -> str:
    """The metric table as Markdown, padded so it also reads well in a terminal."""
    header = ["group"] + [label for _, label in COLUMNS]
    body = [[label] + [_cell(key, row[key]) for key, _ in COLUMNS] for label, row in table_rows(table)]
    widths = [max(len(cells[i]) for cells in [header] + body) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths]] + body
    return "\n".join("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |" for cells in lines)


def answer_record(result: Result) -> dict:
    q = result.question
    return {"id": q.id, "question": q.question, "answer": result.answer, "refused": result.refused,
            "citations": list(result.citations), "latency_ms": round(result.latency_ms, 1)}


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.splitlines() or [""])


def _rank_note(result: Result) -> str:
    rank = result.evidence_rank
    where = f"rank {rank} of {len(result.retrieved)}" if rank else f"not among the {len(result.retrieved)}"
    return f"{where} retrieved passages"


def failure_section(result: Result) -> str:
    q = result.question
    parts = [f"### {q.id} ({q.category}): {'; '.join(result.failures())}", "", f"**Question:** {q.question}"]
    for user, bot in q.history:
        parts += ["", f"- earlier question: {user}", f"  - earlier answer: {bot}"]
    parts += ["", f"**Searched for:** {result.condensed_query or '-'}", "", "**Answer:**", "", _quote(result.answer)]
    if q.answerable:
        evidence = " / ".join(f"`{e}`" for e in q.evidence)
        facts = ", ".join(f"`{f}`" for f in q.facts) or "-"
        parts += ["", f"**Evidence:** {evidence} ({_rank_note(result)})", "", f"**Facts:** {facts}"]
    parts += ["", "**Cited passages:**" + ("" if result.citations else " none")]
    for c in result.citations:
        parts += ["", f"[{c['n']}] {c['title']} ({c['date'] or 'no date'})", "", _quote(c["text"])]
    parts += ["", "**Retrieved passages** (✓ holds evidence):", ""]
    for rank, text in enumerate(result.retrieved, start=1):
        mark = "✓" if contains_evidence(text, q.evidence) else " "
        preview = squash(text)[:PASSAGE_PREVIEW_CHARS]
        parts.append(f"{rank}. {mark} {preview}…")
    return "\n".join(parts)


def markdown_report(results: list[Result], table: dict, title: str) -> str:
    failed = [r for r in results if r.failures()]
    parts = [f"# {title}", "", "Metrics as defined in eval/README.md (`-` = no question to score).", "",
             format_table(table), "", "![metrics and latency](report.png)", "",
             f"## Failures ({len(failed)} of {len(results)} questions)", ""]
    parts += [failure_section(r) + "\n" for r in failed] or ["None.", ""]
    return "\n".join(parts)


CHART_METRICS = [("hit@1", "hit@1"), ("hit@5", "hit@5"), ("mrr", "MRR"), ("citation_accuracy", "citation\naccuracy"),
                 ("fact_recall", "fact\nrecall"), ("refusal_accuracy", "refusal\naccuracy"),
                 ("false_refusal_rate", "false-refusal\nrate")]


def write_chart(results: list[Result], table: dict, path: Path) -> None:
    """Overall metrics as bars and the latency histogram; English labels only (the default font has no CJK)."""
    overall = table["overall"]
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    FigureCanvasAgg(fig)  # explicit Agg canvas: no pyplot, no GUI backend, no global state
    bars_ax, latency_ax = fig.subplots(1, 2, width_ratios=[3, 2])
    shown = [(label, overall[key]) for key, label in CHART_METRICS if overall[key] is not None]
    bars = bars_ax.bar([label for label, _ in shown], [value for _, value in shown], color="#4c72b0")
    bars_ax.bar_label(bars, fmt="%.2f")
    bars_ax.set_ylim(0, 1.1)
    bars_ax.set_title(f"Overall metrics (n={overall['n']})")
    bars_ax.tick_params(axis="x", labelsize=8)
    latency_ax.hist([r.latency_ms for r in results], bins=20, color="#55a868")
    for key, label, style in (("latency_p50_ms", "p50", "--"), ("latency_p95_ms", "p95", ":")):
        if overall[key] is not None:
            latency_ax.axvline(overall[key], color="black", linestyle=style, label=f"{label} {overall[key]:.0f} ms")
    latency_ax.set_title("Latency per question")
    latency_ax.set_xlabel("ms")
    latency_ax.set_ylabel("questions")
    latency_ax.legend()
    fig.savefig(path, format="png", dpi=100)


def write_report(results: list[Result], table: dict, out_dir: Path, title: str = "Evaluation") -> None:
    """answers.jsonl (one line per question), report.md (metrics and every failure) and report.png."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "answers.jsonl").open("w", encoding="utf-8") as f:
        for result in results:
            f.write(json.dumps(answer_record(result), ensure_ascii=False) + "\n")
    (out_dir / "report.md").write_text(markdown_report(results, table, title), encoding="utf-8")
    write_chart(results, table, out_dir / "report.png")


# ---- command line -----------------------------------------------------------------------------------------

def print_error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


class SetupError(Exception):
    """The evaluation cannot run: a bad question file, a missing folder, an index built with another model."""


def prepare(args):
    """Questions of the chosen split and an up-to-date index, for ``eval`` and ``calibrate``.
    Returns (question file path, questions, settings, index)."""
    path = Path(args.questions)
    try:
        questions = select_split(load_questions(path), args.split)
    except QuestionFileError as exc:
        raise SetupError(str(exc)) from exc
    except OSError as exc:
        raise SetupError(f"cannot read {path}: {exc.strerror}") from exc
    if not questions:
        raise SetupError(f"{path}: no questions in split {args.split!r}")
    settings = Settings.from_env().with_paths(getattr(args, "knowledge", None), getattr(args, "index", None))
    if not settings.knowledge_dir.is_dir():
        raise SetupError(f"knowledge folder not found: {settings.knowledge_dir}")
    try:  # update the index first: an eval on a stale index measures nothing
        index, summary, errors = ingest(settings, progress=True)
    except IndexMismatchError as exc:
        raise SetupError(str(exc)) from exc
    for problem in errors:
        print(f"warning: {problem} (file skipped)", file=sys.stderr)
    print(f"index {index.location}: {summary.line()}", file=sys.stderr)
    return path, questions, settings, index


def main(args) -> int:
    """``python -m bot eval``: 0 when the evaluation ran (whatever the scores), 2 when it could not."""
    try:
        path, questions, settings, index = prepare(args)
    except SetupError as exc:
        return print_error(str(exc))
    results = run(Assistant(settings, index=index), questions, progress=True)
    table = metrics(results)
    out_dir = Path(args.out) if args.out else DEFAULT_OUT / path.stem
    title = f"Evaluation of {path.name} (split {args.split}, knowledge {settings.knowledge_dir.resolve()})"
    write_report(results, table, out_dir, title=title)
    print(format_table(table))
    print(f"\n{sum(bool(r.failures()) for r in results)} failures; wrote answers.jsonl, report.md, report.png "
          f"to {out_dir}")
    return 0
