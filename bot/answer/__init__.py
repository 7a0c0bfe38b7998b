"""Answering: question analysis, follow-ups, sentence selection, grounding, the optional LLM, the Assistant."""
