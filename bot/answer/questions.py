"""Question analysis: what kind of answer is asked for, its salient terms, and the entities it names."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import math

from bot.answer.divisions import is_division, tag_divisions
from bot.search.keyword import PLAIN, STOPWORDS, KeywordIndex, Segmenter

# Words that shape a question but say nothing about its topic.
QUESTION_WORDS = frozenset(
    "多少 几 几个 几家 几所 多大 多久 多长 什么 怎么 怎么样 怎样 如何 哪 哪里 哪儿 哪些 哪个 哪位 谁 为什么 是否 吗 呢 "
    "请问 知道 告诉 一下 情况 问题 不是 要是 岁数 年纪 年龄 名字 能不能 可不可以 有没有 是不是 咋 啥 嘞 不 没 一共 总共 共 那 那么 这个 那个 "
    "how many much what who where when which why does did do is are the a an of in to for".split())

NUMBER = r"(?:\d[\d.,]*|[两一二三四五六七八九十百千]+)(?:余|多)?(?:万|亿)?(?:余|多)?"
# A quantity is a number with a unit that is not part of a date ("7月26日" answers no 多少 question).
QUANTITY = re.compile(NUMBER + r"(?:%|[^\d月日年点时号\s,，。、;；:：.])")
# Measure words a 多少/几 question names, and the units that answer it (多少家 may be answered in 户); any other
# common measure word (量词) is answered by itself. A measure word counts where it stands as a word of its own
# right after 多少/几 (多少针, 几天, not 多少天然气); the units in COUNTED_NOUN_ENDING also count at the end of
# the noun that follows (多少低保户, 多少老年人).
UNIT_GROUPS = [("户家", "户|家"), ("人名位", "人|名"), ("次回遍", "人次|家次|次"), ("台辆", "台|辆"), ("元钱块", "元"),
               ("度", "度|℃"), ("天日", "天|日|个?工作日"), ("个", None)]
MEASURE_WORDS = frozenset("""
平方公里 平方米 立方米 公里 千米 厘米 毫米 米 公顷 亩 吨 公斤 千克 克 斤 港元 美元 欧元 日元 英镑 艘次 架次
个月 小时 分钟 秒 天 周 年 倍 所 颗 条 期 台 辆 岁 分 盏 套 份 件 针 艘 支 只 头 匹 棵 株 座 栋 幢
间 张 本 册 篇 首 部 场 届 项 起 例 批 架 列 趟 班 枚 粒 瓶 箱 袋 包 根 层 处 笔 宗 种 类 封 面
家 户 人 名 位 次 回 遍 元 钱 块 度 日 个
""".split())
ASKED_COUNT = re.compile(r"(?:多少|几)(?:万|亿)?")
COUNTED_NOUN_ENDING = re.compile(r"[\u4e00-\u9fff]{0,3}?(户|家|人|名|位|次|所|颗|条|期|台|辆|元|钱|岁|盏|套|份|件)")

# 哪家医院, 哪个城市: the kind of place asked for, and what a sentence naming such a place contains.
ASKED_PLACE = re.compile(r"(?:哪个|哪座|哪所|哪家|哪一)(城市|地方|国家|[省市县区镇乡村]|街道|社区|小区|场地|场馆|体育馆|球场|医院|"
                         r"学校|大学|酒店|宾馆|商场|公园|机场|车站|码头)")
PLACE_ANSWERS = {"城市": "市|城", "地方": None, "国家": "国", "场地": "场|馆|中心", "场馆": "场|馆|中心", "体育馆": "馆|中心",
                 "球场": "场", "学校": "学|校", "大学": "大学|学院", "车站": "站"}
NUMERIC = re.compile(r"[\d.%]+")
# Question words fused with a noun (几期, 哪部, 啥时候), and demonstratives that point back at what the question
# already described (那起, 那件事, 这位): neither says what the question is about.
QUESTION_PREFIX = re.compile(r"^(几|多少|哪|啥|咋|什么|(那|这)(个|位|名|起|件|例|次|些|对|家|条|场|种|只|天|年))")

# Each answer type: the question pattern and the pattern a passage sentence must contain to answer it.
ANSWER_TYPES = {
    # Not 手机 or 号码 alone: a question about a phone model or a jersey number asks for no phone number.
    "phone": (re.compile(r"电话|热线|联系方式|手机号|phone|hotline|contact"),
              re.compile(r"\d{3,4}-?\d{7,8}|1[3-9]\d{9}|12345")),
    "address": (re.compile(r"地址|在哪办|去哪办|哪里办|去哪里|办公地点|门牌|address|where can i"),
                re.compile(r"路\d+号|\d+号楼|大厅|办事处|窗口")),
    "documents": (re.compile(r"(哪些|什么|啥)(材料|证件|证明|手续)|带什么|documents|paperwork"),
                  re.compile(r"材料|证件|证明|身份证|户口|手续")),
    "money": (re.compile(r"多少钱|多少元|几元|几块|金额|补助多少|发多少|标准是多少|每月.{0,4}多少|how much money|amount"),
              re.compile(NUMBER + r"\s*元")),  # 832万余元, 两亿元
    "time": (re.compile(r"几点|什么时候|哪天|何时|哪一天|几月|哪年|日期|when|what time|what date"),
             re.compile(r"\d{1,2}月(\d{1,2}日|底|初|中旬)?|\d{4}年|\d{1,2}点|上午|下午|清晨|早上")),
    "age": (re.compile(r"多大(岁数|年纪)|年龄|岁数|几岁|多少岁|高寿|how old|\bage\b"), re.compile(r"\d+周?岁")),
    "quantity": (re.compile(r"多少|几|数量|比例|百分|率是|多大|多久|多长|多高|多远|多重|how many|how much|how long|percent|rate"),
                 QUANTITY),
    # A person is named with a role, or by name (person names are found by part-of-speech tagging: PERSON_TAG).
    "person": (re.compile(r"谁|哪位|什么人|负责人|叫什么|名字|who"),
               re.compile(r"书记|局长|区长|县长|市长|省长|主任|主席|委员|组长|队长|校长|院长|经理|董事长|总裁|创始人|负责人|"
                          r"教授|博士|医生|记者|作者|导演|演员|歌手|运动员|球员|教练|先生|女士")),
    "place": (re.compile(r"哪里|哪儿|在哪|什么地方|" + ASKED_PLACE.pattern + "|where"),
              re.compile(r"街道|社区|村|小区|广场|基地|商场|市场|路|街|家中|[省市县区镇乡城]|中心|[馆场厅院站港岛山湾楼]|公园|大学|"
                         r"学校|机场|码头|酒店|宾馆|大厦")),
    "procedure": (re.compile(r"怎么|如何|怎样|什么办法|哪些措施|采取了|做了哪些|how"), None),
}

PRECISE_TYPES = ("phone", "money", "age", "documents")

PLACE_SUFFIXES = ("区", "县", "市", "省")
YEAR_RE = re.compile(r"(19|20)\d{2}年?")
PERIOD_RE = re.compile(r"[上下]半年|第?[一二三四1-4]季度|前三季度|第[一二三四五六七八九十\d]+[期届批轮]")
CURRENT_RE = re.compile(r"现在|目前|今年|当前|最近|如今|眼下|now|currently|this year|today")
CJK_RE = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"[a-z][a-z0-9.]*[a-z0-9]")
# A named place is one of China's divisions (divisions.py), or a tagged place name of three or more characters
# with one of these endings: two-character words (全区, 本市, 城区, 社区) are generic, and the knowledge's own
# place is named in its lexicon.
MIN_PLACE_CHARS = 3
PERSON_TAGS = ("nr", "nrfg", "nrt")  # jieba's part-of-speech flags for a person's name


@dataclass(frozen=True)
class QuestionAnalysis:
    query: str  # normalised question
    terms: tuple[str, ...]  # salient terms, question words removed
    weights: dict  # term -> weight (idf in the current index); the question's own terms
    carried: dict  # term -> weight (reduced) for terms a follow-up carried over from earlier turns
    answer_type: str  # one of ANSWER_TYPES, or "general"
    places: tuple[str, ...]  # place names other than this district
    persons: tuple[str, ...]  # people the question names
    years: tuple[str, ...]
    periods: tuple[str, ...]  # 下半年, 第三季度, 第三期: parts of a year or of a series the question names
    asks_current: bool  # "现在/今年/目前": the answer must say how old its source is
    chinese: bool  # False for English (or other) questions: lexical signals do not apply

    unit_pattern: re.Pattern | None = None  # 多少户/几期…: a number with the asked unit; 每月多少钱: a rate
    also_asks: tuple[str, ...] = ()  # further kinds of answer a two-part question asks for (地址 and 几点上班)
    unknown_latin: tuple[str, ...] = ()  # Latin-script words of a Chinese question that no chunk uses (GDP)
    # term -> weight: what the question is about (own and carried terms), without the names of the knowledge's own
    # place: 卫东区 is in every article and says nothing about which one a question is about (topic.py).
    topic: dict = field(default_factory=dict)

    @property
    def precise_type(self) -> bool:
        """The asked-for kind of answer is one a pattern recognises reliably (a number in the asked unit, an
        amount of money, an age, a phone number, papers to bring): a sentence without it cannot answer."""
        return self.unit_pattern is not None or self.answer_type in PRECISE_TYPES

    @property
    def required_pattern(self) -> re.Pattern | None:
        if self.unit_pattern is not None:
            return self.unit_pattern
        return ANSWER_TYPES[self.answer_type][1] if self.answer_type in ANSWER_TYPES else None


# A term the knowledge never uses is either the missing thing (城管局, 臭氧, GDP) or everyday filler (街上, 一大早).
# Its weight scales with how specific it is in general Chinese, read off jieba's dictionary frequencies:
# general idf <= COMMON_IDF counts UNKNOWN_FLOOR of the rarest known term, >= SPECIFIC_IDF counts fully.
COMMON_IDF, SPECIFIC_IDF = 9.0, 14.0
FOREIGN_SPECIFICITY = 0.7  # a word this specific that the knowledge never uses makes the question foreign
UNKNOWN_FLOOR = 0.2
OOV_SPECIFICITY = 0.5
CARRIED_TERM_FACTOR = 0.5


def salient_terms(text: str, keyword: KeywordIndex, words: bool = True) -> dict[str, float]:
    """Topic terms of ``text`` with their weight: idf for known terms, a share of the rarest idf for unknown.
    ``words=False`` drops Latin-script words (an English question's terms come from its glossary expansion)."""
    rare = keyword.idf_of_count(1)
    weights = {}
    for term in keyword.segmenter.tokenize(text):
        if not words and re.fullmatch(r"[a-z]+", term):
            continue
        # Single characters (到, 投, 钱) are too common or too vague to say what a question is about.
        if term in QUESTION_WORDS or QUESTION_PREFIX.match(term) or (len(term) == 1 and not term.isascii()):
            continue
        known = keyword.document_frequency(term) > 0
        weights[term] = keyword.idf(term) if known else specificity(term) * rare
    return weights


def specificity(term: str) -> float:
    """UNKNOWN_FLOOR for everyday words … 1.0 for words rare in general Chinese. A Chinese word jieba's
    dictionary lacks was guessed by its HMM (好点, 娃们): more likely colloquial than specific, so it gets 0.5;
    a Latin-script word it lacks (GDP) is a name, so 1.0."""
    frequency = PLAIN.frequency(term)
    if frequency == 0:
        return 1.0 if term.isascii() else OOV_SPECIFICITY
    share = (math.log(PLAIN.total / (frequency + 1)) - COMMON_IDF) / (SPECIFIC_IDF - COMMON_IDF)
    return min(1.0, max(UNKNOWN_FLOOR, share))


def foreign_terms(analysis: "QuestionAnalysis", keyword: KeywordIndex, threshold: float) -> list[str]:
    """Specific words of the question that no passage of the knowledge uses: it asks about something else.
    Whole words (precise segmentation), not search-mode pieces: 一大早 is everyday, its piece 大早 looks rare."""
    if not analysis.chinese:  # an English word's absence from Chinese articles says nothing
        return []
    words = [w.lower() for w in keyword.segmenter.words_of(analysis.query) if len(w.strip()) > 1]
    return [w for w in dict.fromkeys(words)
            if w not in QUESTION_WORDS and w not in STOPWORDS and not QUESTION_PREFIX.match(w)
            and not NUMERIC.fullmatch(w) and specificity(w) >= threshold and not _mostly_known(w, keyword)]


def _mostly_known(word: str, keyword: KeywordIndex) -> bool:
    """True when parts the knowledge uses cover more than half of ``word``: 报告会 and 书面报告 are made of
    known words, while in 臭氧浓度 the known 浓度 is only the frame around the unknown 臭氧."""
    covered = set()
    for i in range(len(word)):
        for j in range(i + 2, len(word) + 1):
            if keyword.document_frequency(word[i:j]) > 0:
                covered.update(range(i, j))
    return len(covered) * 2 > len(word)


def _answer_types(query: str) -> list[str]:
    """Every kind of answer the question asks for, in the order it asks ("general" when none is recognised):
    the first part of 多少所小学…，联系电话是多少 is the main one. Kinds asked at the same place keep the table's
    order, so 多少钱 is money before it is a quantity."""
    lowered = query.lower()
    found = [(match.start(), i, name) for i, (name, (question_pattern, _)) in enumerate(ANSWER_TYPES.items())
             for match in [question_pattern.search(lowered)] if match]
    return [name for _, _, name in sorted(found)] or ["general"]


def _persons(tagged: list[tuple[str, str]]) -> tuple[str, ...]:
    """People the question names: runs of words tagged as a person's name, joined (jieba tags 魏 and 留德 apart)."""
    names, run = [], ""
    for word, flag in [*tagged, ("", "x")]:
        if flag in PERSON_TAGS:
            run += word
            continue
        if len(run) >= 2:
            names.append(run)
        run = ""
    return tuple(dict.fromkeys(names))


def _places(tagged: list[tuple[str, str]], home: frozenset[str]) -> tuple[str, ...]:
    """Districts, counties, cities and provinces the question names, other than the knowledge's own (``home``)."""
    return tuple(dict.fromkeys(word for word, flag in tagged if flag == "ns" and word not in home and (
        is_division(word) or len(word) >= MIN_PLACE_CHARS and word.endswith(PLACE_SUFFIXES))))


# What a 多大/多长/多久 question measures, and the units a sentence must hold to answer it; the first match
# wins, so 多长时间 is read as a duration before 多长 as a length.
DIMENSIONS = [(re.compile(r"多久|多长时间"), "年|个月|天|日|小时|分钟|秒|周"), (re.compile(r"面积"), "平方米|平方公里|平方千米|亩|公顷"),
              (re.compile(r"多高|高度|海拔"), "米"), (re.compile(r"多长|长度|全长|多远|距离|里程"), "米|公里|千米|里"),
              (re.compile(r"多重|重量"), "吨|斤|克")]
# A rate: 每月发多少钱, 一颗牙多少钱 (a price per unit of something).
PER_UNIT = re.compile(r"每(月|人|户|年|天|颗|次|个|件|平方米|吨)|一个?(月|年|天|颗|件|次|人|户|平方米|吨)(?=[^，,。？?]{0,6}多少钱)")


def _counted(units: str) -> re.Pattern:
    """A number in one of ``units``, not the tail of a longer number or of a date (7月25日 is no 5日 stay)."""
    return re.compile(r"(?<![\d.月])" + NUMBER + f"(?:{units})")


def _asked_unit(query: str, segmenter: Segmenter) -> str | None:
    for count in ASKED_COUNT.finditer(query):
        rest = query[count.end():]
        word = next(iter(segmenter.words_of(rest)), "")
        if word == "个":  # the general measure word: the noun after it may say more (多少个低保户 counts 户)
            rest = rest[1:]
        elif word in MEASURE_WORDS:
            return word
        ending = COUNTED_NOUN_ENDING.match(rest)
        if ending:
            return ending.group(1)
        if word == "个":
            return word
    return None


def _unit_pattern(query: str, answer_type: str, segmenter: Segmenter) -> re.Pattern | None:
    if answer_type == "money":
        per = PER_UNIT.search(query)
        # 每月发多少钱 asks for a rate: a total (832万余元) does not answer it; 每颗…元, 一颗…元 and 元/颗 do.
        if per is None:
            return None
        unit = per.group(1) or per.group(2)
        amount = NUMBER + r"\s*元"
        return re.compile(rf"[每一]个?{unit}[^。；;]{{0,30}}?{amount}|{amount}\s*/\s*{unit}")
    if answer_type == "place":
        asked = ASKED_PLACE.search(query)
        answers = PLACE_ANSWERS.get(asked.group(1), asked.group(1)) if asked else None
        return re.compile(answers) if answers else None
    if answer_type != "quantity":
        return None
    unit = _asked_unit(query, segmenter)
    if unit is None:
        units = next((units for asked, units in DIMENSIONS if asked.search(query)), None)
        return _counted(units) if units else None
    units = next((answers for asked, answers in UNIT_GROUPS if unit in asked), unit)
    # 个 is the general measure word: any quantity may answer it.
    return _counted(units) if units else None


def analyze(query: str, keyword: KeywordIndex, carried: tuple[str, ...] = (),
            home: frozenset[str] = frozenset()) -> QuestionAnalysis:
    """``query`` is the normalised, glossary-expanded question; ``carried`` the terms a follow-up took from
    earlier turns: they steer sentence choice but weigh little, so they cannot make a question answerable.
    ``home``: the names of the knowledge's own place (its lexicon's district), never a place it lacks."""
    chinese = len(CJK_RE.findall(query)) >= max(2, len(query) // 4)
    weights = salient_terms(query, keyword, words=chinese)
    carried_weights = {t: CARRIED_TERM_FACTOR * keyword.idf(t) for t in carried if t not in weights}
    answer_type, *also = _answer_types(query)
    tagged = tag_divisions(keyword.segmenter.tagged(query))  # tagging is the slow step: once per question
    return QuestionAnalysis(
        query=query,
        terms=tuple(weights),
        weights=weights,
        carried=carried_weights,
        answer_type=answer_type,
        places=_places(tagged, home),
        persons=_persons(tagged),
        years=tuple(m.group(0).rstrip("年") for m in YEAR_RE.finditer(query)),
        periods=tuple(dict.fromkeys(m.group(0) for m in PERIOD_RE.finditer(query))),
        asks_current=bool(CURRENT_RE.search(query.lower())),
        chinese=chinese,
        unit_pattern=_unit_pattern(query, answer_type, keyword.segmenter),
        also_asks=tuple(also),
        unknown_latin=tuple(dict.fromkeys(w for w in LATIN_WORD.findall(query.lower())
                                          if chinese and keyword.document_frequency(w) == 0)),
        topic={t: w for t, w in {**carried_weights, **weights}.items() if not any(t in name for name in home)},
    )
