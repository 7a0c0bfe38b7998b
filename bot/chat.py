"""The assistant: one object, loaded once, thread-safe. Question (+ history) in, grounded Answer out."""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from .answer import Answer
from .condense import condense
from .config import Settings
from .glossary import expand
from .extractive import candidates, compose_answer, scores, select
from .grounding import assess, refusal
from .index import KnowledgeIndex
from .normalize import truncate_question
from .questions import analyze
from .retrieval import HybridSearch, Reranker

log = logging.getLogger(__name__)

History = list[tuple[str, str]] | list[list[str]] | None
TRUNCATED_NOTICE = "问题超过{limit}个字，只按前{limit}个字回答。"


class Assistant:
    def __init__(self, settings: Settings, index: KnowledgeIndex | None = None):
        self.settings = settings
        self.index = index or KnowledgeIndex.open(settings)
        reranker = Reranker(settings.reranker) if settings.reranker else None
        self.search = HybridSearch(self.index, reranker, dense_weight=settings.dense_weight)
        self.generator = None
        if settings.llm_enabled:
            from .llm import LLMGenerator

            self.generator = LLMGenerator(settings, self.index)

    def ask(self, question: str, history: History = None) -> Answer:
        answer = None
        for event in self.stream(question, history):
            if isinstance(event, Answer):
                answer = event
        return answer

    def stream(self, question: str, history: History = None) -> Iterator[str | Answer]:
        """Yields text pieces as they are produced, then the final Answer (whose text is authoritative:
        citation checks may remove sentences that were streamed)."""
        started = time.perf_counter()
        question, cut = truncate_question(question or "")
        notice = TRUNCATED_NOTICE.format(limit=len(question)) if cut else ""
        turns = [(str(u), str(a)) for u, a in (history or [])]
        condensed = condense(question, turns, self.index.keyword)
        query = expand(condensed.query)
        retrieval = self.search(query, k=self.settings.top_k)
        analysis = analyze(expand(condensed.question), self.index.keyword, condensed.carried)
        t0 = time.perf_counter()
        ranked = candidates(analysis, retrieval.passages)
        verdict = assess(analysis, retrieval.passages, ranked, self.index.keyword)
        if verdict.answerable:
            answer = compose_answer(question, analysis, select(analysis, ranked), retrieval)
            answer.grounding = verdict.reason
        else:
            answer = refusal(question, analysis, verdict)
            answer.scores = scores(retrieval)
        answer.condensed_query = query
        answer.notice = notice
        answer.timings_ms = {**retrieval.timings_ms, "compose": (time.perf_counter() - t0) * 1000}
        if self.generator is not None and not answer.refused:
            answer = yield from self.generator.stream(question, turns, analysis, retrieval, answer)
        else:
            yield answer.text
        answer.timings_ms["total"] = (time.perf_counter() - started) * 1000
        yield answer
