"""The default answerer: pick the passage sentences that answer the question and quote them, cited.

No LLM: every word of an answer's body is a sentence of a cited passage (at most trimmed of its byline),
so a citation can never fail to support what it marks.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from bot.answer.types import Answer, Citation
from bot.knowledge.chunking import split_sentences
from bot.answer.questions import ANSWER_TYPES, FOREIGN_SPECIFICITY, QuestionAnalysis, foreign_terms
from bot.answer.selection import (QuestionContext, SelectorModel, Sentence, bigram_share, features, question_bigrams,
                                  question_features)
from bot.search.keyword import KeywordIndex
from bot.search.retrieval import Passage, RetrievalResult
from bot.text import BYLINE, month_label

MAX_SENTENCES = 2
MAX_PROCEDURE_SENTENCES = 3
SUBHEADING_CHARS = 14
LEAD_IN_CHARS = 40
CLAUSE_BREAK = re.compile(r"[，,；;：:]")
SHORT_CLAUSE_CHARS = 8  # "共计247万元" alone does not say what was counted
# What the refusal and the gap note call each kind of answer.
GAP_LABELS = {"phone": "电话号码", "address": "办公地址", "money": "具体金额", "time": "具体时间", "documents": "所需材料",
              "age": "年龄"}
SECOND_SENTENCE_RATIO = 0.75  # a further sentence's probability must be this close to the best one's


@dataclass(frozen=True)
class Candidate:
    passage_rank: int  # 0-based rank of its passage
    passage: Passage
    start: int  # offsets in the passage text
    end: int
    text: str  # the sentence as quoted (byline trimmed)
    coverage: float  # idf-weighted share of the question's terms in this sentence (with its title)
    context_coverage: float  # ... in the sentence's passage with its title
    has_answer_type: bool
    features: tuple[float, ...] = ()  # selection.FEATURES, what the model read
    probability: float = 0.0  # that this sentence answers the question

    @property
    def article_span(self) -> tuple[int, int]:
        return self.passage.chunk.start + self.start, self.passage.chunk.start + self.end


def coverage(analysis: QuestionAnalysis, text: str) -> float:
    """Weighted share of the question's terms (own and, at reduced weight, carried) found in ``text``."""
    weights = {**analysis.carried, **analysis.weights}
    if not weights:
        return 0.0
    text = text.lower()
    return sum(w for term, w in weights.items() if term in text) / sum(weights.values())


def _sentences(analysis: QuestionAnalysis, passages: list[Passage]) -> list[tuple[Sentence, int, int]]:
    """Every sentence of the retrieved passages with its offsets; sentences shared by overlapping chunks appear
    once."""
    pattern = analysis.required_pattern
    seen: set[tuple[str, int]] = set()
    result = []
    for rank, passage in enumerate(passages):
        chunk = passage.chunk
        context = coverage(analysis, chunk.indexed_text)
        title = coverage(analysis, chunk.title)
        spans = split_sentences(chunk.text)
        texts = [chunk.text[span.start:span.end] for span in spans]
        for position, (sentence, raw) in enumerate(zip(spans, texts)):
            before = texts[position - 1] if position else ""
            after = texts[position + 1] if position + 1 < len(texts) else ""
            key = (chunk.article_id, chunk.start + sentence.start)
            trimmed = BYLINE.sub("", raw)
            if key in seen or len(trimmed) < 6:
                continue
            seen.add(key)
            start = sentence.start + (len(raw) - len(trimmed))
            # A sentence is read under its headline and after the sentence before it ("今年78岁的张遂卿" follows
            # the one that names his village); read with the previous sentence it counts half.
            headed = f"{chunk.title}\n{trimmed}"
            window = coverage(analysis, f"{before}\n{headed}")
            own = max(coverage(analysis, headed), 0.5 * window)
            typed = bool(pattern and pattern.search(trimmed))
            result.append((Sentence(passage, rank, position, trimmed, own, coverage(analysis, trimmed), window,
                                    before, coverage(analysis, before), coverage(analysis, after), title, context,
                                    typed), start, sentence.end))
    return result


def candidates(analysis: QuestionAnalysis, passages: list[Passage], keyword: KeywordIndex,
               model: SelectorModel) -> list[Candidate]:
    """Every sentence of the retrieved passages with the probability that it answers the question, best first
    (ties in reading order, so the order never depends on anything but the input)."""
    sentences = _sentences(analysis, passages)
    known = {t: keyword.document_frequency(t) > 0 for t in analysis.weights}
    foreign = tuple(foreign_terms(analysis, keyword, FOREIGN_SPECIFICITY))
    context = QuestionContext.of(analysis, passages, known, foreign, any(s.typed for s, _, _ in sentences))
    best_coverage = max((s.coverage for s, _, _ in sentences), default=0.0)
    best_bigrams = max((bigram_share(context.bigrams, s.text.lower()) for s, _, _ in sentences), default=0.0)
    result = []
    for s, start, end in sentences:
        values = features(context, s, best_coverage, best_bigrams, keyword.segmenter)
        result.append(Candidate(s.rank, s.passage, start, end, s.text, s.coverage, s.context_coverage, s.typed,
                                values, model.probability(values)))
    return ordered(analysis, result)


def answerability(model: SelectorModel, ranked: list[Candidate]) -> float:
    """The probability that the sources answer the question at all, from its candidates taken together."""
    return model.answerable(question_features([c.probability for c in ranked], [c.features for c in ranked]))


def ordered(analysis: QuestionAnalysis, cands: list[Candidate]) -> list[Candidate]:
    """Most likely answer first, ties in reading order. A question with a precise kind of answer (多少户,
    每月多少钱) is answered by a sentence that holds one, so those come first."""
    precise = analysis.precise_type
    return sorted(cands, key=lambda c: (precise and not c.has_answer_type, -c.probability, c.passage_rank, c.start))


def select(analysis: QuestionAnalysis, ranked: list[Candidate]) -> list[Candidate]:
    """The best sentence first, plus at most one close runner-up that adds question terms the best one lacks (a
    procedure may take one more); a sub-heading or lead-in brings the sentence it introduces."""
    if not ranked:
        return []
    best = ranked[0]
    chosen = [best]
    limit = MAX_PROCEDURE_SENTENCES if analysis.answer_type == "procedure" else MAX_SENTENCES
    covered = {t for t in analysis.terms if t in best.text}
    for cand in ranked[1:]:
        if len(chosen) >= limit or cand.probability < SECOND_SENTENCE_RATIO * best.probability:
            break
        adds = {t for t in analysis.terms if t in cand.text} - covered
        if adds and (cand.has_answer_type or not best.has_answer_type):
            chosen.append(cand)
            covered |= adds
    procedure = analysis.answer_type == "procedure"
    chosen = list(dict.fromkeys(follow for cand in chosen for follow in _with_following(cand, ranked, procedure)))
    # Answer first: the best sentence leads and a supporting one follows. The steps of a procedure are quoted in
    # reading order instead, as they are meant to be read.
    return sorted(chosen, key=lambda c: (c.passage_rank, c.start)) if procedure else chosen


def _with_following(cand: Candidate, ranked: list[Candidate], procedure: bool) -> list[Candidate]:
    """A sub-heading ("突出部门协调配合。") or, for a how-question, a short lead-in ("实施网格“3+1”管理模式。")
    says what follows, not the answer: quote the next sentence too."""
    if len(cand.text) > (LEAD_IN_CHARS if procedure else SUBHEADING_CHARS):
        return [cand]
    nxt = [c for c in ranked if c.passage is cand.passage and c.start > cand.start]
    return [cand, min(nxt, key=lambda c: c.start)] if nxt else [cand]


def source_age(passages: list[Passage], asks_current: bool) -> str:
    """'据2017年7月的报道，' — residents must know figures may have changed since."""
    months = []
    for p in passages:
        label = month_label(p.chunk.date)
        if label and label not in months:
            months.append(label)
    if not months:
        return "据资料（未注明日期），"
    joined = "、".join(months)
    return f"截至{joined}的报道，" if asks_current else f"据{joined}的报道，"


def answer_clause(cand: Candidate, analysis: QuestionAnalysis) -> tuple[int, int]:
    """Offsets in ``cand.text`` of the clause that carries the answer: of the clauses holding the asked-for kind
    of answer (the number with its unit), the one that shares most with the question (目前保障对象共3622户 for
    目前…一共有多少户, not the 新增135户 before it), with the clause before it when it is too short to name its
    subject. Without an answer kind (or a match the question does not already contain), the whole sentence."""
    pattern = analysis.required_pattern
    if pattern is None or not cand.has_answer_type:
        return 0, len(cand.text)
    cuts = [0, *(m.end() for m in CLAUSE_BREAK.finditer(cand.text)), len(cand.text)]
    clauses = [(cuts[i], cuts[i + 1]) for i in range(len(cuts) - 1) if cuts[i] < cuts[i + 1]]
    pairs = frozenset(question_bigrams(analysis.query))
    # A match the question itself contains (四城 of 四城联创) names the topic, not the answer.
    typed = [(i, span) for i, span in enumerate(clauses)
             if any(m.group() not in analysis.query for m in pattern.finditer(cand.text[span[0]:span[1]]))]
    if not typed:  # the match runs across a clause break
        return 0, len(cand.text)
    at, (start, end) = max(typed, key=lambda item: (bigram_share(pairs, cand.text[slice(*item[1])].lower()), -item[0]))
    if end - start < SHORT_CLAUSE_CHARS and at > 0:
        start = clauses[at - 1][0]
    return start, start + len(cand.text[start:end].rstrip("，,；;：:。"))


def gaps(analysis: QuestionAnalysis, chosen: list[Candidate]) -> str:
    """For a question with two parts (地址 and 几点上班): what the quoted sentences do not hold, said plainly."""
    missing = [GAP_LABELS[kind] for kind in analysis.also_asks
               if kind in GAP_LABELS and not any(ANSWER_TYPES[kind][1].search(c.text) for c in chosen)]
    return f"资料中没有提到{'、'.join(missing)}。" if missing else ""


def compose_answer(question: str, analysis: QuestionAnalysis, chosen: list[Candidate],
                   retrieval: RetrievalResult) -> Answer:
    citations: dict[str, Citation] = {}
    parts = []
    prefix = source_age([c.passage for c in chosen], analysis.asks_current)
    start, end = answer_clause(chosen[0], analysis) if chosen else (0, 0)
    highlight = (len(prefix) + start, len(prefix) + end) if chosen else None
    for cand in chosen:
        chunk = cand.passage.chunk
        start, end = cand.article_span
        cited = citations.get(chunk.id)
        if cited is None:
            cited = Citation(n=len(citations) + 1, article_id=chunk.article_id, title=chunk.title, date=chunk.date,
                             text=chunk.text, chunk_id=chunk.id, passage_start=chunk.start, passage_end=chunk.end,
                             sentence_start=start, sentence_end=end)
        else:  # two sentences of one passage: highlight the span that holds both
            cited = replace(cited, sentence_start=min(cited.sentence_start, start),
                            sentence_end=max(cited.sentence_end, end))
        citations[chunk.id] = cited
        parts.append(f"{cand.text}[{cited.n}]")
    text = prefix + "".join(parts) + gaps(analysis, chosen)
    years = {c.passage.chunk.date[:4] for c in chosen if c.passage.chunk.date and "今年" in c.text}
    if len(years) == 1:  # the article's 今年 is not the reader's
        text += f"（文中的“今年”指{years.pop()}年。）"
    if analysis.asks_current:
        text += "此后的情况资料中没有，数字可能已有变化。"
    return Answer(question=question, text=text, refused=False, citations=list(citations.values()),
                  scores=scores(retrieval), highlight=highlight)


def scores(retrieval: RetrievalResult) -> list[dict]:
    return [{"chunk_id": p.chunk.id, "article_id": p.chunk.article_id, "score": p.score, "dense": p.dense,
             "keyword": p.keyword, "rerank": p.rerank} for p in retrieval.passages]
