"""How a page's handlers fail and who is asking: shared by the resident page and the staff console."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import gradio as gr

from bot.answer.assistant import InputError
from bot.interfaces.web.html import APOLOGY
from bot.knowledge.upload import LibraryError

log = logging.getLogger(__name__)


class ActionError(ValueError):
    """A request that cannot be done as asked (no article chosen, a bad date): its message says why."""


def refused(message: str) -> gr.Error:
    """An expected error for an API caller, as it is; the server logs its own single line, not a traceback."""
    return gr.Error(message, print_exception=False)


def client_of(request: gr.Request | None) -> str:
    return request.client.host if request is not None and request.client else "unknown"


def guarded(fn: Callable, apology: str = APOLOGY) -> Callable:
    """For API endpoints: nobody sees a traceback. Library and input errors name the problem (a bad upload, a
    malformed history), so they are passed on as they are; anything else is logged and becomes ``apology``."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ActionError, LibraryError, InputError) as exc:
            log.info("%s refused: %s", fn.__name__, exc)
            raise refused(str(exc)) from None
        except Exception:
            log.exception("handler %s failed", fn.__name__)
            raise gr.Error(apology) from None
    return run
