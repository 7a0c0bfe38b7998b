"""Answers must not depend on the process's hash seed (str hashes, and so set order, change with it)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from bot.config import ROOT
from conftest import copy_index

QUESTIONS = ROOT / "eval" / "questions.jsonl"


def answers(out_dir) -> list[dict]:
    rows = [json.loads(line) for line in (out_dir / "answers.jsonl").read_text(encoding="utf-8").splitlines()]
    for row in rows:
        del row["latency_ms"]  # the one field allowed to differ
    return rows


def test_dev_answers_are_identical_under_two_hash_seeds(seed_settings, seed_index, tmp_path):
    settings = copy_index(seed_settings, tmp_path)  # one index for both runs, not open in this process
    runs = {}
    for seed in ("1", "4"):
        out = tmp_path / f"hashseed-{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
        subprocess.run([sys.executable, "-m", "bot", "eval", str(QUESTIONS), "--split", "dev", "--out", str(out),
                        "--knowledge", str(settings.knowledge_dir), "--index", str(settings.index_dir)],
                       env=env, cwd=ROOT, check=True, capture_output=True, timeout=600)
        runs[seed] = answers(out)
    assert len(runs["1"]) == 55
    differing = [a["id"] for a, b in zip(runs["1"], runs["4"]) if a != b]
    assert not differing, f"answers differ between PYTHONHASHSEED=1 and 4: {differing}"
