"""The page importer: a printed page dump becomes one article per item, with nothing lost or duplicated."""
from __future__ import annotations

import dataclasses
import re

import pytest

from bot.config import ROOT
from bot.knowledge.articles import load_knowledge
from bot.knowledge.pageimport import import_page, parse_page

SEED_PAGE = ROOT / "knowledge" / "raw" / "000_d8e10ae50a9c1096.txt"
SEED_SOURCE = "raw/000_d8e10ae50a9c1096.txt"
ENDS_SENTENCE = re.compile(r"[。！？!?；;…][”’」』）)]*$")
CREDIT_END = re.compile(r"\s摄$")
SENTENCE = re.compile(r"[^。！？!?；;]+(?:[。！？!?；;]+[”’」』）)]*)?")

SYNTHETIC_PAGE = """\
3月5日，市民在湛河公园植树。
今年以来，该区已组织义务植树活动12场。
通讯员 王芳 摄

社区食堂开门迎客
3月6日，卫东区首家社区食堂在东安路街道开业，每天可为200余名老人提供午餐。食堂负责人介绍，老年人就餐可享受
八折优惠，残疾人和低保户免费就餐。
该区计划到2020年实现社区食堂全覆盖。

卫东区新增公益岗位300个
优先安置就业困难人员，月补贴1500元
本报讯（记者 李明 通讯员 赵强 孙丽）3月8日，卫东区2019年春风行动招聘会在区人力资源市场举行。
招聘会共吸引86家企业参加，提供岗位2100余个。
3月8日，求职者在招聘会现场咨询。张华 摄
"""


@pytest.fixture(scope="module")
def seed_text() -> str:
    return SEED_PAGE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def seed(seed_text):
    return parse_page(seed_text, SEED_SOURCE)


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def printed_text(article) -> str:
    """What the page printed for an item: a photo's title is derived from its caption, so it is not counted."""
    head = article.subtitle + article.title if article.kind == "news" else ""
    return squeeze(head + article.body)


def test_seed_yields_eight_news_and_three_photos(seed):
    assert len(seed) == 11
    assert [a.kind for a in seed].count("news") == 8
    assert [a.kind for a in seed].count("photo") == 3
    assert [a.id for a in seed] == [f"20170731-{n:02d}" for n in range(1, 12)]
    assert [a.kind for a in seed] == ["news"] * 4 + ["photo"] * 2 + ["news"] * 4 + ["photo"]


def test_headlines_and_their_subtitles(seed):
    news = {a.title: a.subtitle for a in seed if a.kind == "news"}
    assert news == {
        "卫东区高标准推进“四城联创”": "实行精细化管理 共同打好“组合拳”",  # kicker above the title
        "区纪委听取纪工委纪检组半年工作报告": "查漏补缺明职责 重整行装再出发",
        "区统一战线能力素质提升培训实践基地揭牌": "",  # single-line headline
        "区审计局深化经济责任审计": "积极调整思路 改进方式方法",
        "卫东区上半年财政收入实现“双过半”": "加强财源建设 优化财税机制",
        "卫东区上半年环境指标持续向好": "加大扬尘治理 提升群众幸福感",
        "区民政局实现社会救助“无盲区”": "核查认定严格科学 实施网格管理模式",
        "卫东区积极开展儿童口腔疾病干预": "已累计投入180万元,受益儿童1万余人",  # deck below the title
    }
    for article in seed:
        if article.kind == "news":
            assert article.body.startswith("本报讯(记者田秀忠"), article.id


def test_photo_captions_are_their_own_items(seed):
    photos = [a for a in seed if a.kind == "photo"]
    assert [a.title for a in photos] == ["图片新闻：卫东区鸿鹰街道大营社区组织工作人员到50余名军烈属、退伍军人",
                                          "图片新闻：卫东区外来务工人员的子女在国学、诵古诗", "图片新闻：在卫东区东安路街道安培社区"]
    assert photos[0].body.split("\n")[-1] == "本报记者 田秀忠 摄"
    assert len(photos[1].body.split("\n")) == 3  # two caption paragraphs and the credit line
    assert photos[2].body.endswith("500多期。黄杰 摄")
    audit = next(a for a in seed if a.title == "区审计局深化经济责任审计")
    assert audit.body.endswith("提供重要依据。") and "八一建军节" not in audit.body
    dental = next(a for a in seed if a.title == "卫东区积极开展儿童口腔疾病干预")
    assert dental.body.endswith("封闭牙齿34843颗。") and "黑板报" not in dental.body


def test_reporters(seed):
    assert seed[1].reporters == ("记者 田秀忠", "通讯员 杨水亮", "通讯员 张进超")
    assert seed[2].reporters == ("记者 田秀忠",)
    assert seed[4].reporters == ("摄影 田秀忠",)
    assert seed[10].reporters == ("摄影 黄杰",)


def test_column_breaks_are_joined(seed):
    for article in seed:
        for paragraph in article.body.split("\n"):
            assert ENDS_SENTENCE.search(paragraph) or CREDIT_END.search(paragraph), (article.id, paragraph[-20:])
    bodies = "\n".join(a.body for a in seed)
    for joined in ("100条背街小巷的面积", "区委书记王迎波说:", "已经有30余年的党龄了", "该区全面实施道路评价",
                   "小餐饮管理水平", "5个街道纪委书记", "创新民政工作机制", "慢性病综合防控"):
        assert joined in bodies, joined


def test_every_printed_sentence_lands_in_exactly_one_item(seed, seed_text):
    texts = [printed_text(a) for a in seed]
    page = squeeze(seed_text)
    # Sentences are cut per printed line too, so no sentence straddles two items (a credit line has no 。).
    sentences = [s for line in seed_text.splitlines() for s in SENTENCE.findall(squeeze(line))]
    assert len(sentences) > 100
    for sentence in sentences:
        holders = [a.id for a, text in zip(seed, texts) if sentence in text]
        printed = page.count(sentence)
        if printed == 1:
            assert len(holders) == 1, (sentence, holders)
        else:  # the same credit line under two photos
            assert sum(text.count(sentence) for text in texts) == printed, sentence
    assert sum(len(text) for text in texts) == len(page)


def test_date_is_the_latest_day_in_the_named_year(seed):
    assert {(a.date, a.date_basis) for a in seed} == {("2017-07-31", "latest date in page")}
    assert {a.source_file for a in seed} == {SEED_SOURCE}


def test_round_trip_through_article_files(tmp_path, seed):
    written = import_page(SEED_PAGE, tmp_path / "articles")
    assert [p.name for p in written] == [f"{a.id}.md" for a in seed]
    load = load_knowledge(tmp_path)
    assert load.errors == []
    assert [dataclasses.replace(a, path="") for a in load.articles] == seed
    assert load.articles[0].path == "articles/20170731-01.md"


def test_import_overwrites_files_with_the_same_id(tmp_path):
    out = tmp_path / "articles"
    out.mkdir()
    (out / "20170731-01.md").write_text("stale", encoding="utf-8")
    import_page(SEED_PAGE, out)
    assert (out / "20170731-01.md").read_text(encoding="utf-8").startswith("---\nid: 20170731-01\n")


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"  \n\n \n", "empty"),
    ("卫东区".encode("gbk"), "not UTF-8"),
    ("今年以来,卫东区新建游园三个。\n\n该区还整修了道路。\n".encode(), "no recognisable item"),
    ("上接第一版的一段话。\n\n区里新建三座游园\n\n本报讯(记者田秀忠)游园已开放。\n".encode(), "belongs to no item"),
])
def test_unusable_page_raises_naming_the_file(tmp_path, content, reason):
    page = tmp_path / "raw" / "bad_page.txt"
    page.parent.mkdir()
    page.write_bytes(content)
    with pytest.raises(ValueError, match="bad_page.txt") as error:
        import_page(page, tmp_path / "articles")
    assert reason in str(error.value)
    assert not (tmp_path / "articles").exists()


def test_a_different_layout_follows_the_same_rules():
    """No blank lines inside items, one between them; a photo first; a news item without a 本报讯 lead."""
    items = parse_page(SYNTHETIC_PAGE, "raw/page7.txt")
    assert [(a.id, a.kind, a.title, a.subtitle) for a in items] == [
        ("20190308-01", "photo", "图片新闻：市民在湛河公园植树", ""),
        ("20190308-02", "news", "社区食堂开门迎客", ""),
        ("20190308-03", "news", "卫东区新增公益岗位300个", "优先安置就业困难人员，月补贴1500元"),
        ("20190308-04", "photo", "图片新闻：求职者在招聘会现场咨询", ""),
    ]
    photo, canteen, jobs, last = items
    assert photo.body.split("\n") == ["3月5日，市民在湛河公园植树。", "今年以来，该区已组织义务植树活动12场。",
                                      "通讯员 王芳 摄"]
    assert photo.reporters == ("摄影 王芳",)
    assert canteen.reporters == ()
    assert canteen.body.split("\n")[0].endswith("老年人就餐可享受八折优惠，残疾人和低保户免费就餐。")
    assert jobs.reporters == ("记者 李明", "通讯员 赵强", "通讯员 孙丽")
    assert jobs.body.endswith("提供岗位2100余个。")  # the caption right under the article is not merged into it
    assert last.body == "3月8日，求职者在招聘会现场咨询。张华 摄" and last.reporters == ("摄影 张华",)
    # 到2020年 is a target, not the page's year.
    assert {(a.date, a.date_basis) for a in items} == {("2019-03-08", "latest date in page")}
    assert sum(len(printed_text(a)) for a in items) == len(squeeze(SYNTHETIC_PAGE))


def test_page_without_a_year_has_no_date():
    items = parse_page("旧城改造稳步推进\n\n3月5日,该区启动旧城改造。\n", "raw/page9.txt")
    assert [(a.id, a.title, a.date, a.date_basis) for a in items] == [("page9-01", "旧城改造稳步推进", "", "")]


def test_a_short_broken_paragraph_is_not_a_headline():
    page = ("区里新建三座游园\n\n本报讯(记者田秀忠)游园已开放。\n\n为方便居民,该区还\n\n"
            "修建了停车场。\n")
    [article] = parse_page(page, "raw/page.txt")
    assert article.body.split("\n")[-1] == "为方便居民,该区还修建了停车场。"


def test_three_line_headline_keeps_kicker_and_deck_as_subtitle():
    page = "实干为先 服务为本\n\n卫东区政务大厅启用\n\n群众办事只进一扇门\n\n本报讯(记者田秀忠)大厅已启用。\n"
    [article] = parse_page(page, "raw/page.txt")
    assert (article.title, article.subtitle) == ("卫东区政务大厅启用", "实干为先 服务为本 群众办事只进一扇门")
    assert article.body == "本报讯(记者田秀忠)大厅已启用。"
