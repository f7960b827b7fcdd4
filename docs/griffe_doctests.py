"""A griffe extension for the API reference: docstring examples (`>>>` lines and their output, up to
the next blank line, as doctest reads them) become fenced `pycon` code blocks, so Markdown shows
them as code instead of nested quotes (and never reads `x[0][1]` as a link). Loaded by mkdocs.yml."""

from __future__ import annotations

import griffe


def fence_doctests(text: str) -> str:
    """`text` with every run of doctest lines wrapped in ```pycon fences at the run's indentation."""
    out: list[str] = []
    indent = None  # the open block's indentation, or None outside a block
    for line in text.splitlines():
        stripped = line.lstrip()
        if indent is None and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
        elif indent is not None and not stripped:
            out.append(f"{indent}```")
            indent = None
        out.append(line)
    if indent is not None:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
