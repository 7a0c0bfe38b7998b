"""Answer selection: the probability that a sentence of the retrieved passages answers the question.

Each candidate sentence is described by features that mean the same in any corpus (how much of the question it
and its passage contain, by words and by characters; whether it holds the asked-for kind of answer; the passage's
rank and similarity scores; the question's words the knowledge never uses). Gradient-boosted trees fitted on
the dev parts of three question sets (``python -m bot train``; they measured better than a logistic regression
on the same features) turn them into the probability that the sentence answers. A second, small forest reads
the question's candidates together (the best probabilities, the most of the question any passage holds, its
unknown words) and gives one calibrated probability that the sources answer the question at all: below the
model's threshold the assistant refuses.

The model is a JSON file next to this module (the trees' splits and leaf values): versioned with the code, read by
a few lines of Python at answer time (scikit-learn is needed only to train), loaded without unpickling anything.
"""
from __future__ import annotations

import json
import math
from array import array
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.answer.questions import CJK_RE, PERSON_TAGS, QUESTION_WORDS, QuestionAnalysis
from bot.search.keyword import Segmenter
from bot.search.retrieval import Passage

MODEL_PATH = Path(__file__).with_name("selector.json")
MODEL_VERSION = 3

# Question words and particles removed before characters are compared (多少, 什么, 吗 say nothing of the topic).
# Single characters only where they are never part of a topic word (共 is in 公共, 不 in 不动产).
QUESTION_CHARS = re.compile("|".join(sorted((w for w in QUESTION_WORDS if CJK_RE.search(w) and len(w) > 1),
                                            key=len, reverse=True)) + r"|[几谁哪啥咋吗呢吧啊呀的了？?，,。！!、\s]")
DIGITS = re.compile(r"\d+(?:\.\d+)?")

FEATURES = (
    "coverage",  # idf-weighted share of the question's terms in the sentence with its headline
    "sentence_coverage",  # ... in the sentence alone
    "previous_coverage",  # ... in the sentence before it
    "next_coverage",  # ... in the sentence after it
    "window_coverage",  # ... in the sentence read after the one before it, under the headline
    "neighbour_holds_more",  # a sentence next to it holds more of the question than it does
    "title_coverage",  # ... in the passage's headline
    "context_coverage",  # ... in the sentence's passage with its headline
    "coverage_gap",  # best coverage among all candidates minus this one's
    "bigrams",  # share of the question's character pairs in the sentence with its headline
    "sentence_bigrams",  # ... in the sentence alone
    "window_bigrams",  # ... in the sentence read after the one before it
    "context_bigrams",  # ... in the passage with its headline
    "bigram_gap",  # best sentence_bigrams among all candidates minus this one's
    "window",  # how tightly the matched character pairs sit: their count over the span they cover
    "typed_question",  # the question asks for a kind of answer a pattern recognises (a count, a date, a phone…)
    "typed_match",  # ... and this sentence holds one
    "typed_available",  # ... and some candidate holds one
    "asks_quantity", "asks_time", "asks_person", "asks_place", "asks_procedure", "asks_other",
    "asks_reason",  # 为什么/原因: answered by a cause or a purpose
    "has_reason",
    "asks_change",  # 比去年/增长/好了吗: answered by a comparison
    "has_change",
    "has_number",  # the sentence holds a number, a date, a person's name (whatever was asked)
    "has_date",
    "person_named",
    "persons_asked",  # the question names people
    "persons_here",  # share of them the sentence or the one before it names
    "numbers_asked",  # the question contains numbers
    "numbers_agree",  # share of those numbers found in the passage
    "dense",  # cosine of question and passage (0 when the dense search did not return the passage)
    "dense_gap",  # best passage cosine minus this passage's
    "keyword_share",  # this passage's BM25 score over the best one's
    "rank",  # 1 / (1 + passage rank)
    "first_in_passage",  # 1 / (1 + the sentence's position in its passage)
    "length",  # log of the sentence length in characters
    "unknown_share",  # share of the question's term weight that no chunk of the knowledge uses
    "foreign",  # how many specific words of the question no article uses (it asks about something else)
    "foreign_latin",  # one of them is in Latin script (GDP, a product name): rarely a segmentation accident
    "chinese",  # the question is Chinese (else lexical features say little)
)
ASKED = {"quantity": "asks_quantity", "money": "asks_quantity", "age": "asks_quantity", "time": "asks_time",
         "person": "asks_person", "place": "asks_place", "address": "asks_place", "procedure": "asks_procedure"}
NUMBER = re.compile(r"\d|[一二三四五六七八九十百千万亿两]+(?:个|名|人|家|户|年|次|项|种|所|位)")
ASKS_REASON = re.compile(r"为什么|为何|原因|why")
REASON = re.compile(r"因为|由于|因此|所以|为了|旨在|目的|原因|为提高|为加强|为进一步|为推进|以便")
ASKS_CHANGE = re.compile(r"比去年|比上年|同比|环比|增长|下降|减少|提高|上升|变化|好了|差了|改善|多了|少了")
CHANGE = re.compile(r"同比|环比|比去年|比上年|增长|下降|减少|提高|上升|改善|增加|降低|[\d.]+%")
DATE = re.compile(r"\d{1,4}年|\d{1,2}月|\d{1,2}日|世纪|年代")


def question_bigrams(text: str) -> set[str]:
    """Character pairs of the question's topic words: robust to segmentation (a name jieba splits still matches)."""
    kept = QUESTION_CHARS.sub(" ", text.lower())
    return {kept[i:i + 2] for i in range(len(kept) - 1) if " " not in kept[i:i + 2]}


def bigram_share(bigrams: frozenset[str], text: str) -> float:
    return sum(b in text for b in bigrams) / len(bigrams) if bigrams else 0.0


def window(bigrams: frozenset[str], text: str) -> float:
    """Matched pairs per character of the span from the first to the last match: 1.0 when they are adjacent."""
    found = [i for b in bigrams for i in [text.find(b)] if i >= 0]
    if not found:
        return 0.0
    return min(1.0, 2 * len(found) / (max(found) - min(found) + 2))


@dataclass(frozen=True)
class QuestionContext:
    """What every candidate of one question shares: computed once per question."""
    analysis: QuestionAnalysis
    bigrams: frozenset[str]
    numbers: tuple[str, ...]
    best_dense: float
    best_keyword: float
    unknown_share: float
    foreign: tuple[str, ...]
    person: bool
    typed_available: bool  # some candidate sentence holds the asked-for kind of answer
    asks_reason: bool
    asks_change: bool

    @classmethod
    def of(cls, analysis: QuestionAnalysis, passages: list[Passage], known: dict[str, bool], foreign: tuple[str, ...],
           typed_available: bool) -> "QuestionContext":
        weights = analysis.weights
        total = sum(weights.values())
        unknown = sum(w for t, w in weights.items() if not known.get(t, True)) / total if total else 0.0
        return cls(analysis, frozenset(question_bigrams(analysis.query)), tuple(DIGITS.findall(analysis.query)),
                   max((p.dense or 0.0 for p in passages), default=0.0),
                   max((p.keyword or 0.0 for p in passages), default=0.0), unknown, foreign,
                   analysis.answer_type == "person", typed_available,
                   bool(ASKS_REASON.search(analysis.query.lower())), bool(ASKS_CHANGE.search(analysis.query)))


@dataclass(frozen=True)
class Sentence:
    """A candidate sentence as features read it: where it is and how much of the question it holds."""
    passage: Passage
    rank: int  # of its passage
    position: int  # in its passage
    text: str
    coverage: float
    sentence_coverage: float
    window_coverage: float  # the sentence after the one before it, under the headline
    previous: str  # the sentence before it in the passage
    previous_coverage: float
    next_coverage: float  # ... and after it
    title_coverage: float
    context_coverage: float
    typed: bool


def features(q: QuestionContext, s: Sentence, best_coverage: float, best_bigrams: float,
             segmenter: Segmenter) -> tuple[float, ...]:
    passage, text = s.passage, s.text
    headed = f"{passage.chunk.title}\n{text}"
    lowered = text.lower()
    asked = ASKED.get(q.analysis.answer_type, "asks_other")
    person = q.person and any(flag in PERSON_TAGS for _, flag in segmenter.tagged(text))
    sentence_bigrams = bigram_share(q.bigrams, lowered)
    values = {
        "coverage": s.coverage,
        "sentence_coverage": s.sentence_coverage,
        "previous_coverage": s.previous_coverage,
        "next_coverage": s.next_coverage,
        "window_coverage": s.window_coverage,
        "neighbour_holds_more": float(max(s.previous_coverage, s.next_coverage) > s.sentence_coverage),
        "title_coverage": s.title_coverage,
        "context_coverage": s.context_coverage,
        "coverage_gap": best_coverage - s.coverage,
        "bigrams": bigram_share(q.bigrams, headed.lower()),
        "sentence_bigrams": sentence_bigrams,
        "window_bigrams": bigram_share(q.bigrams, f"{s.previous}\n{headed}".lower()),
        "context_bigrams": bigram_share(q.bigrams, passage.chunk.indexed_text.lower()),
        "bigram_gap": best_bigrams - sentence_bigrams,
        "window": window(q.bigrams, lowered),
        "typed_question": float(q.analysis.required_pattern is not None),
        "typed_match": float(s.typed),
        "typed_available": float(q.typed_available),
        **{name: float(name == asked) for name in set(ASKED.values()) | {"asks_other"}},
        "asks_reason": float(q.asks_reason),
        "has_reason": float(bool(REASON.search(text))),
        "asks_change": float(q.asks_change),
        "has_change": float(bool(CHANGE.search(text))),
        "has_number": float(bool(NUMBER.search(text))),
        "has_date": float(bool(DATE.search(text))),
        "person_named": float(person),
        "persons_asked": float(bool(q.analysis.persons)),
        "persons_here": (sum(p in f"{s.previous}{text}" for p in q.analysis.persons) / len(q.analysis.persons)
                         if q.analysis.persons else 0.0),
        "numbers_asked": float(bool(q.numbers)),
        "numbers_agree": sum(n in passage.chunk.indexed_text for n in q.numbers) / len(q.numbers) if q.numbers else 0.0,
        "dense": passage.dense or 0.0,
        "dense_gap": q.best_dense - (passage.dense or 0.0),
        "keyword_share": (passage.keyword or 0.0) / q.best_keyword if q.best_keyword > 0 else 0.0,
        "rank": 1.0 / (1 + s.rank),
        "first_in_passage": 1.0 / (1 + s.position),
        "length": math.log(1 + len(text)),
        "unknown_share": q.unknown_share,
        "foreign": float(min(3, len(q.foreign))),
        "foreign_latin": float(any(word.isascii() for word in q.foreign)),
        "chinese": float(q.analysis.chinese),
    }
    return tuple(values[name] for name in FEATURES)


# What the refusal model reads of one question: its candidates taken together (the sentence model's best
# probabilities, the most any candidate or passage holds of the question) and the question's own signals.
QUESTION_FEATURES = ("best_probability", "second_probability", "context_coverage", "coverage", "bigrams",
                     "context_bigrams", "window_coverage", "dense", "unknown_share", "foreign", "foreign_latin",
                     "typed_question", "typed_available", "chinese")


def question_features(probabilities: list[float], rows: list[tuple[float, ...]]) -> tuple[float, ...]:
    """``probabilities`` and feature ``rows`` of a question's candidates, best first."""
    if not rows:
        return (0.0,) * len(QUESTION_FEATURES)
    at = {name: i for i, name in enumerate(FEATURES)}
    most = {name: max(row[at[name]] for row in rows) for name in
            ("context_coverage", "coverage", "bigrams", "context_bigrams", "window_coverage", "dense")}
    first = rows[0]
    values = {"best_probability": probabilities[0], "second_probability": probabilities[1] if len(rows) > 1 else 0.0,
              **most, **{name: first[at[name]] for name in
                         ("unknown_share", "foreign", "foreign_latin", "typed_question", "typed_available", "chinese")}}
    return tuple(values[name] for name in QUESTION_FEATURES)


Node = tuple[int, float, int, int, float]


@dataclass(frozen=True)
class Forest:
    """Gradient-boosted regression trees read as log-odds. A tree is a tuple of nodes ``(feature index,
    threshold, left, right, value)``; a leaf has feature index -1 and holds its value."""
    baseline: float
    learning_rate: float
    trees: tuple[tuple[Node, ...], ...]

    def probability(self, values: tuple[float, ...]) -> float:
        # scikit-learn's trees compare features as float32: the same rounding keeps a value next to a split on
        # the side it was trained on.
        values = array("f", values)
        z = self.baseline
        for tree in self.trees:
            node = tree[0]
            while node[0] >= 0:
                node = tree[node[2] if values[node[0]] <= node[1] else node[3]]
            z += self.learning_rate * node[4]
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    @classmethod
    def parse(cls, data: dict) -> "Forest":
        trees = tuple(tuple((int(f), float(t), int(l), int(r), float(v)) for f, t, l, r, v in tree)
                      for tree in data["trees"])
        return cls(float(data["baseline"]), float(data["learning_rate"]), trees)


NEUTRAL = Forest(0.0, 0.0, ())


@dataclass(frozen=True)
class SelectorModel:
    """Two forests: ``sentence`` gives each candidate the probability that it answers (over FEATURES);
    ``question`` gives the question the probability that the sources answer it at all (over QUESTION_FEATURES,
    fitted on the sentence forest's out-of-fold output). ``threshold`` is the refusal cut on the latter."""
    features: tuple[str, ...]
    question_features: tuple[str, ...]
    sentence: Forest
    question: Forest
    threshold: float
    version: int = MODEL_VERSION
    trained_on: dict | None = None  # how it was made: sets, questions, target, dev figures

    def probability(self, values: tuple[float, ...]) -> float:
        return self.sentence.probability(values)

    def answerable(self, values: tuple[float, ...]) -> float:
        return self.question.probability(values)

    @classmethod
    def neutral(cls) -> "SelectorModel":
        """Everything at 0.5: what training ranks with before a model exists (it reads only the features)."""
        return cls(FEATURES, QUESTION_FEATURES, NEUTRAL, NEUTRAL, threshold=0.5)

    def save(self, path: Path = MODEL_PATH) -> None:
        # One tree per line, the trees last: the file stays reviewable and its diffs short.
        head = {k: v for k, v in asdict(self).items() if k not in ("sentence", "question")}
        parts = [json.dumps(head, ensure_ascii=False, indent=1)[:-2]]
        for name in ("sentence", "question"):
            forest = getattr(self, name)
            trees = ",\n   ".join(json.dumps(tree, separators=(",", ":")) for tree in forest.trees)
            parts.append(f' "{name}": {{"baseline": {json.dumps(forest.baseline)}, '
                         f'"learning_rate": {json.dumps(forest.learning_rate)}, "trees": [\n   {trees}\n ]}}')
        Path(path).write_text(",\n".join(parts) + "\n}\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> "SelectorModel":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if (data.get("version") != MODEL_VERSION or tuple(data.get("features", ())) != FEATURES
                or tuple(data.get("question_features", ())) != QUESTION_FEATURES):
            raise ValueError(f"{path} was trained for other features (version {data.get('version')}); "
                             "run `python -m bot train`")
        return cls(**{**data, "features": FEATURES, "question_features": QUESTION_FEATURES,
                      "sentence": Forest.parse(data["sentence"]), "question": Forest.parse(data["question"])})
