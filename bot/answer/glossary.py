"""Query expansion: the words residents use → the words the articles use, read from the knowledge's lexicon.

Colloquial and dialect words are replaced by the written terms of official text; English words for the services
add their Chinese names, so that English questions reach the keyword index too (the dense model is cross-lingual,
BM25 is not). The tables are data (``knowledge/lexicon.yaml``); this module only applies them.
"""
from __future__ import annotations

from itertools import accumulate

from bot.knowledge.lexicon import Lexicon
from bot.search.keyword import Segmenter


class Glossary:
    def __init__(self, lexicon: Lexicon, segmenter: Segmenter):
        self.english = lexicon.english
        self.colloquial = lexicon.colloquial
        self.segmenter = segmenter
        self._lengths = sorted({len(key) for key in self.colloquial}, reverse=True)

    def expand(self, query: str) -> str:
        """``query`` with colloquial words replaced and the Chinese names of its English words appended.
        One pass over word boundaries, longest key first: a key matches only where it starts and ends at a
        boundary of the question's words, so 跑不 is never found inside 跑不了 nor 花了 inside 开花了."""
        boundaries = {0, *accumulate(len(w) for w in self.segmenter.words_of(query))}
        parts, pos, i = [], 0, 0
        while i < len(query):
            key = next((query[i:i + n] for n in self._lengths if i in boundaries and i + n in boundaries
                        and query[i:i + n] in self.colloquial), None)
            if key is None:
                i += 1
                continue
            terms = self.colloquial[key]
            # One written word takes the colloquial one's place (带啥材料 → 带什么材料, which question patterns
            # read); several are set apart by spaces.
            parts += [query[pos:i], f" {terms} " if " " in terms or not terms else terms]
            i = pos = i + len(key)
        extra = [terms for pattern, terms in self.english if pattern.search(query)]  # of the words typed
        return " ".join(" ".join(["".join([*parts, query[pos:]]), *extra]).split())
