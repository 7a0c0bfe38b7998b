"""Follow-up questions keep the conversation's subject, without an LLM."""
from __future__ import annotations

import json
import subprocess
import sys

from bot.answer.condense import condense

DENTAL_TURN = [["今年给多少学生做了窝沟封闭？", "截至7月底，共为2513名学生实施了窝沟封闭。"]]


def test_follow_up_is_answered_about_the_earlier_subject(assistant):
    answer = assistant.ask("一共封闭了多少颗牙齿？", DENTAL_TURN)
    assert not answer.refused
    assert "7180" in answer.text
    assert any("7180" in c.text for c in answer.citations)
    assert "窝沟封闭" in answer.condensed_query  # the condensed query is shown in the answer's metadata


def test_pronoun_follow_up_carries_the_person(assistant):
    history = [["在社区出黑板报的退休老党员叫什么？", "王怀木。"]]
    answer = assistant.ask("他多大年纪？", history)
    assert "73岁" in answer.text


def test_follow_up_about_something_absent_is_refused(assistant):
    history = [["上半年PM2.5平均浓度是多少？", "74μg/m³。"]]
    assert assistant.ask("那臭氧浓度呢？", history).refused


def test_a_self_contained_question_is_not_rewritten(seed_index):
    condensed = condense("区审计局制定了什么工作程序？", [tuple(t) for t in DENTAL_TURN], seed_index.keyword)
    assert condensed.carried == ()


def test_no_history_means_no_carry_over(seed_index):
    assert condense("那封闭率呢？", [], seed_index.keyword).carried == ()


def test_cli_ask_takes_history_and_prints_json(seed_settings, seed_index, tmp_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps(DENTAL_TURN, ensure_ascii=False), encoding="utf-8")
    env = {"BOT_KNOWLEDGE_DIR": str(seed_settings.knowledge_dir), "BOT_INDEX_DIR": str(seed_settings.index_dir),
           "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "bot", "ask", "一共封闭了多少颗牙齿？", "--history", str(history),
                          "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert "7180" in answer["text"] and answer["citations"][0]["article_id"] == "20170731-10"


def test_cli_rejects_a_malformed_history_file(seed_settings, tmp_path):
    history = tmp_path / "history.json"
    history.write_text('{"not": "a list"}', encoding="utf-8")
    env = {"BOT_KNOWLEDGE_DIR": str(seed_settings.knowledge_dir), "BOT_INDEX_DIR": str(seed_settings.index_dir),
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "bot", "ask", "问题", "--history", str(history)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2
    assert "history.json" in out.stderr and "list" in out.stderr
