"""Settings from BOT_ environment variables: typed, defaulted from the dataclass, typos reported plainly."""
import os
from pathlib import Path

import pytest

from bot.config import ROOT, Settings


def test_unset_and_empty_variables_keep_the_defaults(monkeypatch):
    monkeypatch.setenv("BOT_RERANKER", "")
    monkeypatch.delenv("BOT_PORT", raising=False)
    settings = Settings.from_env()
    assert settings.reranker is None and settings.port == 7860 and settings.knowledge_dir == ROOT / "knowledge"


def test_variables_are_read_as_the_field_types(monkeypatch):
    for name, value in {"PORT": "8080", "LLM_TIMEOUT": "2.5", "INDEX_DIR": "/srv/index", "CHROMA_HOST": "db"}.items():
        monkeypatch.setenv(f"BOT_{name}", value)
    settings = Settings.from_env()
    assert (settings.port, settings.llm_timeout, settings.index_dir, settings.chroma_host) == \
        (8080, 2.5, Path("/srv/index"), "db")


@pytest.mark.parametrize("name, value, message", [
    ("TOP_K", "five", "BOT_TOP_K must be an integer, got 'five'"),
    ("DENSE_WEIGHT", "half", "BOT_DENSE_WEIGHT must be a number, got 'half'"),
    ("INGEST_WORKERS", "auto", "BOT_INGEST_WORKERS must be an integer, got 'auto'"),
    ("INGEST_WORKERS", "-1", r"BOT_INGEST_WORKERS must be 0 \(one per CPU\) or more, got -1"),
    ("INGEST_POOL", "fork", "BOT_INGEST_POOL must be one of thread, process, got 'fork'"),
])
def test_a_malformed_number_stops_with_its_variable_named(monkeypatch, name, value, message):
    monkeypatch.setenv(f"BOT_{name}", value)
    with pytest.raises(SystemExit, match=message):
        Settings.from_env()


def test_ingest_workers_are_one_per_usable_cpu_unless_set(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5})  # as under taskset or a container's cpuset
    for raw, expected in ((None, 3), ("0", 3), ("1", 1), ("4", 4)):
        if raw is None:
            monkeypatch.delenv("BOT_INGEST_WORKERS", raising=False)
        else:
            monkeypatch.setenv("BOT_INGEST_WORKERS", raw)
        assert Settings.from_env().ingest_worker_count == expected, raw
    monkeypatch.setenv("BOT_INGEST_POOL", "process")
    assert Settings.from_env().ingest_pool == "process"
