"""Gradio's own strings in Simplified Chinese whatever the browser's language.

Gradio picks its translations by the browser's locale, so a resident whose browser says English saw "Drop File
Here". Gradio's zh-CN dictionary (``gradio-zh-CN.json``, flattened from the Gradio release in use, plus the few
strings it lacks) is handed to the page as the custom translation of every locale Gradio ships, which take
precedence over its own.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import gradio as gr

DICTIONARY = Path(__file__).with_name("gradio-zh-CN.json")
# The locales Gradio ships translations for (gradio/templates/frontend/assets/<locale>-*.js).
LOCALES = ("ar", "ca", "ckb", "de", "en", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "id", "ja", "ko", "lt", "nb",
           "nl", "pl", "pt", "pt-BR", "ro", "ru", "sv", "ta", "th", "tr", "uk", "ur", "uz", "zh-CN", "zh-TW")


@lru_cache(maxsize=1)
def gradio_chinese() -> gr.I18n:
    strings = json.loads(DICTIONARY.read_text(encoding="utf-8"))
    return gr.I18n(**{locale: strings for locale in LOCALES})
