"""Keyword search: jieba segmentation and BM25 (bm25s, sparse matrices: fast at tens of thousands of chunks)."""
from __future__ import annotations

import functools
import hashlib
import importlib
import io
import json
import logging
import math
import os
import re
import tempfile
import threading
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np
import jieba

from bot.config import CACHE_DIR

jieba.setLogLevel(60)

log = logging.getLogger(__name__)

STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 等 对 为 有 也 都 将 把 被 从 而 并 其 之 于 以 或 这 那 个 吗 呢 吧 啊 呀 嘞 哪 啥 么 "
    "什么 多少 几 怎么 怎样 如何 哪些 哪里 哪儿 谁 是否 是不是 有没有 请问 一下 我们 你们 他们 我 你 他 她 它 "
    "咱 俺 要 会 能 可以 还 就 又 得 地 着 过 让 给 该 上 下 中 内 一 每 今年 目前 现在".split())
TOKEN_RE = re.compile(r"[\w%％.]+")
DICTIONARY_FORMAT = 1


class Dictionary:
    """jieba's dictionary (word → frequency, word → part of speech), read a first character at a time.

    jieba parses all 349,046 lines of dict.txt (or unmarshals its cache, ~1 s) and its tagger parses them again
    (~0.3 s); a question touches a few hundred first characters. So the lines are regrouped by first character
    once into a cache file (a JSON header line with each group's byte range, then the groups), and a group is
    parsed when a text first uses its character. Every prefix of a word starts with the word's character, so a
    group holds everything jieba's table holds for it (prefixes with frequency 0, as jieba's gen_pfdict)."""

    def __init__(self, source: Path, cache_dir: Path):
        self.source = source
        self.cache = cache_dir / f"jieba-{hashlib.sha256(str(source).encode()).hexdigest()[:12]}.dict"
        self._lock = threading.Lock()
        self._loaded = False
        self.total = 0
        self._ranges: dict[str, list[int]] = {}
        self._body = b""
        self._groups: dict[str, tuple[dict[str, int], dict[str, str]]] = {}

    def group(self, char: str) -> tuple[dict[str, int], dict[str, str]]:
        """(frequencies, part-of-speech tags) of the words that start with ``char``."""
        found = self._groups.get(char)
        if found is None:
            self.load()
            span = self._ranges.get(char)
            frequencies, tags = {}, {}
            if span is not None:
                for line in self._body[span[0]:span[1]].decode("utf-8").splitlines():
                    word, freq, tag = line.split(" ")
                    frequencies[word] = int(freq)
                    tags[word] = tag
                    for end in range(1, len(word)):
                        frequencies.setdefault(word[:end], 0)
            found = self._groups.setdefault(char, (frequencies, tags))
        return found

    def _stamp(self) -> dict:
        stat = self.source.stat()
        return {"format": DICTIONARY_FORMAT, "source": str(self.source), "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns}

    def load(self) -> None:
        """Read the cache file (made first if missing, stale or damaged); the groups are parsed later."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            stamp = self._stamp()
            try:
                header, body = self._read(stamp)
            except (OSError, ValueError, KeyError) as exc:
                log.info("jieba dictionary cache %s rebuilt (%s)", self.cache, exc)
                header, body = self._build(stamp)
            self.total, self._ranges, self._body = header["total"], header["ranges"], body
            self._loaded = True

    def _read(self, stamp: dict) -> tuple[dict, bytes]:
        data = self.cache.read_bytes()
        newline = data.index(b"\n")
        header, body = json.loads(data[:newline]), data[newline + 1:]
        if {k: header.get(k) for k in stamp} != stamp:
            raise ValueError("made from another dict.txt")
        if hashlib.sha256(body).hexdigest() != header["sha256"]:
            raise ValueError("damaged")
        return header, body

    def _build(self, stamp: dict) -> tuple[dict, bytes]:
        groups: dict[str, list[str]] = {}
        total = 0
        with open(self.source, encoding="utf-8") as lines:
            for line in lines:
                word, freq, tag = line.strip().split(" ")
                total += int(freq)
                groups.setdefault(word[0], []).append(f"{word} {freq} {tag}\n")
        parts, ranges, offset = [], {}, 0
        for char, group in groups.items():
            part = "".join(group).encode("utf-8")
            ranges[char] = [offset, offset + len(part)]
            parts.append(part)
            offset += len(part)
        body = b"".join(parts)
        header = {**stamp, "total": total, "ranges": ranges, "sha256": hashlib.sha256(body).hexdigest()}
        try:
            write_atomically(self.cache, json.dumps(header, ensure_ascii=False).encode("utf-8") + b"\n" + body)
        except OSError as exc:  # a read-only home: parse it again next time
            log.warning("cannot write the jieba dictionary cache %s: %s", self.cache, exc)
        return header, body


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(scratch, path)
    except BaseException:
        os.unlink(scratch)
        raise


DICTIONARY = Dictionary(Path(jieba.__file__).with_name(jieba.DEFAULT_DICT_NAME), CACHE_DIR)


class _WordTags(dict):
    """Word tags of jieba.posseg's module-level tagger, looked up in DICTIONARY (own entries, from jieba.add_word
    with a tag, first)."""

    def get(self, word, default=None):
        return super().get(word) or DICTIONARY.group(word[:1])[1].get(word, default)


def _import_posseg():
    """jieba.posseg without the 0.3-0.5 s its module-level tagger spends at import parsing all of dict.txt for
    word tags: it is handed an empty file, then given _WordTags."""
    jieba.dt.get_dict_file = io.BytesIO
    try:
        module = importlib.import_module("jieba.posseg")
    finally:
        del jieba.dt.get_dict_file
    module.dt.word_tag_tab = _WordTags()
    return module


posseg = _import_posseg()


class _Tagger(posseg.POSTokenizer):
    """jieba's part-of-speech tagger over a Segmenter's tokenizer, with the word tags it fills as needed
    (POSTokenizer.__init__ would parse dict.txt for them)."""

    def __init__(self, tokenizer: jieba.Tokenizer, tags: dict[str, str]):
        self.tokenizer = tokenizer
        self.word_tag_tab = tags


class Segmenter:
    """jieba with a knowledge folder's own words (its lexicon) added to a private copy of the dictionary: jieba's
    global state is never changed, so two knowledge folders in one process segment independently. The copy is
    filled from DICTIONARY a first character at a time, before jieba reads a text (see ``_ready``)."""

    def __init__(self, words: tuple[str, ...] = (), dictionary: Dictionary = DICTIONARY):
        self.words = tuple(sorted(set(words)))
        # Stored with each chunk's tokens: chunks tokenized with other words are re-tokenized when loaded.
        self.fingerprint = hashlib.sha256("\n".join(self.words).encode("utf-8")).hexdigest()[:16]
        self._dictionary = dictionary
        self._chars: set[str] = set()
        self._tags: dict[str, str] = {}
        self._jieba = jieba.Tokenizer()
        dictionary.load()
        # Its FREQ and total are filled here, never from dict.txt.
        self._jieba.initialized, self._jieba.total = True, dictionary.total
        self._tagger = _Tagger(self._jieba, self._tags)
        for word in self.words:
            self._ready(word)
            self._jieba.add_word(word)

    def _ready(self, text: str) -> None:
        """Copy in the dictionary groups of the characters of ``text`` not seen yet. A group comes in before
        any own word that starts with its character is added (__init__ readies each word first), so the copy
        never overwrites one."""
        new = set(text) - self._chars
        if not new:
            return
        for char in new:
            frequencies, tags = self._dictionary.group(char)
            self._jieba.FREQ.update(frequencies)
            self._tags.update(tags)
        self._chars |= new

    @property
    def total(self) -> int:
        """Sum of the dictionary's frequencies (and of own words')."""
        return self._jieba.total

    def frequency(self, word: str) -> int:
        """The word's frequency in the dictionary (0 for a prefix of a word, or a word it lacks)."""
        self._ready(word)
        return self._jieba.FREQ.get(word, 0)

    def tokenize(self, text: str) -> list[str]:
        """Search-mode segmentation (卫东区 → 卫东, 东区, 卫东区) without punctuation and function words."""
        text = text.lower()
        self._ready(text)
        tokens = []
        for token in self._jieba.cut_for_search(text):
            token = token.strip()
            if token and token not in STOPWORDS and TOKEN_RE.fullmatch(token):
                tokens.append(token)
        return tokens

    def words_of(self, text: str) -> list[str]:
        """Precise-mode words, in order, covering ``text`` exactly."""
        self._ready(text)
        return self._jieba.lcut(text)

    def tagged(self, text: str) -> list[tuple[str, str]]:
        """(word, part-of-speech flag) pairs: ns is a place name, nr a person's."""
        self._ready(text)
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


BM25_K1, BM25_B = 1.5, 0.75  # bm25s's defaults (its "lucene" method), which every table is built with
EMPTY_TERM = ""  # bm25s looks this up for a query none of whose terms it knows
TERMS_FILE = "terms.npy"
LENGTHS_FILE = "lengths.npy"


@dataclass(frozen=True)
class TermCorpus:
    """The chunks as term numbers: one flat array of every chunk's terms in order, and each chunk's length.
    Kept with the BM25 index (and saved with it) so that a change of a few chunks rebuilds it from these arrays
    instead of reading and segmenting every chunk again."""
    terms: dict[str, int]  # term → column of the score matrix
    flat: np.ndarray  # int32
    lengths: np.ndarray  # int32, one per chunk

    @classmethod
    def encode(cls, tokens: Iterable[list[str]], terms: dict[str, int] | None = None) -> "TermCorpus":
        """``tokens`` (a list per chunk, read one at a time) numbered by ``terms`` (extended, in a copy, by the
        ones it lacks). Straight into int32 arrays: 30k chunks' 4.4 million token strings never exist at once."""
        terms = dict(terms) if terms is not None else {EMPTY_TERM: 0}
        flat, lengths = array("i"), array("i")
        for chunk in tokens:
            flat.extend(terms.setdefault(term, len(terms)) for term in chunk)
            lengths.append(len(chunk))
        return cls(terms, np.frombuffer(flat, dtype=np.int32), np.frombuffer(lengths, dtype=np.int32))

    def changed(self, kept: np.ndarray, added: list[list[str]]) -> "TermCorpus":
        """The chunks where ``kept`` (a boolean per chunk) is true, in order, then ``added``; numbered again so
        that terms only removed chunks held leave the vocabulary (it would otherwise grow with every change)."""
        new = TermCorpus.encode(added, self.terms)
        flat = np.concatenate([self.flat[np.repeat(kept, self.lengths)], new.flat])
        used = np.zeros(len(new.terms), dtype=bool)
        used[flat] = True
        used[new.terms[EMPTY_TERM]] = True
        number = (np.cumsum(used) - 1).astype(np.int32)
        terms = {term: int(number[column]) for term, column in new.terms.items() if used[column]}
        return TermCorpus(terms, number[flat], np.concatenate([self.lengths[kept], new.lengths]))

    def bm25(self) -> bm25s.BM25:
        """bm25s's index of these chunks, computed with numpy rather than by its per-chunk Python loops (3 s
        at 30k chunks, holding the GIL that queries need): the same scores, the same compressed-column matrix
        (one column per term, chunks in order within it), so bm25s's retrieval, save and load work unchanged."""
        n_docs, n_terms = len(self.lengths), len(self.terms)
        # One key per token, term * n_docs + chunk, sorted: runs of equal keys are the matrix entries in column
        # order, a run's length the term frequency. In place, as a copy per step cost 140 MB at 30k chunks.
        keys = self.flat.astype(np.int64)
        keys *= n_docs
        keys += np.repeat(np.arange(n_docs, dtype=np.int32), self.lengths)
        keys.sort()
        first = np.ones(len(keys), dtype=bool)
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        tf = np.diff(starts, append=len(keys))
        keys = keys[starts]
        columns, rows = (keys // n_docs).astype(np.int32), (keys % n_docs).astype(np.int32)
        del keys, starts, first
        df = np.bincount(columns, minlength=n_terms)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        length = self.lengths[rows] / self.lengths.mean()
        tfc = tf / (BM25_K1 * ((1 - BM25_B) + BM25_B * length) + tf)
        bm25 = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
        bm25.scores = {"data": (idf[columns] * tfc).astype(np.float32), "indices": rows,
                       "indptr": np.concatenate([[0], np.cumsum(df)]).astype(np.int64), "num_docs": n_docs}
        bm25.vocab_dict, bm25.unique_token_ids_set = self.terms, set(self.terms.values())
        bm25.nonoccurrence_array = None
        return bm25

    def save(self, path: Path) -> None:
        np.save(path / TERMS_FILE, self.flat)
        np.save(path / LENGTHS_FILE, self.lengths)

    @classmethod
    def load(cls, path: Path, terms: dict[str, int]) -> "TermCorpus":
        """Memory-mapped, like the score matrix: a change copies what it keeps."""
        flat, lengths = np.load(path / TERMS_FILE, mmap_mode="r"), np.load(path / LENGTHS_FILE, mmap_mode="r")
        if flat.dtype != np.int32 or lengths.dtype != np.int32 or int(lengths.sum()) != len(flat):
            raise ValueError("the term arrays do not fit each other")
        if len(flat) and (int(flat.max()) >= len(terms) or int(flat.min()) < 0):
            raise ValueError("the term arrays name terms the vocabulary lacks")
        return cls(terms, flat, lengths)


class KeywordIndex:
    """BM25 over pre-tokenized chunks, built from the vector store's chunks so both always agree, changed by a few
    chunks without reading the others again (``changed``), or loaded as a build saved it (``save``/``load``)."""

    def __init__(self, ids: list[str], tokens: list[list[str]], segmenter: Segmenter = PLAIN):
        self._assemble(list(ids), TermCorpus.encode(tokens), segmenter)

    @classmethod
    def of_corpus(cls, ids: list[str], corpus: TermCorpus, segmenter: Segmenter,
                  bm25: bm25s.BM25 | None = None) -> "KeywordIndex":
        """The index of ``corpus`` (its chunks' ids in order), with its bm25s index if one was loaded."""
        index = cls.__new__(cls)
        index._assemble(ids, corpus, segmenter, bm25)
        return index

    def _assemble(self, ids: list[str], corpus: TermCorpus, segmenter: Segmenter,
                  bm25: bm25s.BM25 | None = None) -> None:
        self.ids = ids
        self.segmenter = segmenter
        self.corpus = corpus
        self._n = len(ids)
        self._bm25 = bm25 or (corpus.bm25() if ids else None)
        self._vocab = corpus.terms
        # A column's entry count is the term's document frequency: every BM25 score of a term in a chunk is
        # positive.
        self._df = np.diff(self._bm25.scores["indptr"]).tolist() if self._bm25 else []
        # bm25s keeps scratch state during retrieval.
        self._lock = threading.Lock()

    def changed(self, removed: set[str], added_ids: list[str], added_tokens: list[list[str]]) -> "KeywordIndex":
        """A new index: this one without the ``removed`` chunks, with the added ones after the rest."""
        kept = np.array([chunk_id not in removed for chunk_id in self.ids], dtype=bool)
        return KeywordIndex.of_corpus([i for i, keep in zip(self.ids, kept) if keep] + list(added_ids),
                                      self.corpus.changed(kept, added_tokens), self.segmenter)

    def save(self, path: Path) -> None:
        """bm25s's files (score matrix, vocabulary, parameters) and the term arrays into the folder ``path``;
        the ids are the caller's to keep, in this order."""
        self._bm25.save(path, show_progress=False)
        self.corpus.save(path)

    @classmethod
    def load(cls, path: Path, ids: list[str], segmenter: Segmenter) -> "KeywordIndex":
        """What ``save`` wrote, for these ids; ValueError if the files do not fit them. The arrays are
        memory-mapped (worker processes share their pages): saved folders are only ever replaced or removed
        whole, never rewritten in place, so a mapped file does not change under a reader."""
        bm25 = bm25s.BM25.load(path, mmap=True, show_progress=False)
        scores = bm25.scores
        if (scores["num_docs"] != len(ids) or len(scores["indptr"]) - 1 > len(bm25.vocab_dict)
                or not scores["indptr"][-1] == len(scores["data"]) == len(scores["indices"])):
            raise ValueError("the BM25 files do not fit the chunk table")
        corpus = TermCorpus.load(path, bm25.vocab_dict)
        if len(corpus.lengths) != len(ids):
            raise ValueError("the term arrays do not fit the chunk table")
        return cls.of_corpus(ids, corpus, segmenter, bm25)

    def __len__(self) -> int:
        return self._n

    def idf(self, term: str) -> float:
        """Smoothed inverse document frequency; unseen terms get the highest weight."""
        return self.idf_of_count(self.document_frequency(term))

    def idf_of_count(self, document_frequency: int) -> float:
        return math.log((self._n + 1) / (document_frequency + 0.5))

    def document_frequency(self, term: str) -> int:
        column = self._vocab.get(term)
        return self._df[column] if column is not None and column < len(self._df) else 0

    def search(self, query_tokens: list[str], k: int) -> list[KeywordHit]:
        if self._bm25 is None or not query_tokens:
            return []
        with self._lock:
            docs, scores = self._bm25.retrieve([query_tokens], k=min(k, self._n), show_progress=False)
        return [KeywordHit(self.ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]
