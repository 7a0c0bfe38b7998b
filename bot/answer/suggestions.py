"""Suggested questions the knowledge answers: after an answer, other questions about the cited article; after a
refusal on a topic the knowledge holds, what it does hold on that topic.

Candidates come from the article's own text (``askable.py``); each is asked of the assistant, and only those it
answers from the same article, stating the fact the question was made from, are offered. That check is what makes
a suggestion honest: a resident who clicks one gets an answer, not a refusal. Verified suggestions are cached per
article and index state, so the asks are paid once per article until the knowledge changes.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.answer.askable import Askable, askables
from bot.answer.selection import question_bigrams
from bot.answer.types import Answer

if TYPE_CHECKING:  # the assistant is passed in, not built here
    from bot.answer.assistant import Assistant

MAX_ASKS_PER_ARTICLE = 6  # verification asks (about 40 ms each) when an article is first suggested from
NEAR_DUPLICATE = 0.6  # share of character pairs two questions share when one merely rephrases the other
SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Suggestion:
    label: str  # a short topic phrase shown to the resident: 新增低保家庭户数
    question: str  # what is asked when it is clicked: 卫东区共新增低保家庭多少户？


@dataclass(frozen=True)
class Verified:
    suggestion: Suggestion
    fact: str  # what the bot's answer states: 135户
    sentences: tuple[tuple[int, int], ...]  # the article's sentences the bot's answer cites (body offsets)


class Suggester:
    """Thread-safe: the cache is guarded, and the assistant it asks is."""

    def __init__(self, assistant: Assistant, max_asks: int = MAX_ASKS_PER_ARTICLE):
        self.assistant = assistant
        self.max_asks = max_asks
        self._cache: dict[tuple[str, int, int], tuple[Verified, ...]] = {}
        self._lock = threading.Lock()

    def follow_ups(self, answer: Answer, limit: int = 3) -> list[Suggestion]:
        """Other questions about the article(s) ``answer`` cites that the bot answers from them: not the question
        just asked or a rephrasing of it, and not answered by a sentence the resident already got."""
        if answer.refused:
            return []
        got = [(c.article_id, c.sentence_start, c.sentence_end) for c in answer.citations]
        found = []
        for article_id in dict.fromkeys(c.article_id for c in answer.citations):
            for verified in self.answered(article_id):
                seen = any(a == article_id and _overlap(span, (start, end))
                           for a, start, end in got for span in verified.sentences)
                if not seen and verified.fact not in answer.text and not _rephrases(verified, answer.question):
                    found.append(verified.suggestion)
        return found[:limit]

    def for_refusal(self, answer: Answer, limit: int = 3) -> list[Suggestion]:
        """What the knowledge answers on a refused question's topic; nothing when the topic is not in it
        (``Answer.topic_articles``: the articles holding the question's salient words, topic.py)."""
        if not answer.refused:
            return []
        found = [verified.suggestion for article_id in answer.topic_articles
                 for verified in self.answered(article_id) if not _rephrases(verified, answer.question)]
        return found[:limit]

    def answered(self, article_id: str) -> tuple[Verified, ...]:
        """The article's questions the bot answers from it, one per sentence first (cached per index state)."""
        index = self.assistant.index
        key = (article_id, index.revision(), index.count())
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        verified = tuple(self._verify(article_id))
        with self._lock:
            # Entries for earlier index states of this article are stale: drop them.
            self._cache = {k: v for k, v in self._cache.items() if k[0] != article_id}
            self._cache[key] = verified
        return verified

    def _verify(self, article_id: str) -> list[Verified]:
        chunks = sorted((c for c in self.assistant.index.chunks() if c.article_id == article_id),
                        key=lambda c: c.start)
        body = ""
        for chunk in chunks:  # chunks overlap by a sentence; each is body[start:end]
            body = body.ljust(chunk.start) + chunk.text[max(0, len(body) - chunk.start):]
        kept = []
        for candidate in _spread(askables(body, self.assistant.index.segmenter, self.assistant.lexicon.home),
                                 self.max_asks):
            answer = self.assistant.ask(candidate.question)
            cited = tuple((c.sentence_start, c.sentence_end) for c in answer.citations if c.article_id == article_id)
            if not answer.refused and cited and _squash(candidate.fact) in _squash(answer.text):
                kept.append(Verified(Suggestion(candidate.label, candidate.question), candidate.fact, cited))
        return kept


def _spread(candidates: list[Askable], limit: int) -> list[Askable]:
    """At most ``limit`` candidates, one per sentence first: a sentence's figures are answered together (the
    resident who got one has read the others), so suggestions from different sentences are worth more."""
    by_sentence: dict[tuple[int, int], list[Askable]] = {}
    for candidate in candidates:
        by_sentence.setdefault(candidate.sentence, []).append(candidate)
    rounds = [group[i] for i in range(max(map(len, by_sentence.values()), default=0))
              for group in by_sentence.values() if i < len(group)]
    return rounds[:limit]


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _rephrases(verified: Verified, question: str) -> bool:
    mine, theirs = question_bigrams(verified.suggestion.question), question_bigrams(question)
    return bool(mine and theirs) and len(mine & theirs) / len(mine | theirs) >= NEAR_DUPLICATE


def _squash(text: str) -> str:
    return SPACE.sub("", text)
