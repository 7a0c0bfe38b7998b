"""The assistant: one object, loaded once, thread-safe. Question (+ history) in, grounded Answer out."""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from bot.answer.types import Answer, Citation
from bot.answer.condense import condense
from bot.config import Settings
from bot.answer.extractive import Candidate, answerability, candidates, compose_answer, scores, select
from bot.answer.glossary import Glossary
from bot.answer.grounding import Thresholds, assess, refusal
from bot.answer.policy import consults, settle
from bot.answer.selection import SelectorModel
from bot.search.index import KnowledgeIndex
from bot.text import truncate_question
from bot.answer.questions import QuestionAnalysis, analyze
from bot.search.retrieval import HybridSearch, Reranker, RetrievalResult

History = list[tuple[str, str]] | list[list[str]] | None
TRUNCATED_NOTICE = "问题超过{limit}个字，只按前{limit}个字回答。"
# Control characters other than tab and line breaks are never typed: such input is binary data, not a question.
BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
BINARY_REFUSAL = "抱歉，问题里有无法识别的字符（可能是乱码），我不能回答。请用文字重新描述您的问题。"


class InputError(ValueError):
    """Input the assistant cannot take, with a message for the person who sent it."""


def valid_text(text) -> str:
    """Text as UTF-8 can carry it: a lone surrogate (half an emoji from a broken client) becomes U+FFFD."""
    return str(text or "").encode("utf-8", "replace").decode("utf-8")


def conversation(history: History) -> list[tuple[str, str]]:
    """Earlier turns as (question, answer) pairs, each cut like a question; anything else is an InputError."""
    if history is None:
        return []
    if not isinstance(history, (list, tuple)) or not all(
            isinstance(turn, (list, tuple)) and len(turn) == 2 and all(isinstance(part, str) for part in turn)
            for turn in history):
        raise InputError("对话历史格式不对：应为若干组 [问题, 回答]，都是文字。")
    return [tuple(truncate_question(valid_text(part))[0] for part in turn) for turn in history]


@dataclass(frozen=True)
class Considered:
    """A question condensed, searched and analysed: what the answer-or-refuse decision reads (calibration
    replays that decision with other thresholds)."""
    query: str  # what was searched: the condensed question, glossary-expanded
    retrieval: RetrievalResult
    analysis: QuestionAnalysis
    carried: tuple[str, ...] = ()  # terms a follow-up took from earlier turns


@dataclass(frozen=True)
class Drafts:
    """What the extractive layer made of a question, before any LLM: ``answer`` is its decision (an answer or a
    refusal), ``declined`` the refusal to show if a model vetoes, ``focus`` the sentences a model is shown (the
    citations of the best-ranked ones, even when the decision is to refuse), ``turns`` the history a model needs."""
    answer: Answer
    declined: Answer
    retrieval: RetrievalResult | None
    focus: list[Citation]
    turns: list[tuple[str, str]]
    started: float


class Assistant:
    def __init__(self, settings: Settings, index: KnowledgeIndex | None = None, model: SelectorModel | None = None):
        self.settings = settings
        self.model = model or SelectorModel.load()
        self.thresholds = Thresholds.of(self.model)  # calibrate reports the trade-offs around these
        self.index = index or KnowledgeIndex.open(settings)
        reranker = Reranker(settings.reranker) if settings.reranker else None
        self.search = HybridSearch(self.index, reranker, dense_weight=settings.dense_weight)
        self.lexicon = self.index.lexicon
        self.glossary = Glossary(self.lexicon, self.index.segmenter)
        self.generator = None
        if settings.llm_enabled:
            from bot.answer.llm import LLMGenerator

            self.generator = LLMGenerator(settings, self.index)

    def ask(self, question: str, history: History = None) -> Answer:
        answer = None
        for event in self.stream(question, history):
            if isinstance(event, Answer):
                answer = event
        return answer

    def consider(self, question: str, turns: list[tuple[str, str]]) -> Considered:
        """The stages before composing: condense the follow-up, search, analyse the question."""
        condensed = condense(question, turns, self.index.keyword)
        query = self.glossary.expand(condensed.query)
        retrieval = self.search(query, k=self.settings.top_k)
        analysis = analyze(self.glossary.expand(condensed.question), self.index.keyword, condensed.carried,
                           self.lexicon.home)
        return Considered(query, retrieval, analysis, condensed.carried)

    def rank(self, considered: Considered) -> list[Candidate]:
        """The candidate sentences, most likely answer first."""
        return candidates(considered.analysis, considered.retrieval.passages, self.index.keyword, self.model)

    def draft(self, question: str, history: History = None) -> Drafts:
        """Everything before the LLM: the extractive layer's answer or refusal, and what a model would be shown."""
        started = time.perf_counter()
        question, cut = truncate_question(valid_text(question))
        notice = TRUNCATED_NOTICE.format(limit=len(question)) if cut else ""
        turns = conversation(history)
        if BINARY.search(question):
            answer = Answer(question=question, text=BINARY_REFUSAL, refused=True, grounding="binary input")
            return Drafts(answer, answer, None, [], [], started)
        considered = self.consider(question, turns)
        retrieval, analysis = considered.retrieval, considered.analysis
        t0 = time.perf_counter()
        ranked = self.rank(considered)
        verdict = assess(analysis, retrieval.passages, ranked, answerability(self.model, ranked), self.thresholds)
        composed = replace(compose_answer(question, analysis, select(analysis, ranked), retrieval),
                           grounding=verdict.reason)
        unanswered = verdict if not verdict.answerable else \
            replace(verdict, answerable=False, reason="the LLM found no answer it could verify in the passages")
        declined = replace(refusal(question, analysis, unanswered, self.lexicon.district), scores=scores(retrieval))
        common = {"condensed_query": considered.query, "notice": notice,
                  "timings_ms": {**retrieval.timings_ms, "compose": (time.perf_counter() - t0) * 1000}}
        draft = composed if verdict.answerable else declined
        # A follow-up's model prompt keeps the turn its subject came from; a question that stands alone, none.
        needed = turns[-1:] if considered.carried else []
        return Drafts(replace(draft, **common), replace(declined, **common), retrieval, composed.citations, needed,
                      started)

    def stream(self, question: str, history: History = None) -> Iterator[str | Answer]:
        """Yields text pieces as they are produced, then the final Answer (whose text is authoritative:
        citation checks may remove sentences that were streamed)."""
        drafts = self.draft(question, history)
        answer = drafts.answer
        policy = self.settings.llm_refusal
        if self.generator is not None and drafts.focus and consults(policy, answer):
            generation = yield from self.generator.stream(answer.question, drafts.turns, drafts.retrieval, answer,
                                                          drafts.focus)
            answer = settle(policy, answer, drafts.declined, generation)
        else:
            yield answer.text
        yield replace(answer, timings_ms={**answer.timings_ms, "total": (time.perf_counter() - drafts.started) * 1000})
