"""``python -m bot ask`` as a user meets it: an empty question is a usage error found before anything loads,
``--help`` says what one call costs and how to ask many questions instead, and the garbage collector, paused while
the one question is answered, runs again after it (the start-up frozen, which the collection at exit skips)."""
from __future__ import annotations

import gc
import subprocess
import sys
from types import SimpleNamespace

import pytest

from bot.config import ROOT
from bot.interfaces.cli import main

# The CLI in a fresh interpreter: only there does sys.modules show what a command loaded before it stopped.
PROBE = """
import sys
from bot.interfaces.cli import main
try:
    main(sys.argv[1:])
finally:
    print(" ".join(m for m in ("bot.answer.assistant", "bot.search.index", "chromadb") if m in sys.modules))
"""


@pytest.mark.parametrize("question", ["", "  \t "], ids=["empty", "whitespace"])
def test_empty_question_is_a_usage_error_before_anything_loads(question):
    done = subprocess.run([sys.executable, "-c", PROBE, "ask", question], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "error: argument question: the question is empty" in done.stderr
    assert done.stdout.strip() == ""  # neither the Assistant nor the index (nor Chroma) was imported


def test_ask_help_says_each_call_is_a_process_start_and_points_to_eval(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["ask", "--help"])
    assert exited.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width
    assert "Each ask is a whole process start" in help_text and "a few seconds" in help_text
    assert "python -m bot eval FILE" in help_text


def test_ask_answers_with_the_collector_paused_then_freezes_what_it_made(monkeypatch, capsys, frozen_before):
    seen = {}

    class Answering:
        def __init__(self, settings):
            seen["opening"] = gc.isenabled()

        def ask(self, question, history):
            seen["answering"] = gc.isenabled()
            return SimpleNamespace(text=f"答：{question}", notice="", citations=[])
    monkeypatch.setattr("bot.answer.assistant.Assistant", Answering)
    assert main(["ask", "低保怎么申请？"]) == 0
    assert capsys.readouterr().out.strip() == "答：低保怎么申请？"
    assert seen == {"opening": False, "answering": False} and gc.isenabled()
    assert gc.get_freeze_count() > frozen_before  # the collection at exit skips it
