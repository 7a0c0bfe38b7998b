"""Settings from BOT_ environment variables: typed, defaulted from the dataclass, typos reported plainly."""
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


@pytest.mark.parametrize("name, value, message", [("TOP_K", "five", "BOT_TOP_K must be an integer, got 'five'"),
                                                  ("DENSE_WEIGHT", "half", "BOT_DENSE_WEIGHT must be a number, got 'half'")])
def test_a_malformed_number_stops_with_its_variable_named(monkeypatch, name, value, message):
    monkeypatch.setenv(f"BOT_{name}", value)
    with pytest.raises(SystemExit, match=message):
        Settings.from_env()
