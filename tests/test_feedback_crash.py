"""Crash safety of the web app's feedback, on SQLite and PostgreSQL: writers hammer /feedback from several threads
while the app is SIGKILLed at a random moment, twice over one database. Every write the client saw acknowledged
(it got an id back) survives, an SQLite file passes PRAGMA integrity_check, and every row there is whole."""
from __future__ import annotations

import itertools
import random
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field

import pytest
from conftest import copy_index
from gradio_client import Client
from webapp_helpers import start_app, stop_app

from bot.config import Settings
from bot.interfaces.feedback import FeedbackStore

pytestmark = pytest.mark.slow

RUNS = 2  # the second run starts on the database the first kill left; each costs ~10 s, on both back ends
WRITERS = 4  # as many as the app's queue runs at once (app.DEFAULT_CONCURRENCY)
SEED = 20170731
KILL_AFTER = (0.3, 2.5)  # seconds after the first acknowledged write of a run
TIMEOUT = 60
DIBAO_QUESTION = "卫东区目前低保保障对象一共有多少户、多少人？"


@dataclass
class Writes:
    attempted: dict[str, str] = field(default_factory=dict)  # comment -> rating, recorded before sending
    answers: dict[str, dict] = field(default_factory=dict)  # comment -> the answer (from /ask) it rates
    acknowledged: dict[str, int] = field(default_factory=dict)  # comment -> the id the client got back
    lock: threading.Lock = field(default_factory=threading.Lock)


def write_until_the_app_dies(client: Client, answer: dict, run: int, writer: int, writes: Writes,
                             failures: list[BaseException]) -> None:
    for n in itertools.count():
        comment, rating = f"run{run}-writer{writer}-{n}", ("up", "down")[n % 2]
        with writes.lock:
            writes.attempted[comment] = rating
            writes.answers[comment] = answer
        try:
            feedback_id = client.predict(answer["answer_id"], rating, comment, api_name="/feedback")
        except Exception as exc:  # the app was killed under this request: the write is unacknowledged
            failures.append(exc)
            return
        with writes.lock:
            writes.acknowledged[comment] = feedback_id


def kill_while_writing(app, run: int, rng: random.Random, writes: Writes) -> int:
    """Ask once, start the writers rating that answer, SIGKILL the app a random moment after the first
    acknowledgement; returns how many writes this run had acknowledged."""
    clients = [Client(app.url, verbose=False) for _ in range(WRITERS)]
    answer = clients[0].predict(DIBAO_QUESTION, [], api_name="/ask")
    failures: list[BaseException] = []
    before = len(writes.acknowledged)
    threads = [threading.Thread(target=write_until_the_app_dies, args=(c, answer, run, w, writes, failures))
               for w, c in enumerate(clients)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + TIMEOUT
    while len(writes.acknowledged) == before:
        assert time.monotonic() < deadline and all(t.is_alive() for t in threads), \
            f"no write acknowledged: {failures}\n{app.log()}"
        time.sleep(0.01)
    time.sleep(rng.uniform(*KILL_AFTER))
    assert all(t.is_alive() for t in threads) and not failures, f"a writer stopped before the kill: {failures}"
    app.process.kill()  # SIGKILL: no cleanup of any kind in the app
    app.process.wait(TIMEOUT)
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a writer hung after the app died"
    return len(writes.acknowledged) - before


def check_database(settings: Settings, writes: Writes) -> int:
    """Integrity, every acknowledged row, and no partial or foreign row; returns the rows written but never
    acknowledged (committed just before the kill)."""
    store = FeedbackStore(settings.feedback_db)
    if store.url.get_backend_name() == "sqlite":
        with sqlite3.connect(store.url.database) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    records = store.list()
    by_comment = {r.comment: r for r in records}
    assert len(by_comment) == len(records) == len({r.id for r in records})  # no write stored twice
    for comment, feedback_id in writes.acknowledged.items():
        assert comment in by_comment, f"acknowledged write {comment} (id {feedback_id}) is lost"
        assert by_comment[comment].id == feedback_id
    for record in records:
        assert record.comment in writes.attempted, f"a row nobody wrote: {record.comment!r}"
        answer = writes.answers[record.comment]
        whole = (record.rating, record.question, record.condensed_query, record.answer, record.refused,
                 [asdict(c) for c in record.citations], record.timings_ms)
        assert whole == (writes.attempted[record.comment], answer["question"], answer["condensed_query"],
                         answer["text"], answer["refused"], answer["citations"], answer["timings_ms"])
    return len(set(by_comment) - set(writes.acknowledged))


def test_acknowledged_feedback_survives_sigkill(seed_settings, seed_index, tmp_path, database_url):
    settings = copy_index(seed_settings, tmp_path).with_(database_url=database_url)
    writes = Writes()
    acknowledged, unacknowledged = [], 0
    for run in range(RUNS):
        # The same data folder every run: the app restarts on the database the previous kill left behind.
        app = start_app(settings, tmp_path / f"app-{run}.log", password=None)
        try:
            acknowledged.append(kill_while_writing(app, run, random.Random(SEED + run), writes))
        finally:
            stop_app(app)  # only does something when the run failed before its kill
        unacknowledged = check_database(settings, writes)
    print(f"\nfeedback crash runs: acknowledged writes per run {acknowledged}, "
          f"stored but unacknowledged {unacknowledged}")
