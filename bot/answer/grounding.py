"""Honest refusal: decide whether the retrieved passages actually answer the question.

Cosine similarity alone cannot separate answerable from unanswerable questions with multilingual-e5-small
(the ranges overlap), so several signals are combined; thresholds are calibrated on the dev questions
(``python -m bot calibrate eval/questions.jsonl`` prints each one's trade-off).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from bot.answer.types import Answer
from bot.answer.extractive import Candidate
from bot.search.keyword import KeywordIndex
from bot.answer.questions import QuestionAnalysis, foreign_terms
from bot.search.retrieval import Passage

OFFICE_RE = re.compile(r"区[\u4e00-\u9fff]{1,4}?(局|委|办|部)(?![\u4e00-\u9fff]{0,1}书记)")


@dataclass(frozen=True)
class Thresholds:
    min_sentence_coverage: float = 0.3  # share of the question's term weight in the best sentence (+ title)
    min_context_coverage: float = 0.55  # ... in that sentence's passage with its title
    min_dense: float = 0.80  # best cosine, a floor for Chinese questions
    min_dense_foreign: float = 0.74  # English questions: no lexical signal, the cross-lingual cosine decides
    foreign_term_specificity: float = 0.7  # a word this specific that the knowledge never uses → refuse
    office_context_coverage: float = 0.3  # enough of the topic matched to point to the office in charge


DEFAULT_THRESHOLDS = Thresholds()


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


def assess(analysis: QuestionAnalysis, passages: list[Passage], ranked: list[Candidate], keyword: KeywordIndex,
           thresholds: Thresholds = DEFAULT_THRESHOLDS) -> Verdict:
    if not passages or not ranked:
        return Verdict(False, "no passage retrieved")
    best_dense = max((p.dense for p in passages if p.dense is not None), default=0.0)
    haystack = "\n".join(p.chunk.indexed_text for p in passages)
    missing_places = [place for place in analysis.places if place not in haystack]
    if missing_places:
        return Verdict(False, f"names a place the sources do not cover: {'、'.join(missing_places)}")
    missing_years = [year for year in analysis.years if year not in haystack]
    if missing_years:
        return Verdict(False, f"names a year the sources do not cover: {'、'.join(missing_years)}")
    office = responsible_office(ranked, thresholds)
    foreign = foreign_terms(analysis, keyword, thresholds.foreign_term_specificity)
    if foreign:
        return Verdict(False, f"asks about {'、'.join(foreign)}, which no article mentions", office)
    best = ranked[0]
    if analysis.required_pattern is not None and not best.has_answer_type:
        return Verdict(False, f"no sentence holds the asked-for {analysis.answer_type}", office)
    if not analysis.terms and not analysis.carried:
        return Verdict(False, "no word of the question is one the articles or the glossary know", office)
    if not analysis.chinese:
        if best_dense < thresholds.min_dense_foreign:
            return Verdict(False, f"best cosine {best_dense:.3f} below {thresholds.min_dense_foreign}", office)
        return Verdict(True, "dense match")
    if best.coverage < thresholds.min_sentence_coverage:
        return Verdict(False, f"best sentence covers {best.coverage:.2f} of the question's terms", office)
    if best.context_coverage < thresholds.min_context_coverage:
        return Verdict(False, f"best passage covers {best.context_coverage:.2f} of the question's terms", office)
    if best_dense < thresholds.min_dense:
        return Verdict(False, f"best cosine {best_dense:.3f} below {thresholds.min_dense}", office)
    return Verdict(True, "answered")


def refusal(question: str, analysis: QuestionAnalysis, verdict: Verdict) -> Answer:
    what = {"phone": "电话号码", "address": "办公地址", "money": "具体金额", "time": "具体时间"}.get(analysis.answer_type, "")
    text = f"抱歉，现有资料中没有{what or '能回答这个问题的内容'}，我不能凭猜测回答。"
    if verdict.office:
        text += f"相关事务资料中提到由{verdict.office}负责，建议向{verdict.office}咨询。"
    return Answer(question=question, text=text, refused=True, office=verdict.office, grounding=verdict.reason)
