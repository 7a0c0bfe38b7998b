"""Who decides to refuse when an LLM writes the answers (``BOT_LLM_REFUSAL``), as one pure function.

The extractive layer always drafts both an answer and a refusal; the model's verified reply (a ``Generation``)
then settles which one the resident sees:

- ``extractive``: the extractive layer decides. The model is asked only when it would answer; when the model finds
  nothing it can verify, the extractive excerpt is shown.
- ``veto``: both must agree to answer. As above, but when the model finds nothing the question is refused.
- ``llm``: the model decides. It is asked about every question (shown the sentences the extractive layer ranked
  best even when that layer would refuse): a verified reply is shown, anything else is refused.

The measured trade-offs are in README.md ("The LLM path").
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from bot.answer.types import Answer
from bot.config import LLM_REFUSAL_POLICIES

UNAVAILABLE_NOTICE = "大模型服务暂时不可用，以下为资料原文摘录。"
REMOVED_NOTICE = "已删除{n}句无法在引用资料中核实的内容。"
UNVERIFIED_NOTICE = "大模型的回答无法在引用资料中核实，以下为资料原文摘录。"
NOT_FOUND_NOTICE = "大模型认为资料中没有直接答案，以下为资料原文摘录。"
OUTCOMES = ("answered", "not_found", "unverified", "unavailable")


@dataclass(frozen=True)
class Generation:
    """What the model made of one question."""
    outcome: str  # one of OUTCOMES
    answer: Answer | None = None  # the verified answer, when answered
    removed: int = 0  # sentences dropped as unsupported
    timings_ms: dict[str, float] | None = None  # generate, first_token

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"generation outcome must be one of {OUTCOMES}, got {self.outcome!r}")


def join_notices(*notices: str) -> str:
    return " ".join(n for n in notices if n)


def consults(policy: str, draft: Answer) -> bool:
    """Whether the model is asked about a question whose extractive draft is ``draft``."""
    return policy == "llm" or not draft.refused


def settle(policy: str, draft: Answer, declined: Answer, generation: Generation) -> Answer:
    """The answer shown: ``draft`` is what the extractive layer decided (an answer or a refusal), ``declined`` the
    refusal to show when the model vetoes."""
    if policy not in LLM_REFUSAL_POLICIES:
        raise ValueError(f"LLM refusal policy must be one of {LLM_REFUSAL_POLICIES}, got {policy!r}")
    timings = {**draft.timings_ms, **(generation.timings_ms or {})}
    if generation.outcome == "answered":
        notice = REMOVED_NOTICE.format(n=generation.removed) if generation.removed else ""
        return replace(generation.answer, notice=join_notices(draft.notice, notice), timings_ms=timings)
    if generation.outcome == "unavailable" or policy == "extractive":
        if draft.refused:
            return replace(draft, timings_ms=timings)
        notice = {"unavailable": UNAVAILABLE_NOTICE, "unverified": UNVERIFIED_NOTICE}.get(generation.outcome,
                                                                                          NOT_FOUND_NOTICE)
        return replace(draft, notice=join_notices(draft.notice, notice), timings_ms=timings)
    return replace(declined, notice=draft.notice, timings_ms=timings)
