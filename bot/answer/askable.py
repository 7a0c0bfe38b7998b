"""Questions an article's own sentences answer, made from its text alone (any topic, no word lists).

A Chinese question keeps the word order of its answer: 每天出动12台洒水车 is asked 每天出动多少台洒水车？ So a
clause holding a typed fact (a count in a unit, an amount of money, a percentage, an age, a phone number, a date,
a person named after their role) becomes a question by putting the question word where the fact stands, and a
label by keeping the content words before it. Nothing here knows whether the bot answers the question: the
suggester (``suggestions.py``) asks each one and keeps only those answered from the same article.
"""
from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.answer.questions import ANSWER_TYPES, MEASURE_WORDS, NUMBER, PERSON_TAGS
from bot.knowledge.chunking import split_sentences
from bot.search.keyword import Segmenter
from bot.text import BYLINE

CLAUSE = re.compile(r"[^，,；;。！？!?]+")
MEASURES = "|".join(sorted((re.escape(w) for w in MEASURE_WORDS), key=len, reverse=True))
# Chinese numerals other than a bare 一 (一级, 一网, 一次性 are words, not counts).
COUNT = re.compile(rf"(?<![\d.])(\d[\d.,]*|[两二三四五六七八九十百千]+[一二三四五六七八九十百千]*)(余|多)?(万|亿)?(余|多)?({MEASURES})")
PERCENT = re.compile(NUMBER + r"\s*%")
MONEY = re.compile(NUMBER + r"\s*元")
AGE = re.compile(r"\d+(周?岁)")
DATE = re.compile(r"(\d{4}年)?\d{1,2}月(\d{1,2}日|底|初|中旬)?|\d{4}年")
PHONE = ANSWER_TYPES["phone"][1]
ROLE = ANSWER_TYPES["person"][1]
SMALL = re.compile(r"[1-9]|[两二三四五六七八九]")  # 几 asks for a count under ten, 多少 for any
# Words that carry no topic in a label: adverbs, prepositions, pronouns, conjunctions, particles, numerals and
# measure words, time words (jieba's part-of-speech flags).
FUNCTION_TAGS = ("d", "p", "r", "c", "u", "m", "q", "t", "f", "y", "e", "o", "x", "uj", "ul", "zg")
MIN_PREFIX_CHARS = 3  # a clause must say what it counts before the fact: 共计247万元 says nothing
MAX_PREFIX_CHARS = 24  # longer questions are hard to read as a suggestion
MAX_LABEL_CHARS = 10
# Units whose count is named after them (户数, 人数, 天数); 名 counts people.
UNIT_COUNTED = {u: u for u in "户人家所颗条次台辆个盏套份件期项批座间张天年周"} | {"名": "人", "位": "人"}
MAX_QUESTION_CHARS = 30
DURATIONS = {"年": "年数", "天": "天数", "日": "天数", "周": "周数", "个月": "时长", "小时": "时长", "分钟": "时长"}


@dataclass(frozen=True)
class Askable:
    question: str  # 每天出动多少台洒水车？
    label: str  # 出动洒水车数量
    fact: str  # what the answer must state: 12台
    kind: str  # count, percent, money, age, phone, time, person
    sentence: tuple[int, int]  # offsets of the source sentence in the article body


def askables(body: str, segmenter: Segmenter, home: frozenset[str] = frozenset()) -> list[Askable]:
    """Every question the sentences of ``body`` yield, in reading order, at most one per clause. ``home``: the
    names of the knowledge's own place, never the subject a figure is about (every figure is the district's)."""
    found = []
    for span in split_sentences(body):
        sentence = body[span.start:span.end]
        trimmed = BYLINE.sub("", sentence)
        offset = span.start + len(sentence) - len(trimmed)
        subject = ""
        for clause in CLAUSE.finditer(trimmed):
            # Positions in quotation marks (quoted speech, a slogan: “六个到位”) hold no fact to ask about.
            quoted = functools.partial(_quoted, trimmed, clause.start())
            tagged = segmenter.tagged(clause.group())
            made = _person(tagged, quoted) or _fact(clause.group(), tagged, subject, segmenter, quoted)
            if made:
                question, label, fact, kind = made
                for name in sorted(home, key=len, reverse=True):  # 全区小学数量 is 小学数量 here
                    label = label.replace(name, "")
                if len(label) >= (2 if kind == "person" else 4):  # 条数 alone says nothing, 馆长 does
                    found.append(Askable(question, label, fact, kind, (offset, span.end)))
            subject = _subject(tagged, home) or subject
    return list({a.question: a for a in found}.values())


def _subject(tagged: list[tuple[str, str]], home: frozenset[str]) -> str:
    """The nouns a clause opens with before its verb (税收收入完成17204万元): what the clauses after it that open
    with a verb (同比增长24.7%) are about."""
    words = []
    for word, flag in tagged:
        if not flag.startswith("n") or word in home:
            break
        words.append(word)
    following = tagged[len(words)][1] if len(words) < len(tagged) else ""
    return "".join(words) if following == "v" else ""


def _fact(clause: str, tagged: list[tuple[str, str]], subject: str, segmenter: Segmenter,
          quoted: Callable[[int], bool]) -> tuple[str, str, str, str] | None:
    """The clause's first fact replaced by its question word; the rest of the clause up to an enumeration's
    next item stays (卫东区共为全区多少所小学的2513名学生实施了窝沟封闭？)."""
    facts = []
    for kind, pattern in (("phone", PHONE), ("money", MONEY), ("percent", PERCENT), ("age", AGE),
                          ("count", COUNT), ("time", DATE)):
        facts.extend((m.start(), -len(m.group()), kind, m) for m in pattern.finditer(clause)
                     if not quoted(m.start()) and (kind != "count" or _whole_count(m, tagged)))
    if not facts:
        return None
    start, _, kind, match = min(facts, key=lambda f: f[:2])
    prefix = _opening(clause[:start], segmenter)
    rest = clause[match.end():].split("、")[0]
    if re.match(r"\d", rest):  # 135户368人: a second figure of the same thing
        rest = ""
    if rest.startswith(("是", "指")):  # 两项补贴是指…: the figure names a definition, it is not a finding
        return None
    if len(prefix) + len(rest) > MAX_QUESTION_CHARS or prefix.endswith("等"):
        return None  # too long to read at a glance, or an enumeration (东安路街道、东工人镇街道等5个街道…)
    if not MIN_PREFIX_CHARS <= len(prefix) <= MAX_PREFIX_CHARS or re.search(r"\d", prefix):
        return None
    if subject and subject not in prefix and not _opens_with_noun(prefix, segmenter):
        prefix = subject + prefix
    if not any(_noun_like(w, flag) for w, flag in segmenter.tagged(prefix + rest)):
        return None  # 同比增长多少？ could be asked of any figure
    fact = match.group()
    if kind == "phone":
        subject = prefix.rstrip("：: 为是")
        return f"{subject}是多少？", _label(subject, segmenter, "" if "电话" in subject else "电话"), fact, kind
    if kind == "time":
        # Only a date a preposition introduces (在6月进行, 于7月起) is what the clause asks about; 2017年小学生
        # dates a noun, and 分别在6月和12月进行 enumerates dates.
        if not re.search(r"[在于自从到]$", prefix) or not rest or re.search(r"\d", rest):
            return None
        return f"{prefix}什么时候{rest}？", _label(prefix + rest, segmenter, "时间"), fact, kind
    if kind == "age":
        if rest.startswith("的"):  # 今年78岁的张遂卿: the age qualifies a name that follows
            return None
        return f"{prefix}多少{match.group(1)}{rest}？", _label(prefix, segmenter, "年龄"), fact, kind
    if kind == "money":
        return f"{_joined(prefix)}多少钱{rest}？", _label(prefix + rest, segmenter, "金额"), fact, kind
    if kind == "percent":
        return f"{_joined(prefix)}多少{rest}？", _label(prefix + rest, segmenter, ""), fact, kind
    unit = match.group(5)
    asked = "几" if SMALL.fullmatch(match.group(1)) and not match.group(3) else "多少"
    counted = _nouns(rest.lstrip("的"), segmenter)
    if unit in DURATIONS:
        suffix = DURATIONS[unit]
    else:
        suffix = "数量" if counted else (f"{UNIT_COUNTED[unit]}数" if unit in UNIT_COUNTED else "")
    return (f"{_joined(prefix)}{asked}{unit}{rest}？", _label(prefix + counted, segmenter, suffix), fact, kind)


def _nouns(text: str, segmenter: Segmenter) -> str:
    """The nouns ``text`` opens with: what a count counts (12台洒水车 → 洒水车)."""
    words = []
    for word, flag in segmenter.tagged(text):
        if not _noun_like(word, flag):
            break
        words.append(word)
    return "".join(words)


def _noun_like(word: str, flag: str) -> bool:
    """A noun, an idiom-like fixed phrase (jieba tags 洒水车 l), or a lexicon word jieba has no flag for."""
    return flag.startswith("n") or flag in ("vn", "l") or (flag == "x" and bool(re.fullmatch(r"[\u4e00-\u9fff]{2,}", word)))


def _quoted(text: str, base: int, position: int) -> bool:
    """``text[base + position]`` is inside quotation marks: a slogan (“六个到位”) or speech, not a figure to ask
    about."""
    position += base
    return (text.count("“", 0, position) > text.count("”", 0, position)
            or text.count("‘", 0, position) > text.count("’", 0, position))


def _whole_count(match: re.Match, tagged: list[tuple[str, str]]) -> bool:
    """A count that is not part of a word (二年级), nor a year read as a count of 年 (2017年)."""
    if match.group(5) in ("年", "日") and re.fullmatch(r"(19|20)\d\d", match.group(1)):
        return False
    position = 0
    for word, _ in tagged:
        end = position + len(word)
        if position < match.end() < end or position < match.start() < end:
            return False
        position = end
    return True


def _opening(prefix: str, segmenter: Segmenter) -> str:
    """The prefix without the conjunction or demonstrative it opens with (同时, 并, 该区): the suggestion is read
    on its own, not after the sentence before."""
    words = segmenter.tagged(prefix.strip(" “”\"'（）()"))
    while words and (words[0][1] == "c" or re.fullmatch(r"[该此这][\u4e00-\u9fff]?", words[0][0])):
        words.pop(0)
    return "".join(w for w, _ in words)


def _opens_with_noun(text: str, segmenter: Segmenter) -> bool:
    words = segmenter.tagged(text)
    return bool(words) and words[0][1].startswith(("n", "r", "p", "t"))


def _joined(prefix: str) -> str:
    """共3622户 is asked 共有多少户: a bare 共 before the question word reads clipped."""
    return prefix + "有" if prefix.endswith("共") else prefix


def _person(tagged: list[tuple[str, str]], quoted: Callable[[int], bool]) -> tuple[str, str, str, str] | None:
    """A role followed by a name (区委书记王迎波说) asks who holds the role: 区委书记是谁？"""
    position = 0
    for i, (word, flag) in enumerate(tagged):
        position += len(word)
        if flag in PERSON_TAGS and i > 0 and ROLE.search(tagged[i - 1][0]) and not quoted(position - len(word)):
            role_words = []
            for before, before_flag in reversed(tagged[:i]):
                if before_flag in FUNCTION_TAGS or before in "、，,":
                    break
                role_words.insert(0, before)
            role = _without_demonstrative("".join(role_words))
            name = "".join(itertools.takewhile(bool, (w if f in PERSON_TAGS else "" for w, f in tagged[i:])))
            if len(role) >= 2 and len(name) >= 2:  # jieba tags 冯 and 红艳 apart
                return f"{role}是谁？", role[-MAX_LABEL_CHARS:], name, "person"
    return None


def _without_demonstrative(text: str) -> str:
    """该局低保管理中心主任 → 低保管理中心主任: 该局 points back at a sentence the suggestion does not show."""
    return re.sub(r"^[该此本这][\u4e00-\u9fff]", "", text)


def _label(text: str, segmenter: Segmenter, suffix: str) -> str:
    """The content words of ``text`` with a noun for what is asked (户数, 金额, 电话), at most MAX_LABEL_CHARS:
    the head of a Chinese noun phrase is at its end, so words are dropped from the front."""
    tagged = [(w, flag) for w, flag in segmenter.tagged(_without_demonstrative(text.strip()))
              if (flag not in FUNCTION_TAGS or _noun_like(w, flag)) and flag != "ns"
              and not (len(w) == 1 and flag.startswith("v")) and not re.search(r"[\d\s：:“”\"、《》]", w)]
    if len(tagged) > 1 and tagged[-1][1] == "v":  # the verb before the figure: 人均住房建筑面积低于
        tagged.pop()
    words = [w for w, _ in tagged]
    if suffix and words and (suffix in words[-1] or words[-1][-1] == suffix[0]):  # 资金 needs no 金额
        suffix = ""
    label = "".join(words)
    while len(label + suffix) > MAX_LABEL_CHARS and len(words) > 1:
        words.pop(0)
        label = "".join(words)
    return label if label.endswith(suffix) else label + suffix
