"""Question analysis: what kind of answer is asked for, its salient terms, and the entities it names."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .keyword import KeywordIndex, tokenize

# Words that shape a question but say nothing about its topic.
QUESTION_WORDS = frozenset(
    "多少 几 几个 几家 几所 多大 多久 多长 什么 怎么 怎么样 怎样 如何 哪 哪里 哪儿 哪些 哪个 哪位 谁 为什么 是否 吗 呢 "
    "请问 知道 告诉 一下 情况 问题 能不能 可不可以 有没有 是不是 咋 啥 嘞 不 没 一共 总共 共 那 那么 这个 那个 "
    "how many much what who where when which why does did do is are the a an of in to for".split())

# Each answer type: the question pattern and the pattern a passage sentence must contain to answer it.
ANSWER_TYPES = {
    "phone": (re.compile(r"电话|热线|联系方式|手机|号码|phone|hotline|contact"),
              re.compile(r"\d{3,4}-?\d{7,8}|1[3-9]\d{9}|12345")),
    "address": (re.compile(r"地址|在哪办|去哪办|哪里办|去哪里|办公地点|门牌|address|where can i"),
                re.compile(r"路\d+号|\d+号楼|大厅|办事处|窗口")),
    "money": (re.compile(r"多少钱|多少元|几元|几块|金额|补助多少|发多少|标准是多少|每月.{0,4}多少|how much money|amount"),
              re.compile(r"\d[\d.]*\s*(万|亿)?余?元")),
    "time": (re.compile(r"几点|什么时候|哪天|何时|哪一天|几月|哪年|日期|when|what time|what date"),
             re.compile(r"\d{1,2}月(\d{1,2}日|底|初|中旬)?|\d{4}年|\d{1,2}点|上午|下午|清晨|早上")),
    "quantity": (re.compile(r"多少|几|数量|比例|百分|率是|多大|how many|how much|percent|rate"),
                 re.compile(r"\d|[一二三四五六七八九十两百千万]+(户|人|所|家|个|条|期|名|次|颗|台|套)")),
    "person": (re.compile(r"谁|哪位|什么人|负责人|叫什么|名字|who"),
               re.compile(r"书记|局长|区长|主任|组长|主管员|老兵|党员|居民|志愿者|低保户|记者|负责人")),
    "place": (re.compile(r"哪里|哪儿|在哪|什么地方|哪个(街道|社区|村|小区|地方)|where"),
              re.compile(r"街道|社区|村|小区|广场|基地|商场|市场|路|家中")),
    "procedure": (re.compile(r"怎么|如何|怎样|什么办法|哪些措施|采取了|做了哪些|how"), None),
}

PLACE_RE = re.compile(r"[\u4e00-\u9fff]{2}(?:区|县|市)")
YEAR_RE = re.compile(r"(19|20)\d{2}年?")
CURRENT_RE = re.compile(r"现在|目前|今年|当前|最近|如今|眼下|now|currently|this year|today")
CJK_RE = re.compile(r"[\u4e00-\u9fff]")
HOME_DISTRICT = "卫东区"
# Generic place words the regex would take for names: "全区", "该区", "本市" are this district.
GENERIC_PLACES = frozenset({"全区", "该区", "本区", "咱区", "俺区", "我区", "辖区", "城区", "社区", "市区", "小区", "园区",
                            "本市", "全市", "我市", "成区", "范区", "东区", "市县", "区县", "城市", "地区", "山区", "矿区"})


@dataclass(frozen=True)
class QuestionAnalysis:
    query: str  # normalised question
    terms: tuple[str, ...]  # salient terms, question words removed
    weights: dict  # term -> idf in the current index
    answer_type: str  # one of ANSWER_TYPES, or "general"
    places: tuple[str, ...]  # place names other than this district
    years: tuple[str, ...]
    asks_current: bool  # "现在/今年/目前": the answer must say how old its source is
    chinese: bool  # False for English (or other) questions: lexical signals do not apply

    @property
    def required_pattern(self) -> re.Pattern | None:
        return ANSWER_TYPES[self.answer_type][1] if self.answer_type in ANSWER_TYPES else None

    @property
    def total_weight(self) -> float:
        return sum(self.weights.values())


def salient_terms(text: str, keyword: KeywordIndex) -> dict[str, float]:
    """Topic terms of ``text`` with their idf weight; single characters only when the index knows them."""
    weights = {}
    for term in tokenize(text):
        if term in QUESTION_WORDS or (len(term) == 1 and not term.isdigit() and keyword.document_frequency(term) == 0):
            continue
        weights[term] = keyword.idf(term)
    return weights


def _answer_type(query: str) -> str:
    lowered = query.lower()
    for name, (question_pattern, _) in ANSWER_TYPES.items():
        if question_pattern.search(lowered):
            return name
    return "general"


def _places(query: str) -> tuple[str, ...]:
    """Other districts, counties and cities the question names (the knowledge covers 卫东区 only)."""
    found = []
    for match in PLACE_RE.finditer(query):
        name = match.group(0)
        if name in HOME_DISTRICT or name in GENERIC_PLACES or name[1:] in GENERIC_PLACES:
            continue
        found.append(name)
    return tuple(found)


def analyze(query: str, keyword: KeywordIndex) -> QuestionAnalysis:
    weights = salient_terms(query, keyword)
    return QuestionAnalysis(
        query=query,
        terms=tuple(weights),
        weights=weights,
        answer_type=_answer_type(query),
        places=_places(query),
        years=tuple(m.group(0).rstrip("年") for m in YEAR_RE.finditer(query)),
        asks_current=bool(CURRENT_RE.search(query.lower())),
        chinese=len(CJK_RE.findall(query)) >= max(2, len(query) // 4),
    )
