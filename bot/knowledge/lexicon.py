"""The district's vocabulary (``knowledge/lexicon.yaml``): its name, residents' words, English names, user words for
segmentation and the page's example questions. Data, not code: a knowledge folder without the file has none."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.knowledge.articles import NoAliasLoader

FILE_NAME = "lexicon.yaml"
MAX_BYTES = 200_000


class LexiconError(ValueError):
    """lexicon.yaml cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Example:
    topic: str  # a word the knowledge must contain for the example to be offered
    question: str


@dataclass(frozen=True)
class Lexicon:
    district: str = ""
    district_aliases: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    colloquial: dict[str, str] = field(default_factory=dict)
    english: tuple[tuple[re.Pattern, str], ...] = ()
    examples: tuple[Example, ...] = ()

    @property
    def home(self) -> frozenset[str]:
        """The words that name this knowledge's own place."""
        return frozenset(filter(None, (self.district, *self.district_aliases)))

    @classmethod
    def load(cls, knowledge_dir: Path) -> "Lexicon":
        path = Path(knowledge_dir) / FILE_NAME
        if not path.is_file():
            return cls()
        raw = path.read_bytes()
        if len(raw) > MAX_BYTES:
            raise LexiconError(f"{path}: larger than {MAX_BYTES} bytes")
        try:
            # The front-matter loader: safe YAML that also refuses anchors and aliases (no alias bombs).
            data = yaml.load(raw.decode("utf-8"), Loader=NoAliasLoader) or {}
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise LexiconError(f"{path}: not valid UTF-8 YAML: {exc}") from None
        try:
            return cls.parse(data)
        except (TypeError, ValueError, re.error) as exc:
            raise LexiconError(f"{path}: {exc}") from None

    @classmethod
    def parse(cls, data: dict) -> "Lexicon":
        if not isinstance(data, dict):
            raise ValueError("the file must be a mapping of sections (district, words, colloquial, …)")
        unknown = set(data) - {"district", "district_aliases", "words", "colloquial", "english", "examples"}
        if unknown:
            raise ValueError(f"unknown section(s): {', '.join(sorted(unknown))}")
        english = []
        for pattern, terms in _mapping(data, "english").items():
            try:
                english.append((re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE), terms))
            except re.error as exc:
                raise ValueError(f"english: {pattern!r} is not a valid regular expression ({exc})") from None
        examples = []
        for item in data.get("examples") or []:
            if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("topic", "question")):
                raise ValueError("examples: each item needs a topic and a question (both text)")
            examples.append(Example(item["topic"], item["question"]))
        return cls(district=str(data.get("district") or ""), district_aliases=_words(data, "district_aliases"),
                   words=_words(data, "words"), colloquial=_mapping(data, "colloquial"), english=tuple(english),
                   examples=tuple(examples))


def _words(data: dict, name: str) -> tuple[str, ...]:
    value = data.get(name) or []
    if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
        raise ValueError(f"{name}: must be a list of words")
    return tuple(w.strip() for w in value)


def _mapping(data: dict, name: str) -> dict[str, str]:
    value = data.get(name) or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise ValueError(f"{name}: must map words to their replacements")
    return {k: str(v or "") for k, v in value.items()}
