"""Load test: concurrent client sessions against the real web app, loopback only. By default two app.py workers
share one Chroma server (the index) and one PostgreSQL database (feedback, audit log, trash), as README
"Several workers" deploys them; ``--workers 1`` runs one app.py on a local index. Either way the seed knowledge
is copied to a scratch folder and indexed there first by ``python -m bot ingest``.

Each session is its own gradio_client connection, sticky to worker ``session % workers`` (as behind a sticky load
balancer), that runs conversations from eval/questions.jsonl: questions, follow-ups that send the earlier turns as
history, and 👍/👎 feedback (some with a comment) on the last answer. Every answer must be identical (text,
refusal, citations) to the one a single client got for the same conversation beforehand, no call may fail, and
the feedback store must hold exactly the feedback that was sent.

Meanwhile a member of staff logs in to the staff console, uploads an article with a fact of its own through one
worker, waits until every worker answers from it, deletes it through the next worker and starts again; a probe
session on each worker asks about that article throughout. No answer received after a delete was acknowledged
may cite the deleted article; how long each worker took to show an upload or a delete is reported.

    python -m bench.load --sessions 20 --seconds 120 [--workers 2] [--out bench/out/load]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.ingest import SEED_KNOWLEDGE
from bench.run import DEFAULT_OUT, QUESTION_FILES
from bot.config import ROOT, Settings
from bot.evaluation.evaluate import percentile
from bot.interfaces.audit import MAX_LIST, AuditLog
from bot.interfaces.feedback import FeedbackStore
from bot.search.index import REVISION_CHECK_SECONDS

# The helpers that start app.py, Chroma and PostgreSQL for the tests import one another as top-level modules
# (pytest puts tests/ on sys.path); the benchmark starts the same processes the same way.
sys.path.insert(0, str(ROOT / "tests"))
from chroma_helpers import start_apps_on, start_chroma, stop_chroma  # noqa: E402
from postgres_helpers import start_postgres, stop_postgres  # noqa: E402
from webapp_helpers import RunningApp, app_env, staff_client, start_app, stop_app  # noqa: E402

RESULTS = ROOT / "bench" / "load-results.md"
MAX_SESSIONS = 64
MAX_SECONDS = 900
MAX_WORKERS = 4
COMMENT_EVERY = 3  # every third feedback carries a comment, unique so that a swapped write would show

# The staff's article: made up and far from the seed's topics, so that it changes no answer to
# eval/questions.jsonl (checked in-process; a year in its text made 2018年…窝沟封闭 answerable). Each cycle
# uploads it under an id and visitor count of its own, so an answer shows which upload it came from.
CHURN_QUESTION = "卫东区青少年宫天文台全年接待多少观星市民？"
CHURN_MD = """---
id: {article_id}
title: 卫东区青少年宫天文台开放观星活动
date: 2017-08-15
---

卫东区青少年宫天文台每周六晚上开放观星活动,全年接待观星市民{fact}。
"""
CHURN_VISITORS = 5100
ANSWERABLE_SECONDS = 30.0  # an upload not answerable from every worker by then is an error of the run
POLL_SECONDS = 0.2
# After each delete, before the next upload: longer than a worker's revision check, so the probes see how long
# the deleted article lingers.
SETTLE_SECONDS = 2 * REVISION_CHECK_SECONDS + 1


@dataclass(frozen=True)
class Conversation:
    turns: tuple[str, ...]  # asked in order, each with the earlier turns and their answers as history
    rating: str  # feedback on the last answer


@dataclass(frozen=True)
class Observation:
    """One answer as its client got it: from which worker, asked and received when (time.monotonic), citing
    which articles."""
    worker: int
    session: str
    sent: float
    received: float
    cited: frozenset[str]


@dataclass
class StaffChange:
    """One cycle of the staff's article: uploaded through one worker, deleted through another, and when the
    client got each acknowledgement (time.monotonic; None if it never came)."""
    cycle: int
    upload_worker: int
    delete_worker: int
    uploaded: float | None = None
    deleted: float | None = None

    @property
    def article_id(self) -> str:
        return f"wd-load-stargazing-{self.cycle}"

    @property
    def filename(self) -> str:
        return f"天文台观星-{self.cycle}.md"

    @property
    def fact(self) -> str:
        return f"{CHURN_VISITORS + self.cycle}人次"

    def markdown(self) -> str:
        return CHURN_MD.format(article_id=self.article_id, fact=self.fact)


@dataclass(frozen=True)
class StaleAnswer:
    """An answer citing a deleted article, received after the delete was acknowledged."""
    change: StaffChange
    observation: Observation

    @property
    def asked_after_ack(self) -> bool:
        """False: the question was in flight when the delete was acknowledged."""
        return self.observation.sent > self.change.deleted

    def describe(self) -> str:
        o, c = self.observation, self.change
        asked = o.sent - c.deleted
        return (f"worker {o.worker} ({o.session}) cited {c.article_id} (deleted through worker {c.delete_worker}) "
                f"in an answer received {o.received - c.deleted:.2f} s after the delete was acknowledged, asked "
                f"{abs(asked):.2f} s {'after' if asked > 0 else 'before'} it")


@dataclass
class LoadResult:
    sessions: int
    workers: int = 1
    answers: int = 0
    feedback: dict[int, tuple] = field(default_factory=dict)  # id → what the stored record must say
    latencies_ms: list[float] = field(default_factory=list)  # /ask round trips, seen by the client
    server_ms: list[float] = field(default_factory=list)  # the same answers' own timings_ms["total"]
    answers_per_session: list[int] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)  # every answer: sessions, probes, staff
    changes: list[StaffChange] = field(default_factory=list)
    probe_answers: int = 0
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load_average: tuple[float, ...] = ()  # the machine's, at the start and the end: other engineers' runs show

    def add(self, session: "LoadResult") -> None:
        self.answers += session.answers
        self.answers_per_session.append(session.answers)
        self.feedback.update(session.feedback)
        self.latencies_ms += session.latencies_ms
        self.server_ms += session.server_ms
        self.observations += session.observations
        self.errors += session.errors
        self.mismatches += session.mismatches

    @property
    def throughput(self) -> float:
        return self.answers / self.seconds if self.seconds else 0.0


def worker_of(session: int, workers: int) -> int:
    """The worker a session sticks to, as a sticky load balancer would spread them."""
    return session % workers


def conversations() -> list[Conversation]:
    """One conversation per question of eval/questions.jsonl; a follow-up is asked after its earlier turns."""
    items = [json.loads(line) for line in QUESTION_FILES[0].read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Conversation(tuple(user for user, _ in item.get("history") or []) + (item["question"],),
                         "up" if i % 2 == 0 else "down")
            for i, item in enumerate(items)]


def same_answer(answer: dict) -> tuple:
    """What must not depend on concurrency (timings do)."""
    return answer["text"], answer["refused"], answer["citations"]


def cited(answer: dict) -> frozenset[str]:
    return frozenset(c["article_id"] for c in answer["citations"])


def converse(client, conversation: Conversation, times: list[tuple[float, float]] | None = None) -> list[dict]:
    """The conversation's answers; ``times`` gets each /ask call's (sent, received) on time.monotonic."""
    answers, history = [], []
    for question in conversation.turns:
        sent = time.monotonic()
        answer = client.predict(question, history, api_name="/ask")
        if times is not None:
            times.append((sent, time.monotonic()))
        answers.append(answer)
        history = history + [[question, answer["text"]]]
    return answers


def ask_observed(client, worker: int, session: str) -> tuple[dict, Observation]:
    """The staff's article's question, once."""
    sent = time.monotonic()
    answer = client.predict(CHURN_QUESTION, [], api_name="/ask")
    return answer, Observation(worker, session, sent, time.monotonic(), cited(answer))


def reference_answers(url: str, convs: list[Conversation]) -> tuple[list[list[dict]], list[float]]:
    """Every conversation once, one client, one call at a time; and those calls' latencies."""
    from gradio_client import Client

    client, times = Client(url, verbose=False), []
    references = [converse(client, c, times) for c in convs]
    return references, [(received - sent) * 1000 for sent, received in times]


def run_session(url: str, worker: int, number: int, convs: list[Conversation], references: list[list[dict]],
                deadline: float, result: LoadResult, lock: threading.Lock) -> None:
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
            times = []
            answers = converse(client, conversation, times)
            mine.answers += len(answers)
            mine.latencies_ms += [(received - sent) * 1000 for sent, received in times]
            mine.server_ms += [a["timings_ms"]["total"] for a in answers]
            mine.observations += [Observation(worker, f"session {number}", sent, received, cited(a))
                                  for (sent, received), a in zip(times, answers)]
            for turn, (got, expected) in enumerate(zip(answers, references[which])):
                if same_answer(got) != same_answer(expected):
                    mine.mismatches.append(f"session {number} (worker {worker}), conversation {which} turn {turn}: "
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


def run_probe(url: str, worker: int, stop: threading.Event, result: LoadResult, lock: threading.Lock) -> None:
    """The staff's article's question on one worker, one call after another, until ``stop``."""
    from gradio_client import Client

    session = f"probe {worker}"
    try:
        client = Client(url, verbose=False)
    except Exception as exc:
        with lock:
            result.errors.append(f"{session}: connect: {type(exc).__name__}: {exc}")
        return
    while not stop.is_set():
        try:
            _, observation = ask_observed(client, worker, session)
            with lock:
                result.observations.append(observation)
                result.probe_answers += 1
        except Exception as exc:
            with lock:
                result.errors.append(f"{session}: {type(exc).__name__}: {exc}")


def answerable(client, worker: int, change: StaffChange, result: LoadResult, lock: threading.Lock) -> bool:
    """Ask until the worker answers from this upload (cites it, states its fact); False after ANSWERABLE_SECONDS."""
    until = time.monotonic() + ANSWERABLE_SECONDS
    while time.monotonic() < until:
        answer, observation = ask_observed(client, worker, "staff")
        with lock:
            result.observations.append(observation)
        if change.article_id in observation.cited and change.fact in answer["text"]:
            return True
        time.sleep(POLL_SECONDS)
    return False


def run_staff(apps: list[RunningApp], deadline: float, result: LoadResult, lock: threading.Lock) -> None:
    """Until the deadline: upload the article through worker ``cycle % n``, wait until every worker answers from
    it, delete it through the next worker (the other one has to notice both), let the probes watch a while."""
    from gradio_client import Client

    try:
        consoles = [staff_client(app) for app in apps]  # logs in: the session cookie lives in that worker
        residents = [Client(app.url, verbose=False) for app in apps]
    except Exception as exc:
        with lock:
            result.errors.append(f"staff: log in: {type(exc).__name__}: {exc}")
        return
    cycle = 0
    while time.monotonic() < deadline:
        change = StaffChange(cycle, cycle % len(apps), (cycle + 1) % len(apps))
        with lock:
            result.changes.append(change)
        try:
            status = consoles[change.upload_worker].predict(change.filename, change.markdown(), False, False,
                                                            api_name="/staff_upload")
            if "已添加 1 篇文章" not in status:
                raise RuntimeError(f"/staff_upload answered {status!r}")
            change.uploaded = time.monotonic()
            for worker, client in enumerate(residents):
                if not answerable(client, worker, change, result, lock):
                    with lock:
                        result.errors.append(f"staff cycle {cycle}: worker {worker} did not answer from "
                                             f"{change.article_id} within {ANSWERABLE_SECONDS:.0f} s of its upload")
            status = consoles[change.delete_worker].predict(change.article_id, api_name="/staff_delete")
            if "已删除 1 篇文章" not in status:
                raise RuntimeError(f"/staff_delete answered {status!r}")
            change.deleted = time.monotonic()
        except Exception as exc:
            with lock:
                result.errors.append(f"staff cycle {cycle}: {type(exc).__name__}: {exc}")
        time.sleep(SETTLE_SECONDS)
        cycle += 1


def run_load(apps: list[RunningApp], convs: list[Conversation], references: list[list[dict]], sessions: int,
             seconds: float, churn: bool = True) -> LoadResult:
    """``sessions`` concurrent sessions for ``seconds`` (each finishes the conversation it is in), session i on
    worker i % len(apps); with ``churn``, the staff's uploads and deletes and a probe session on each worker too
    (the last cycle finishes after the deadline, its probes watching until it has)."""
    result, lock, stop = LoadResult(sessions, len(apps)), threading.Lock(), threading.Event()
    load_at_start = os.getloadavg()[0]
    started = time.monotonic()
    deadline = started + seconds

    def thread(target, *args) -> threading.Thread:
        return threading.Thread(target=target, args=args, daemon=True)  # daemon: Ctrl-C need not wait for them

    clients = [thread(run_session, apps[worker_of(n, len(apps))].url, worker_of(n, len(apps)), n, convs, references,
                      deadline, result, lock) for n in range(sessions)]
    staff = [thread(run_staff, apps, deadline, result, lock)] if churn else []
    probes = [thread(run_probe, app.url, worker, stop, result, lock)
              for worker, app in enumerate(apps)] if churn else []
    for t in clients + staff + probes:
        t.start()
    for t in clients:
        t.join()
    result.seconds = time.monotonic() - started
    result.load_average = (load_at_start, os.getloadavg()[0])
    for t in staff:
        t.join()
    stop.set()
    for t in probes:
        t.join()
    return result


def cited_after_delete(observations: list[Observation], changes: list[StaffChange]) -> list[StaleAnswer]:
    """Answers citing a deleted article that the client received after the delete was acknowledged."""
    return [StaleAnswer(change, o) for change in changes if change.deleted is not None for o in observations
            if change.article_id in o.cited and o.received > change.deleted]


def propagation(observations: list[Observation], changes: list[StaffChange],
                workers: int) -> dict[tuple[int, str, bool], list[float]]:
    """Seconds from each acknowledged change until a worker's clients saw it, keyed (worker, "upload" or
    "delete", whether the change went through that worker): for an upload, the first answer citing it (received
    before the acknowledgement when negative); for a delete, the last answer still citing it (0 when none was
    received after the acknowledgement)."""
    seen: dict[tuple[int, str, bool], list[float]] = {}
    for change in changes:
        for worker in range(workers):
            received = [o.received for o in observations if o.worker == worker and change.article_id in o.cited]
            if change.uploaded is not None and received:
                seen.setdefault((worker, "upload", worker == change.upload_worker), []).append(
                    min(received) - change.uploaded)
            if change.deleted is not None:
                seen.setdefault((worker, "delete", worker == change.delete_worker), []).append(
                    max([0.0] + [r - change.deleted for r in received]))
    return seen


def check_feedback(settings: Settings, result: LoadResult) -> list[str]:
    """The store must hold each acknowledged feedback exactly once, as sent, and nothing else."""
    stored = {r.id: (r.rating, r.comment, r.question, r.answer) for r in FeedbackStore(settings.feedback_db).list()}
    if stored == result.feedback:
        return []
    differing = sorted(i for i in stored.keys() | result.feedback.keys() if stored.get(i) != result.feedback.get(i))
    return [f"feedback store holds {len(stored)} records for {len(result.feedback)} acknowledged; "
            f"ids that differ: {differing[:10]}"]


def check_audit(settings: Settings, changes: list[StaffChange]) -> list[str]:
    """The audit log must hold one record of each acknowledged upload and delete, whichever worker made it."""
    recorded = sorted((r.action, r.file) for r in AuditLog(settings.audit_db).list(MAX_LIST)
                      if r.action in ("upload", "delete"))
    expected = sorted([("upload", f"uploads/{c.filename}") for c in changes if c.uploaded is not None]
                      + [("delete", f"uploads/{c.filename}") for c in changes if c.deleted is not None])
    if recorded == expected:
        return []
    missing, unexpected = sorted(set(expected) - set(recorded)), sorted(set(recorded) - set(expected))
    return [f"audit log holds {len(recorded)} upload/delete records for {len(expected)} acknowledged; "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"]


def unused_folders(apps: list[RunningApp]) -> list[str]:
    """A worker on PostgreSQL keeps no data files of its own (README "Several workers")."""
    return [f"{app.settings.data_dir} was written" for app in apps
            if app.settings.database_url and app.settings.data_dir.exists()]


def server_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR " in line or line.startswith("Traceback")]


def scratch_settings(out: Path) -> Settings:
    """Knowledge, index and data folders under ``out`` (emptied), the default extractive path."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return Settings.from_env().with_(knowledge_dir=out / "knowledge", index_dir=out / "index", data_dir=out / "data",
                                     chroma_host=None, database_url=None, llm_base_url=None, llm_model=None,
                                     reranker=None)


def ingest_seed(settings: Settings, env: dict[str, str], log_path: Path) -> None:
    """A copy of the seed knowledge in the settings' folder, indexed by ``python -m bot ingest`` as an operator
    would (into a Chroma server when ``env`` names one)."""
    shutil.copytree(SEED_KNOWLEDGE, settings.knowledge_dir)
    with open(log_path, "wb") as log:
        ingested = subprocess.run([sys.executable, "-m", "bot", "ingest"], cwd=ROOT, stdout=log,
                                  stderr=subprocess.STDOUT, env=env)
    if ingested.returncode != 0:
        raise RuntimeError(f"python -m bot ingest exited with {ingested.returncode}:\n"
                           f"{log_path.read_text(encoding='utf-8', errors='replace')}")


def start_one(out: Path, stack: ExitStack) -> tuple[list[RunningApp], Settings, list[psutil.Process]]:
    """One app.py on a local index and SQLite files."""
    settings = scratch_settings(out)
    ingest_seed(settings, app_env(settings, None), out / "ingest.log")
    app = start_app(settings, out / "app.log")
    stack.callback(stop_app, app)
    return [app], settings, []


def start_shared(workers: int, out: Path, stack: ExitStack) -> tuple[list[RunningApp], Settings, list[psutil.Process]]:
    """A Chroma server and a PostgreSQL server, the seed knowledge ingested into the first (as README "Several
    workers" does), and ``workers`` app.py processes on both sharing one knowledge folder. Returns the apps,
    their shared settings and the Chroma server's process."""
    base = scratch_settings(out)
    (out / "postgres").mkdir()
    chroma = start_chroma(out / "chroma", out / "chroma.log")
    stack.callback(stop_chroma, chroma)
    postgres = start_postgres(out / "postgres")
    stack.callback(stop_postgres, postgres)
    settings = chroma.settings(base).with_(database_url=postgres.new_database())
    ingest_seed(settings, {**app_env(settings, None), **chroma.env()}, out / "ingest.log")
    # Own index folders (each host's copy of the keyword table) and data folders (unused: see unused_folders).
    apps = start_apps_on(chroma, [(settings.with_(index_dir=out / f"worker-{n}" / "index",
                                                  data_dir=out / f"worker-{n}" / "data"), out / f"worker-{n}.log")
                                  for n in range(workers)])
    for app in apps:
        stack.callback(stop_app, app)
    return apps, settings, [psutil.Process(chroma.process.pid)]


def stop_children() -> None:
    """Any child process still running (an app.py whose start Ctrl-C interrupted, before it was on the stack):
    terminate, kill after 15 s as stop_process does."""
    children = psutil.Process().children()
    for child in children:
        child.terminate()
    for child in psutil.wait_procs(children, timeout=15)[1]:
        child.kill()


def cpu_seconds(processes: list[psutil.Process]) -> float:
    return sum(times.user + times.system for times in (p.cpu_times() for p in processes))


def seconds_range(values: list[float] | None) -> str:
    if not values:
        return "—"
    return f"{percentile(values, 50):.1f} / {max(values):.1f} s"


def report(command: str, started: str, result: LoadResult, conversations_count: int,
           references: list[list[dict]], reference_ms: list[float], cpu: dict[str, float],
           problems: list[str]) -> str:
    reference_server_ms = [a["timings_ms"]["total"] for answers in references for a in answers]
    stale = cited_after_delete(result.observations, result.changes)
    seen = propagation(result.observations, result.changes, result.workers)
    shared = result.workers > 1
    session_answers = [o for o in result.observations if o.session.startswith("session")]
    probe_ms = [(o.received - o.sent) * 1000 for o in result.observations if o.session.startswith("probe")]
    rows = [
        ("workers (app.py processes)", f"{result.workers}, on one Chroma server and one PostgreSQL database" if shared
         else "1, on a local index and SQLite"),
        ("sessions (concurrent gradio_client connections)",
         f"{result.sessions}" + (f", session i on worker i mod {result.workers}" if shared else "")),
        ("duration", f"{result.seconds:.1f} s"),
        ("load average (1 min) at the start / end of the load", " / ".join(f"{a:.1f}" for a in result.load_average)),
        ("conversations available", f"{conversations_count}"),
        ("answers (/ask calls)", f"{result.answers}"),
        ("answers per worker", " / ".join(str(sum(o.worker == w for o in session_answers))
                                          for w in range(result.workers))),
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
        ("CPU time during the load: " + " / ".join(cpu), " / ".join(f"{s:.0f} s" for s in cpu.values())
         + f" (of {psutil.cpu_count() * result.seconds:.0f} core-seconds)"),
        ("staff uploads / deletes acknowledged", f"{sum(c.uploaded is not None for c in result.changes)} / "
                                                 f"{sum(c.deleted is not None for c in result.changes)}"),
        ("probe answers (the staff's article's question, one session per worker)", f"{result.probe_answers}"),
        ("  their /ask latency p50 / p95 (part of each time below)",
         f"{percentile(probe_ms, 50) or 0:.0f} / {percentile(probe_ms, 95) or 0:.0f} ms"),
    ]
    routes = ((True, "through it"), (False, "through another"))[:1 + shared]
    via = " / ".join(label for _, label in routes)
    for worker in range(result.workers):
        for kind, what in (("upload", "answering from an upload, p50 / max, uploaded"),
                           ("delete", "deleted article last cited after the delete was acknowledged, p50 / max, "
                                      "deleted")):
            rows.append((f"worker {worker}: {what} {via}",
                         " ; ".join(seconds_range(seen.get((worker, kind, own))) for own, _ in routes)))
    rows += [
        ("errors", f"{len(result.errors)}"),
        ("answers that differ from the single-client answer", f"{len(result.mismatches)}"),
        ("answers citing a deleted article received after its delete was acknowledged (of them asked after it)",
         f"{len(stale)} ({sum(s.asked_after_ack for s in stale)})"),
        ("feedback store / audit log / server log problems", f"{len(problems)}"),
    ]
    where = (f"{result.workers} app.py workers (Gradio queue, default concurrency 4 each) on one Chroma server and "
             "one PostgreSQL database, with the seed knowledge ingested into the server" if shared else
             "app.py (Gradio queue, default concurrency 4) on a local index of the seed knowledge")
    lines = ["# Load test", "",
             f"`{command}` on {started}, {psutil.cpu_count()} CPU cores shared with other engineers' runs; "
             f"{where}, loopback only. The client sessions run on the same cores as the servers: the CPU row shows "
             "how the machine was split, so the throughput and latency under load are those of servers and clients "
             "together.", "",
             "Beside the sessions, a member of staff uploads an article through one worker, waits until every worker "
             "answers from it and deletes it through the next one (with one worker, the same), over and over; a probe "
             "session on each worker asks about it throughout. The times of an upload or delete reaching a worker are "
             "measured on the client, from the acknowledgement to the answer received, so they include that answer's "
             "own round trip.", "",
             "| metric | value |", "|---|---:|", *[f"| {name} | {value} |" for name, value in rows]]
    details = result.errors + result.mismatches + problems
    if details:
        lines += ["", "## Problems", "", *[f"- {line}" for line in details[:50]]]
    if stale:
        lines += ["", "## Deleted article cited after the delete was acknowledged", "",
                  *[f"- {s.describe()}" for s in stale[:50]]]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20, help=f"concurrent sessions, 1..{MAX_SESSIONS}")
    parser.add_argument("--seconds", type=float, default=120, help=f"duration, 1..{MAX_SECONDS}")
    parser.add_argument("--workers", type=int, default=2,
                        help=f"app.py processes, 1..{MAX_WORKERS}; more than one share a Chroma server and PostgreSQL")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT / "load", help="scratch folder (replaced)")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()  # PostgreSQL runs in its data folder: its socket path must not be relative
    if not 1 <= args.sessions <= MAX_SESSIONS:
        parser.error(f"--sessions must be between 1 and {MAX_SESSIONS}")
    if not 1 <= args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be between 1 and {MAX_SECONDS}")
    if not 1 <= args.workers <= MAX_WORKERS:
        parser.error(f"--workers must be between 1 and {MAX_WORKERS}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    command = "python -m bench.load" + ("" if not argv else " " + " ".join(argv))
    started = time.strftime("%Y-%m-%d %H:%M")
    # SIGTERM as Ctrl-C: unwinding the stack below stops every server this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with ExitStack() as stack:
        stack.callback(stop_children)
        if args.workers == 1:
            apps, settings, servers = start_one(args.out, stack)
        else:
            apps, settings, servers = start_shared(args.workers, args.out, stack)
        convs = conversations()
        print(f"reference answers for {len(convs)} conversations, one client", flush=True)
        references, reference_ms = reference_answers(apps[0].url, convs)
        print(f"{args.sessions} sessions, {args.workers} app.py worker(s), {args.seconds:.0f} s", flush=True)
        workers, clients = [psutil.Process(app.process.pid) for app in apps], [psutil.Process()]
        groups = {"app.py workers": workers, **({"Chroma server": servers} if servers else {}),
                  "the client sessions (this process)": clients}
        before = {name: cpu_seconds(group) for name, group in groups.items()}
        result = run_load(apps, convs, references, args.sessions, args.seconds)
        cpu = {name: cpu_seconds(group) - before[name] for name, group in groups.items()}
        problems = check_feedback(settings, result) + check_audit(settings, result.changes) + unused_folders(apps)
        # Up to here: stopping a worker cancels the clients' open event streams, which the staff login's
        # middleware logs as tracebacks; that is shutdown, not the load.
        logs = [app.log() for app in apps]
    problems += [line for log in logs for line in server_errors(log)]
    text = report(command, started, result, len(convs), references, reference_ms, cpu, problems)
    RESULTS.write_text(text, encoding="utf-8")
    print(text)
    stale = cited_after_delete(result.observations, result.changes)
    return 0 if not (result.errors or result.mismatches or stale or problems) else 1


if __name__ == "__main__":
    sys.exit(main())
