"""Ingest: read the knowledge folder and bring the index in line with it (the CLI, eval and calibrate use it)."""
from __future__ import annotations

from bot.config import Settings
from bot.knowledge.articles import KnowledgeError, load_knowledge
from bot.search.index import IngestSummary, KnowledgeIndex, reset_index


def ingest(settings: Settings, rebuild: bool = False,
           progress: bool = True) -> tuple[KnowledgeIndex, IngestSummary, list[KnowledgeError]]:
    """Returns (index, summary, errors); files with errors keep their indexed chunks."""
    if not settings.knowledge_dir.is_dir():
        raise SystemExit(f"knowledge folder not found: {settings.knowledge_dir}")
    if rebuild:
        reset_index(settings)
    load = load_knowledge(settings.knowledge_dir)
    index = KnowledgeIndex.open(settings)
    return index, index.sync(load, progress=progress), load.errors
