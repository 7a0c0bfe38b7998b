"""Start the web server: ``python app.py [--host 127.0.0.1] [--port 7860]`` (``make run`` ingests first).

The residents' page is at ``/``; with ``BOT_STAFF_PASSWORD`` set, the staff console is at ``/staff``."""
from __future__ import annotations

import argparse
import gc
import logging
import os
import sys

# Gradio's usage analytics would try to reach the internet on every start.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio imports matplotlib on a server's first event to switch it to "agg"; named here, matplotlib need not find
# its default backend, which imported pyplot (0.3 s of the first answer).
os.environ.setdefault("MPLBACKEND", "agg")

from bot.config import Settings  # noqa: E402
from bot.logs import configure as configure_logging  # noqa: E402
from bot.process import collector_paused  # noqa: E402

log = logging.getLogger("app")


def parse_args(settings: Settings, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="resident-services chatbot: the web page (and /staff)")
    parser.add_argument("--host", default=settings.host, help=f"address to listen on (default {settings.host})")
    parser.add_argument("--port", type=int, default=settings.port, help=f"port (default {settings.port})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    settings = Settings.from_env()
    args = parse_args(settings, argv)

    with collector_paused():
        from bot.answer.assistant import Assistant
        from bot.interfaces.database import DatabaseOpenError
        from bot.search.index import IndexMismatchError
        from bot.interfaces.web.server import build_server, serve

        try:
            assistant = Assistant(settings)
            app = build_server(assistant, settings)
        except (IndexMismatchError, DatabaseOpenError) as exc:
            log.error("%s", exc)
            return 2
        gc.freeze()
    chunks = assistant.index.count()
    if chunks == 0:
        log.warning("the index at %s is empty: run `python -m bot ingest` first (make run does it), "
                    "until then every question is refused", assistant.index.location)
    else:
        log.info("index %s: %d chunks", assistant.index.location, chunks)
    if not settings.staff_password:
        log.info("BOT_STAFF_PASSWORD is not set: there is no staff console")
    log.info("serving the residents' page on http://%s:%d/%s", args.host, args.port,
             " and the staff console on /staff" if settings.staff_password else "")
    serve(app, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
