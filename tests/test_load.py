"""A small load test (bench/load.py's, shorter, one worker): concurrent sessions against the real web app must get
no errors and exactly the answers a single client gets for the same conversations, while a member of staff
uploads and deletes an article; and the checks the two-worker run reports, on made-up observations. No timing
assertions: the cores are shared."""
from __future__ import annotations

import pytest
from conftest import copy_index
from webapp_helpers import start_app, stop_app

from bench.load import (LoadResult, Observation, StaffChange, check_audit, check_feedback, cited_after_delete,
                        conversations, propagation, reference_answers, report, run_load, server_errors, worker_of)

SESSIONS = 6
SECONDS = 20


@pytest.fixture(scope="module")
def app(seed_settings, seed_index, tmp_path_factory):
    base = tmp_path_factory.mktemp("load")
    running = start_app(copy_index(seed_settings, base), base / "app.log")
    yield running
    stop_app(running)


@pytest.mark.slow
def test_concurrent_sessions_get_the_single_client_answers(app):
    convs = conversations()
    picked = [c for c in convs if len(c.turns) > 1][:4] + [c for c in convs if len(c.turns) == 1][::10]
    references, _ = reference_answers(app.url, picked)
    refused = {answer["refused"] for answers in references for answer in answers}
    assert refused == {True, False}, "the sample should hold answered and refused questions"

    result = run_load([app], picked, references, SESSIONS, SECONDS)

    assert result.errors == []
    assert result.mismatches == [], "the staff's article must not change the seed conversations' answers"
    assert len(result.answers_per_session) == SESSIONS and min(result.answers_per_session) > 0
    assert result.changes and all(c.uploaded and c.deleted for c in result.changes)
    assert result.probe_answers > 0
    # One process deletes the chunks before it acknowledges: no question asked afterwards may get them (one in
    # flight at the acknowledgement may).
    assert [s.describe() for s in cited_after_delete(result.observations, result.changes) if s.asked_after_ack] == []
    assert check_feedback(app.settings, result) == []
    assert check_audit(app.settings, result.changes) == []
    assert server_errors(app.log()) == []


def seen(worker: int, sent: float, received: float, *articles: str) -> Observation:
    return Observation(worker, f"probe {worker}", sent, received, frozenset(articles))


def test_session_i_talks_to_worker_i_mod_workers():
    assert [worker_of(n, 2) for n in range(5)] == [0, 1, 0, 1, 0]
    assert {worker_of(n, 1) for n in range(5)} == {0}


def test_answers_citing_a_deleted_article_after_its_acknowledgement_are_found():
    deleted = StaffChange(0, upload_worker=0, delete_worker=1, uploaded=10.0, deleted=20.0)
    kept = StaffChange(1, upload_worker=1, delete_worker=0, uploaded=30.0)  # its delete never acknowledged
    observations = [seen(0, 18.0, 19.5, deleted.article_id),  # received before the acknowledgement
                    seen(0, 19.0, 20.5, deleted.article_id),  # in flight at the acknowledgement
                    seen(1, 21.0, 21.4, deleted.article_id, "20170731-01"),  # asked after it
                    seen(1, 21.0, 21.6, "20170731-01"),
                    seen(0, 31.0, 32.0, kept.article_id)]

    stale = cited_after_delete(observations, [deleted, kept])

    assert [(s.observation.worker, s.asked_after_ack) for s in stale] == [(0, False), (1, True)]
    assert stale[1].describe() == ("worker 1 (probe 1) cited wd-load-stargazing-0 (deleted through worker 1) in an "
                                   "answer received 1.40 s after the delete was acknowledged, asked 1.00 s after it")
    assert cited_after_delete(observations, [StaffChange(0, 0, 1, uploaded=10.0)]) == []


def test_propagation_is_measured_per_worker_and_by_where_the_change_went_through():
    change = StaffChange(0, upload_worker=0, delete_worker=1, uploaded=10.0, deleted=20.0)
    article = change.article_id
    observations = [seen(0, 9.75, 10.25, article), seen(1, 10.5, 11.0), seen(1, 11.5, 12.0, article),
                    seen(1, 12.5, 13.0, article), seen(0, 20.5, 21.5, article), seen(0, 22.0, 23.0),
                    seen(1, 20.2, 20.4)]

    times = propagation(observations, [change], workers=2)

    assert times == {(0, "upload", True): [0.25], (1, "upload", False): [2.0],
                     (0, "delete", False): [1.5], (1, "delete", True): [0.0]}


def test_the_report_shows_each_workers_propagation_and_every_stale_answer():
    change = StaffChange(0, upload_worker=0, delete_worker=1, uploaded=10.0, deleted=20.0)
    result = LoadResult(sessions=2, workers=2, answers=2, answers_per_session=[1, 1], latencies_ms=[900.0, 1100.0],
                        server_ms=[300.0, 500.0], seconds=30.0, load_average=(2.0, 3.5), changes=[change],
                        probe_answers=2,
                        observations=[seen(0, 9.75, 10.25, change.article_id), seen(1, 11.0, 12.0, change.article_id),
                                      seen(0, 20.5, 21.5, change.article_id),
                                      Observation(1, "session 1", 1.0, 2.0, frozenset())])
    references = [[{"timings_ms": {"total": 40.0}}]]

    text = report("python -m bench.load", "2026-01-01 00:00", result, 1, references, [90.0], {"app.py workers": 10.0},
                  [])

    assert "| answers per worker | 0 / 1 |" in text
    assert "| staff uploads / deletes acknowledged | 1 / 1 |" in text
    assert ("| worker 0: answering from an upload, p50 / max, uploaded through it / through another "
            "| 0.2 / 0.2 s ; — |") in text
    assert ("| worker 0: deleted article last cited after the delete was acknowledged, p50 / max, deleted through it "
            "/ through another | — ; 1.5 / 1.5 s |") in text
    assert "| answers citing a deleted article received after its delete was acknowledged (of them asked after it) " \
           "| 1 (1) |" in text
    assert text.endswith(f"- {cited_after_delete(result.observations, [change])[0].describe()}\n")
