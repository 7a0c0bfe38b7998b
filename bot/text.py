"""Text helpers every layer may use: query normalisation (Traditional → Simplified Chinese, full-width →
half-width, control characters, whitespace), sentence ends, the 本报讯 byline and date labels."""
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


def month_label(date: str) -> str:
    """'2017-07-31' -> '2017年7月', '2017' -> '2017年', '' -> '': answers must say how old their source is,
    and the month is as precise as that needs to be."""
    if len(date) >= 7 and date[:4].isdigit() and date[5:7].isdigit():
        return f"{int(date[:4])}年{int(date[5:7])}月"
    return f"{int(date[:4])}年" if date[:4].isdigit() else ""


def date_label(date: str) -> str:
    """'2017-07-31' -> '2017年7月31日' as far as the date goes, '日期不详' without one: what a reader is shown."""
    parts = [int(p) for p in (date or "").split("-") if p.isdigit()]
    return "".join(f"{p}{u}" for p, u in zip(parts, ("年", "月", "日"))) or "日期不详"


# Marks that end a sentence, and the closing quotes and brackets that belong to the sentence they follow.
SENTENCE_ENDS = "。！？!?；;…"
CLOSERS = "”’」』）)"


def sentence_end(ends: str = SENTENCE_ENDS, closers: str = CLOSERS, run: bool = True) -> str:
    """Regex source for where a sentence ends: its end mark (with ``run``, a run of them: "！！") and the closers
    after it. Its users differ by design: chunking also keeps 》 and ASCII quotes with the sentence, and the
    corpus's derived titles end at the first full stop mark only (no ；…), as they always have; a wider pattern
    there would change page items, titles and so chunk ids."""
    marks = rf"[{re.escape(ends)}]" + ("+" if run else "")
    return rf"{marks}[{re.escape(closers)}]*"
