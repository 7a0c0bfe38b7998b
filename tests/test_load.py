"""A small load test (bench/load.py's, shorter): concurrent sessions against the real web app must get no errors
and exactly the answers a single client gets for the same conversations. No timing assertions: the cores are shared."""
from __future__ import annotations

import pytest
from conftest import copy_index
from webapp_helpers import start_app, stop_app

from bench.load import check_feedback, conversations, reference_answers, run_load, server_errors

SESSIONS = 6
SECONDS = 20

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(seed_settings, seed_index, tmp_path_factory):
    base = tmp_path_factory.mktemp("load")
    running = start_app(copy_index(seed_settings, base), base / "app.log", password=None)
    yield running
    stop_app(running)


def test_concurrent_sessions_get_the_single_client_answers(app):
    convs = conversations()
    picked = [c for c in convs if len(c.turns) > 1][:4] + [c for c in convs if len(c.turns) == 1][::10]
    references, _ = reference_answers(app.url, picked)
    refused = {answer["refused"] for answers in references for answer in answers}
    assert refused == {True, False}, "the sample should hold answered and refused questions"

    result = run_load(app.url, picked, references, SESSIONS, SECONDS)

    assert result.errors == []
    assert result.mismatches == []
    assert len(result.answers_per_session) == SESSIONS and min(result.answers_per_session) > 0
    assert check_feedback(app.settings, result) == []
    assert server_errors(app.log()) == []
