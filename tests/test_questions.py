"""bot/answer/questions.py: what a question asks for, and which sentences can answer it (with the seed's keyword index)."""
from __future__ import annotations

import pytest

from bot.answer.questions import analyze


@pytest.fixture(scope="module")
def keyword(seed_index):
    return seed_index.keyword


def answers(keyword, question: str, sentence: str) -> bool:
    pattern = analyze(question, keyword).required_pattern
    return bool(pattern and pattern.search(sentence))


@pytest.mark.parametrize("question, answering, not_answering", [
    ("全区有多少户低保户？", "共有低保户1200户", "共有低保户1200人"),
    ("那个小孩缝了多少针？", "被缝了有差不多20针", "8月16日在浴场被咬伤"),
    ("外高桥边检站一天办理了多少艘次出入境船舶？", "办理出入境船舶60艘次", "查验人员24万余人次"),
    ("首届比赛有多少支球队参赛？", "共有34支球队参赛", "共有5000名球员"),
    ("收盘报多少港元？", "收报0.66港元", "下跌了3%"),
    ("被拘留的人要关几天？", "依法处以行政拘留5日", "7月25日被拘留"),
    ("红外相机拍到了多少种保护动物？", "拍到28种国家重点保护野生动物", "安装了50台红外相机"),
    ("保护区的面积有多大？", "总面积达54.3万平方公里", "保护区有1200种植物"),
    ("两兄妹失散了多久？", "兄妹失散了66年", "8月1日终于团聚"),
    ("排队等了多长时间？", "排队等了40分钟", "队伍排了200米"),
    ("这条公路有多长？", "公路全长522公里", "修了3年"),
])
def test_a_quantity_question_needs_the_unit_it_names(keyword, question, answering, not_answering):
    assert answers(keyword, question, answering)
    assert not answers(keyword, question, not_answering)


def test_the_general_measure_word_accepts_any_quantity(keyword):
    assert answers(keyword, "一共有几个社区？", "全区共有35个社区")
    assert answers(keyword, "一共有几个社区？", "全区共有35家单位")


@pytest.mark.parametrize("question, answering, not_answering", [
    ("器官是送去重庆哪家医院的？", "送往重庆医科大学附属第一医院", "航班于21时落地重庆江北机场"),
    ("动车组是在哪个城市下线的？", "在长春市下线", "7月20日正式下线"),
    ("孩子们在哪儿读古诗？", "在人民商场广场学习国学读古诗", "每天早上7点读古诗"),
])
def test_a_place_question_needs_the_kind_of_place_it_names(keyword, question, answering, not_answering):
    assert analyze(question, keyword).answer_type == "place"
    assert answers(keyword, question, answering)
    assert not answers(keyword, question, not_answering)


def test_demonstratives_are_not_topic_terms(keyword):
    analysis = analyze("那起案子里那位志愿者说的那件事是什么？", keyword)
    assert not {"那起", "那位", "那件", "那件事"} & set(analysis.terms)
    assert "志愿者" in analysis.terms


@pytest.mark.parametrize("question, answering", [
    ("全区有多少老年人？", "全区有1200名老年人"),
    ("用了多少天然气？", "用气3.5万立方米"),
    ("来了多少日本游客？", "接待游客300余人次"),
])
def test_a_measure_word_inside_a_noun_is_not_the_unit(keyword, question, answering):
    assert answers(keyword, question, answering)


@pytest.mark.parametrize("question, places", [
    ("舞钢市的低保有多少户？", ("舞钢市",)),  # jieba: a noun
    ("鄂州华容区段店派出所帮忙找到的兄妹失散了多少年？", ("华容区",)),  # jieba: a person's name
    ("甘肃宕昌县通往纪念馆的省道是什么时候被冲毁的？", ("宕昌县",)),  # jieba: a verb
    ("叶县今年的财政收入是多少？", ("叶县",)),  # two characters: a county
    ("什么原因导致了海宁市民出行不便？", ()),  # 海宁 + 市民: no 海宁市 in it
    ("城区的扬尘怎么治理？", ()),  # two characters: a district, and a common word
    ("卫东区的低保有多少户？", ()),  # the knowledge's own place
])
def test_a_question_names_the_divisions_it_asks_about(keyword, question, places):
    analysis = analyze(question, keyword, home=frozenset({"卫东区"}))
    assert analysis.places == places
    assert not set(places) & set(analysis.persons)
