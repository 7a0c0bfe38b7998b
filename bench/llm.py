"""The LLM path with a real model, against the extractive default, and the three refusal policies compared.

Each question is drafted by the extractive layer and then, whatever that layer decided, put to the model once
(llama.cpp through ``BOT_LLM_GGUF``, or ``BOT_LLM_BASE_URL``). Every policy of bot/answer/policy.py is settled
from the same reply, so the policies differ only in their decision, never in the model's luck. For each set and
policy: the eval metrics of the answers shown, the share of answered questions the model wrote, time to the
first streamed piece and total time per answer (a policy that does not consult the model about a question is
charged the extractive time for it). Writes bench/llm-results.md and one JSON line per question to bench/out/llm/.

    python -m bench.llm [--sets seed:dev,scale:dev] [--gguf PATH] [--limit N]

The scale set needs the index `make eval` builds (bench/out/index-all).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from bot.answer.assistant import Assistant
from bot.answer.gguf import QWEN_CODER_1_5B
from bot.answer.policy import consults, settle
from bot.config import LLM_REFUSAL_POLICIES, ROOT, Settings
from bot.evaluation.evaluate import Question, load_questions, percentile, result_of, score, select_split
from bot.search.ingest import ingest

OUT = ROOT / "bench" / "out" / "llm"
RESULTS = ROOT / "bench" / "llm-results.md"
SETS = {  # name: question file, knowledge folder, index folder (None: the settings' own)
    "seed": (ROOT / "eval" / "questions.jsonl", None, None),
    "scale": (ROOT / "eval" / "scale_questions.jsonl", ROOT / "bench" / "out" / "knowledge-all",
              ROOT / "bench" / "out" / "index-all"),
}
EXTRACTIVE_ONLY = "no LLM"


@dataclass(frozen=True)
class Timed:
    """One question as the model saw it: the extractive drafts, the model's generation, and when things came."""
    question: Question
    drafts: object  # bot.answer.assistant.Drafts
    generation: object | None  # bot.answer.policy.Generation, None when nothing was put to the model
    drafted_ms: float
    first_ms: float
    total_ms: float


def put(assistant: Assistant, question: Question) -> Timed:
    started = time.perf_counter()
    drafts = assistant.draft(question.question, [list(turn) for turn in question.history])
    drafted = _ms(started)
    if not drafts.focus:
        return Timed(question, drafts, None, drafted, drafted, drafted)
    pieces = assistant.generator.stream(drafts.answer.question, drafts.turns, drafts.retrieval, drafts.answer,
                                        drafts.focus)
    first = None
    while True:
        try:
            next(pieces)
        except StopIteration as stop:
            total = _ms(started)
            return Timed(question, drafts, stop.value, drafted, first or total, total)
        first = first or _ms(started)


def shown(policy: str, timed: Timed):
    """(answer, first-piece ms, total ms) that ``policy`` gives the resident."""
    draft = timed.drafts.answer
    if policy == EXTRACTIVE_ONLY or timed.generation is None or not consults(policy, draft):
        return draft, timed.drafted_ms, timed.drafted_ms
    return settle(policy, draft, timed.drafts.declined, timed.generation), timed.first_ms, timed.total_ms


def row(assistant: Assistant, policy: str, timed: list[Timed]) -> dict:
    answers = [shown(policy, t) for t in timed]
    results = [result_of(assistant, t.question, a, total) for t, (a, _, total) in zip(timed, answers)]
    metrics = score(results)
    answered = [a for t, (a, _, _) in zip(timed, answers) if t.question.answerable and not a.refused]
    firsts, totals = [f for _, f, _ in answers], [t for _, _, t in answers]
    return {**metrics, "generated": sum(a.mode == "llm" for a in answered) / len(answered) if answered else None,
            "first_p50_s": percentile(firsts, 50) / 1000, "first_p95_s": percentile(firsts, 95) / 1000,
            "total_p50_s": percentile(totals, 50) / 1000, "total_p95_s": percentile(totals, 95) / 1000}


COLUMNS = [("n", "n"), ("citation_accuracy", "citation acc"), ("fact_recall", "fact recall"),
           ("refusal_accuracy", "refusal acc"), ("false_refusal_rate", "false refusal"),
           ("generated", "LLM-written"), ("first_p50_s", "first piece p50 s"), ("first_p95_s", "p95 s"),
           ("total_p50_s", "total p50 s"), ("total_p95_s", "p95 s")]


def table(rows: dict[str, dict]) -> str:
    lines = ["| policy | " + " | ".join(label for _, label in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    for name, values in rows.items():
        cells = [str(values[k]) if k == "n" else ("–" if values[k] is None else f"{values[k]:.3f}"
                                                   if not k.endswith("_s") else f"{values[k]:.1f}")
                 for k, _ in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def record(timed: Timed) -> dict:
    generation = timed.generation
    return {"id": timed.question.id, "question": timed.question.question, "answerable": timed.question.answerable,
            "extractive_refused": timed.drafts.answer.refused, "extractive": timed.drafts.answer.text,
            "outcome": generation.outcome if generation else None,
            "llm": generation.answer.text if generation and generation.answer else None,
            "llm_cites": [c.article_id for c in generation.answer.citations] if generation and generation.answer
            else [], "extractive_cites": [c.article_id for c in timed.drafts.answer.citations],
            "removed": generation.removed if generation else 0,
            "first_ms": round(timed.first_ms), "total_ms": round(timed.total_ms)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.llm", description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="seed:dev,scale:dev,seed:test",
                        help="comma-separated name:split (names: %s)" % ", ".join(SETS))
    parser.add_argument("--gguf", default=str(ROOT / ".models" / QWEN_CODER_1_5B.filename),
                        help="the GGUF model (unless BOT_LLM_BASE_URL names a server)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many questions per set (0: all)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = Settings.from_env()
    if not base.llm_base_url:
        if not Path(args.gguf).is_file():
            raise SystemExit(f"{args.gguf} is missing: run `make llm-model`")
        base = base.with_(llm_gguf=Path(args.gguf))
    base = base.with_(llm_timeout=max(base.llm_timeout, 120.0))
    OUT.mkdir(parents=True, exist_ok=True)
    sections = []
    for spec in args.sets.split(","):
        name, _, split = spec.partition(":")
        path, knowledge, index = SETS[name]
        settings = base.with_paths(knowledge and str(knowledge), index and str(index))
        questions = select_split(load_questions(path), split or "dev")[:args.limit or None]
        assistant = Assistant(settings, index=ingest(settings, progress=False)[0])
        assistant.ask(questions[0].question)  # untimed: loads the model and fills llama.cpp's prompt cache
        timed = []
        for i, question in enumerate(questions, start=1):
            timed.append(put(assistant, question))
            print(f"{name}:{split} {i}/{len(questions)} {timed[-1].total_ms / 1000:.1f} s", flush=True)
        with open(OUT / f"{name}-{split}.jsonl", "w", encoding="utf-8") as out:
            out.writelines(json.dumps(record(t), ensure_ascii=False) + "\n" for t in timed)
        rows = {policy: row(assistant, policy, timed) for policy in (EXTRACTIVE_ONLY, *LLM_REFUSAL_POLICIES)}
        sections.append(f"## {name} {split} ({len(questions)} questions, {assistant.index.count()} chunks)\n\n"
                        + table(rows))
        print(sections[-1], flush=True)
    model = base.llm_model or Path(base.llm_gguf).name
    header = (f"# The LLM path: {model}, {base.llm_threads} llama.cpp thread(s) — `python -m bench.llm "
              f"--sets {args.sets}`\n\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
              f"average at the end {os.getloadavg()[0]:.1f}. Times per answer from the question to the first "
              f"streamed piece and to the end.\n")
    RESULTS.write_text(header + "\n" + "\n\n".join(sections) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")
    return 0


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    raise SystemExit(main())
