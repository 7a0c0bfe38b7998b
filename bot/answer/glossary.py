"""Query expansion: the words residents use → the words the district's articles use.

Two small, reviewable tables. Colloquial and Henan-dialect words map to the written terms of official
reports; English words for the district's services map to their Chinese names, so that English questions
reach the keyword index too (the dense model is cross-lingual, BM25 is not). Extend them when the
feedback log shows a resident's word the articles do not use.
"""
from __future__ import annotations

import re

COLLOQUIAL = {
    "咱区": "卫东区", "俺区": "卫东区", "咱卫东区": "卫东区", "区里": "区", "俺们": "", "咱们": "", "俺家": "",
    "名儿": "名字", "叫啥": "叫什么", "干啥": "做什么", "为啥": "为什么", "咋样": "怎么样", "咋": "怎么",
    "啥": "什么", "嘞": "", "哩": "", "不中": "不好",
    "娃们": "儿童 学生", "俺家娃": "儿童 学生", "孩子": "儿童 学生", "小孩": "儿童 学生", "学生娃": "学生",
    "查牙": "口腔检查", "看牙": "口腔检查", "补牙": "窝沟封闭",
    "老爷子": "老人 老党员", "老头": "老人 老党员", "老太太": "老人", "老兵": "老兵 退伍军人",
    "饭店": "餐饮店 餐饮单位", "饭馆": "餐饮店 餐饮单位", "小吃店": "小餐饮 八小门店", "后厨": "后厨卫生",
    "天儿": "空气 环境", "天气": "空气 环境", "雾霾": "PM2.5 PM10 空气质量", "空气": "空气 环境指标",
    "扫地": "清扫保洁", "来扫": "清扫保洁", "谁扫": "清扫保洁", "扫街": "道路清扫保洁", "扫路": "道路清扫保洁", "打扫": "清扫保洁", "垃圾桶": "垃圾桶 果皮箱",
    "收税": "税收收入", "收了多少税": "税收收入多少", "花了": "投入", "投了": "投入",
    "吃上低保": "办理了低保", "吃低保": "低保", "低保钱": "最低生活保障金", "困难户": "低保 困难群众",
    "眼睛不中": "视力伤残", "城里": "建成区", "跑不": "限行", "念古诗": "读古诗 国学", "念书": "学习",
}

ENGLISH = {
    r"minimum living (allowance|security|guarantee)|dibao|subsistence allowance": "低保 最低生活保障",
    r"social (assistance|relief)|welfare": "社会救助",
    r"civil affairs": "民政局",
    r"households?|families|family": "户 家庭",
    r"pit[- ]and[- ]fissure|sealants?|sealing": "窝沟封闭",
    r"dental|oral|teeth|tooth": "口腔 牙齿",
    r"primary schools?|pupils?": "小学 学生",
    r"children|kids?": "儿童",
    r"pm ?2\.5": "PM2.5", r"pm ?10": "PM10",
    r"air quality|air|environment(al)?": "空气 环境指标",
    r"dust": "扬尘", r"sprinkler|water(ing)? trucks?": "洒水车", r"fog cannon": "雾炮车",
    r"construction sites?|building sites?": "建筑工地 工地", r"monitoring platform": "监控平台",
    r"street cleaning|road cleaning|sweep(ing)?": "道路清扫 保洁",
    r"fiscal revenue|budget revenue|revenue": "财政收入", r"tax(es)?": "税收",
    r"year on year|year-on-year": "同比增长", r"first half": "上半年",
    r"audit(s|ing)?": "审计", r"discipline inspection|disciplinary": "纪委 纪检",
    r"united front": "统一战线", r"training base": "培训实践基地",
    r"food safety|restaurants?|eateries": "食品安全 餐饮",
    r"blackboard newspaper|blackboard": "黑板报", r"party members?": "党员",
    r"retired": "退休", r"veterans?|military families": "退伍军人 军烈属",
    r"migrant workers?": "外来务工人员 农民工", r"classics|poems?|poetry": "国学 古诗",
    r"four[- ]city|city (creation|improvement)": "四城联创", r"garbage|rubbish|trash": "垃圾",
    r"street lamps?|street lights?": "路灯", r"yellow[- ]label": "黄标车",
    r"how old|age": "岁", r"rate": "率",
}
_ENGLISH = [(re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE), terms) for pattern, terms in ENGLISH.items()]
# Keys are whole colloquial words of two or more characters (a single character such as 税 would also match
# inside the written words of official text, 非税收入), or dialect particles official text never uses (啥, 咋).
_COLLOQUIAL = sorted(COLLOQUIAL.items(), key=lambda kv: -len(kv[0]))  # longest phrase first


def expand(query: str) -> str:
    """``query`` with colloquial words replaced by the written terms, and the Chinese names of the
    English words it contains appended."""
    for word, terms in _COLLOQUIAL:
        query = query.replace(word, f" {terms} ")
    extra = [terms for pattern, terms in _ENGLISH if pattern.search(query)]
    return " ".join([query, *extra]).strip() if extra else " ".join(query.split())
