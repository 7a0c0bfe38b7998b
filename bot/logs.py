"""Logging for the server and the CLI: one record is one line, whatever the text it quotes."""
from __future__ import annotations

import logging
import re

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# C0/C1 control characters and Unicode line/paragraph separators: each would let a logged question, title or
# file name start a forged log line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


class OneLineFilter(logging.Filter):
    """Escapes control characters in every message (tracebacks, formatted apart, keep their lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = one_line(message)
        if escaped != message:
            record.msg, record.args = escaped, None
        return True


def configure(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=FORMAT)
    for handler in logging.getLogger().handlers:
        handler.addFilter(OneLineFilter())
    # One line per internal HTTP request, bm25s's own DEBUG level on every keyword-index rebuild, and Alembic's
    # lines each time a store opens, are noise.
    for noisy in ("httpx", "bm25s", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
