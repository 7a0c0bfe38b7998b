"""Keyword search: jieba segmentation and BM25 (bm25s, sparse matrices: fast at tens of thousands of chunks)."""
from __future__ import annotations

import math
import re
import threading
from collections import Counter
from dataclasses import dataclass

import bm25s
import jieba

jieba.setLogLevel(60)
# Service and programme names the general dictionary splits apart; a resident types them as one word.
for _term in ("窝沟封闭", "低保", "低保户", "四城联创", "扬尘治理", "八小门店", "黄标车", "雾炮车", "洒水车",
              "创卫", "攻坚办", "纪工委", "统战部", "统一战线", "经济责任审计", "双过半", "慢性病", "暖心台账"):
    jieba.add_word(_term)

STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 等 对 为 有 也 都 将 把 被 从 而 并 其 之 于 以 或 这 那 个 吗 呢 吧 啊 呀 嘞 哪 啥 么 "
    "什么 多少 几 怎么 怎样 如何 哪些 哪里 哪儿 谁 是否 是不是 有没有 请问 一下 我们 你们 他们 我 你 他 她 它 "
    "咱 俺 要 会 能 可以 还 就 又 得 地 着 过 让 给 该 上 下 中 内 一 每 今年 目前 现在".split())
TOKEN_RE = re.compile(r"[\w%％.]+")


def tokenize(text: str) -> list[str]:
    """Search-mode segmentation (卫东区 → 卫东, 东区, 卫东区) without punctuation and function words."""
    tokens = []
    for token in jieba.cut_for_search(text.lower()):
        token = token.strip()
        if token and token not in STOPWORDS and TOKEN_RE.fullmatch(token):
            tokens.append(token)
    return tokens


@dataclass(frozen=True)
class KeywordHit:
    chunk_id: str
    score: float


class KeywordIndex:
    """BM25 over pre-tokenized chunks. Rebuilt whole from the vector store's chunks so both always agree."""

    def __init__(self, ids: list[str], tokens: list[list[str]]):
        self.ids = list(ids)
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
