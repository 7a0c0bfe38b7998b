"""China's administrative divisions (provinces, cities, counties, districts: the 3,178 places of cpca's
table), so that a question naming another county is known to ask about another place even where jieba does not
tag the name as one: it tags 舞钢市 as a noun, 宝丰县 and 华容区 as a person's name, 宕昌县 as a verb."""
from __future__ import annotations

import csv
import functools
from collections import Counter
from importlib.util import find_spec
from pathlib import Path

# A division's name is rebuilt from at most this many of jieba's words (宕昌 + 县), into three characters or more;
# only whole words are joined, so 海宁 + 市民 never reads as 海宁市, and 和 + 县 never as 和县.
MAX_PIECES = 3
MIN_JOINED_CHARS = 3
PLACE_TAG = "ns"
MIN_NAME_CHARS = 2  # the table's one-character row (县) groups counties and names no place
GROUPING_ENDING = "行政区划"  # …直辖县级行政区划: the counties a province governs itself, no place either


@functools.lru_cache(maxsize=1)
def division_names() -> frozenset[str]:
    """Read as a file from the installed cpca, which is not imported: importing it imports pandas."""
    table = Path(find_spec("cpca").origin).with_name("resources") / "adcodes.csv"
    with table.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    # A row without coordinates whose name recurs groups a city's districts (282 such rows share one name).
    unplaced = Counter(row["name"] for row in rows if not row["longitude"])
    groupings = {name for name, count in unplaced.items() if count > 1 or name.endswith(GROUPING_ENDING)}
    return frozenset(row["name"] for row in rows if len(row["name"]) >= MIN_NAME_CHARS) - groupings


def is_division(word: str) -> bool:
    """A division's name that reads as nothing else: two-character districts (城区, 郊区, 矿区, 东区) are common
    words, two-character counties (郏县, 叶县) are not."""
    return word in division_names() and not (len(word) == 2 and word.endswith("区"))


def tag_divisions(tagged: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(word, flag) pairs with each run of words that spells a division's name joined into one place word."""
    names, out, i = division_names(), [], 0
    while i < len(tagged):
        for end in range(min(len(tagged), i + MAX_PIECES), i, -1):
            word = "".join(w for w, _ in tagged[i:end])
            if word in names and (end == i + 1 or len(word) >= MIN_JOINED_CHARS):
                out.append((word, PLACE_TAG))
                i = end
                break
        else:
            out.append(tagged[i])
            i += 1
    return out
