"""Prompt cleaning applied before the umT5 tokenizer, as the official Wan/MultiTalk text path does it.

The official `HuggingfaceTokenizer` (clean mode "whitespace") runs, per prompt: `ftfy.fix_text` with its default
settings (mojibake repair, curly quotes to straight, ligatures expanded, full-width characters to ASCII), HTML
entities unescaped twice (so "&amp;amp;" ends as "&"), strip, every run of Unicode whitespace collapsed to one
space, strip again. Zero-width spaces and soft hyphens are not whitespace and survive.

The whitespace class is the `regex` module's `\\s` (Unicode White_Space), as in the official code; Python's `re`
differs on a few C0 separators, which ftfy removes anyway.

References:
- Wan-Video/Wan2.1 `wan/modules/tokenizers.py` (`basic_clean`, `whitespace_clean`).
- ftfy documentation, https://ftfy.readthedocs.io/.
"""

from __future__ import annotations

import html

import ftfy
import regex

_WHITESPACE_RUN = regex.compile(r"\s+")


def basic_clean(text: str) -> str:
    """Repair encoding damage and unescape HTML twice (prompts are often pasted from web pages)."""
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    return text.strip()


def whitespace_clean(text: str) -> str:
    """Collapse every run of Unicode whitespace (tabs, newlines, no-break and ideographic spaces) to one space."""
    return _WHITESPACE_RUN.sub(" ", text).strip()


def clean_prompt(text: str) -> str:
    """The official "whitespace" cleaning of one prompt: `whitespace_clean(basic_clean(text))`."""
    return whitespace_clean(basic_clean(text))
