"""Query normalisation: Traditional → Simplified Chinese, full-width → half-width, control characters, whitespace."""
from __future__ import annotations

import re
import unicodedata

from opencc import OpenCC

MAX_QUESTION_CHARS = 500
_T2S = OpenCC("t2s")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
_SPACE = re.compile(r"\s+")


def normalize_query(text: str) -> str:
    """The form every later stage sees. NFKC folds full-width letters, digits and punctuation to half-width."""
    text = unicodedata.normalize("NFKC", text or "")
    text = _CONTROL.sub(" ", text)
    text = _SPACE.sub(" ", text).strip()
    return _T2S.convert(text)


def truncate_question(text: str, limit: int = MAX_QUESTION_CHARS) -> tuple[str, bool]:
    """Cut over-long input; the caller tells the user it was cut."""
    return (text[:limit], True) if len(text) > limit else (text, False)


# The lead of a local news item, "本报讯(记者田秀忠 通讯员杨水亮)": group 1 is the credit. Page import reads the
# reporters from it; answers drop it because it is no part of what the item says.
BYLINE = re.compile(r"^本报讯[(（]([^)）]*)[)）]")
