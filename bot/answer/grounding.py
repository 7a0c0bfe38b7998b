"""Honest refusal: decide whether the retrieved passages actually answer the question.

One calibrated probability decides: the answer selector's (``selection.py``) for the best candidate sentence,
against the threshold chosen on dev data when the model was trained. The rules that remain hold for any corpus:
the question names a place or a year no retrieved passage covers, or asks for a kind of answer a pattern
recognises reliably (a phone number, an amount of money, an age, a number in the asked unit) and no passage
holds one.
``python -m bot calibrate`` prints the trade-off curve of the threshold.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from bot.answer.types import Answer
from bot.answer.extractive import GAP_LABELS, Candidate, gaps
from bot.answer.questions import QuestionAnalysis
from bot.answer.selection import SelectorModel
from bot.search.retrieval import Passage

# A two-part question whose one part the sources lack is answered only when the other part clearly is.
PARTIAL_ANSWER_PROBABILITY = 0.5
OFFICE_RE = re.compile(r"区[\u4e00-\u9fff]{1,4}?(局|委|办|部)(?![\u4e00-\u9fff]{0,1}书记)")


@dataclass(frozen=True)
class Thresholds:
    min_probability: float  # the best candidate must answer with at least this probability
    # Questions in English: no lexical signal, the cross-lingual cosine decides (the model's lexical
    # features were fitted on Chinese questions).
    min_dense_foreign: float = 0.74
    office_context_coverage: float = 0.3  # enough of the topic matched to point to the office in charge

    @classmethod
    def of(cls, model: SelectorModel) -> "Thresholds":
        return cls(min_probability=model.threshold)


@dataclass(frozen=True)
class Verdict:
    answerable: bool
    reason: str  # why not, for staff and the eval report
    office: str = ""


def responsible_office(candidates: list[Candidate], thresholds: Thresholds) -> str:
    """The office the best-matching article itself names in its headline (e.g. 区民政局 for 低保), if any."""
    for cand in candidates[:3]:
        if cand.context_coverage < thresholds.office_context_coverage:
            continue
        match = OFFICE_RE.search(cand.passage.chunk.title)
        if match:
            return match.group(0)
    return ""


def assess(analysis: QuestionAnalysis, passages: list[Passage], ranked: list[Candidate],
           thresholds: Thresholds) -> Verdict:
    if not passages or not ranked:
        return Verdict(False, "no passage retrieved")
    haystack = "\n".join(p.chunk.indexed_text for p in passages)
    missing_places = [place for place in analysis.places if place not in haystack]
    if missing_places:
        return Verdict(False, f"names a place the sources do not cover: {'、'.join(missing_places)}")
    missing_years = [year for year in analysis.years if year not in haystack]
    if missing_years:
        return Verdict(False, f"names a year the sources do not cover: {'、'.join(missing_years)}")
    if analysis.unknown_latin:  # an acronym or a name in Latin script is no segmentation accident
        return Verdict(False, f"asks about {'、'.join(analysis.unknown_latin)}, which no article mentions")
    office = responsible_office(ranked, thresholds)
    if analysis.precise_type and not any(c.has_answer_type for c in ranked):
        return Verdict(False, f"no passage holds the asked-for {analysis.answer_type}", office)
    best = ranked[0]
    if not analysis.chinese:
        best_dense = max((p.dense for p in passages if p.dense is not None), default=0.0)
        if best_dense < thresholds.min_dense_foreign:
            return Verdict(False, f"best cosine {best_dense:.3f} below {thresholds.min_dense_foreign}", office)
        return Verdict(True, "dense match")
    if gaps(analysis, ranked[:1]) and best.probability < PARTIAL_ANSWER_PROBABILITY:
        return Verdict(False, f"one part of the question is not in the sources and the other is answered with "
                              f"probability {best.probability:.2f} only", office)
    if best.probability < thresholds.min_probability:
        return Verdict(False, f"best sentence answers with probability {best.probability:.2f} "
                              f"(threshold {thresholds.min_probability:.2f})", office)
    return Verdict(True, f"answered (probability {best.probability:.2f})")


def refusal(question: str, analysis: QuestionAnalysis, verdict: Verdict) -> Answer:
    what = GAP_LABELS.get(analysis.answer_type, "")
    text = f"抱歉，现有资料中没有{what or '能回答这个问题的内容'}，我不能凭猜测回答。"
    if verdict.office:
        text += f"相关事务资料中提到由{verdict.office}负责，建议向{verdict.office}咨询。"
    return Answer(question=question, text=text, refused=True, office=verdict.office, grounding=verdict.reason)
