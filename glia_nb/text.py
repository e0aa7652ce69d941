"""Text helpers shared by every layer: the prompts shipped in ``glia_nb/prompts`` and
shortening long text for a model's context.

This module imports only the standard library, so any layer may use it.
"""
from __future__ import annotations

from importlib import resources
from string import Template

__all__ = ["load_prompt", "load_template", "truncate_middle"]


def load_prompt(name: str) -> str:
    """The text of ``glia_nb/prompts/<name>`` (read when called, never at import); a name
    without a suffix means the Markdown file ``<name>.md``."""
    if "." not in name:
        name += ".md"
    return resources.files("glia_nb.prompts").joinpath(name).read_text(encoding="utf-8")


def load_template(name: str) -> Template:
    """:func:`load_prompt` as a :class:`string.Template` (``$name`` placeholders)."""
    return Template(load_prompt(name))


def truncate_middle(text: str, limit: int) -> str:
    """Shorten ``text`` to about ``limit`` characters, keeping its head (40 %) and its tail
    (60 %, where errors and results usually are) around a marker saying how much was cut.
    A ``limit`` of 0 or less keeps the text whole."""
    if limit <= 0 or len(text) <= limit:
        return text
    head = int(limit * 0.4)
    tail = limit - head
    omitted = len(text) - head - tail
    return f"{text[:head]}\n[... {omitted} characters omitted ...]\n{text[-tail:]}"
