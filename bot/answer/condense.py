"""Follow-up questions: carry the subject of earlier turns into a question that lacks one (no LLM needed)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from bot.search.keyword import KeywordIndex
from bot.text import normalize_query
from bot.answer.questions import salient_terms

# Openings and endings that mark a question leaning on the previous turn: 那封闭率呢？ 他多大年纪？ 一共…？
FOLLOW_UP = re.compile(r"^(那|那么|那个|这个|这些|那些|还有|另外|其中|一共|总共|他|她|它|其|该|此|这|具体|and|what about|how about)"
                       r"|(呢|吗|么)[?？。]?$", re.IGNORECASE)
CARRIED_TERMS = 4
LOOKBACK_TURNS = 3


@dataclass(frozen=True)
class Condensed:
    question: str  # normalised
    carried: tuple[str, ...] = ()  # salient terms taken from earlier turns

    @property
    def query(self) -> str:
        return " ".join([self.question, *self.carried])


def needs_context(question: str, keyword: KeywordIndex) -> bool:
    if FOLLOW_UP.search(question):
        return True
    known = [t for t in salient_terms(question, keyword) if len(t) > 1 and keyword.document_frequency(t) > 0]
    return not known


def condense(question: str, turns: list[tuple[str, str]], keyword: KeywordIndex) -> Condensed:
    """The question to search with: unchanged, or followed by the salient terms of recent user turns."""
    query = normalize_query(question)
    if not turns or not query or not needs_context(query, keyword):
        return Condensed(query)
    carried: dict[str, float] = {}
    for user_turn, _ in reversed(turns[-LOOKBACK_TURNS:]):
        for term, weight in salient_terms(normalize_query(user_turn), keyword).items():
            if term not in query and keyword.document_frequency(term) > 0 and term not in carried:
                carried[term] = weight
        if len(carried) >= CARRIED_TERMS:
            break
    return Condensed(query, tuple(sorted(carried, key=lambda t: -carried[t])[:CARRIED_TERMS]))
