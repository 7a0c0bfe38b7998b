"""Keyword search: jieba segmentation and BM25 (bm25s, sparse matrices: fast at tens of thousands of chunks)."""
from __future__ import annotations

import functools
import hashlib
import math
import re
import threading
from collections import Counter
from dataclasses import dataclass

import bm25s
import jieba
import jieba.posseg

jieba.setLogLevel(60)

STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 等 对 为 有 也 都 将 把 被 从 而 并 其 之 于 以 或 这 那 个 吗 呢 吧 啊 呀 嘞 哪 啥 么 "
    "什么 多少 几 怎么 怎样 如何 哪些 哪里 哪儿 谁 是否 是不是 有没有 请问 一下 我们 你们 他们 我 你 他 她 它 "
    "咱 俺 要 会 能 可以 还 就 又 得 地 着 过 让 给 该 上 下 中 内 一 每 今年 目前 现在".split())
TOKEN_RE = re.compile(r"[\w%％.]+")


class Segmenter:
    """jieba with a knowledge folder's own words (its lexicon) added to a private copy of the dictionary: jieba's
    global state is never changed, so two knowledge folders in one process segment independently."""

    def __init__(self, words: tuple[str, ...] = ()):
        self.words = tuple(sorted(set(words)))
        # Stored with each chunk's tokens: chunks tokenized with other words are re-tokenized when loaded.
        self.fingerprint = hashlib.sha256("\n".join(self.words).encode("utf-8")).hexdigest()[:16]
        jieba.dt.check_initialized()
        self._jieba = jieba.Tokenizer()
        # A copy of the loaded dictionary, instead of loading it again (a second or so per instance).
        self._jieba.FREQ, self._jieba.total = dict(jieba.dt.FREQ), jieba.dt.total
        self._jieba.initialized = True
        for word in self.words:
            self._jieba.add_word(word)
        self._tagger = jieba.posseg.POSTokenizer(self._jieba)

    def tokenize(self, text: str) -> list[str]:
        """Search-mode segmentation (卫东区 → 卫东, 东区, 卫东区) without punctuation and function words."""
        tokens = []
        for token in self._jieba.cut_for_search(text.lower()):
            token = token.strip()
            if token and token not in STOPWORDS and TOKEN_RE.fullmatch(token):
                tokens.append(token)
        return tokens

    def words_of(self, text: str) -> list[str]:
        """Precise-mode words, in order, covering ``text`` exactly."""
        return self._jieba.lcut(text)

    def tagged(self, text: str) -> list[tuple[str, str]]:
        """(word, part-of-speech flag) pairs: ns is a place name, nr a person's."""
        return [(pair.word, pair.flag) for pair in self._tagger.lcut(text)]


@functools.lru_cache(maxsize=8)
def segmenter_for(words: tuple[str, ...]) -> Segmenter:
    """One Segmenter per word list: indexes of the same knowledge folder share it."""
    return Segmenter(words)


PLAIN = segmenter_for(())


@dataclass(frozen=True)
class KeywordHit:
    chunk_id: str
    score: float


class KeywordIndex:
    """BM25 over pre-tokenized chunks. Rebuilt whole from the vector store's chunks so both always agree."""

    def __init__(self, ids: list[str], tokens: list[list[str]], segmenter: Segmenter = PLAIN):
        self.ids = list(ids)
        self.segmenter = segmenter
        self._df = Counter(t for doc in tokens for t in set(doc))
        self._n = len(self.ids)
        self._bm25 = None
        if self.ids:
            self._bm25 = bm25s.BM25()
            self._bm25.index(tokens, show_progress=False)
        # bm25s keeps scratch state during retrieval.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._n

    def idf(self, term: str) -> float:
        """Smoothed inverse document frequency; unseen terms get the highest weight."""
        return self.idf_of_count(self._df.get(term, 0))

    def idf_of_count(self, document_frequency: int) -> float:
        return math.log((self._n + 1) / (document_frequency + 0.5))

    def document_frequency(self, term: str) -> int:
        return self._df.get(term, 0)

    def search(self, query_tokens: list[str], k: int) -> list[KeywordHit]:
        if self._bm25 is None or not query_tokens:
            return []
        with self._lock:
            docs, scores = self._bm25.retrieve([query_tokens], k=min(k, self._n), show_progress=False)
        return [KeywordHit(self.ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]
