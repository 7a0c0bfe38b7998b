import re

from bot.text import date_label, month_label, sentence_end


def test_month_label_is_as_precise_as_the_date():
    assert month_label("2017-07-31") == "2017年7月"
    assert month_label("2017") == "2017年"
    assert month_label("") == ""


def test_date_label_names_the_unknown_date():
    assert date_label("2017-07-31") == "2017年7月31日"
    assert date_label("2017") == "2017年"
    assert date_label("") == "日期不详"


def test_a_sentence_end_takes_its_closers_and_optionally_a_run_of_marks():
    assert re.match(sentence_end(), "！！”后").group() == "！！”"
    assert re.match(sentence_end(run=False), "！！”后").group() == "！"
    assert re.match(sentence_end(ends="。"), "；") is None
