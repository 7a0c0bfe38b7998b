"""Honest refusal: decide whether the retrieved passages actually answer the question.

One calibrated probability decides: the selector model's (``selection.py``) that the retrieved sources answer
the question, against the threshold chosen on dev data when the model was trained. The rules that remain hold
for any corpus: the question names a place, a person, a year or a period (下半年, 第三期) no retrieved passage
mentions; it asks for a kind of answer a pattern recognises reliably (a phone number, an amount of money, an
age, a number in the asked unit, papers) and no passage holds one; it names a Latin-script word no article uses
(GDP); it asks a named person's age or phone and the best sentence, with the text just before it, does not name
them; one part of a two-part question is missing and the other is not clearly answered.
``python -m bot calibrate`` prints the trade-off curve of the threshold.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from bot.answer.types import Answer
from bot.answer.extractive import GAP_LABELS, Candidate, gaps
from bot.answer.questions import QuestionAnalysis
from bot.answer.selection import SelectorModel
from bot.answer.topic import headline_office, topic_articles
from bot.search.retrieval import Passage

# A two-part question whose one part the sources lack is answered only when the other part clearly is.
PARTIAL_ANSWER_PROBABILITY = 0.5
# A question for a named person's age or phone number is answered by a sentence that names them, or follows one
# that does closely: another person's age is no answer.
SURROUNDING_CHARS = 80


@dataclass(frozen=True)
class Thresholds:
    min_probability: float  # the sources must answer the question with at least this probability
    # Questions in English: no lexical signal, the cross-lingual cosine decides (the model's lexical
    # features were fitted on Chinese questions).
    min_dense_foreign: float = 0.74

    @classmethod
    def of(cls, model: SelectorModel) -> "Thresholds":
        return cls(min_probability=model.threshold)


@dataclass(frozen=True)
class Verdict:
    answerable: bool
    reason: str  # why not, for staff and the eval report
    office: str = ""
    other_places: tuple[str, ...] = ()  # places outside the knowledge the question asks about, as written in it
    topic_articles: tuple[str, ...] = ()  # articles holding the question's topic (topic.py)


def responsible_office(candidates: list[Candidate], topics: tuple[str, ...]) -> str:
    """The office named in the headline of a best-matching article that holds the question's topic (区民政局 for
    低保); none for a question that shares only a word with an article."""
    for cand in candidates[:3]:
        if cand.passage.chunk.article_id in topics:
            office = headline_office(cand.passage.chunk.title)
            if office:
                return office
    return ""


def as_written(places: list[str], query: str) -> tuple[str, ...]:
    """Places in the order the question names them, adjacent ones joined (北京市 and 朝阳区 → 北京市朝阳区)."""
    spans = sorted((query.find(place), place) for place in places)
    joined: list[list] = []
    for start, place in spans:
        if joined and start >= 0 and joined[-1][0] + len(joined[-1][1]) == start:
            joined[-1][1] += place
        else:
            joined.append([start, place])
    return tuple(place for _, place in joined)


def _surroundings(cand: Candidate) -> str:
    """The sentence with its headline and what comes just before it: where the person it is about is named."""
    chunk = cand.passage.chunk
    return f"{chunk.title}\n{chunk.text[max(0, cand.start - SURROUNDING_CHARS):cand.end]}"


def assess(analysis: QuestionAnalysis, passages: list[Passage], ranked: list[Candidate], answerable: float,
           thresholds: Thresholds) -> Verdict:
    """``answerable``: the model's probability that the sources answer the question (``extractive.answerability``)."""
    topics = topic_articles(analysis, passages)
    return replace(_decide(analysis, passages, ranked, answerable, thresholds, topics), topic_articles=topics)


def _decide(analysis: QuestionAnalysis, passages: list[Passage], ranked: list[Candidate], answerable: float,
            thresholds: Thresholds, topics: tuple[str, ...]) -> Verdict:
    if not passages or not ranked:
        return Verdict(False, "no passage retrieved")
    haystack = "\n".join(p.chunk.indexed_text for p in passages)
    missing_places = [place for place in analysis.places if place not in haystack]
    if missing_places:
        return Verdict(False, f"names a place the sources do not cover: {'、'.join(missing_places)}",
                       other_places=as_written(missing_places, analysis.query))
    missing_persons = [person for person in analysis.persons if person not in haystack]
    if missing_persons:
        return Verdict(False, f"names a person the sources do not mention: {'、'.join(missing_persons)}")
    missing_years = [year for year in (*analysis.years, *analysis.periods) if year not in haystack]
    if missing_years:
        return Verdict(False, f"names a year or period the sources do not cover: {'、'.join(missing_years)}")
    if analysis.unknown_latin:  # an acronym or a name in Latin script is no segmentation accident
        return Verdict(False, f"asks about {'、'.join(analysis.unknown_latin)}, which no article mentions")
    office = responsible_office(ranked, topics)
    if analysis.precise_type and not any(c.has_answer_type for c in ranked):
        return Verdict(False, f"no passage holds the asked-for {analysis.answer_type}", office)
    if not analysis.chinese:
        best_dense = max((p.dense for p in passages if p.dense is not None), default=0.0)
        if best_dense < thresholds.min_dense_foreign:
            return Verdict(False, f"best cosine {best_dense:.3f} below {thresholds.min_dense_foreign}", office)
        return Verdict(True, "dense match")
    if (analysis.precise_type and analysis.persons
            and not any(person in _surroundings(ranked[0]) for person in analysis.persons)):
        return Verdict(False, f"the best sentence is not about {'、'.join(analysis.persons)}", office)
    if gaps(analysis, ranked[:1]) and answerable < PARTIAL_ANSWER_PROBABILITY:
        return Verdict(False, f"one part of the question is not in the sources and the other is answerable with "
                              f"probability {answerable:.2f} only", office)
    if answerable < thresholds.min_probability:
        return Verdict(False, f"answerable with probability {answerable:.2f} "
                              f"(threshold {thresholds.min_probability:.2f})", office)
    return Verdict(True, f"answered (probability {answerable:.2f})")


def refusal(question: str, analysis: QuestionAnalysis, verdict: Verdict, district: str = "") -> Answer:
    """``district``: the knowledge's own place (its lexicon's), named when the question asks about another one."""
    what = GAP_LABELS.get(analysis.answer_type, "")
    reason = verdict.reason
    if verdict.other_places and district:
        places = "、".join(verdict.other_places)
        text = f"抱歉，资料只涉及{district}，没有关于{places}的信息。"
        reason = f"asks about a place other than {district}, which the sources do not cover: {places}"
    else:
        text = f"抱歉，现有资料中没有{what or '能回答这个问题的内容'}，我不能凭猜测回答。"
    if verdict.office:
        text += f"相关事务资料中提到由{verdict.office}负责，建议向{verdict.office}咨询。"
    return Answer(question=question, text=text, refused=True, office=verdict.office, grounding=reason,
                  topic_articles=verdict.topic_articles)
