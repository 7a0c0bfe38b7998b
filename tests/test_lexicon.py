"""knowledge/lexicon.yaml: the district's vocabulary is data, loaded per knowledge folder, applied word by word."""
from __future__ import annotations

import ast

import pytest

from bot.answer.glossary import Glossary
from bot.config import ROOT
from bot.knowledge.lexicon import Lexicon, LexiconError
from bot.search.keyword import PLAIN, Segmenter, segmenter_for

SEED = Lexicon.load(ROOT / "knowledge")


@pytest.fixture(scope="module")
def glossary():
    return Glossary(SEED, segmenter_for(SEED.words))


def test_the_seed_lexicon_names_the_district_and_its_words():
    assert SEED.district == "卫东区"
    assert "全区" in SEED.home and "卫东区" in SEED.home
    assert "窝沟封闭" in SEED.words
    assert SEED.colloquial["补牙"] == "窝沟封闭"
    assert SEED.examples and all(e.topic and e.question for e in SEED.examples)


def test_a_folder_without_a_lexicon_has_no_district_words(tmp_path):
    empty = Lexicon.load(tmp_path)
    assert empty.district == "" and not empty.words and not empty.colloquial and not empty.examples


@pytest.mark.parametrize("text,problem", [
    ("district: [卫东区\n", "not valid UTF-8 YAML"),
    ("a: &x [1]\nb: *x\n", "not valid UTF-8 YAML"),  # anchors and aliases are refused (no alias bombs)
    ("- 低保\n", "must be a mapping"),
    ("colour: red\n", "unknown section(s): colour"),
    ("words: 低保\n", "words: must be a list of words"),
    ("english:\n  '(unclosed': 低保\n", "not a valid regular expression"),
    ("examples:\n  - {topic: 低保}\n", "each item needs a topic and a question"),
])
def test_a_broken_lexicon_names_the_file_and_the_problem(tmp_path, text, problem):
    (tmp_path / "lexicon.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(LexiconError) as caught:
        Lexicon.load(tmp_path)
    assert "lexicon.yaml" in str(caught.value) and problem in str(caught.value)


@pytest.mark.parametrize("question,expanded", [
    ("俺家娃能补牙不？", "窝沟封闭"),
    ("区里搞四城联创一共花了多少钱？", "区搞四城联创一共投入多少钱？"),
    ("申请要带啥材料？", "申请要带什么材料？"),  # one word for one word: question patterns still read it
])
def test_colloquial_words_become_the_articles_words(glossary, question, expanded):
    assert expanded in glossary.expand(question)


@pytest.mark.parametrize("question", ["这事跑不了吧？", "开花了吗？", "他跑不动了"])
def test_a_key_never_matches_inside_a_longer_word(glossary, question):
    assert glossary.expand(question) == question  # 跑不 is not in 跑不了, 花了 is not in 开花了


def test_english_names_are_added_once(glossary):
    assert glossary.expand("Is dibao enough? 雾霾咋样").count("最低生活保障") == 1
    assert glossary.expand("雾霾咋样").split().count("PM2.5") == 1


def test_lexicon_words_stay_out_of_jiebas_global_dictionary():
    import jieba

    mine = Segmenter(("窝沟封闭",))
    assert "窝沟封闭" in mine.tokenize("儿童窝沟封闭")
    assert "窝沟封闭" not in PLAIN.tokenize("儿童窝沟封闭")
    assert "窝沟封闭" not in jieba.lcut("儿童窝沟封闭")
    assert mine.fingerprint != PLAIN.fingerprint


def _code_strings(path) -> list[str]:
    """String literals of a module, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_district_word_is_written_in_the_code():
    vocabulary = {SEED.district, *SEED.district_aliases, *SEED.words, *(e.topic for e in SEED.examples),
                  *(k for k in SEED.colloquial if len(k) > 1)} - {""}
    found = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        words = sorted({w for text in _code_strings(path) for w in vocabulary if w in text})
        if words:
            found[str(path.relative_to(ROOT))] = words
    assert not found, f"district vocabulary in code (move it to knowledge/lexicon.yaml): {found}"


def test_an_index_tokenized_with_other_words_is_retokenized_not_re_embedded(fake_scratch_settings):
    from bot.knowledge.articles import load_knowledge
    from bot.search.index import KnowledgeIndex

    settings = fake_scratch_settings
    lexicon = settings.knowledge_dir / "lexicon.yaml"
    lexicon.write_text(lexicon.read_text(encoding="utf-8").replace("words: [", "words: [区民政局, "), encoding="utf-8")
    index = KnowledgeIndex.open(settings)
    assert index.keyword.document_frequency("区民政局") > 0  # tokens made again when loaded
    summary = index.sync(load_knowledge(settings.knowledge_dir), progress=False)
    assert summary.added == 0 and summary.removed == 0  # nothing embedded again
    fingerprints = {m["segmenter"] for m in index.collection.get(include=["metadatas"])["metadatas"]}
    assert fingerprints == {index.segmenter.fingerprint}  # and stored, so the next load reads them as they are
