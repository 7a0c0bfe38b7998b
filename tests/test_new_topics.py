"""A new topic works with no code change: three service articles written for this test (公租房, 残疾人两项补贴,
户口迁移; none of their words is in the lexicon or the code) are uploaded as staff would, then asked about in
residents' words. Real embeddings, the real library path, the shipped selector model."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.answer.assistant import Assistant
from bot.interfaces.library import KnowledgeLibrary
from bot.search.index import KnowledgeIndex
from conftest import copy_index

ARTICLES = Path(__file__).parent / "data" / "new_topics"

ANSWERABLE = [
    ("俺家想租公租房，家里收入得低于多少才能申请？", "test-gongzufang-2024", "2800元"),
    ("申请公租房要带啥材料？", "test-gongzufang-2024", "收入证明"),
    ("公租房的房租咋算？", "test-gongzufang-2024", "60%"),
    ("公租房一年配租几次？", "test-gongzufang-2024", "两次"),
    ("重度残疾的护理补贴一个月给多少钱？", "test-canbuzhu-2024", "100元"),
    ("残疾人两项补贴的钱打到哪里？", "test-canbuzhu-2024", "社会保障卡"),
    ("老人投靠子女落户要多大岁数？", "test-hukou-2024", "60周岁"),
    ("办户口迁入要多少天？", "test-hukou-2024", "5个工作日"),
]
NEAR_MISSES = [
    "公租房的物业费每月多少钱？",  # no property fee is given
    "办居住证需要多久？",  # 居住证 is in no article
]


@pytest.fixture(scope="module")
def topic_assistant(seed_settings, seed_index, tmp_path_factory):
    settings = copy_index(seed_settings, tmp_path_factory.mktemp("new-topics"))
    index = KnowledgeIndex.open(settings)
    library = KnowledgeLibrary(settings, index)
    for path in sorted(ARTICLES.glob("*.md")):
        change = library.add_file(path.name, path.read_bytes())
        assert change.chunks_added > 0
    return Assistant(settings, index=index)


def test_the_new_words_are_in_no_lexicon_and_no_code():
    from bot.config import ROOT

    text = (ROOT / "knowledge" / "lexicon.yaml").read_text(encoding="utf-8") + "".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "bot").rglob("*.py"))
    assert not [w for w in ("公租房", "公共租赁", "护理补贴", "残疾人证", "户口迁移", "投靠") if w in text]


# Measured with the shipped model: 6 of the 8 are answered from the right article with the fact. The misses are
# the weak spot the README names (a detail sentence that repeats none of the question's words: 5个工作日 under
# 户口迁入, 社会保障卡 for 打到哪里). Raise this as the selector improves; never lower it.
MIN_ANSWERED = 6


def test_residents_questions_about_a_new_topic_are_answered_from_it(topic_assistant):
    answered, missed = [], []
    for question, article, fact in ANSWERABLE:
        answer = topic_assistant.ask(question)
        right = not answer.refused and fact in answer.text and article in {c.article_id for c in answer.citations}
        (answered if right else missed).append((question, answer.grounding, answer.text[:60]))
    assert len(answered) >= MIN_ANSWERED, f"only {len(answered)} of {len(ANSWERABLE)} answered; missed: {missed}"


@pytest.mark.parametrize("question", NEAR_MISSES)
def test_near_misses_about_a_new_topic_are_refused(topic_assistant, question):
    answer = topic_assistant.ask(question)
    assert answer.refused, answer.text
