from bot.text import date_label, month_label


def test_month_label_is_as_precise_as_the_date():
    assert month_label("2017-07-31") == "2017年7月"
    assert month_label("2017") == "2017年"
    assert month_label("") == ""


def test_date_label_names_the_unknown_date():
    assert date_label("2017-07-31") == "2017年7月31日"
    assert date_label("2017") == "2017年"
    assert date_label("") == "日期不详"
