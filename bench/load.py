"""Load test: concurrent client sessions against the real web app (app.py in a subprocess, loopback only).

Each session is its own gradio_client connection that runs conversations from eval/questions.jsonl: questions,
follow-ups that send the earlier turns as history, and 👍/👎 feedback (some with a comment) on the last answer.
Every answer must be identical (text, refusal, citations) to the one a single client got for the same
conversation beforehand, no call may fail, and the feedback store must hold exactly the feedback that was sent.

    python -m bench.load --sessions 20 --seconds 120 [--out bench/out/load]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.ingest import DEFAULT_CORPUS, SEED_KNOWLEDGE
from bench.run import DEFAULT_OUT, QUESTION_FILES, Size, ensure
from bot.config import ROOT, Settings
from bot.evaluation.evaluate import percentile
from bot.interfaces.feedback import FeedbackStore
from tests.webapp_helpers import start_app, stop_app

RESULTS = ROOT / "bench" / "load-results.md"
MAX_SESSIONS = 64
MAX_SECONDS = 900
COMMENT_EVERY = 3  # every third feedback carries a comment, unique so that a swapped write would show


@dataclass(frozen=True)
class Conversation:
    turns: tuple[str, ...]  # asked in order, each with the earlier turns and their answers as history
    rating: str  # feedback on the last answer


@dataclass
class LoadResult:
    sessions: int
    answers: int = 0
    feedback: dict[int, tuple] = field(default_factory=dict)  # id → what the stored record must say
    latencies_ms: list[float] = field(default_factory=list)  # /ask round trips, seen by the client
    server_ms: list[float] = field(default_factory=list)  # the same answers' own timings_ms["total"]
    answers_per_session: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, session: "LoadResult") -> None:
        self.answers += session.answers
        self.answers_per_session.append(session.answers)
        self.feedback.update(session.feedback)
        self.latencies_ms += session.latencies_ms
        self.server_ms += session.server_ms
        self.errors += session.errors
        self.mismatches += session.mismatches

    @property
    def throughput(self) -> float:
        return self.answers / self.seconds if self.seconds else 0.0


def conversations() -> list[Conversation]:
    """One conversation per question of eval/questions.jsonl; a follow-up is asked after its earlier turns."""
    items = [json.loads(line) for line in QUESTION_FILES[0].read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Conversation(tuple(user for user, _ in item.get("history") or []) + (item["question"],),
                         "up" if i % 2 == 0 else "down")
            for i, item in enumerate(items)]


def same_answer(answer: dict) -> tuple:
    """What must not depend on concurrency (timings do)."""
    return answer["text"], answer["refused"], answer["citations"]


def converse(client, conversation: Conversation, latencies: list[float] | None = None) -> list[dict]:
    answers, history = [], []
    for question in conversation.turns:
        started = time.perf_counter()
        answer = client.predict(question, history, api_name="/ask")
        if latencies is not None:
            latencies.append((time.perf_counter() - started) * 1000)
        answers.append(answer)
        history = history + [[question, answer["text"]]]
    return answers


def reference_answers(url: str, convs: list[Conversation]) -> tuple[list[list[dict]], list[float]]:
    """Every conversation once, one client, one call at a time; and those calls' latencies."""
    from gradio_client import Client

    client, latencies = Client(url, verbose=False), []
    return [converse(client, c, latencies) for c in convs], latencies


def run_session(url: str, number: int, convs: list[Conversation], references: list[list[dict]], deadline: float,
                result: LoadResult, lock: threading.Lock) -> None:
    """Conversations until the deadline, starting at a different one per session so sessions overlap in kind."""
    from gradio_client import Client

    mine = LoadResult(result.sessions)
    try:
        client = Client(url, verbose=False)
    except Exception as exc:  # a failed connection is an error of the run, not a crash of the benchmark
        mine.errors.append(f"session {number}: connect: {type(exc).__name__}: {exc}")
        deadline = 0.0
    step = 0
    while time.monotonic() < deadline:
        which = (number + step * result.sessions) % len(convs)
        conversation = convs[which]
        try:
            answers = converse(client, conversation, mine.latencies_ms)
            mine.answers += len(answers)
            mine.server_ms += [a["timings_ms"]["total"] for a in answers]
            for turn, (got, expected) in enumerate(zip(answers, references[which])):
                if same_answer(got) != same_answer(expected):
                    mine.mismatches.append(f"session {number}, conversation {which} turn {turn}: "
                                           f"{conversation.turns[turn]!r} answered differently")
            comment = f"会话{number}第{step}次反馈" if step % COMMENT_EVERY == 0 else ""
            feedback_id = client.predict(answers[-1]["answer_id"], conversation.rating, comment, api_name="/feedback")
            if isinstance(feedback_id, int):
                last = answers[-1]
                mine.feedback[feedback_id] = (conversation.rating, comment, last["question"], last["text"])
            else:
                mine.errors.append(f"session {number}: /feedback returned {feedback_id!r}")
        except Exception as exc:  # collected: an exception in a thread would otherwise be lost
            mine.errors.append(f"session {number}, conversation {which}: {type(exc).__name__}: {exc}")
        step += 1
    with lock:
        result.add(mine)


def run_load(url: str, convs: list[Conversation], references: list[list[dict]], sessions: int,
             seconds: float) -> LoadResult:
    """``sessions`` concurrent sessions for ``seconds`` (each finishes the conversation it is in)."""
    result, lock = LoadResult(sessions), threading.Lock()
    started = time.monotonic()
    threads = [threading.Thread(target=run_session, args=(url, n, convs, references, started + seconds, result, lock))
               for n in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - started
    return result


def check_feedback(settings: Settings, result: LoadResult) -> list[str]:
    """The store must hold each acknowledged feedback exactly once, as sent, and nothing else."""
    stored = {r.id: (r.rating, r.comment, r.question, r.answer) for r in FeedbackStore(settings.feedback_db).list()}
    if stored == result.feedback:
        return []
    differing = sorted(i for i in stored.keys() | result.feedback.keys() if stored.get(i) != result.feedback.get(i))
    return [f"feedback store holds {len(stored)} records for {len(result.feedback)} acknowledged; "
            f"ids that differ: {differing[:10]}"]


def server_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR " in line or line.startswith("Traceback")]


def scratch_settings(out: Path) -> Settings:
    """A private copy of the seed index (bench.run's, built if missing) and knowledge, with an empty data folder."""
    seed = Size("seed", "seed", "seed", 0, DEFAULT_OUT)
    ensure([seed], 0, DEFAULT_CORPUS)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(seed.index, out / "index")
    shutil.copytree(SEED_KNOWLEDGE, out / "knowledge")
    return seed.settings().with_(index_dir=out / "index", knowledge_dir=out / "knowledge", data_dir=out / "data")


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def report(command: str, started: str, result: LoadResult, conversations_count: int,
           references: list[list[dict]], reference_ms: list[float], cpu: tuple[float, float],
           problems: list[str]) -> str:
    reference_server_ms = [a["timings_ms"]["total"] for answers in references for a in answers]
    rows = [
        ("sessions (concurrent gradio_client connections)", f"{result.sessions}"),
        ("duration", f"{result.seconds:.1f} s"),
        ("conversations available", f"{conversations_count}"),
        ("answers (/ask calls)", f"{result.answers}"),
        ("answers per session, min / max", f"{min(result.answers_per_session, default=0)} / "
                                           f"{max(result.answers_per_session, default=0)}"),
        ("feedback calls (/feedback)", f"{len(result.feedback)}"),
        ("throughput", f"{result.throughput:.2f} answers/s"),
        ("/ask latency under load p50 / p95", f"{percentile(result.latencies_ms, 50):.0f} / "
                                              f"{percentile(result.latencies_ms, 95):.0f} ms"),
        ("  of which answering (the answers' timings_ms total) p50 / p95",
         f"{percentile(result.server_ms, 50):.0f} / {percentile(result.server_ms, 95):.0f} ms"),
        ("/ask latency, single client p50 / p95", f"{percentile(reference_ms, 50):.0f} / "
                                                  f"{percentile(reference_ms, 95):.0f} ms"),
        ("  of which answering p50 / p95",
         f"{percentile(reference_server_ms, 50):.0f} / {percentile(reference_server_ms, 95):.0f} ms"),
        ("CPU time during the load: app.py / the client sessions (this process)",
         f"{cpu[0]:.0f} s / {cpu[1]:.0f} s (of {psutil.cpu_count() * result.seconds:.0f} core-seconds)"),
        ("errors", f"{len(result.errors)}"),
        ("answers that differ from the single-client answer", f"{len(result.mismatches)}"),
        ("feedback store / server log problems", f"{len(problems)}"),
    ]
    lines = ["# Load test", "",
             f"`{command}` on {started}, {psutil.cpu_count()} CPU cores shared with other engineers' runs; "
             f"app.py (Gradio queue, default concurrency 4) on a scratch copy of the seed index, loopback only. "
             "The client sessions run on the same cores as the server: the CPU row shows how the machine was split, "
             "so the throughput and latency under load are those of server and clients together.", "",
             "| metric | value |", "|---|---:|", *[f"| {name} | {value} |" for name, value in rows]]
    details = result.errors + result.mismatches + problems
    if details:
        lines += ["", "## Problems", "", *[f"- {line}" for line in details[:50]]]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20, help=f"concurrent sessions, 1..{MAX_SESSIONS}")
    parser.add_argument("--seconds", type=float, default=120, help=f"duration, 1..{MAX_SECONDS}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT / "load", help="scratch folder (replaced)")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= MAX_SESSIONS:
        parser.error(f"--sessions must be between 1 and {MAX_SESSIONS}")
    if not 1 <= args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be between 1 and {MAX_SECONDS}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    command = "python -m bench.load" + ("" if not argv else " " + " ".join(argv))
    started = time.strftime("%Y-%m-%d %H:%M")
    settings = scratch_settings(args.out)
    app = start_app(settings, args.out / "app.log", password=None)
    try:
        convs = conversations()
        print(f"reference answers for {len(convs)} conversations, one client", flush=True)
        references, reference_ms = reference_answers(app.url, convs)
        print(f"{args.sessions} sessions for {args.seconds:.0f} s", flush=True)
        server, clients = psutil.Process(app.process.pid), psutil.Process()
        before = cpu_seconds(server), cpu_seconds(clients)
        result = run_load(app.url, convs, references, args.sessions, args.seconds)
        cpu = cpu_seconds(server) - before[0], cpu_seconds(clients) - before[1]
    finally:
        stop_app(app)
    problems = check_feedback(settings, result) + server_errors(app.log())
    text = report(command, started, result, len(convs), references, reference_ms, cpu, problems)
    RESULTS.write_text(text, encoding="utf-8")
    print(text)
    return 0 if not (result.errors or result.mismatches or problems) else 1


if __name__ == "__main__":
    sys.exit(main())
