"""The answer: dataclasses every interface shares (CLI, web, eval, LLM path)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Citation:
    n: int  # the [n] marker in the answer text
    article_id: str
    title: str
    date: str
    text: str  # the cited passage
    chunk_id: str
    passage_start: int  # passage offsets in the article body
    passage_end: int
    sentence_start: int  # offsets of the cited sentence in the article body (for highlighting)
    sentence_end: int


@dataclass(frozen=True)
class Answer:
    """Immutable once built: the same Answer is yielded to the caller, logged and stored, so stages derive a new
    one with dataclasses.replace instead of changing it."""
    question: str
    text: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    condensed_query: str = ""  # what was actually searched (follow-ups carry earlier context)
    scores: list[dict] = field(default_factory=list)  # retrieval scores of the passages considered
    timings_ms: dict[str, float] = field(default_factory=dict)  # retrieve, rerank, compose, [generate], total
    notice: str = ""  # shown beside the answer: input was cut, the LLM failed and we fell back, ...
    office: str = ""  # the responsible office the knowledge names, suggested on refusals
    grounding: str = ""  # why the answer was given or refused (for staff and the eval report)
    mode: str = "extractive"  # or "llm"
    highlight: tuple[int, int] | None = None  # offsets in ``text`` of the clause that answers (the page bolds it)
    topic_articles: tuple[str, ...] = ()  # on refusals: the articles that hold the question's topic, if any

    def to_dict(self) -> dict:
        return asdict(self)
